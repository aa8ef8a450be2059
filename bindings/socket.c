/*
** socket.c: socket objects for the `socket` module, TCP and UDP over IPv4
** and IPv6 (module "socket.core"). Each socket is a non-blocking fd that
** every call touches with one real system call, as Python does, so what a
** student sees is what the kernel did: recv(n) reads at most n bytes and
** nothing ahead, send reports partial sends. A call that would block parks
** its task and a uv_poll_t wakes it. The userdata holds only a pointer:
** the poll handle lives until its close callback, after the userdata may
** have been collected.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <lauxlib.h>
#include "socket.h"

#define RECV_STATIC 65536    /* recv up to this size needs no allocation */

static char scratch[RECV_STATIC];   /* copied to a Lua string at once */
static int spare_fd = -1;           /* given up to shed a client on EMFILE */
static double default_timeout = -1; /* setdefaulttimeout's: every new socket */

/* The socket metatable, by address: luaL_checkudata looks it up in the
** registry and compares, about 330 instructions, on every socket call
** (four a UDP datagram costs each side); this is a third of that. The one
** Lua state lives until exit, and the table in its registry as long. */
static const void *sock_mt;

static wl_sock_t **to_box(lua_State *L, int i) {
  void *p = lua_touserdata(L, i);
  if (p != NULL && lua_getmetatable(L, i)) {
    int same = lua_topointer(L, -1) == sock_mt;
    lua_pop(L, 1);
    if (same) return (wl_sock_t **)p;
  }
  return (wl_sock_t **)luaL_checkudata(L, i, SOCK_MT);   /* its error */
}

wl_sock_t *wl_check_sock(lua_State *L, int i, const char *op) {
  wl_sock_t *s = *to_box(L, i);
  if (s == NULL) wl_raise(L, op, UV_EBADF, NULL);
  return s;
}

/* Errors name the peer when there is one, else the local address; an
** AF_UNIX pair (socketpair) has none to name. */
int wl_sock_raise(lua_State *L, wl_sock_t *s, const char *op, int code) {
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  char buf[80] = "";
  if (s->family != AF_UNIX &&
      (getpeername(s->fd, (struct sockaddr *)&sa, &len) == 0 ||
       (len = sizeof sa, getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0 &&
        ((struct sockaddr_in *)&sa)->sin_port != 0)))
    wl_format_sockaddr((struct sockaddr *)&sa, buf, sizeof buf);
  return wl_raise(L, op, code, buf);
}

const int wl_sock_tag = 1;

static void on_close(uv_handle_t *h) { free(h); }

