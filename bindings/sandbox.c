/*
** sandbox.c: the isolation "process.core" offers beside spawn. Network
** namespaces: process.netns() makes one with only loopback up; a
** sandboxed program joins it (the supervisor's child calls setns), and
** the grader makes its own sockets inside it (ns:_socket), so the checks
** and the program meet on 127.0.0.1 while the program reaches nothing
** else. wirelab's thread enters the namespace only for the socket(2)
** call and comes straight back: a socket stays in the namespace it was
** made in. Also: where cgroups may be made (_cgroups, found once), and
** the user a sandbox runs as (_getpwnam, _geteuid).
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

static int host_ns = -1;     /* wirelab's own namespace, to come back to */

static int open_host(void) {
  if (host_ns < 0)
    host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return host_ns < 0 ? -errno : 0;
}

/* Back to wirelab's namespace. It cannot fail (we hold it open and came
** from it); if it did, every later socket would be made in the wrong
** place, so stop here. */
static void come_back(void) {
  if (setns(host_ns, CLONE_NEWNET) < 0) abort();
}

/* Another part of wirelab (netem.link's TUN devices) making something
** inside a namespace: the same enter, then come_back, as _socket. */
int wl_netns_enter(int nsfd) {
  if (open_host() < 0) return -errno;
  return setns(nsfd, CLONE_NEWNET) < 0 ? -errno : 0;
}

void wl_netns_leave(void) { come_back(); }

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

/* netns() -> ns: a new network namespace, loopback up and nothing else.
** Needs CAP_SYS_ADMIN (root): EPERM otherwise, as in most containers. */
static int process_netns(lua_State *L) {
  netns_t *ns = lua_newuserdatauv(L, sizeof *ns, 0);
  int rc, fd = -1;
  ns->fd = -1;
  luaL_setmetatable(L, NETNS_MT);
  if ((rc = open_host()) < 0) return wl_raise(L, "netns", rc, NULL);
  if (unshare(CLONE_NEWNET) < 0) return wl_raise(L, "netns", -errno, NULL);
  rc = lo_up();
  if (rc == 0 && (fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
    rc = -errno;
  come_back();
  if (rc < 0) return wl_raise(L, "netns", rc, NULL);
  ns->fd = fd;
  return 1;
}

/* ns:_socket(family, type) -> fd: a socket made inside the namespace,
** non-blocking and close-on-exec; process.lua wraps it. */
static int netns_socket(lua_State *L) {
  netns_t *ns = check_ns(L, "socket");
  int family = (int)luaL_optinteger(L, 2, AF_INET);
  int type = (int)luaL_optinteger(L, 3, SOCK_STREAM);
  int fd, err = 0;
  luaL_argcheck(L, family == AF_INET || family == AF_INET6, 2,
                "AF_INET or AF_INET6 expected");
  luaL_argcheck(L, type == SOCK_STREAM || type == SOCK_DGRAM, 3,
                "SOCK_STREAM or SOCK_DGRAM expected");
  if (open_host() < 0 || setns(ns->fd, CLONE_NEWNET) < 0)
    return wl_raise(L, "socket", -errno, NULL);
  fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) err = -errno;
  come_back();
  if (fd < 0) return wl_raise(L, "socket", err, NULL);
  lua_pushinteger(L, fd);
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
