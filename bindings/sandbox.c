/*
** sandbox.c: the isolation "process.core" offers beside spawn. Network
** namespaces: process.netns() makes one with only loopback up; a
** sandboxed program joins it (the supervisor's child calls setns), and
** the grader makes its own sockets inside it (ns:_socket), so the checks
** and the program meet on 127.0.0.1 while the program reaches nothing
** else. The namespace and the sockets in it are made inside it
** (runtime/netns.c's wl_netns_run), by wirelab's thread or, under
** `unshare -r`, a helper thread: a socket stays in the namespace it was
** made in. Also: where
** cgroups may be made (_cgroups, found once), and the user a sandbox runs
** as (_getpwnam, _geteuid).
*/
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <lauxlib.h>
#include "wl.h"
#include "process.h"

#define NETNS_MT "wirelab.netns"

typedef struct { int fd; } netns_t;   /* -1 once closed */

static int lo_up(void) {
  struct ifreq ifr;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
  if (fd < 0) return -errno;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) rc = -errno;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) rc = -errno;
  close(fd);
  return rc;
}

static netns_t *check_ns(lua_State *L, const char *op) {
  netns_t *ns = luaL_checkudata(L, 1, NETNS_MT);
  if (ns->fd < 0) wl_raise(L, op, UV_EBADF, NULL);
  return ns;
}

int wl_netns_fd(lua_State *L, int idx, const char *op) {
  netns_t *ns = luaL_checkudata(L, idx, NETNS_MT);
  if (ns->fd < 0) return wl_raise(L, op, UV_EBADF, NULL);
  return ns->fd;
}

/* In the new namespace: loopback up, and an fd that holds it. */
static int make_ns(void *arg) {
  int rc = lo_up(), fd;
  if (rc < 0) return rc;
  fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  *(int *)arg = fd;
  return 0;
}

/* netns() -> ns: a new network namespace, loopback up and nothing else.
** Needs CAP_SYS_ADMIN over wirelab's user namespace (root, or any user
** under `unshare -r`): EPERM otherwise, as in most containers. */
static int process_netns(lua_State *L) {
  netns_t *ns = lua_newuserdatauv(L, sizeof *ns, 0);
  int rc, fd = -1;
  ns->fd = -1;
  luaL_setmetatable(L, NETNS_MT);
  if ((rc = wl_netns_run(-1, make_ns, &fd)) < 0)
    return wl_raise(L, "netns", rc, NULL);
  ns->fd = fd;
  return 1;
}

typedef struct { int family, type, fd; } sock_job_t;

static int make_sock(void *arg) {
  sock_job_t *j = arg;
  j->fd = socket(j->family, j->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return j->fd < 0 ? -errno : 0;
}

/* ns:_socket(family, type) -> fd: a socket made inside the namespace,
** non-blocking and close-on-exec; process.lua wraps it. */
static int netns_socket(lua_State *L) {
  netns_t *ns = check_ns(L, "socket");
  sock_job_t j;
  int rc;
  j.family = (int)luaL_optinteger(L, 2, AF_INET);
  j.type = (int)luaL_optinteger(L, 3, SOCK_STREAM);
  luaL_argcheck(L, j.family == AF_INET || j.family == AF_INET6, 2,
                "AF_INET or AF_INET6 expected");
  luaL_argcheck(L, j.type == SOCK_STREAM || j.type == SOCK_DGRAM, 3,
                "SOCK_STREAM or SOCK_DGRAM expected");
  if ((rc = wl_netns_run(ns->fd, make_sock, &j)) < 0)
    return wl_raise(L, "socket", rc, NULL);
  lua_pushinteger(L, j.fd);
  return 1;
}

static int netns_fileno(lua_State *L) {
  lua_pushinteger(L, check_ns(L, "fileno")->fd);
  return 1;
}

static int netns_close(lua_State *L) {
  netns_t *ns = luaL_checkudata(L, 1, NETNS_MT);
  if (ns->fd >= 0) close(ns->fd);
  ns->fd = -1;
  return 0;
}

/* _closefd(fd): the raw fd of _socket, once socket.fromfd has its copy */
static int process_closefd(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* _cgroups() -> {v2=, mem=, pids=, v2_memory=, v2_pids=, why=}: where a
** sandbox may make its groups; found once (it may move wirelab into a
** leaf group of its own, see cgroup.c). */
static int process_cgroups(lua_State *L) {
  static wl_cgroup_t found;
  static int done;
  if (!done) {
    wl_cgroup_find(&found);
    done = 1;
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, found.v2);
  lua_setfield(L, -2, "v2");
  lua_pushstring(L, found.mem);
  lua_setfield(L, -2, "mem");
  lua_pushstring(L, found.pids);
  lua_setfield(L, -2, "pids");
  lua_pushboolean(L, found.v2_memory);
  lua_setfield(L, -2, "v2_memory");
  lua_pushboolean(L, found.v2_pids);
  lua_setfield(L, -2, "v2_pids");
  lua_pushstring(L, found.why);
  lua_setfield(L, -2, "why");
  return 1;
}

/* _getpwnam(name) -> uid, gid | nil */
static int process_getpwnam(lua_State *L) {
  struct passwd *pw = getpwnam(luaL_checkstring(L, 1));
  if (pw == NULL) return 0;
  lua_pushinteger(L, pw->pw_uid);
  lua_pushinteger(L, pw->pw_gid);
  return 2;
}

static int process_geteuid(lua_State *L) {
  lua_pushinteger(L, geteuid());
  return 1;
}

static const luaL_Reg funcs[] = {
  {"netns", process_netns}, {"_closefd", process_closefd},
  {"_cgroups", process_cgroups}, {"_getpwnam", process_getpwnam},
  {"_geteuid", process_geteuid}, {NULL, NULL}
};

static const luaL_Reg ns_methods[] = {
  {"_socket", netns_socket}, {"fileno", netns_fileno}, {"close", netns_close},
  {NULL, NULL}
};

void wl_sandbox_open(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
  luaL_newmetatable(L, NETNS_MT);
  lua_newtable(L);
  luaL_setfuncs(L, ns_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, netns_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, netns_close);
  lua_setfield(L, -2, "__close");
  lua_setfield(L, -2, "_netns_mt");          /* process.lua adds methods */
}
