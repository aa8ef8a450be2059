/*
** link.h: what the files of "netem.link.core" share: tun.c (a TUN device
** made and configured inside a network namespace), emul.c (the impairment
** of one direction: seeded draws, bottleneck queue, delay line) and
** link.c (the link object: both TUN fds, the loop's handles, the log).
*/
#ifndef WL_LINK_H
#define WL_LINK_H

#include <stdint.h>
#include <lua.h>

/* ---- tun.c ---- */

/* One side's device: its name, MTU and addresses (text, numeric). */
typedef struct {
  const char *name;
  int mtu;
  const char *addr;   /* IPv4, prefix4 bits */
  int prefix4;
  const char *addr6;  /* IPv6 or NULL, prefix6 bits */
  int prefix6;
} wl_tun_conf_t;

/* Makes the TUN device inside the namespace nsfd, configured and up:
** *fdp its fd (non-blocking, close-on-exec), 0; or -errno with *step
** naming what failed, in words a user can act on. */
int wl_tun_open(int nsfd, const wl_tun_conf_t *c, int *fdp, const char **step);

/* ---- emul.c ---- */

/* The conditions of one direction, as set from Lua. */
typedef struct {
  double delay, jitter;       /* seconds */
  double loss, duplicate, reorder;   /* probabilities, 0..1 */
  double reorder_gap;         /* seconds a reordered packet is held back */
  double rate;                /* bytes per second, 0: no bottleneck */
  uint32_t queue;             /* packets waiting at the bottleneck, 0: any */
  uint64_t queue_bytes;       /* bytes waiting at the bottleneck, 0: any */
} wl_impair_t;

/* What happened to a packet. */
enum { WL_PASS, WL_DROP, WL_OVERFLOW, WL_DUPLICATE, WL_REORDER };

typedef struct {
  uint64_t packets, bytes, delivered, delivered_bytes;
  uint64_t dropped, overflow, duplicated, reordered, delayed, write_errors;
  uint64_t queue_max;         /* the most packets ever at the bottleneck */
} wl_dir_stats_t;

typedef struct {
  wl_impair_t p;
  uint64_t rng[4];            /* xoshiro256**, seeded by splitmix64 */
  uint64_t free_at;           /* ns: when the bottleneck is free */
  uint64_t last_due;          /* ns: FIFO, no packet overtakes another */
  uint64_t *dep;              /* ring: departure times at the bottleneck */
  uint32_t *deplen;
  uint32_t dep_cap, dep_head, dep_n;
  uint64_t dep_bytes;
  uint32_t seq;
  wl_dir_stats_t st;
} wl_dir_t;

/* The verdict on one packet: action, and for a packet that goes on, when
** (ns) it and its duplicate (when action is WL_DUPLICATE) are due. */
typedef struct {
  int action;
  uint64_t due, due2;
} wl_verdict_t;

void wl_dir_init(wl_dir_t *d);
void wl_dir_free(wl_dir_t *d);
void wl_dir_seed(wl_dir_t *d, uint64_t seed);
/* Decides the fate of a packet of len bytes arriving at now (ns): four
** draws per packet whatever the conditions, so a seed gives the same
** choices for the same traffic. 0, or -1 when out of memory (dropped). */
int wl_dir_judge(wl_dir_t *d, uint64_t now, uint32_t len, wl_verdict_t *v);

/* ---- linklog.c ---- */

/* One line of a link's packet log: what came in, what became of it, and
** the headers a person reads (tcpdump's few fields). */
typedef struct {
  uint64_t t, due;            /* ns (uv_hrtime); due 0: not delivered */
  uint32_t seq;               /* the packet's number in its direction */
  uint16_t size, payload;     /* IP packet, and the TCP/UDP payload */
  uint8_t dir, action, family, proto, flags;
  uint16_t sport, dport;
  uint32_t tseq, tack;
  uint8_t src[16], dst[16];
} wl_event_t;

typedef struct {
  wl_event_t *ev;
  size_t n, cap, max;         /* max: kept at most; later ones counted */
  uint64_t lost;
} wl_log_t;

void wl_log_add(wl_log_t *log, const wl_event_t *proto,
                const unsigned char *pkt, uint32_t len);
/* Pushes the list of events from index `from` (0-based) as Lua tables. */
void wl_log_push(lua_State *L, const wl_log_t *log, size_t from);
void wl_log_free(wl_log_t *log);

/* ---- link.c ---- */
int luaopen_netem_link_core(lua_State *L);
void wl_tun_register(lua_State *L);

#endif
