/*
** sockinfo.c: what the kernel knows about a connection, for observing
** TCP at work: s:queues() (the bytes waiting in the receive and send
** queues, SIOCINQ/SIOCOUTQ) and s:tcp_info() (Linux TCP_INFO). Nothing
** here changes a socket.
**
** struct tcp_info grows with the kernel: a field is read only when the
** length getsockopt returned covers it, so an older kernel leaves it out
** (nil) rather than reporting a zero it never wrote. glibc's
** <netinet/tcp.h> (which libuv's header brings in, and which clashes
** with <linux/tcp.h>) stops at tcpi_total_retrans, so the layout is
** written out below, as the kernel's uapi header has it; uapi structs
** only grow at their end, so the offsets hold on every kernel.
*/
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <lauxlib.h>
#include "socket.h"

/* queues() -> inq, outq: for TCP, the bytes received and not yet read,
** and the bytes written and not yet acknowledged by the peer (sent or
** not). For a listening socket, whose queue holds connections, not
** bytes: the connections waiting for accept, and 0 (TCP_INFO gives the
** count there; SIOCINQ refuses a listener). For UDP, the kernel's own
** answers: the size of the next datagram (not their total) and the bytes
** of datagrams not yet handed to the device. */
static int sock_queues(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "queues");
  int inq = 0, outq = 0;
  if (s->type == SOCK_STREAM && s->family != AF_UNIX) {
    struct tcp_info ti;            /* glibc's: the first fields are enough */
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
      return wl_sock_raise(L, s, "queues", -errno);
    if (ti.tcpi_state == TCP_LISTEN) {
      /* for a listener the kernel puts its accept queue in tcpi_unacked */
      lua_pushinteger(L, ti.tcpi_unacked);
      lua_pushinteger(L, 0);
      return 2;
    }
  }
  if (ioctl(s->fd, SIOCINQ, &inq) < 0 || ioctl(s->fd, SIOCOUTQ, &outq) < 0)
    return wl_sock_raise(L, s, "queues", -errno);
  lua_pushinteger(L, inq);
  lua_pushinteger(L, outq);
  return 2;
}

static const char *const tcp_states[] = {
  "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
  "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"
};

/* tcpi_ca_state: where the sender's congestion control is */
static const char *const ca_states[] = {
  "open", "disorder", "cwr", "recovery", "loss"
};

/* Linux's struct tcp_info, to Linux 6.7 (the kernel header's order and
** types; the names without their tcpi_ prefix). */
struct wl_tcp_info {
  uint8_t state, ca_state, retransmits, probes, backoff, options;
  uint8_t snd_wscale : 4, rcv_wscale : 4;
  uint8_t delivery_rate_app_limited : 1, fastopen_client_fail : 2;
  uint32_t rto, ato, snd_mss, rcv_mss;
  uint32_t unacked, sacked, lost, retrans, fackets;
  uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
  uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss,
           reordering;
  uint32_t rcv_rtt, rcv_space;
  uint32_t total_retrans;                         /* glibc's struct ends here */
  uint64_t pacing_rate, max_pacing_rate;
  uint64_t bytes_acked, bytes_received;           /* Linux 4.1, 4.2 */
  uint32_t segs_out, segs_in;
  uint32_t notsent_bytes, min_rtt, data_segs_in, data_segs_out;  /* 4.6 */
  uint64_t delivery_rate;
  uint64_t busy_time, rwnd_limited, sndbuf_limited;              /* 4.10 */
  uint32_t delivered, delivered_ce;
  uint64_t bytes_sent, bytes_retrans;                            /* 4.19 */
  uint32_t dsack_dups, reord_seen;
  uint32_t rcv_ooopack;
  uint32_t snd_wnd;                                              /* 5.4 */
  uint32_t rcv_wnd, rehash;                                      /* 6.2 */
  uint16_t total_rto, total_rto_recoveries;                      /* 6.7 */
  uint32_t total_rto_time;
};

/* the uapi header's offsets, as its own compiler lays them out */
_Static_assert(offsetof(struct wl_tcp_info, total_retrans) ==
               offsetof(struct tcp_info, tcpi_total_retrans),
               "struct wl_tcp_info does not match glibc's struct tcp_info");
_Static_assert(offsetof(struct wl_tcp_info, bytes_acked) == 120 &&
               offsetof(struct wl_tcp_info, snd_wnd) == 228 &&
               offsetof(struct wl_tcp_info, total_rto_time) == 244,
               "struct wl_tcp_info does not match the kernel's layout");

#define INFO_MAX 512           /* room for what a newer kernel adds */

typedef struct {
  lua_State *L;
  const unsigned char *buf;
  size_t len;                  /* what the kernel wrote */
} info_t;

static int has(const info_t *in, size_t off, size_t size) {
  return off + size <= in->len;
}

static uint64_t get(const info_t *in, size_t off, size_t size) {
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  switch (size) {
  case 1: memcpy(&u8, in->buf + off, 1); return u8;
  case 2: memcpy(&u16, in->buf + off, 2); return u16;
  case 4: memcpy(&u32, in->buf + off, 4); return u32;
  default: memcpy(&u64, in->buf + off, 8); return u64;
  }
}

