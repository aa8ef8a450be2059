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

/* wl_sock_queues: for TCP, the bytes received and not yet read, and the
** bytes written and not yet acknowledged by the peer (sent or not). For
** a listening socket, whose queue holds connections, not bytes: the
** connections waiting for accept, and 0 (TCP_INFO gives the count there,
** as ss shows it; SIOCINQ refuses a listener). For UDP, the kernel's own
** answers: the size of the next datagram (not their total) and the bytes
** of datagrams not yet handed to the device. 0, or -errno. */
int wl_sock_queues(const wl_sock_t *s, int *inq, int *outq) {
  *inq = *outq = 0;
  if (s->type == SOCK_STREAM && s->family != AF_UNIX) {
    struct tcp_info ti;            /* glibc's: the first fields are enough */
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return -errno;
    if (ti.tcpi_state == TCP_LISTEN) {
      /* for a listener the kernel puts its accept queue in tcpi_unacked */
      *inq = (int)ti.tcpi_unacked;
      return 0;
    }
  }
  if (ioctl(s->fd, SIOCINQ, inq) < 0 || ioctl(s->fd, SIOCOUTQ, outq) < 0)
    return -errno;
  return 0;
}

/* queues() -> inq, outq (wl_sock_queues) */
static int sock_queues(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "queues");
  int inq, outq, rc = wl_sock_queues(s, &inq, &outq);
  if (rc < 0) return wl_sock_raise(L, s, "queues", rc);
  lua_pushinteger(L, inq);
  lua_pushinteger(L, outq);
  return 2;
}

static const char *const tcp_states[] = {
  "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
  "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"
};

const char *wl_tcp_state_name(unsigned v) {
  return v < sizeof tcp_states / sizeof *tcp_states ? tcp_states[v] : "?";
}

const char *wl_tcp_state(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return NULL;
  return wl_tcp_state_name(ti.tcpi_state);
}

