/*
** resolve.c: names to addresses for module "socket.core", on libuv's
** thread pool so the loop never blocks: socket.getaddrinfo, and the host
** names bind, connect and sendto take (wl_resolve_host). A request holds
** its own waiter; when the task stops waiting first (cancel, interrupt),
** the callback frees what it would have returned.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <lauxlib.h>
#include "socket.h"

typedef struct {
  uv_getaddrinfo_t uv;
  wl_waiter_t w;
  int status;                /* the resolver's: 0 or a libuv error */
  struct addrinfo *res;
} gai_req;

/* Wakes with 0 and leaves the answer in req: any other wake status came
** from elsewhere (cancel, task:interrupt()) before the answer, while this
** callback still owns the request. */
static void on_resolved(uv_getaddrinfo_t *uv, int status,
                        struct addrinfo *res) {
  gai_req *req = (gai_req *)uv;
  req->res = res;
  req->status = status;
  if (!wl_wake(&req->w, 0)) {         /* the task gave up: nobody reads it */
    uv_freeaddrinfo(res);
    free(req);
  }
}

static void free_request(gai_req *req) {
  uv_freeaddrinfo(req->res);
  free(req);
}

/* Both resolutions start here: host (NULL for the wildcard) and service
** on the thread pool. 0 with *out, or a libuv error with nothing left. */
static int start_resolve(lua_State *L, const char *host, const char *service,
                         const struct addrinfo *hints, gai_req **out) {
  gai_req *req;
  int rc;
  if ((req = malloc(sizeof *req)) == NULL)
    return wl_raise(L, "getaddrinfo", UV_ENOMEM, NULL);
  wl_waiter_init(&req->w);
  req->status = 0;
  req->res = NULL;
  rc = uv_getaddrinfo(wl_loop(), &req->uv, on_resolved, host, service, hints);
  if (rc < 0) {
    free(req);
    return rc;
  }
  *out = req;
  return 0;
}

/* The error naming (host, port) at hi; a service name stands in for
** the port ("localhost:http"), and a nil host (the wildcard) is "". */
static int raise_at(lua_State *L, const char *op, int rc, int hi) {
  char buf[300];
  const char *host = lua_isstring(L, hi) ? lua_tostring(L, hi) : "";
  if (lua_type(L, hi + 1) == LUA_TSTRING && !lua_isinteger(L, hi + 1))
    snprintf(buf, sizeof buf, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             lua_tostring(L, hi + 1));
  else
    wl_format_addr(host, lua_isinteger(L, hi + 1) ? lua_tointeger(L, hi + 1) : -1,
                   buf, sizeof buf);
  return wl_raise(L, op, rc, buf);
}

/* In k, with the wake status on top (popped): the request, or a raise
** naming (host, port) at hi. A wake status other than 0 did not come
** from on_resolved, which still owns the request then (see there). */
static gai_req *take_request(lua_State *L, lua_KContext ctx, const char *op,
                             int hi) {
  gai_req *req = (gai_req *)ctx;
  int rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (rc < 0) raise_at(L, op, rc, hi);
  if ((rc = req->status) < 0) {
    free_request(req);
    raise_at(L, op, rc, hi);
    return NULL;                             /* not reached: raise longjmps */
  }
  return req;
}

/* A host name in bind, connect or sendto: resolved on the thread pool for
** the socket's family, then k puts the first address in the name's place
** (wl_take_resolved) and starts the call again. The lookup does not wait
** under the socket's timeout, as in Python, where it is a call apart: a
** non-blocking socket resolves, then raises EINPROGRESS from connect. */
int wl_resolve_host(lua_State *L, wl_sock_t *s, int hi, const char *op,
                    lua_KFunction k) {
  struct addrinfo hints;
  gai_req *req;
  int rc;
  wl_check_park(L);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = s->family;
  hints.ai_socktype = s->type;
  rc = start_resolve(L, lua_tostring(L, hi), NULL, &hints, &req);
  if (rc < 0) return wl_raise_addr(L, op, rc, hi);
  return wl_park(L, &req->w, -1, k, (lua_KContext)req);
}