/* The one place a socket is closed. wake: tell parked tasks (close());
** not from __gc, where no task can be waiting and the state may be going. */
static void close_sock(wl_sock_t **box, int wake) {
  wl_sock_t *s = *box;
  *box = NULL;
  if (wake) {
    wl_list_wake_all(&s->rdq, UV_EBADF);
    wl_list_wake_all(&s->wrq, UV_EBADF);
  }
  uv_close((uv_handle_t *)&s->poll, on_close);   /* stops watching the fd */
  close(s->fd);            /* now, so the port is free at once */
  wl_handle_count(-1);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void watch(wl_sock_t *s, int events) {
  if (events == s->events) return;
  s->events = (unsigned char)events;
  if (events) uv_poll_start(&s->poll, events, on_poll);
  else uv_poll_stop(&s->poll);
}

/* Wake one waiter per ready direction. A direction that fires with no one
** waiting is dropped only then: a task looping on recv keeps its poll
** armed, so the loop costs no epoll_ctl per message. */
static void on_poll(uv_poll_t *h, int status, int events) {
  wl_sock_t *s = (wl_sock_t *)h;
  int keep;
  if (status < 0) {          /* POLLERR: libuv has stopped the handle itself */
    events = UV_READABLE | UV_WRITABLE;
    s->events = 0;           /* so that watch() starts it again */
  }
  keep = s->events;
  if (events & UV_READABLE) {
    s->maybe_readable = s->pending == 0;   /* else the next recv raises it */
    if (!wl_list_wake_one(&s->rdq, 0)) keep &= ~UV_READABLE;
  }
  if (events & UV_WRITABLE)
    if (!wl_list_wake_one(&s->wrq, 0)) keep &= ~UV_WRITABLE;
  watch(s, keep);
}

/* ---- deadlines: kept in the continuation context, in microseconds ---- */

lua_KContext wl_sock_deadline(const wl_sock_t *s) {
  if (s->timeout < 0) return 0;
  return (lua_KContext)(uv_hrtime() / 1000 + (uint64_t)(s->timeout * 1e6)) | 1;
}

int wl_sock_wait(lua_State *L, wl_sock_t *s, const char *op, int dir,
                 lua_KContext dl, lua_KFunction k) {
  double left = -1;
  if (s->timeout == 0) return wl_sock_raise(L, s, op, UV_EAGAIN);
  if (dl != 0) {
    left = ((double)dl - (double)(uv_hrtime() / 1000)) / 1e6;
    if (left <= 0) return wl_sock_raise(L, s, op, UV_ETIMEDOUT);
  }
  wl_check_park(L);            /* before watching: no poll for nobody */
  watch(s, s->events | dir);
  return wl_list_park(L, dir == UV_READABLE ? &s->rdq : &s->wrq, left, k, dl);
}

int wl_sock_raise_pending(lua_State *L, wl_sock_t *s, const char *op) {
  int e = s->pending;
  s->pending = 0;
  s->maybe_readable = 1;
  return wl_sock_raise(L, s, op, e);
}

void wl_sock_woken(lua_State *L, const char *op) {
  int rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (rc < 0) {
    wl_sock_t *s = *to_box(L, 1);
    if (s == NULL || rc == UV_ECANCELED)     /* cancel wins over a close */
      wl_raise(L, op, s == NULL && rc != UV_ECANCELED ? UV_EBADF : rc, NULL);
    wl_sock_raise(L, s, op, rc);
  }
}

/* Before a call that would complete without waiting: once the task has
** held the loop for its slice, it yields first, so a UDP flood or a fast
** peer cannot starve timers and other clients. Non-blocking sockets
** (timeout 0) never yield, as they never wait. */
int wl_sock_turn_due(lua_State *L, const wl_sock_t *s) {
  return s->timeout != 0 && wl_turn_over() && wl_can_park(L);
}

#define TAKE_TURN(L, s, k, dl) \
  do { \
    if (wl_sock_turn_due((L), (s))) \
      return wl_yield((L), (k), (dl)); \
  } while (0)

/* ---- creation ----------------------------------------------------------- */

wl_sock_t **wl_sock_box(lua_State *L) {
  wl_sock_t **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, SOCK_MT);
  return box;
}

int wl_sock_wrap(wl_sock_t **box, int fd, int family, int type) {
  wl_sock_t *s = malloc(sizeof *s);
  int rc;
  if (s == NULL) { close(fd); return UV_ENOMEM; }
  memset(s, 0, sizeof *s);
  if ((rc = uv_poll_init_socket(wl_loop(), &s->poll, fd)) < 0) {
    free(s);
    close(fd);
    return rc;
  }
  s->poll.data = (void *)&wl_sock_tag;  /* sockstat.c finds sockets so */
  s->fd = fd;
  s->family = (unsigned short)family;
  s->type = type;
  s->timeout = default_timeout;   /* accepted ones too, as in Python */
  s->maybe_readable = 1;
  wl_waiter_init(&s->rdq);
  wl_waiter_init(&s->wrq);
  *box = s;
  wl_handle_count(1);
  return 0;
}

static int socket_socket(lua_State *L) {
  int family = (int)luaL_optinteger(L, 1, AF_INET);
  int type = (int)luaL_optinteger(L, 2, SOCK_STREAM);
  wl_sock_t **box;
  int fd, rc;
  luaL_argcheck(L, family == AF_INET || family == AF_INET6, 1,
                "AF_INET or AF_INET6 expected");
  luaL_argcheck(L, type == SOCK_STREAM || type == SOCK_DGRAM, 2,
                "SOCK_STREAM or SOCK_DGRAM expected");
  box = wl_sock_box(L);
  fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return wl_raise(L, "socket", -errno, NULL);
  if ((rc = wl_sock_wrap(box, fd, family, type)) < 0)
    return wl_raise(L, "socket", rc, NULL);
  return 1;
}

