/*
** http.c: module "http.core": HTTP/1.1 parser objects for Lua over the
** engine in http_parse.c, and take_head, the request side of http.server:
** it returns the head it parsed, which BaseHTTPRequestHandler (Lua) makes
** its fields.
** The response writer lives in http_out.c, the string helpers in
** http_check.c.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <llhttp.h>

#include "http.h"
#include "http_parse.h"

#define PARSER_MT "wirelab.http_parser"

/* ---- Lua side ---- */

/* Slots of the upvalue table after the method names at [method + 1]:
   the version strings, the headers metatable and the event names. All in the
   table's array part: a lookup is an index. */
enum {
  UV_HTTP10 = HTTP_FLUSH + 2, UV_HTTP11, UV_HEADERS_MT,
  UV_EVENTS,                   /* UV_EVENTS + EV_*: the event names */
  UV_N = UV_EVENTS + EV_ERROR + 1
};
static const char *const ev_names[] = {"more", "head", "body", "end", "error"};

/* A parser's userdata: the engine's parser_t, then a mark. A method knows
   its self is a parser by the block's size and the mark, without fetching
   and comparing the metatable (a userdata's block is written by C code
   only, and no other is this size with this mark). */
#define PARSER_MARK 0x687474707061727ULL   /* "httppar" */
typedef struct lparser_t { parser_t p; uint64_t mark; } lparser_t;

static parser_t *check_parser(lua_State *L) {
  lparser_t *lp = (lparser_t *)lua_touserdata(L, 1);
  if (lp == NULL || lua_rawlen(L, 1) != sizeof *lp || lp->mark != PARSER_MARK)
    luaL_typeerror(L, 1, "http.parser");
  return &lp->p;
}

static void push_ev(lua_State *L, int ev) {
  lua_rawgeti(L, lua_upvalueindex(1), UV_EVENTS + ev);
}

static void push_fields(lua_State *L, parser_t *P, size_t from, size_t to) {
  size_t i;
  lua_createtable(L, (int)(to - from), 0);
  for (i = from; i < to; i++) {
    const field_t *f = &P->fields[i];
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, P->arena + f->name, f->nlen);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, P->arena + f->value, f->vlen);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)(i - from + 1));
  }
}

/* Upvalue 1 holds interned method names at [method + 1] and the two
   common version strings (UV_HTTP10): no string hashing per request. */
static void push_head(lua_State *L, parser_t *P) {
  llhttp_t *h = &P->h;
  lua_createtable(L, 0, 12);
  if (h->type == HTTP_REQUEST) {
    lua_rawgeti(L, lua_upvalueindex(1), h->method + 1);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, P->arena ? P->arena + P->url : "", P->url_len);
    lua_setfield(L, -2, "target");
  } else {
    lua_pushinteger(L, h->status_code);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, P->arena ? P->arena + P->url : "", P->url_len);
    lua_setfield(L, -2, "reason");
  }
  if (P->later_minor)         /* as sent, served as 1.1 */
    lua_pushfstring(L, "HTTP/1.%d", P->later_minor);
  else if (h->http_major == 1 && h->http_minor <= 1)
    lua_rawgeti(L, lua_upvalueindex(1), UV_HTTP10 + h->http_minor);
  else
    lua_pushfstring(L, "HTTP/%d.%d", h->http_major, h->http_minor);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, h->http_major);
  lua_setfield(L, -2, "major");
  lua_pushinteger(L, h->http_minor);
  lua_setfield(L, -2, "minor");
  push_fields(L, P, 0, P->ntrail);
  lua_setfield(L, -2, "headers");
  lua_pushboolean(L, P->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  if (h->flags & F_CONTENT_LENGTH) {
    lua_pushinteger(L, (lua_Integer)P->clen);
    lua_setfield(L, -2, "content_length");
  }
  lua_pushboolean(L, (h->flags & F_CHUNKED) != 0);
  lua_setfield(L, -2, "chunked");
  lua_pushboolean(L, P->expect);
  lua_setfield(L, -2, "expect_continue");
  lua_pushboolean(L, P->upgrade);
  lua_setfield(L, -2, "upgrade");
}

