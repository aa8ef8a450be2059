/*
** socket.h: the socket object shared by socket.c (lifecycle and I/O),
** sockopt.c (options, addresses, TCP_INFO, multicast, constants) and
** resolve.c (names to addresses).
*/
#ifndef WL_SOCKET_H
#define WL_SOCKET_H

#include "wl.h"

#define SOCK_MT "wirelab.socket"
/* The largest recv bufsize: a buffer that size is allocated before the
** call, and beyond it recv raises ENOMEM, as Python's raises MemoryError
** when it cannot allocate one. */
#define WL_RECV_MAX ((lua_Integer)1 << 30)

typedef struct wl_sock_t {
  uv_poll_t poll;            /* first: the close callback gets this pointer */
  int fd, family, type;
  int events;                /* what the poll watches now */
  int maybe_readable;        /* a recv/accept may succeed without waiting */
  double timeout;            /* seconds; negative blocks, 0 never waits */
  wl_waiter_t rdq, wrq;      /* tasks waiting to read or accept / to write */
} wl_sock_t;

wl_sock_t *wl_check_sock(lua_State *L, int i, const char *op);
int wl_sock_raise(lua_State *L, wl_sock_t *s, const char *op, int code);
void wl_sockopt_register(lua_State *L, int methods, int module);

/* resolve.c: a host name at hi (bind, connect, sendto) resolved for the
** socket's family; then k calls wl_take_resolved, which puts the first
** address in the name's place or raises. */
int wl_resolve_host(lua_State *L, wl_sock_t *s, int hi, const char *op,
                    lua_KFunction k);
void wl_take_resolved(lua_State *L, lua_KContext ctx, const char *op, int hi);
void wl_resolve_register(lua_State *L, int module);

#endif
