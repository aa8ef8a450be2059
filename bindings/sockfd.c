/*
** sockfd.c: socket objects and descriptors, beyond socket() and accept()
** (module "socket.core"): fromfd wraps a copy of a descriptor, detach
** gives one up. Every object is made by socket.c's wl_sock_box and
** wl_sock_wrap, so it starts with the default timeout and has one owner.
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
  {"fromfd", socket_fromfd}, {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"detach", sock_detach}, {NULL, NULL}
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
