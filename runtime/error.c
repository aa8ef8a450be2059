/*
** error.c: the error object of API.md section 2, built here and nowhere
** else, so that every I/O failure reads alike:
**   connect 127.0.0.1:9: connection refused (ECONNREFUSED)
*/
#include <errno.h>
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

#define ERROR_MT "wirelab.error"

/* libuv names only the errors it maps; the rest (EINPROGRESS...) come
** from the C library, so every code has its errno name. uv_err_name
** mallocs the name of a code it does not know, and never frees it: the
** _r form writes into a buffer (static: only the loop thread raises, and
** the name is copied into Lua at once). */
static char unknown[64];

static int uv_knows(int code) {
  return strncmp(uv_err_name_r(code, unknown, sizeof unknown), "Unknown", 7) != 0;
}

static const char *code_name(int code) {
  const char *name;
  if (uv_knows(code)) return uv_err_name(code);
  if (code < 0 && (name = strerrorname_np(-code)) != NULL) return name;
  return uv_err_name_r(code, unknown, sizeof unknown);
}

/* Python's wording where people will compare the two. */
static const char *reason(int code) {
  switch (code) {
    case UV_ETIMEDOUT: return "timed out";
    case UV_EOF: return "end of file";
    case UV_EBADF: return "used after close";   /* any handle */
    case UV_ECANCELED: return "cancelled";
    case UV_EAI_NONAME: return "unknown host name";
    default:
      if (uv_knows(code)) return uv_strerror(code);
      if (code < 0) return strerror(-code);
      return uv_strerror_r(code, unknown, sizeof unknown);   /* no leak */
  }
}

/* Leaves {code=, message=, reason=, op=, errno=, address=} on the stack. */
void wl_push_error(lua_State *L, const char *op, int code, const char *addr) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, code_name(code));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, reason(code));
  lua_setfield(L, -2, "reason");
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_pushinteger(L, -code);                 /* libuv codes are -errno */
  lua_setfield(L, -2, "errno");
  if (addr != NULL && addr[0] != '\0') {
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "address");
    lua_pushfstring(L, "%s %s: %s", op, addr, reason(code));
  } else {
    lua_pushfstring(L, "%s: %s", op, reason(code));
  }
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, ERROR_MT);
}

int wl_raise(lua_State *L, const char *op, int code, const char *addr) {
  wl_push_error(L, op, code, addr);
  return lua_error(L);
}

int wl_raise_addr(lua_State *L, const char *op, int code, int hi) {
  char buf[300];
  const char *host = lua_tostring(L, hi);
  wl_format_addr(host ? host : "?", (int)lua_tointeger(L, hi + 1), buf,
                 sizeof buf);
  return wl_raise(L, op, code, buf);
}

int wl_is_error(lua_State *L, int idx) {
  int ok = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, ERROR_MT);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return ok;
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_pushfstring(L, "%s (%s)", luaL_optstring(L, 2, "error"),
                  luaL_optstring(L, 3, "?"));
  return 1;
}

/* Lua side: raise(op, code[, host[, port[, detail]]]); code is an errno
** name ("ETIMEDOUT") or a negative libuv code; detail, when given, is kept
** as err.detail and ends the message ("...: response cut short").
** new(...) builds without raising. */
static int build(lua_State *L) {
  const char *op = luaL_checkstring(L, 1);
  int code;
  char addr[300] = "";
  lua_settop(L, 5);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    code = (int)lua_tointeger(L, 2);
  } else {
    const char *name = luaL_checkstring(L, 2);
    lua_getfield(L, lua_upvalueindex(1), name);
    if (!lua_isinteger(L, -1))
      return luaL_argerror(L, 2, lua_pushfstring(L, "unknown error code '%s'", name));
    code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  if (!lua_isnoneornil(L, 3)) {
    const char *host = luaL_checkstring(L, 3);
    lua_Integer port = lua_isnoneornil(L, 4) ? -1 : luaL_checkinteger(L, 4);
    wl_format_addr(host, port, addr, sizeof addr);
  }
  wl_push_error(L, op, code, addr);
  if (!lua_isnoneornil(L, 5)) {
    const char *detail = luaL_checkstring(L, 5);
    lua_pushvalue(L, 5);
    lua_setfield(L, -2, "detail");
    lua_getfield(L, -1, "message");
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), detail);
    lua_setfield(L, -3, "message");
    lua_pop(L, 1);
  }
  return 1;
}

/* argerror(n, fname, msg[, level]): Lua's own argument error wording,
** "bad argument #n to 'fname' (msg)", for Lua modules; level counts as
** error()'s does from the function calling argerror (2: its caller). */
static int error_argerror(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  const char *fname = luaL_checkstring(L, 2);
  const char *msg = luaL_checkstring(L, 3);
  int level = (int)luaL_optinteger(L, 4, 2);
  luaL_where(L, level);
  lua_pushfstring(L, "bad argument #%I to '%s' (%s)", (LUAI_UACINT)n, fname,
                  msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static int error_raise(lua_State *L) {
  build(L);
  return lua_error(L);
}

/* is(err, code): true when err is a wirelab error with that code. */
static int error_is(lua_State *L) {
  int ok = wl_is_error(L, 1);
  if (ok && !lua_isnoneornil(L, 2)) {
    lua_getfield(L, 1, "code");
    ok = lua_rawequal(L, -1, 2);
  }
  lua_pushboolean(L, ok);
  return 1;
}

int luaopen_wirelab_error(lua_State *L) {
  static const char *names[] = {
#define XX(code, _) #code,
    UV_ERRNO_MAP(XX)
#undef XX
    NULL};
  static const int codes[] = {
#define XX(code, _) UV_##code,
    UV_ERRNO_MAP(XX)
#undef XX
    0};
  int i;
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);                           /* name -> code */
  for (i = 0; names[i] != NULL; i++) {
    lua_pushinteger(L, codes[i]);
    lua_setfield(L, -2, names[i]);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "codes");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, error_raise, 1);
  lua_setfield(L, -3, "raise");
  lua_pushcclosure(L, build, 1);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, error_is);
  lua_setfield(L, -2, "is");
  lua_pushcfunction(L, error_argerror);
  lua_setfield(L, -2, "argerror");
  return 1;
}