/* The (host, port) arguments at hi, hi + 1, checked: argument errors. */
static const char *check_hostport(lua_State *L, int hi, lua_Integer *port) {
  const char *host = wl_check_host(L, hi);
  *port = luaL_checkinteger(L, hi + 1);
  luaL_argcheck(L, *port >= 0 && *port <= 65535, hi + 1,
                "port out of range 0-65535");
  return host;
}

/* Fills sa from (host, port) at hi, hi + 1: 0, or UV_EAI_NONAME when the
** host is a name to resolve first; other errors raise. */
static int check_addr(lua_State *L, wl_sock_t *s, int hi, const char *op,
                      struct sockaddr_storage *sa, socklen_t *len) {
  lua_Integer port;
  const char *host = check_hostport(L, hi, &port);
  int rc;
  rc = wl_parse_addr(host, (int)port, s->family, sa, len);
  if (rc < 0 && rc != UV_EAI_NONAME) wl_raise_addr(L, op, rc, hi);
  return rc;
}

static int sock_bind(lua_State *L);

static int bind_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  wl_take_resolved(L, ctx, "bind", 2);
  return sock_bind(L);
}

static int sock_bind(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "bind");
  struct sockaddr_storage sa;
  socklen_t len;
  lua_settop(L, 3);
  if (check_addr(L, s, 2, "bind", &sa, &len) == UV_EAI_NONAME)
    return wl_resolve_host(L, s, 2, "bind", bind_k);
  if (bind(s->fd, (struct sockaddr *)&sa, len) < 0)
    return wl_raise_addr(L, "bind", -errno, 2);
  return 0;
}

static int sock_listen(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "listen");
  int backlog = (int)luaL_optinteger(L, 2, SOMAXCONN);
  if (listen(s->fd, backlog < 0 ? 0 : backlog) < 0)
    return wl_sock_raise(L, s, "listen", -errno);
  return 0;
}

/* ---- connect ------------------------------------------------------------ */

/* Once the poll says writable, connect() again tells how the handshake
** ended, as the blocking call learns it inside the kernel: 0 (or EISCONN)
** once established, EALREADY while it goes on, else its error. Reading
** SO_ERROR instead leaves the socket in the kernel's "connecting" state:
** a retry after ECONNREFUSED then raised ECONNABORTED, and a connect
** after success returned 0 where Python's raises EISCONN. */
static int connect_k(lua_State *L, int status, lua_KContext dl) {
  int rc = (int)lua_tointeger(L, -1);
  struct sockaddr_storage sa;
  socklen_t len;
  wl_sock_t *s;
  (void)status;
  lua_pop(L, 1);
  if (rc < 0) {
    if (*to_box(L, 1) == NULL) rc = UV_EBADF;
    return wl_raise_addr(L, "connect", rc, 2);
  }
  s = wl_check_sock(L, 1, "connect");
  check_addr(L, s, 2, "connect", &sa, &len);     /* numeric by now */
  if (connect(s->fd, (struct sockaddr *)&sa, len) == 0 || errno == EISCONN)
    return 0;
  if (errno == EALREADY || errno == EINPROGRESS || errno == EINTR)
    return wl_sock_wait(L, s, "connect", UV_WRITABLE, dl, connect_k);
  return wl_raise_addr(L, "connect", -errno, 2);
}

static int sock_connect(lua_State *L);

static int connect_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  wl_take_resolved(L, ctx, "connect", 2);
  return sock_connect(L);
}

static int sock_connect(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "connect");
  struct sockaddr_storage sa;
  socklen_t len;
  lua_settop(L, 3);
  if (check_addr(L, s, 2, "connect", &sa, &len) == UV_EAI_NONAME)
    return wl_resolve_host(L, s, 2, "connect", connect_resolved_k);
  if (connect(s->fd, (struct sockaddr *)&sa, len) == 0) return 0;
  if (errno != EINPROGRESS || s->type != SOCK_STREAM)
    return wl_raise_addr(L, "connect", -errno, 2);
  if (s->timeout == 0) return wl_raise_addr(L, "connect", -EINPROGRESS, 2);
  return wl_sock_wait(L, s, "connect", UV_WRITABLE, wl_sock_deadline(s), connect_k);
}

