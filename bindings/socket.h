/*
** socket.h: the socket object shared by socket.c (lifecycle and I/O) and
** sockopt.c (options, addresses, TCP_INFO, multicast, constants).
*/
#ifndef WL_SOCKET_H
#define WL_SOCKET_H

#include "wl.h"

#define SOCK_MT "wirelab.socket"

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

#endif