/* Pushes the event run() returned: ev, then nextpos/status, then the
   payload. base/len: the buffer fed (index 2), NULL from finish(). */
static int push_event(lua_State *L, parser_t *P, int ev, const char *base,
                      size_t len, const char *next) {
  lua_Integer pos = base ? (lua_Integer)(next - base) + 1 : 0;
  switch (ev) {
  case EV_MORE:
    push_ev(L, EV_MORE);
    lua_pushinteger(L, pos);
    return 2;
  case EV_HEAD:
    push_ev(L, EV_HEAD);
    lua_pushinteger(L, pos);
    push_head(L, P);
    return 3;
  case EV_BODY:
    push_ev(L, EV_BODY);
    lua_pushinteger(L, pos);
    if (P->body_at == base && P->body_len == len)
      lua_pushvalue(L, 2);     /* the whole buffer: no copy */
    else
      lua_pushlstring(L, P->body_at, P->body_len);
    return 3;
  case EV_END:
    push_ev(L, EV_END);
    if (base)
      lua_pushinteger(L, pos);
    else
      lua_pushnil(L);          /* from finish(): no buffer */
    if (P->nf > P->ntrail)
      push_fields(L, P, P->ntrail, P->nf);
    else
      lua_pushnil(L);
    wl_hp_free(P);             /* the message is done: see take_head */
    return 3;
  default:
    push_ev(L, EV_ERROR);
    lua_pushinteger(L, P->status);
    lua_pushstring(L, P->reason);
    return 3;
  }
}

static int parser_feed(lua_State *L) {
  parser_t *P = check_parser(L);
  size_t len;
  const char *buf = luaL_checklstring(L, 2, &len);
  lua_Integer pos = luaL_optinteger(L, 3, 1);
  const char *next;
  int ev;
  luaL_argcheck(L, pos >= 1 && (lua_Unsigned)pos <= len + 1, 3,
                "position out of range");
  ev = wl_hp_run(P, buf + pos - 1, buf + len, &next);
  return push_event(L, P, ev, buf, len, next);
}

/* The head just parsed, as take_head returns it after "head", nextpos:
   command, target, version, requestline, headers (an http.headers object:
   name, value... in one table), keep_alive. Method names and the common
   versions are interned strings from upvalue 1: no hashing per request. */
static void push_request(lua_State *L, parser_t *P) {
  llhttp_t *hp = &P->h;
  size_t i;
  lua_rawgeti(L, lua_upvalueindex(1), hp->method + 1);
  lua_pushlstring(L, P->arena ? P->arena + P->url : "", P->url_len);
  if (P->later_minor)          /* as sent (served as 1.1) */
    lua_pushfstring(L, "HTTP/1.%d", P->later_minor);
  else if (hp->http_major == 1 && hp->http_minor <= 1)
    lua_rawgeti(L, lua_upvalueindex(1), UV_HTTP10 + hp->http_minor);
  else
    lua_pushfstring(L, "HTTP/%d.%d", hp->http_major, hp->http_minor);
  lua_pushlstring(L, P->line ? P->line : "", P->llen);
  lua_createtable(L, (int)(2 * P->ntrail), 0);
  for (i = 0; i < P->ntrail; i++) {
    const field_t *f = &P->fields[i];
    lua_pushlstring(L, P->arena + f->name, f->nlen);
    lua_rawseti(L, -2, (lua_Integer)(2 * i + 1));
    lua_pushlstring(L, P->arena + f->value, f->vlen);
    lua_rawseti(L, -2, (lua_Integer)(2 * i + 2));
  }
  lua_rawgeti(L, lua_upvalueindex(1), UV_HEADERS_MT);
  lua_setmetatable(L, -2);
  lua_pushboolean(L, P->keep_alive);
}

/* p:take_head(buf, pos)
     -> "head", nextpos, command, target, version, requestline, headers,
        keep_alive, has_body, expect_continue, content_length (or nil)
      | "more", nextpos | "error", status, reason
   The request side of http.server in one call: skips the end of the
   bodiless message before, and returns the next head, which the caller
   (BaseHTTPRequestHandler, in Lua) makes its fields. */
