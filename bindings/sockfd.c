/*
** sockfd.c: socket objects and descriptors, beyond socket() and accept()
** (module "socket.core"): fromfd wraps a copy of a descriptor, dup copies
** a socket, socketpair makes a connected pair, detach gives one up. Every
** object is made by socket.c's wl_sock_box and wl_sock_wrap, so it
** starts with the default timeout and has one owner.
*/
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <lauxlib.h>
#include "socket.h"

/* fromfd(fd[, family[, type]]): a socket object around a duplicate of fd. */
static int socket_fromfd(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1), nfd, rc;
  int family = (int)luaL_optinteger(L, 2, AF_INET);
  int type = (int)luaL_optinteger(L, 3, SOCK_STREAM);
  wl_sock_t **box = wl_sock_box(L);
  if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
    return wl_raise(L, "fromfd", -errno, NULL);
  fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
  if ((rc = wl_sock_wrap(box, nfd, family, type)) < 0)
    return wl_raise(L, "fromfd", rc, NULL);
  return 1;
}

/* socketpair([family[, type]]) -> a, b: Python's, AF_UNIX by default
** (AF_INET is the kernel's EOPNOTSUPP, as in Python). Both boxes exist
** before the descriptors, so a memory error leaves none unowned. */
static int socket_socketpair(lua_State *L) {
  int family = (int)luaL_optinteger(L, 1, AF_UNIX);
  int type = (int)luaL_optinteger(L, 2, SOCK_STREAM);
  wl_sock_t **a, **b;
  int fds[2], rc;
  luaL_argcheck(L, type == SOCK_STREAM || type == SOCK_DGRAM, 2,
                "SOCK_STREAM or SOCK_DGRAM expected");
  lua_settop(L, 2);
  a = wl_sock_box(L);
  b = wl_sock_box(L);
  if (socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
    return wl_raise(L, "socketpair", -errno, NULL);
  if ((rc = wl_sock_wrap(a, fds[0], family, type)) < 0) {
    close(fds[1]);
    return wl_raise(L, "socketpair", rc, NULL);
  }
  if ((rc = wl_sock_wrap(b, fds[1], family, type)) < 0)
    return wl_raise(L, "socketpair", rc, NULL);   /* a's __gc closes a */
  return 2;
}

/* dup() -> a new socket object on a copy of the descriptor, with the
** same family, type and timeout, as Python's. */
static int sock_dup(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "dup"), *d;
  wl_sock_t **box = wl_sock_box(L);
  int fd, rc;
  if ((fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) < 0)
    return wl_sock_raise(L, s, "dup", -errno);
  if ((rc = wl_sock_wrap(box, fd, s->family, s->type)) < 0)
    return wl_sock_raise(L, s, "dup", rc);
  d = *box;
  d->timeout = s->timeout;
  return 1;
}

/* detach() -> fd: the socket object lets go of the descriptor (a copy of
** it: the object's own is closed with it), -1 when closed already. */
static int sock_detach(lua_State *L) {
  wl_sock_t *s = *(wl_sock_t **)luaL_checkudata(L, 1, SOCK_MT);
  int fd;
  if (s == NULL) { lua_pushinteger(L, -1); return 1; }
  fd = dup(s->fd);
  wl_sock_close(L, 1);
  lua_pushinteger(L, fd);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"fromfd", socket_fromfd}, {"socketpair", socket_socketpair}, {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"detach", sock_detach}, {"dup", sock_dup}, {NULL, NULL}
};

/* Adds the functions above to the module at index `module` and the
** methods to the table at index `methods`. */
void wl_sockfd_register(lua_State *L, int methods_idx, int module) {
  lua_pushvalue(L, module);
  luaL_setfuncs(L, funcs, 0);
  lua_pushvalue(L, methods_idx);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 2);
}