/* connect_ex(host, port) -> 0 or the error's code ("ECONNREFUSED"), as
** Python's returns errno; argument errors still raise. connect runs under
** lua_pcallk, whose continuation gets its result after any wait. */
static int connect_ex_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_pushinteger(L, 0);
    return 1;
  }
  if (!wl_is_error(L, -1)) return lua_error(L);
  lua_getfield(L, -1, "code");
  return 1;
}

static int sock_connect_ex(lua_State *L) {
  lua_Integer port;
  to_box(L, 1);
  check_hostport(L, 2, &port);
  lua_settop(L, 3);
  lua_pushcfunction(L, sock_connect);
  lua_insert(L, 1);
  return connect_ex_k(L, lua_pcallk(L, 3, 0, 0, 0, connect_ex_k), 0);
}

/* ---- accept ------------------------------------------------------------- */

/* Out of descriptors: the pending client would sit in the backlog and the
** poll would fire forever. Shed it with the spare fd, so it sees a close. */
static void shed_client(int lfd) {
  if (spare_fd < 0) return;
  close(spare_fd);
  spare_fd = accept(lfd, NULL, NULL);
  if (spare_fd >= 0) close(spare_fd);
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int accept_k(lua_State *L, int status, lua_KContext dl);

static int accept_do(lua_State *L, lua_KContext dl) {
  wl_sock_t *s = wl_check_sock(L, 1, "accept");
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  wl_sock_t **box;
  int fd, rc;
  if (!s->maybe_readable && s->timeout != 0)   /* never guess for non-blocking */
    return wl_sock_wait(L, s, "accept", UV_READABLE, dl, accept_k);
  TAKE_TURN(L, s, accept_k, dl);
  fd = accept4(s->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      s->maybe_readable = 0;
      return wl_sock_wait(L, s, "accept", UV_READABLE, dl, accept_k);
    }
    if (e == EMFILE || e == ENFILE) shed_client(s->fd);
    if (e == ECONNABORTED || e == EINTR) return accept_do(L, dl);
    return wl_sock_raise(L, s, "accept", -e);
  }
  box = wl_sock_box(L);
  if ((rc = wl_sock_wrap(box, fd, s->family, s->type)) < 0)
    return wl_sock_raise(L, s, "accept", rc);
  return 1 + wl_push_addr(L, (struct sockaddr *)&sa);
}

static int accept_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "accept");
  return accept_do(L, dl);
}

static int sock_accept(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "accept");
  lua_settop(L, 1);
  return accept_do(L, wl_sock_deadline(s));
}

/* ---- receiving ---------------------------------------------------------- */

static int recv_k(lua_State *L, int status, lua_KContext dl);
static int recvfrom_k(lua_State *L, int status, lua_KContext dl);
static int recvfrom_nowait_k(lua_State *L, int status, lua_KContext dl);

#define NOWAIT 2             /* recv_do's from: _recvfrom_nowait */