static int parser_take_head(lua_State *L) {
  parser_t *P = check_parser(L);
  size_t len;
  const char *buf, *next;
  lua_Integer pos;
  int ev;
  buf = luaL_checklstring(L, 2, &len);
  pos = luaL_checkinteger(L, 3);
  luaL_argcheck(L, pos >= 1 && (lua_Unsigned)pos <= len + 1, 3,
                "position out of range");
  luaL_argcheck(L, P->h.type == HTTP_REQUEST, 1, "not a request parser");
  do {                         /* past an end, or a body nobody read */
    ev = wl_hp_run(P, buf + pos - 1, buf + len, &next);
    pos = (lua_Integer)(next - buf) + 1;
    if (ev == EV_END)
      wl_hp_free(P);
  } while (ev == EV_END || ev == EV_BODY);
  if (ev == EV_HEAD) {
    int body = (P->h.flags & (F_CHUNKED | F_CONTENT_LENGTH)) != 0;
    push_ev(L, EV_HEAD);
    lua_pushinteger(L, pos);
    push_request(L, P);
    lua_pushboolean(L, body);
    lua_pushboolean(L, P->expect);
    if (P->h.flags & F_CONTENT_LENGTH)
      lua_pushinteger(L, (lua_Integer)P->clen);
    else
      lua_pushnil(L);
    if (!body) {
      /* end the bodiless message now, so that between requests the
         parser waits at a message start and the caller may read first;
         an error here stays in the parser (S_DEAD) for the next call */
      const char *at = next;
      wl_hp_run(P, at, at, &next);
      wl_hp_free(P);           /* the head is out: idle without its buffers */
    }
    return 11;
  }
  if (ev == EV_MORE) {
    push_ev(L, EV_MORE);
    lua_pushinteger(L, pos);
    return 2;
  }
  return push_event(L, P, ev, buf, len, next);
}

/* core.set_headers_class(mt): the metatable take_head gives headers */
static int http_set_headers_class(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_rawseti(L, lua_upvalueindex(1), UV_HEADERS_MT);
  return 0;
}

/* At EOF: ends a close-delimited body, refuses a message cut short. */
static int parser_finish(lua_State *L) {
  parser_t *P = check_parser(L);
  int ev = wl_hp_eof(P);
  if (ev == EV_MORE) {
    push_ev(L, EV_MORE);
    return 1;
  }
  return push_event(L, P, ev, NULL, 0, NULL);
}

static int parser_reset(lua_State *L) {
  parser_t *P = check_parser(L);
  wl_hp_free(P);
  wl_hp_reset(P);
  return 0;
}

static int parser_set_head_response(lua_State *L) {
  parser_t *P = check_parser(L);
  luaL_checkany(L, 2);
  P->head_response = lua_toboolean(L, 2);
  return 0;
}

/* p:request_line() -> the start line as far as it was scanned, and
** whether it ended (else the parser stopped inside it) */
static int parser_request_line(lua_State *L) {
  parser_t *P = check_parser(L);
  lua_pushlstring(L, P->line ? P->line : "", P->llen);
  lua_pushboolean(L, P->line_done);
  return 2;
}

static int parser_gc(lua_State *L) {
  wl_hp_free(check_parser(L));
  return 0;
}

static int parser_tostring(lua_State *L) {
  parser_t *P = check_parser(L);
  lua_pushfstring(L, "http.parser (%s): %p",
                  P->h.type == HTTP_REQUEST ? "request" : "response",
                  (void *)P);
  return 1;
}

/* The parser's limits and their defaults, written here only: http.server
   takes its defaults from core.default_limits (RELIABILITY.md items 6, 7). */
enum {
  LIM_LINE, LIM_HEADER_BYTES, LIM_HEADERS, LIM_BODY, LIM_CHUNK_EXT, LIM_N
};
static const struct { const char *name; uint64_t dflt, max; } limits[] = {
  [LIM_LINE] = {"max_line", 8192, 1u << 30},
  [LIM_HEADER_BYTES] = {"max_header_bytes", 65536, 1u << 30},
  [LIM_HEADERS] = {"max_headers", 100, 1u << 20},
  [LIM_BODY] = {"max_body", 100 * 1024 * 1024, INT64_MAX},
  [LIM_CHUNK_EXT] = {"max_chunk_ext", 16384, 1u << 30},
};