void wl_take_resolved(lua_State *L, lua_KContext ctx, const char *op,
                      int hi) {
  gai_req *req = take_request(L, ctx, op, hi);
  if (req->res == NULL) {
    free_request(req);
    wl_raise_addr(L, op, UV_EAI_NONAME, hi);
    return;                                  /* not reached */
  }
  wl_push_addr(L, req->res->ai_addr);
  lua_pop(L, 1);               /* the port: the call has its own */
  free_request(req);
  lua_replace(L, hi);
}

/* Python's 5-tuples as tables: {family=, type=, proto=, canonname=,
** host=, port=}; canonname is "" but in the first entry under
** AI_CANONNAME, as in Python. */
static int gai_k(lua_State *L, int status, lua_KContext ctx) {
  gai_req *req = take_request(L, ctx, "getaddrinfo", 1);
  struct addrinfo *ai;
  int i = 0;
  (void)status;
  lua_newtable(L);
  for (ai = req->res; ai != NULL; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, ai->ai_family);
    lua_setfield(L, -2, "family");
    lua_pushinteger(L, ai->ai_socktype);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, ai->ai_protocol);
    lua_setfield(L, -2, "proto");
    lua_pushstring(L, ai->ai_canonname ? ai->ai_canonname : "");
    lua_setfield(L, -2, "canonname");
    wl_push_addr(L, ai->ai_addr);
    lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "host");
    lua_rawseti(L, -2, ++i);
  }
  free_request(req);
  return 1;
}

/* getaddrinfo(host, port[, family[, type[, proto[, flags]]]]) -> list,
** Python's: type 0 (the default) gives an entry per socket type. host
** nil is Python's None, and so is "" (where Python raises); port is an
** integer, a service name or nil. */
static int socket_getaddrinfo(lua_State *L) {
  const char *host = lua_isnoneornil(L, 1) ? NULL : wl_check_host(L, 1);
  const char *service = NULL;
  char port[16];
  struct addrinfo hints;
  gai_req *req;
  int rc;
  memset(&hints, 0, sizeof hints);
  if (lua_type(L, 2) == LUA_TSTRING) {
    service = wl_check_host(L, 2);
  } else if (!lua_isnoneornil(L, 2)) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 65535, 2, "port out of range 0-65535");
    snprintf(port, sizeof port, "%d", (int)n);
    service = port;
  }
  hints.ai_family = (int)luaL_optinteger(L, 3, AF_UNSPEC);
  hints.ai_socktype = (int)luaL_optinteger(L, 4, 0);
  hints.ai_protocol = (int)luaL_optinteger(L, 5, 0);
  hints.ai_flags = (int)luaL_optinteger(L, 6, 0);
  if (host != NULL && host[0] == '\0') host = NULL;
  lua_settop(L, 2);
  if (host == NULL && service == NULL)     /* libuv's EINVAL; Python's: */
    return raise_at(L, "getaddrinfo", UV_EAI_NONAME, 1);
  wl_check_park(L);
  rc = start_resolve(L, host, service, &hints, &req);
  if (rc < 0) return raise_at(L, "getaddrinfo", rc, 1);
  return wl_park(L, &req->w, -1, gai_k, (lua_KContext)req);
}

/* _is_numeric(host): wl_numeric_host, for the Lua half */
static int socket_is_numeric(lua_State *L) {
  lua_pushboolean(L, wl_numeric_host(wl_check_host(L, 1)));
  return 1;
}

/* _ipv4(host): the dotted quad of an inet_aton form ("127.1" ->
** "127.0.0.1"), or nil, for the Lua half */
static int socket_ipv4(lua_State *L) {
  struct in_addr a;
  char buf[INET_ADDRSTRLEN];
  if (!wl_parse_ipv4(wl_check_host(L, 1), &a)) return 0;
  lua_pushstring(L, inet_ntop(AF_INET, &a, buf, sizeof buf));
  return 1;
}

static const luaL_Reg funcs[] = {
  {"getaddrinfo", socket_getaddrinfo}, {"_is_numeric", socket_is_numeric},
  {"_ipv4", socket_ipv4}, {NULL, NULL}
};

/* Adds getaddrinfo and _is_numeric to the module at index `module`. */
void wl_resolve_register(lua_State *L, int module) {
  lua_pushvalue(L, module);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