/* recv and recvfrom: args (s, n [, flags]); from adds the sender.
** MSG_WAITALL and MSG_TRUNC, which change what a call returns, take the
** path of recvall.c; MSG_DONTWAIT only stops the waits. from == NOWAIT:
** recvfrom with MSG_DONTWAIT that returns nil for "nothing queued". */
static int recv_do(lua_State *L, lua_KContext dl, int from) {
  const char *op = from ? "recvfrom" : "recv";
  lua_KFunction k = from == NOWAIT ? recvfrom_nowait_k : from ? recvfrom_k : recv_k;
  wl_sock_t *s = wl_check_sock(L, 1, op);
  lua_Integer n = luaL_checkinteger(L, 2);
  int flags = (int)luaL_optinteger(L, 3, 0);
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  luaL_Buffer b;
  char *buf;
  ssize_t r;
  if (n <= 0) {
    luaL_argcheck(L, n == 0, 2, "negative buffer size");
    /* Python's recv(0) makes no call: "", and a datagram stays queued */
    if (!from) { lua_pushliteral(L, ""); return 1; }
  }
  if (flags & (MSG_WAITALL | MSG_TRUNC))
    return wl_recv_flagged(L, dl, from);
  if (!s->maybe_readable) {
    if (s->pending) return wl_sock_raise_pending(L, s, op);
    if (s->timeout != 0 && !(flags & MSG_DONTWAIT))  /* never guess otherwise */
      return wl_sock_wait(L, s, op, UV_READABLE, dl, k);
  }
  TAKE_TURN(L, s, k, dl);
  if (n <= RECV_STATIC)
    buf = scratch;
  else if (n > WL_RECV_MAX)   /* Python's MemoryError, without trying */
    return wl_sock_raise(L, s, op, UV_ENOMEM);
  else
    buf = luaL_buffinitsize(L, &b, (size_t)n);
  sa.ss_family = AF_UNSPEC;
  r = recvfrom(s->fd, buf, (size_t)n, flags | MSG_DONTWAIT,
               (struct sockaddr *)&sa, &len);
  if (r < 0) {
    int e = errno;
    if (n > RECV_STATIC) lua_pop(L, 1);      /* the buffer's box */
    if (e == EAGAIN || e == EWOULDBLOCK) {
      s->maybe_readable = 0;
      if (from == NOWAIT) { lua_pushnil(L); return 1; }
      if (flags & MSG_DONTWAIT) return wl_sock_raise(L, s, op, UV_EAGAIN);
      return wl_sock_wait(L, s, op, UV_READABLE, dl, k);
    }
    if (e == EINTR) return recv_do(L, dl, from);
    return wl_sock_raise(L, s, op, -e);
  }
  /* a short read has most likely drained the socket: next time, wait for
  ** the poll first instead of paying a recv that says EAGAIN */
  if (s->type == SOCK_STREAM && r < n) s->maybe_readable = 0;
  if (n <= RECV_STATIC) lua_pushlstring(L, buf, (size_t)r);
  else luaL_pushresultsize(&b, (size_t)r);
  if (!from) return 1;
  if (sa.ss_family == AF_UNSPEC) { lua_pushnil(L); lua_pushnil(L); return 3; }
  return 1 + wl_push_addr(L, (struct sockaddr *)&sa);
}

static int recv_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "recv");
  return recv_do(L, dl, 0);
}

static int recvfrom_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "recvfrom");
  return recv_do(L, dl, 1);
}

static int sock_recv(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "recv");
  lua_settop(L, 3);
  return recv_do(L, wl_sock_deadline(s), 0);
}

static int sock_recvfrom(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "recvfrom");
  lua_settop(L, 3);
  return recv_do(L, wl_sock_deadline(s), 1);
}

/* _recvfrom_nowait(n) -> data, host, port, or nil when nothing is queued:
** socketserver's datagram loop drains the socket with it after one
** readiness wait, without a poll or a raised EAGAIN per datagram. Other
** errors raise as recvfrom's do; a task past its turn still yields. */
static int recvfrom_nowait_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "recvfrom");
  return recv_do(L, dl, NOWAIT);
}

static int sock_recvfrom_nowait(lua_State *L) {     /* recv_do checks */
  lua_settop(L, 2);
  lua_pushinteger(L, MSG_DONTWAIT);
  return recv_do(L, 0, NOWAIT);
}

/* wait_readable([timeout]) -> true when a recv or accept would not block,
** false on timeout -- a select() on one socket. task:interrupt() and
** Ctrl-C raise EINTR, as they do in every other wait. */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  if (rc == UV_ETIMEDOUT) { lua_pushboolean(L, 0); return 1; }
  wl_sock_woken(L, "wait_readable");
  lua_pushboolean(L, 1);
  return 1;
}

static int sock_wait_readable(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "wait_readable");
  double timeout = luaL_optnumber(L, 2, -1);
  struct pollfd p;
  lua_settop(L, 1);
  wl_check_park(L);
  /* already readable: true at once, as select() answers; a zero timeout
  ** would otherwise lose to the timer, which runs before the poll */
  p.fd = s->fd;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, 0) > 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  watch(s, s->events | UV_READABLE);
  return wl_list_park(L, &s->rdq, timeout, wait_k, 0);
}