/* Limit i from the options table at index 2; nil gives its default. */
static uint64_t opt_limit(lua_State *L, int i) {
  const char *key = limits[i].name;
  lua_Integer v;
  int isnum;
  if (lua_getfield(L, 2, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return limits[i].dflt;
  }
  v = lua_tointegerx(L, -1, &isnum);
  if (!isnum || v < 0 || (uint64_t)v > limits[i].max)
    luaL_argerror(L, 2, lua_pushfstring(L, "%s must be an integer in "
                                        "0..%I", key,
                                        (lua_Integer)limits[i].max));
  lua_pop(L, 1);
  return (uint64_t)v;
}

static int http_parser(lua_State *L) {
  static const char *const kinds[] = {"request", "response", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lparser_t *lp;
  parser_t *P;
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);           /* all defaults */
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
  }
  lp = (lparser_t *)lua_newuserdatauv(L, sizeof *lp, 0);
  memset(lp, 0, sizeof *lp);   /* buffers NULL: __gc is safe at any point */
  lp->mark = PARSER_MARK;
  P = &lp->p;
  luaL_setmetatable(L, PARSER_MT);
  P->max_line = (size_t)opt_limit(L, LIM_LINE);
  P->max_header_bytes = (size_t)opt_limit(L, LIM_HEADER_BYTES);
  P->max_headers = (size_t)opt_limit(L, LIM_HEADERS);
  P->max_body = opt_limit(L, LIM_BODY);
  P->max_chunk_ext = (size_t)opt_limit(L, LIM_CHUNK_EXT);
  P->h.type = kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE;
  wl_hp_reset(P);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"parser", http_parser}, {"set_headers_class", http_set_headers_class},
  {NULL, NULL}
};
static const luaL_Reg methods[] = {
  {"feed", parser_feed}, {"finish", parser_finish}, {"reset", parser_reset},
  {"set_head_response", parser_set_head_response},
  {"request_line", parser_request_line}, {"take_head", parser_take_head},
  {NULL, NULL}
};
static const luaL_Reg metamethods[] = {
  {"__index", NULL},           /* placeholder, set to `methods` below */
  {"__gc", parser_gc}, {"__tostring", parser_tostring},
  {NULL, NULL}
};

int luaopen_http_core(lua_State *L) {
  int m;
  lua_createtable(L, UV_N, 0); /* the interned strings, see UV_HTTP10 */
  for (m = 0; m <= HTTP_FLUSH; m++) {
    lua_pushstring(L, llhttp_method_name((llhttp_method_t)m));
    lua_rawseti(L, -2, m + 1);
  }
  lua_pushliteral(L, "HTTP/1.0");
  lua_rawseti(L, -2, UV_HTTP10);
  lua_pushliteral(L, "HTTP/1.1");
  lua_rawseti(L, -2, UV_HTTP11);
  for (m = 0; m < (int)(sizeof ev_names / sizeof ev_names[0]); m++) {
    lua_pushstring(L, ev_names[m]);
    lua_rawseti(L, -2, UV_EVENTS + m);
  }
  luaL_newmetatable(L, PARSER_MT);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, metamethods, 1);
  luaL_newlibtable(L, methods);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlibtable(L, funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, funcs, 1);
  luaL_setfuncs(L, wl_http_helpers, 0);
  wl_http_date_open(L);
  lua_remove(L, -2);           /* the string cache, now in upvalues */
  lua_createtable(L, 0, LIM_N);
  for (m = 0; m < LIM_N; m++) {
    lua_pushinteger(L, (lua_Integer)limits[m].dflt);
    lua_setfield(L, -2, limits[m].name);
  }
  lua_setfield(L, -2, "default_limits");
  luaL_getmetatable(L, PARSER_MT);     /* the methods, for callers that */
  lua_getfield(L, -1, "__index");      /* keep them in locals */
  lua_setfield(L, -3, "parser_methods");
  lua_pop(L, 1);
  wl_http_blocks_open(L);      /* before any parser or writer is made */
  wl_http_writer_open(L);
  return 1;
}
