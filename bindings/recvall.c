/*
** recvall.c: recv and recvfrom with the flags that change what one call
** returns (module "socket.core"), off the hot path of socket.c.
**
** MSG_WAITALL on a stream: the blocking system call waits until all n
** bytes have come, or end of file, an error, a signal or SO_RCVTIMEO,
** and then returns what it has. Here each try is one non-blocking recv
** (CONVENTIONS.md section 5), the bytes gather in a buffer the stack
** owns, and the task parks between tries. End of file and the deadline
** return the bytes so far (ETIMEDOUT only when there are none); an error
** after some bytes is kept for the next recv, as the kernel keeps it.
**
** MSG_TRUNC: the result is as long as the kernel says (a datagram's real
** length; on TCP, the bytes discarded), and the bytes the kernel did not
** write read as zeros, where Python leaves whatever was in its buffer.
*/
#include <errno.h>
#include <string.h>
#include <lauxlib.h>
#include "socket.h"

static int recv_k(lua_State *L, int status, lua_KContext dl);
static int recvfrom_k(lua_State *L, int status, lua_KContext dl);

/* The result: the first `copied` bytes of buf, then zeros up to len. */
static void push_data(lua_State *L, const char *buf, size_t copied,
                      size_t len) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  memcpy(p, buf, copied);
  memset(p + copied, 0, len - copied);
  luaL_pushresultsize(&b, len);
}

/* Stack: s, n, flags, the buffer (a userdata of n bytes), got. Returns
** the bytes gathered, and for recvfrom the sender (nil on a stream). */
static int finish(lua_State *L, wl_sock_t *s, int from,
                  const struct sockaddr_storage *sa) {
  const char *buf = lua_touserdata(L, 4);
  size_t got = (size_t)lua_tointeger(L, 5);
  int trunc = (int)lua_tointeger(L, 3) & MSG_TRUNC;
  size_t n = (size_t)lua_tointeger(L, 2);
  if (!trunc)
    lua_pushlstring(L, buf, got);
  else                    /* TCP discards; a datagram fills at most n */
    push_data(L, buf, s->type == SOCK_STREAM ? 0 : (got < n ? got : n), got);
  if (!from) return 1;
  if (sa == NULL || sa->ss_family == AF_UNSPEC) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
  }
  return 1 + wl_push_addr(L, (const struct sockaddr *)sa);
}

static int now_past(lua_KContext dl) {
  return dl != 0 && (lua_KContext)(uv_hrtime() / 1000) >= dl;
}

static int step(lua_State *L, lua_KContext dl, int from) {
  const char *op = from ? "recvfrom" : "recv";
  lua_KFunction k = from ? recvfrom_k : recv_k;
  wl_sock_t *s = wl_check_sock(L, 1, op);
  lua_Integer n = lua_tointeger(L, 2);
  int flags = (int)lua_tointeger(L, 3);
  /* a peek would see the same bytes again on every try, and the poll
  ** would not wait for more: with MSG_PEEK, one try */
  int all = (flags & MSG_WAITALL) && !(flags & MSG_PEEK) &&
            s->type == SOCK_STREAM;
  struct sockaddr_storage sa;
  socklen_t len;
  lua_Integer got;
  char *buf;
  if (lua_isnone(L, 4)) {                      /* the first try */
    if (s->pending) return wl_sock_raise_pending(L, s, op);
    if (n > WL_RECV_MAX) return wl_sock_raise(L, s, op, UV_ENOMEM);
    lua_newuserdatauv(L, (size_t)n, 0);
    lua_pushinteger(L, 0);
  }
  buf = lua_touserdata(L, 4);
  got = lua_tointeger(L, 5);
  for (;;) {
    ssize_t r;
    int e;
    if (wl_sock_turn_due(L, s)) return wl_yield(L, k, dl);
    len = sizeof sa;
    sa.ss_family = AF_UNSPEC;
    r = recvfrom(s->fd, buf + got, (size_t)(n - got), flags | MSG_DONTWAIT,
                 (struct sockaddr *)&sa, &len);
    if (r > 0) {
      got += r;
      lua_pushinteger(L, got);
      lua_replace(L, 5);
      if (all && got < n) continue;       /* more may be queued already */
      return finish(L, s, from, &sa);
    }
    if (r == 0) return finish(L, s, from, &sa);   /* end of file */
    if ((e = errno) == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) {
      if (got == 0) return wl_sock_raise(L, s, op, -e);
      s->pending = -e;             /* the kernel's way: data now, error next */
      s->maybe_readable = 0;
      return finish(L, s, from, NULL);
    }
    s->maybe_readable = 0;
    if (got > 0 && (s->timeout == 0 || (flags & MSG_DONTWAIT) || now_past(dl)))
      return finish(L, s, from, NULL);
    if (flags & MSG_DONTWAIT) return wl_sock_raise(L, s, op, UV_EAGAIN);
    return wl_sock_wait(L, s, op, UV_READABLE, dl, k);
  }
}

/* A wait that times out with bytes gathered returns them; every other
** failed wake raises (close, cancel, interrupt). */
static int resume(lua_State *L, lua_KContext dl, int from) {
  if (lua_tointeger(L, -1) == UV_ETIMEDOUT && lua_tointeger(L, 5) > 0) {
    lua_pop(L, 1);
    return finish(L, wl_check_sock(L, 1, from ? "recvfrom" : "recv"), from,
                  NULL);
  }
  wl_sock_woken(L, from ? "recvfrom" : "recv");
  return step(L, dl, from);
}

static int recv_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  return resume(L, dl, 0);
}

static int recvfrom_k(lua_State *L, int status, lua_KContext dl) {
  (void)status;
  return resume(L, dl, 1);
}

int wl_recv_flagged(lua_State *L, lua_KContext dl, int from) {
  lua_settop(L, 3);
  return step(L, dl, from);
}