/* ---- sending ------------------------------------------------------------ */

/* One send(2); returns bytes sent, or a negative libuv error. */
static ssize_t send_once(wl_sock_t *s, const char *p, size_t n, int flags,
                         const struct sockaddr_storage *sa, socklen_t len) {
  ssize_t r;
  do
    r = sendto(s->fd, p, n, flags | MSG_NOSIGNAL | MSG_DONTWAIT,
               (const struct sockaddr *)sa, sa ? len : 0);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

/* A failed send raises the error a call met before it, if one did. */
static int fail(lua_State *L, wl_sock_t *s, const char *op, int code) {
  if (s->pending) return wl_sock_raise_pending(L, s, op);
  return wl_sock_raise(L, s, op, code);
}

static int send_k(lua_State *L, int status, lua_KContext dl);
static int send_rest(lua_State *L, lua_KContext dl, int all);

/* send(data[, flags]): stack (s, data, flags). The first try; what a
** blocking socket (no timeout) could not send at once goes on in
** send_rest, as the blocking system call returns only when the kernel
** has taken it all. With a timeout, or non-blocking, a short send. */
static int send_do(lua_State *L, lua_KContext dl) {
  wl_sock_t *s = wl_check_sock(L, 1, "send");
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int flags = (int)luaL_optinteger(L, 3, 0);
  ssize_t r;
  TAKE_TURN(L, s, send_k, dl);
  r = send_once(s, p, n, flags, NULL, 0);
  if (r < (ssize_t)n) {              /* short, not yet, or failed */
    if (r == UV_EAGAIN && !(flags & MSG_DONTWAIT))
      return wl_sock_wait(L, s, "send", UV_WRITABLE, dl, send_k);
    if (r < 0) return fail(L, s, "send", (int)r);
    if (s->timeout < 0 && !(flags & MSG_DONTWAIT)) {
      lua_pushinteger(L, r);
      return send_rest(L, dl, 0);
    }
  }
  lua_pushinteger(L, r);
  return 1;
}

static int send_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "send");
  return send_do(L, dl);
}

static int sock_send(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "send");
  lua_settop(L, 3);
  return send_do(L, wl_sock_deadline(s));
}

/* The rest of a sendall, or of a blocking send: stack (s, data, flags,
** sent). sendall raises on any error, and its deadline covers the whole
** call, as in Python 3.5+; send returns the count once some bytes have
** gone, as the system call does (the error comes again next time). */
static int sendall_k(lua_State *L, int status, lua_KContext dl);
static int sendrest_k(lua_State *L, int status, lua_KContext dl);

static int send_rest(lua_State *L, lua_KContext dl, int all) {
  const char *op = all ? "sendall" : "send";
  wl_sock_t *s = wl_check_sock(L, 1, op);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int flags = (int)lua_tointeger(L, 3);
  size_t off = (size_t)lua_tointeger(L, 4);
  while (off < n) {
    int due = wl_sock_turn_due(L, s);
    ssize_t r = due ? UV_EAGAIN : send_once(s, p + off, n - off, flags, NULL, 0);
    if (r == UV_EAGAIN && !(flags & MSG_DONTWAIT)) {
      lua_pushinteger(L, (lua_Integer)off);       /* resumes at off: after */
      lua_replace(L, 4);                          /* a turn, or a wait */
      if (due) return wl_yield(L, all ? sendall_k : sendrest_k, dl);
      return wl_sock_wait(L, s, op, UV_WRITABLE, dl, all ? sendall_k : sendrest_k);
    }
    if (r < 0) {
      if (all || off == 0) return fail(L, s, op, (int)r);
      s->pending = (int)r;     /* the bytes sent count; the error comes next */
      s->maybe_readable = 0;
      break;
    }
    off += (size_t)r;
  }
  if (all) return 0;
  lua_pushinteger(L, (lua_Integer)off);
  return 1;
}

static int sendall_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "sendall");
  return send_rest(L, dl, 1);
}

static int sendrest_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "send");
  return send_rest(L, dl, 0);
}

