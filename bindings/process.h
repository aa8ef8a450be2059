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
/* Adds sandbox.c's functions to the module table at the stack top, and
** registers the namespace's metatable. */
void wl_sandbox_open(lua_State *L);

#endif
