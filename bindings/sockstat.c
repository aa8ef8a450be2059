/*
** sockstat.c: the sockets this process has open, as rows for
** wirelab.status() and the prompt's status(), the way `ss -tanp` shows
** them: protocol, addresses, TCP state, queues (s:queues()), bytes in and
** out.
** The sockets are found by walking the loop's handles (socket.h), so
** keeping count of them costs the I/O paths nothing.
*/
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <lauxlib.h>

#include "socket.h"

typedef struct { lua_State *L; int n; } walk_t;

static void set_addr(lua_State *L, const char *k, int fd, int peer) {
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  char buf[80];
  int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
                : getsockname(fd, (struct sockaddr *)&sa, &len);
  if (rc < 0) return;
  wl_format_sockaddr((struct sockaddr *)&sa, buf, sizeof buf);
  lua_pushstring(L, buf);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* One row: {fd, proto, laddr, raddr, state, recv_q, send_q, bytes_in,
** bytes_out}; what the kernel does not say is left out. */
static void push_row(lua_State *L, const wl_sock_t *s) {
  int inq, outq;
  lua_createtable(L, 0, 9);
  set_int(L, "fd", s->fd);
  lua_pushfstring(L, "%s%s", s->family == AF_UNIX ? "unix"
                  : s->type == SOCK_STREAM ? "tcp" : "udp",
                  s->family == AF_INET6 ? "6" : "");
  lua_setfield(L, -2, "proto");
  if (s->family != AF_UNIX) {
    set_addr(L, "laddr", s->fd, 0);
    set_addr(L, "raddr", s->fd, 1);
  }
  if (s->type == SOCK_STREAM && s->family != AF_UNIX) {
    struct wl_tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
      lua_pushstring(L, wl_tcp_state_name(ti.state));
      lua_setfield(L, -2, "state");
      /* the payload bytes, without retransmissions (and without the
      ** SYN, which bytes_acked counts on one side only), where the kernel
      ** has the counts (4.2, 4.19) */
      if (len >= offsetof(struct wl_tcp_info, segs_out))
        set_int(L, "bytes_in", (lua_Integer)ti.bytes_received);
      if (len >= offsetof(struct wl_tcp_info, dsack_dups))
        set_int(L, "bytes_out", (lua_Integer)(ti.bytes_sent - ti.bytes_retrans));
    }
  }
  if (wl_sock_queues(s, &inq, &outq) == 0) {
    set_int(L, "recv_q", inq);
    set_int(L, "send_q", outq);
  }
}

static void collect(uv_handle_t *h, void *arg) {
  walk_t *w = arg;
  if (h->type != UV_POLL || h->data != &wl_sock_tag || uv_is_closing(h))
    return;
  push_row(w->L, (const wl_sock_t *)h);   /* the poll is the struct's head */
  lua_rawseti(w->L, -2, ++w->n);
}

/* _open() -> the rows of the open sockets, in no order */
static int socket_open(lua_State *L) {
  walk_t w = {L, 0};
  lua_newtable(L);
  uv_walk(wl_loop(), collect, &w);
  return 1;
}

void wl_sockstat_register(lua_State *L, int module) {
  lua_pushcfunction(L, socket_open);
  lua_setfield(L, module, "_open");
}