/* sendall(data[, flags]): the common case, the kernel taking it all in
** one send, returns at once; the rest goes on in send_rest. */
static int sock_sendall(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "sendall");
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int flags = (int)luaL_optinteger(L, 3, 0);
  lua_Integer off = 0;
  if (n > 0 && !wl_sock_turn_due(L, s)) {
    ssize_t r = send_once(s, p, n, flags, NULL, 0);
    if (r == (ssize_t)n) return 0;
    if (r >= 0) off = r;
    else if (r != UV_EAGAIN) return fail(L, s, "sendall", (int)r);
  }
  lua_settop(L, 3);
  lua_pushinteger(L, off);
  return send_rest(L, wl_sock_deadline(s), 1);
}

static int sendto_k(lua_State *L, int status, lua_KContext dl);
static int sendto_resolved_k(lua_State *L, int status, lua_KContext ctx);

/* s is the checked argument 1: one check per call, on every datagram */
static int sendto_do(lua_State *L, wl_sock_t *s, lua_KContext dl) {
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  struct sockaddr_storage sa;
  socklen_t len;
  ssize_t r;
  if (check_addr(L, s, 3, "sendto", &sa, &len) == UV_EAI_NONAME)
    return wl_resolve_host(L, s, 3, "sendto", sendto_resolved_k);
  TAKE_TURN(L, s, sendto_k, dl);
  r = send_once(s, p, n, 0, &sa, len);
  if (r == UV_EAGAIN) return wl_sock_wait(L, s, "sendto", UV_WRITABLE, dl, sendto_k);
  if (r < 0) {
    if (s->pending) return wl_sock_raise_pending(L, s, "sendto");
    return wl_raise_addr(L, "sendto", (int)r, 3);
  }
  lua_pushinteger(L, r);
  return 1;
}

static int sendto_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  wl_sock_woken(L, "sendto");
  return sendto_do(L, wl_check_sock(L, 1, "sendto"), dl);
}

/* after a name: the deadline starts again with the resolved address */
static int sendto_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  wl_sock_t *s;
  (void)status;
  wl_take_resolved(L, ctx, "sendto", 3);
  s = wl_check_sock(L, 1, "sendto");
  return sendto_do(L, s, wl_sock_deadline(s));
}

static int sock_sendto(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "sendto");
  lua_settop(L, 4);
  return sendto_do(L, s, wl_sock_deadline(s));
}

/* ---- shutting down and closing ------------------------------------------ */

static int sock_shutdown(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "shutdown");
  int how = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, how >= SHUT_RD && how <= SHUT_RDWR, 2,
                "SHUT_RD, SHUT_WR or SHUT_RDWR expected");
  if (shutdown(s->fd, how) < 0) return wl_sock_raise(L, s, "shutdown", -errno);
  return 0;
}

void wl_sock_close(lua_State *L, int i) {
  wl_sock_t **box = to_box(L, i);
  if (*box != NULL) close_sock(box, 1);
}

static int sock_close(lua_State *L) {
  wl_sock_close(L, 1);
  return 0;
}

static int sock_gc(lua_State *L) {
  wl_sock_t **box = to_box(L, 1);
  if (*box != NULL) close_sock(box, 0);
  return 0;
}

static int sock_fileno(lua_State *L) {
  wl_sock_t *s = *to_box(L, 1);
  lua_pushinteger(L, s ? s->fd : -1);
  return 1;
}

static int sock_settimeout(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "settimeout");
  if (lua_isnoneornil(L, 2)) {
    s->timeout = -1;
  } else {
    double t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t >= 0 && t == t, 2, "timeout must be a non-negative number or nil");
    s->timeout = t;
  }
  return 0;
}

static int sock_gettimeout(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "gettimeout");
  if (s->timeout < 0) lua_pushnil(L);
  else lua_pushnumber(L, s->timeout);
  return 1;
}

/* getblocking(): false only for a non-blocking socket (timeout 0), as
** in Python, where a socket with a timeout counts as blocking. */
static int sock_getblocking(lua_State *L) {
  lua_pushboolean(L, wl_check_sock(L, 1, "getblocking")->timeout != 0);
  return 1;
}

