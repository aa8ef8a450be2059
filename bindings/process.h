/*
** process.h: what the two files of "process.core" share: process.c (the
** process object) and sandbox.c (network namespaces, cgroup discovery,
** users); and the namespace plumbing netem.link's tun.c uses.
*/
#ifndef WL_PROCESS_H
#define WL_PROCESS_H

#include <lua.h>

/* The fd of the network namespace object at idx; raises EBADF naming op
** when it is closed, an argument error when it is not one. */
int wl_netns_fd(lua_State *L, int idx, const char *op);
/* wirelab's thread into the namespace nsfd (0 or -errno), and back to
** its own one: for the one call that must be made inside (bindings/tun.c
** opens a TUN device there). Always leave after a successful enter. */
int wl_netns_enter(int nsfd);
void wl_netns_leave(void);
/* Adds sandbox.c's functions to the module table at the stack top, and
** registers the namespace's metatable. */
void wl_sandbox_open(lua_State *L);

#endif
