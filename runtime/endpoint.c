/*
** endpoint.c: stream endpoints. A binding whose Lua objects carry bytes
** over a file descriptor (socket.core) registers their metatable here with
** a function that gives the descriptor; other C code (http.core's
** response writer) then reaches the descriptor of such an object through
** this file alone, without the owner's header or struct. The owner keeps
** every decision about the descriptor's life: the function says -1 once
** the object is closed.
*/
#include <lauxlib.h>
#include "wl.h"

/* registry[&key]: metatable -> the fd function, as a light userdata */
static const char key = 0;

void wl_endpoint_register(lua_State *L, int mt, wl_fd_fn fd) {
  mt = lua_absindex(L, mt);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
  }
  lua_pushvalue(L, mt);
  /* a function pointer does not convert to void * in ISO C: boxed */
  *(wl_fd_fn *)lua_newuserdatauv(L, sizeof fd, 0) = fd;
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

int wl_endpoint(lua_State *L, int i, wl_endpoint_t *ep) {
  wl_fd_fn *fn = NULL;
  i = lua_absindex(L, i);
  if (lua_type(L, i) != LUA_TUSERDATA || !lua_getmetatable(L, i))
    return 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) == LUA_TTABLE) {
    lua_insert(L, -2);                   /* table mt */
    lua_rawget(L, -2);
    fn = (wl_fd_fn *)lua_touserdata(L, -1);
  }
  lua_pop(L, 2);
  if (fn == NULL)
    return 0;
  ep->udata = lua_touserdata(L, i);
  ep->fd = *fn;
  return 1;
}