/* setdefaulttimeout(seconds | nil): the timeout every socket made from
** now on starts with -- socket(), accept(), fromfd(), socketpair(),
** create_connection() and create_server() -- as in Python. */
static int socket_setdefaulttimeout(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    default_timeout = -1;
  } else {
    double t = luaL_checknumber(L, 1);
    luaL_argcheck(L, t >= 0 && t == t, 1, "non-negative number or nil expected");
    default_timeout = t;
  }
  return 0;
}

static int socket_getdefaulttimeout(lua_State *L) {
  if (default_timeout < 0) lua_pushnil(L);
  else lua_pushnumber(L, default_timeout);
  return 1;
}

static int sock_setblocking(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "setblocking");
  luaL_checkany(L, 2);
  s->timeout = lua_toboolean(L, 2) ? -1 : 0;
  return 0;
}

/* The stream endpoint of a socket (wl.h): its fd, -1 once closed. */
static int sock_endpoint_fd(void *udata) {
  wl_sock_t *s = *(wl_sock_t **)udata;
  return s != NULL ? s->fd : -1;
}

/* Methods first, then the fields family, type, closed. */
static int sock_index(lua_State *L) {
  const char *k;
  wl_sock_t *s;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  k = lua_tostring(L, 2);
  s = *to_box(L, 1);
  if (k == NULL) return 0;
  if (strcmp(k, "closed") == 0) { lua_pushboolean(L, s == NULL); return 1; }
  if (s == NULL) return 0;
  if (strcmp(k, "family") == 0) lua_pushinteger(L, s->family);
  else if (strcmp(k, "type") == 0) lua_pushinteger(L, s->type);
  else if (strcmp(k, "timeout") == 0) return sock_gettimeout(L);
  else return 0;
  return 1;
}



static const luaL_Reg funcs[] = {
  {"socket", socket_socket},
  {"setdefaulttimeout", socket_setdefaulttimeout},
  {"getdefaulttimeout", socket_getdefaulttimeout},
  /* socketserver's datagram path, off the socket's methods (and Tab):
  ** _recvfrom stays the C recvfrom when --trace or a user replaces the
  ** method, and then every datagram takes the ordinary path */
  {"_recvfrom_nowait", sock_recvfrom_nowait}, {"_recvfrom", sock_recvfrom},
  {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"bind", sock_bind}, {"listen", sock_listen}, {"accept", sock_accept},
  {"connect", sock_connect}, {"connect_ex", sock_connect_ex},
  {"send", sock_send}, {"sendall", sock_sendall},
  {"sendto", sock_sendto}, {"recv", sock_recv}, {"recvfrom", sock_recvfrom},
  {"shutdown", sock_shutdown}, {"close", sock_close},
  {"fileno", sock_fileno}, {"settimeout", sock_settimeout},
  {"gettimeout", sock_gettimeout}, {"setblocking", sock_setblocking},
  {"getblocking", sock_getblocking},
  {"wait_readable", sock_wait_readable}, {NULL, NULL}
};

int luaopen_socket_core(lua_State *L) {
  if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  luaL_newlib(L, funcs);                     /* module */
  luaL_newlib(L, methods);                   /* methods */
  wl_sockopt_register(L, lua_gettop(L), lua_gettop(L) - 1);
  wl_resolve_register(L, lua_gettop(L) - 1);
  wl_sockfd_register(L, lua_gettop(L), lua_gettop(L) - 1);
  wl_inet_register(L, lua_gettop(L) - 1);
  wl_netdb_register(L, lua_gettop(L) - 1);
  wl_sendfile_register(L, lua_gettop(L) - 1);
  wl_sockstat_register(L, lua_gettop(L) - 1);
  luaL_newmetatable(L, SOCK_MT);
  sock_mt = lua_topointer(L, -1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, sock_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sock_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, sock_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, wl_sock_tostring);
  lua_setfield(L, -2, "__tostring");
  wl_endpoint_register(L, -1, sock_endpoint_fd);
  lua_pushvalue(L, -2);                      /* for Tab, which calls no */
  lua_setfield(L, -2, "methods");            /* __index: as process.core */
  lua_pop(L, 1);
  lua_setfield(L, -2, "methods");            /* the Lua half adds to it */
  return 1;
}