/* An integer field, when present; ~0 (a rate the kernel leaves unlimited)
** is math.huge. */
static void set_int(const info_t *in, const char *name, size_t off,
                    size_t size) {
  uint64_t v;
  if (!has(in, off, size)) return;
  v = get(in, off, size);
  if (size == 8 && v > (uint64_t)LUA_MAXINTEGER)
    lua_pushnumber(in->L, HUGE_VAL);
  else
    lua_pushinteger(in->L, (lua_Integer)v);
  lua_setfield(in->L, -2, name);
}

/* A time field, when present, in seconds: the kernel counts it in units
** of `scale` seconds (1e-6 for microseconds, 1e-3 for milliseconds). */
static void set_secs(const info_t *in, const char *name, size_t off,
                     size_t size, double scale) {
  if (!has(in, off, size)) return;
  lua_pushnumber(in->L, (double)get(in, off, size) * scale);
  lua_setfield(in->L, -2, name);
}

#define F(field) offsetof(struct wl_tcp_info, field), \
                 sizeof(((struct wl_tcp_info *)0)->field)
#define INT(name) set_int(&in, #name, F(name))
#define USECS(name) set_secs(&in, #name, F(name), 1e-6)
#define MSECS(name) set_secs(&in, #name, F(name), 1e-3)

/* The byte of bit fields after options: the window scales. */
#define OFF_WSCALE (offsetof(struct wl_tcp_info, options) + 1)

static void push_options(lua_State *L, unsigned opts) {
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, (opts & TCPI_OPT_TIMESTAMPS) != 0);
  lua_setfield(L, -2, "timestamps");
  lua_pushboolean(L, (opts & TCPI_OPT_SACK) != 0);
  lua_setfield(L, -2, "sack");
  lua_pushboolean(L, (opts & TCPI_OPT_WSCALE) != 0);
  lua_setfield(L, -2, "wscale");
  lua_pushboolean(L, (opts & TCPI_OPT_ECN) != 0);
  lua_setfield(L, -2, "ecn");
  lua_setfield(L, -2, "options");
}

/* tcp_info() -> table: every field is the kernel's tcpi_ name without the
** prefix; times in seconds (floats), sizes in bytes, windows as the
** kernel counts them (snd_cwnd in segments). */
static int sock_tcp_info(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "tcp_info");
  unsigned char buf[INFO_MAX];
  socklen_t len = sizeof buf;
  info_t in;
  unsigned state;
  if (s->type != SOCK_STREAM || s->family == AF_UNIX)
    return wl_sock_raise(L, s, "tcp_info", UV_ENOTSUP);
  memset(buf, 0, sizeof buf);
  if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, buf, &len) < 0)
    return wl_sock_raise(L, s, "tcp_info", -errno);
  in.L = L, in.buf = buf, in.len = len;
  lua_createtable(L, 0, 64);
  state = (unsigned)get(&in, F(state));
  lua_pushstring(L, state < sizeof tcp_states / sizeof *tcp_states
                    ? tcp_states[state] : "?");
  lua_setfield(L, -2, "state");
  if (has(&in, F(ca_state))) {
    unsigned ca = (unsigned)get(&in, F(ca_state));
    lua_pushstring(L, ca < sizeof ca_states / sizeof *ca_states
                      ? ca_states[ca] : "?");
    lua_setfield(L, -2, "ca_state");
  }
  INT(retransmits); INT(probes); INT(backoff);
  push_options(L, (unsigned)get(&in, F(options)));
  if (has(&in, OFF_WSCALE, 1)) {
    /* bit fields: the compiler knows their layout, so read them there */
    struct wl_tcp_info ti;
    memcpy(&ti, buf, sizeof ti);
    lua_pushinteger(L, ti.snd_wscale);
    lua_setfield(L, -2, "snd_wscale");
    lua_pushinteger(L, ti.rcv_wscale);
    lua_setfield(L, -2, "rcv_wscale");
  }
  USECS(rto); USECS(ato);
  INT(snd_mss); INT(rcv_mss);
  INT(unacked); INT(sacked); INT(lost); INT(retrans);
  MSECS(last_data_sent); MSECS(last_data_recv); MSECS(last_ack_recv);
  INT(pmtu); INT(rcv_ssthresh);
  USECS(rtt); USECS(rttvar);
  INT(snd_ssthresh); INT(snd_cwnd); INT(advmss); INT(reordering);
  USECS(rcv_rtt); INT(rcv_space);
  INT(total_retrans);
  INT(pacing_rate); INT(max_pacing_rate);
  INT(bytes_acked); INT(bytes_received);
  INT(segs_out); INT(segs_in);
  INT(notsent_bytes); USECS(min_rtt);
  INT(data_segs_in); INT(data_segs_out);
  INT(delivery_rate);
  USECS(busy_time); USECS(rwnd_limited); USECS(sndbuf_limited);
  INT(delivered); INT(delivered_ce);
  INT(bytes_sent); INT(bytes_retrans);
  INT(dsack_dups); INT(reord_seen);
  INT(rcv_ooopack);
  INT(snd_wnd); INT(rcv_wnd); INT(rehash);
  INT(total_rto); INT(total_rto_recoveries); MSECS(total_rto_time);
  return 1;
}

static const luaL_Reg methods[] = {
  {"queues", sock_queues}, {"tcp_info", sock_tcp_info}, {NULL, NULL}
};

/* Adds the methods above to the table at index `methods_idx`. */
void wl_sockinfo_register(lua_State *L, int methods_idx) {
  lua_pushvalue(L, methods_idx);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 1);
}
