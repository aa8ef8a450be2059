/*
** embed.c: puts wirelab's modules in package.preload -- the C modules and
** the Lua sources compiled into the binary -- so `require "socket"` is
** always wirelab's, whatever the current directory or LUA_PATH says.
*/
#include <lauxlib.h>
#include <lualib.h>
#include "wl.h"

int luaopen_socket_core(lua_State *L);
int luaopen_process_core(lua_State *L);
int luaopen_wirelab_fs(lua_State *L);
int luaopen_wirelab_fork(lua_State *L);
int luaopen_wirelab_readline(lua_State *L);
int luaopen_wirelab_sandbox_core(lua_State *L);
int luaopen_capture_core(lua_State *L);
int luaopen_netem_link_core(lua_State *L);
int luaopen_http_core(lua_State *L) __attribute__((weak));

static const luaL_Reg cmodules[] = {
  {"wirelab.core", luaopen_wirelab_core},
  {"wirelab.error", luaopen_wirelab_error},
  {"socket.core", luaopen_socket_core},
  {"process.core", luaopen_process_core},
  {"wirelab.fs", luaopen_wirelab_fs},
  {"wirelab.fork", luaopen_wirelab_fork},
  {"wirelab.readline", luaopen_wirelab_readline},
  {"wirelab.sandbox.core", luaopen_wirelab_sandbox_core},
  {"netem.link.core", luaopen_netem_link_core},
  {"http.core", luaopen_http_core},
  {"capture.core", luaopen_capture_core},
  {NULL, NULL}
};

/* Loader for an embedded script: upvalue 1 is its wl_scripts row. Text
** only: bytecode can crash the VM. */
static int load_script(lua_State *L) {
  const wl_script_t *s = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbufferx(L, s->src, s->len, s->chunkname, "t") != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1);                       /* module name, as require does */
  lua_pushstring(L, s->chunkname + 1);
  lua_call(L, 2, 1);
  return 1;
}

void wl_open_modules(lua_State *L) {
  const luaL_Reg *m;
  const wl_script_t *s;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (m = cmodules; m->name != NULL; m++) {
    if (m->func == NULL) continue;
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  for (s = wl_scripts; s->name != NULL; s++) {
    lua_pushlightuserdata(L, (void *)s);
    lua_pushcclosure(L, load_script, 1);
    lua_setfield(L, -2, s->name);
  }
  lua_pop(L, 1);
}
