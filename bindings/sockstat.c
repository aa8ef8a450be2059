/*
** sockstat.c: the sockets this process has open, as rows for
** wirelab.status() and the prompt's status(), the way `ss -tanp` shows
** them: protocol, addresses, TCP state, queued bytes, bytes in and out.
** The sockets are found by walking the loop's handles (socket.h), so
** keeping count of them costs the I/O paths nothing.
*/
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <lauxlib.h>

#include "socket.h"

static const char *const states[] = {
  "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
  "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"
};

/* struct tcp_info as Linux extended it past glibc's copy, up to the byte
** counts of 4.19 (linux/tcp.h cannot be included beside uv.h's
** netinet/tcp.h). The kernel fills in as much as it has and says how much. */
typedef struct {
  struct tcp_info base;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in,
           data_segs_out;
  uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
  uint32_t delivered, delivered_ce;
  uint64_t bytes_sent, bytes_retrans;
} tcp_info_ext;

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
  int q;
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
    tcp_info_ext ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
      if (ti.base.tcpi_state < sizeof states / sizeof *states) {
        lua_pushstring(L, states[ti.base.tcpi_state]);
        lua_setfield(L, -2, "state");
      }
      /* the payload bytes, without retransmissions (and without the
      ** SYN, which bytes_acked counts on one side only) */
      if (len >= offsetof(tcp_info_ext, segs_out))
        set_int(L, "bytes_in", (lua_Integer)ti.bytes_received);
      if (len >= sizeof ti)
        set_int(L, "bytes_out", (lua_Integer)(ti.bytes_sent - ti.bytes_retrans));
    }
  }
  /* a listening socket's SIOCINQ is not a byte count: left out */
  if (ioctl(s->fd, SIOCINQ, &q) == 0) set_int(L, "recv_q", q);
  if (ioctl(s->fd, SIOCOUTQ, &q) == 0) set_int(L, "send_q", q);
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