/* tcpi_ca_state: where the sender's congestion control is */
static const char *const ca_states[] = {
  "open", "disorder", "cwr", "recovery", "loss"
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

/* How a field reads in Lua. */
enum { K_INT, K_SECS, K_STATE, K_CA_STATE, K_OPTIONS, K_SND_WSCALE, K_RCV_WSCALE };

typedef struct {
  const char *name;
  unsigned short off, size;
  unsigned char kind;
  double scale;              /* K_SECS: seconds per unit the kernel counts */
} field_t;

#define AT(f) offsetof(struct wl_tcp_info, f), sizeof(((struct wl_tcp_info *)0)->f)
#define INT(f) {#f, AT(f), K_INT, 0}
#define USECS(f) {#f, AT(f), K_SECS, 1e-6}
#define MSECS(f) {#f, AT(f), K_SECS, 1e-3}
/* the byte of bit fields after options: the window scales */
#define WSCALE (offsetof(struct wl_tcp_info, options) + 1), 1

/* Every field, in the kernel's order. */
static const field_t fields[] = {
  {"state", AT(state), K_STATE, 0}, {"ca_state", AT(ca_state), K_CA_STATE, 0},
  INT(retransmits), INT(probes), INT(backoff),
  {"options", AT(options), K_OPTIONS, 0},
  {"snd_wscale", WSCALE, K_SND_WSCALE, 0}, {"rcv_wscale", WSCALE, K_RCV_WSCALE, 0},
  USECS(rto), USECS(ato), INT(snd_mss), INT(rcv_mss),
  INT(unacked), INT(sacked), INT(lost), INT(retrans),
  MSECS(last_data_sent), MSECS(last_data_recv), MSECS(last_ack_recv),
  INT(pmtu), INT(rcv_ssthresh), USECS(rtt), USECS(rttvar),
  INT(snd_ssthresh), INT(snd_cwnd), INT(advmss), INT(reordering),
  USECS(rcv_rtt), INT(rcv_space), INT(total_retrans),
  INT(pacing_rate), INT(max_pacing_rate), INT(bytes_acked), INT(bytes_received),
  INT(segs_out), INT(segs_in), INT(notsent_bytes), USECS(min_rtt),
  INT(data_segs_in), INT(data_segs_out), INT(delivery_rate),
  USECS(busy_time), USECS(rwnd_limited), USECS(sndbuf_limited),
  INT(delivered), INT(delivered_ce), INT(bytes_sent), INT(bytes_retrans),
  INT(dsack_dups), INT(reord_seen), INT(rcv_ooopack), INT(snd_wnd),
  INT(rcv_wnd), INT(rehash),
  INT(total_rto), INT(total_rto_recoveries), MSECS(total_rto_time),
};
#define NFIELDS (sizeof fields / sizeof *fields)

static const char *name_of(const char *const *names, size_t n, unsigned v) {
  return v < n ? names[v] : "?";
}

/* Pushes field f, which the kernel's answer covers. Integers are
** integers, but for ~0 (a rate the kernel leaves unlimited): math.huge. */
static void push_field(const info_t *in, const field_t *f) {
  lua_State *L = in->L;
  uint64_t v = get(in, f->off, f->size);
  struct wl_tcp_info ti;
  switch (f->kind) {
  case K_STATE:
    lua_pushstring(L, wl_tcp_state_name((unsigned)v));
    break;
  case K_CA_STATE:
    lua_pushstring(L, name_of(ca_states, sizeof ca_states / sizeof *ca_states,
                              (unsigned)v));
    break;
  case K_OPTIONS:
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, (v & TCPI_OPT_TIMESTAMPS) != 0);
    lua_setfield(L, -2, "timestamps");
    lua_pushboolean(L, (v & TCPI_OPT_SACK) != 0);
    lua_setfield(L, -2, "sack");
    lua_pushboolean(L, (v & TCPI_OPT_WSCALE) != 0);
    lua_setfield(L, -2, "wscale");
    lua_pushboolean(L, (v & TCPI_OPT_ECN) != 0);
    lua_setfield(L, -2, "ecn");
    break;
  case K_SND_WSCALE: case K_RCV_WSCALE:
    /* bit fields: the compiler knows their layout, so read them there */
    memcpy(&ti, in->buf, sizeof ti);
    lua_pushinteger(L, f->kind == K_SND_WSCALE ? ti.snd_wscale : ti.rcv_wscale);
    break;
  case K_SECS:
    lua_pushnumber(L, (double)v * f->scale);
    break;
  default:
    if (f->size == 8 && v > (uint64_t)LUA_MAXINTEGER) lua_pushnumber(L, HUGE_VAL);
    else lua_pushinteger(L, (lua_Integer)v);
  }
}

/* tcp_info([field]) -> table, or that field's value (nil when the kernel
** does not report it): every field is the kernel's tcpi_ name without
** the prefix; times in seconds (floats), sizes in bytes, snd_cwnd and
** snd_ssthresh in segments. One field costs no table: http.client asks
** for the state before reusing a connection. */
static int sock_tcp_info(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "tcp_info");
  const char *want = luaL_optstring(L, 2, NULL);
  unsigned char buf[INFO_MAX];
  socklen_t len = sizeof buf;
  info_t in;
  size_t i;
  if (s->type != SOCK_STREAM || s->family == AF_UNIX)
    return wl_sock_raise(L, s, "tcp_info", UV_ENOTSUP);
  memset(buf, 0, sizeof buf);
  if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, buf, &len) < 0)
    return wl_sock_raise(L, s, "tcp_info", -errno);
  in.L = L, in.buf = buf, in.len = len;
  if (want != NULL) {
    for (i = 0; i < NFIELDS; i++)
      if (strcmp(fields[i].name, want) == 0) {
        if (has(&in, fields[i].off, fields[i].size)) push_field(&in, &fields[i]);
        else lua_pushnil(L);
        return 1;
      }
    return luaL_argerror(L, 2, lua_pushfstring(L, "no TCP_INFO field '%s'", want));
  }
  lua_createtable(L, 0, (int)NFIELDS);
  for (i = 0; i < NFIELDS; i++)
    if (has(&in, fields[i].off, fields[i].size)) {
      push_field(&in, &fields[i]);
      lua_setfield(L, -2, fields[i].name);
    }
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
