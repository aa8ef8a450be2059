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
/* Runs fn(arg) inside the namespace nsfd (-1: a new one, which ends
** unless fn keeps an fd of it), on wirelab's thread or a helper thread
** joined before it returns: fn's result, or -errno when it could not
** enter. For the calls that must be made inside (sockets, TUN devices). */
int wl_netns_run(int nsfd, int (*fn)(void *), void *arg);
/* Adds sandbox.c's functions to the module table at the stack top, and
** registers the namespace's metatable. */
void wl_sandbox_open(lua_State *L);

#endif
