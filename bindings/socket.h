/*
** socket.h: the socket object shared by socket.c (lifecycle and I/O),
** sockopt.c (options, addresses, multicast, constants), sockinfo.c
** (queues and TCP_INFO), sockfd.c (objects from descriptors), sockstat.c
** (the open sockets, for wirelab.status), recvall.c (recv with
** MSG_WAITALL or MSG_TRUNC), inet.c (address conversions), resolve.c
** (names to addresses), netdb.c (hosts and services by name) and
** sendfile.c (s:sendfile's system calls).
*/
#ifndef WL_SOCKET_H
#define WL_SOCKET_H

#include <stdint.h>
#include "wl.h"

#define SOCK_MT "wirelab.socket"
/* The largest recv bufsize: a buffer that size is allocated before the
** call, and beyond it recv raises ENOMEM, as Python's raises MemoryError
** when it cannot allocate one. */
#define WL_RECV_MAX ((lua_Integer)1 << 30)

/* One per open socket, malloc'd (the poll handle outlives the userdata
** until its close callback): the small fields are packed, 232 bytes, a
** 240-byte malloc chunk where 240 took 256. */
typedef struct wl_sock_t {
  uv_poll_t poll;            /* first: the close callback gets this pointer */
  int fd;
  int pending;               /* an error a call met after it had bytes to
                                return (a reset): the next recv or send
                                raises it, as the kernel keeps sk_err
                                (maybe_readable stays 0 meanwhile) */
  int type;
  unsigned short family;
  unsigned char events;      /* what the poll watches now */
  unsigned char maybe_readable;  /* a recv/accept may succeed without waiting */
  double timeout;            /* seconds; negative blocks, 0 never waits */
  wl_waiter_t rdq, wrq;      /* tasks waiting to read or accept / to write */
} wl_sock_t;

/* socket.c: the object and its waits, for the other socket files. The
** poll handle of every socket has data == &wl_sock_tag: walking the loop's
** handles finds the open sockets (sockstat.c) at no cost to the rest. */
extern const int wl_sock_tag;
wl_sock_t *wl_check_sock(lua_State *L, int i, const char *op);
int wl_sock_raise(lua_State *L, wl_sock_t *s, const char *op, int code);
/* A new socket object on the stack, its box holding NULL: made before
** the fd, so that a memory error leaves nothing unowned. */
wl_sock_t **wl_sock_box(lua_State *L);
/* Wraps fd (non-blocking, close-on-exec) in the empty box, with the
** default timeout: 0, or a libuv error with fd closed. */
int wl_sock_wrap(wl_sock_t **box, int fd, int family, int type);
/* close() of the socket at stack slot i: wakes its tasks with EBADF. */
void wl_sock_close(lua_State *L, int i);
/* The deadline of a call starting now under the socket's timeout, as a
** continuation context (0: none). */
lua_KContext wl_sock_deadline(const wl_sock_t *s);
/* Park until the socket is readable (dir UV_READABLE) or writable, then
** k runs, which retries the call; raises EAGAIN at once on a
** non-blocking socket and ETIMEDOUT past the deadline dl. A tail call. */
int wl_sock_wait(lua_State *L, wl_sock_t *s, const char *op, int dir,
                 lua_KContext dl, lua_KFunction k);
/* Raises the error kept in s->pending, and forgets it. */
int wl_sock_raise_pending(lua_State *L, wl_sock_t *s, const char *op);
/* In k: pops the wake status, raising when the wait failed. */
void wl_sock_woken(lua_State *L, const char *op);
/* Whether a call that would not wait should first yield: the task has
** held the loop for its slice (never on a non-blocking socket). */
int wl_sock_turn_due(lua_State *L, const wl_sock_t *s);

/* recvall.c: recv/recvfrom (stack s, n, flags) with MSG_WAITALL or
** MSG_TRUNC set, from recv_do; dl is the call's deadline. */
int wl_recv_flagged(lua_State *L, lua_KContext dl, int from);

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

/* sockinfo.c: a TCP state's name ("ESTABLISHED", "?" for an unknown
** number), and the state of socket fd (NULL when TCP_INFO fails). */
const char *wl_tcp_state_name(unsigned v);
const char *wl_tcp_state(int fd);
/* sockinfo.c: the bytes in the receive and send queues, as s:queues()
** gives them (a listener's: the connections waiting for accept, and 0).
** 0, or -errno. */
int wl_sock_queues(const wl_sock_t *s, int *inq, int *outq);

/* sockopt.c: the socket's __tostring. */
int wl_sock_tostring(lua_State *L);

void wl_sockopt_register(lua_State *L, int methods, int module);
void wl_sockinfo_register(lua_State *L, int methods);
void wl_sockfd_register(lua_State *L, int methods, int module);
void wl_inet_register(lua_State *L, int module);
void wl_netdb_register(lua_State *L, int module);
void wl_sendfile_register(lua_State *L, int module);
void wl_sockstat_register(lua_State *L, int module);

/* resolve.c: a host name at hi (bind, connect, sendto) resolved for the
** socket's family; then k calls wl_take_resolved, which puts the first
** address in the name's place or raises. */
int wl_resolve_host(lua_State *L, wl_sock_t *s, int hi, const char *op,
                    lua_KFunction k);
void wl_take_resolved(lua_State *L, lua_KContext ctx, const char *op, int hi);
void wl_resolve_register(lua_State *L, int module);

#endif
