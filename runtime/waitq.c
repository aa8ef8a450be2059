/*
** waitq.c: wait queues, wirelab.core.waitq(), the primitive under
** wirelab.Event, wirelab.Queue and a capture's packet queue. A queue is a
** wait list (wl.h) in a userdata; a task waits on it with its own waiter,
** so waking unlinks it and a late notify never reaches a later wait.
*/
#include <lauxlib.h>
#include "wl.h"

#define WAITQ_MT "wirelab.waitq"

static wl_waiter_t *check_waitq(lua_State *L) {
  return (wl_waiter_t *)luaL_checkudata(L, 1, WAITQ_MT);
}

static int waitq_new(lua_State *L) {
  wl_waiter_t *q = lua_newuserdatauv(L, sizeof *q, 0);
  wl_list_init(q);
  luaL_setmetatable(L, WAITQ_MT);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  if (rc == UV_ETIMEDOUT) { lua_pushboolean(L, 0); return 1; }
  if (rc < 0) return wl_raise(L, "wait", rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

int wl_list_wait(lua_State *L, wl_waiter_t *head, double timeout) {
  return wl_list_park(L, head, timeout, wait_k, 0);
}

/* q:wait([timeout]) -> true when notified, false on timeout */
static int waitq_wait(lua_State *L) {
  wl_waiter_t *q = check_waitq(L);
  return wl_list_wait(L, q, luaL_optnumber(L, 2, -1));
}

/* q:notify([n]) wakes up to n waiters (default 1); returns how many */
static int waitq_notify(lua_State *L) {
  wl_waiter_t *q = check_waitq(L);
  lua_Integer n = luaL_optinteger(L, 2, 1), i = 0;
  while (i < n && wl_list_wake_one(q, 0)) i++;
  lua_pushinteger(L, i);
  return 1;
}

static int waitq_notify_all(lua_State *L) {
  lua_pushinteger(L, wl_list_wake_all(check_waitq(L), 0));
  return 1;
}

static const luaL_Reg waitq_methods[] = {
  {"wait", waitq_wait}, {"notify", waitq_notify},
  {"notify_all", waitq_notify_all}, {NULL, NULL}
};

/* the class, and waitq() in the module table at index module. No __gc:
** a queue owns nothing, and is never collected while a task waits in it
** (the waiting task's stack holds it) */
void wl_waitq_register(lua_State *L, int module) {
  module = lua_absindex(L, module);
  if (luaL_newmetatable(L, WAITQ_MT)) {
    luaL_newlib(L, waitq_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, waitq_new);
  lua_setfield(L, module, "waitq");
}
