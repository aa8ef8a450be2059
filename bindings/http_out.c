/*
** http_out.c: the response writer of module "http.core", a protocol object
** with plain methods. core.writer(sock) holds the head being built and the
** body written so far; both leave in one sendmsg when the response is
** finished or the body passes 64 KiB. http.server's BaseHTTPRequestHandler
** (Lua) owns every decision a handler may override -- the status line, the
** headers, when the head ends -- and hands the writer plain values
** (w:status, w:header, w:end_headers); the writer refuses what would inject
** a header, frames the body (Content-Length, chunked, or to the close) and
** sends. It reaches the socket's fd through the stream endpoint of wl.h.
** Only when the socket cannot take the bytes now does the socket's own
** sendall get them: it waits, yielding the task, under the socket's
** timeout.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http.h"
#include "wl.h"

#define WRITER_MT "wirelab.http_writer"
#define FLUSH_AT 65536         /* body bytes buffered before a send */
#define COALESCE_AT 4096       /* a body up to this is copied behind the
                                  head, for a one-buffer send */
#define KEEP_CAP 16384         /* a bigger buffer is freed once empty */

typedef struct obuf_t { char *p; size_t len, cap; } obuf_t;

/* The first field of every writer: with the block's size, how a method
   knows its self is a writer without fetching and comparing the
   metatable (a userdata's block is written by C code only, and no other
   is this size with this mark). */
#define WRITER_MARK 0x68747470777269ULL    /* "httpwri" */

typedef struct writer_t {
  uint64_t mark;     /* WRITER_MARK */
  obuf_t head;       /* ended heads in [0, ready), then the head being built */
  size_t ready;
  obuf_t body;
  wl_endpoint_t ep;  /* the socket, kept alive as the user value */
  int building;      /* a head has begun that end_headers has not ended */
  int status;        /* of the last status(); 0 before one */
  int has_length;    /* the head has Content-Length or Transfer-Encoding */
  int conn_header;   /* the head being built has a Connection field */
  int bodyless;      /* the status (or HEAD) allows no body */
  int no_body;       /* ... and its head has ended: writes are dropped */
  int chunked;       /* we frame the body in chunks */
  int headers_sent;  /* a final (>= 200) head has ended */
} writer_t;

/* The upvalues of the writer's functions: 1, a table with the name of the
   socket method the bytes a slow client cannot take yet go through (an
   interned string, not hashed per call); 2, the writer metatable. */
enum { C_SENDALL = 1, C_N };

/* tostring(v) at the top, and its bytes: a string as it is, without
   luaL_tolstring's search for a __tostring. */
static const char *to_string(lua_State *L, int i, size_t *n) {
  if (lua_type(L, i) == LUA_TSTRING) {
    lua_pushvalue(L, i);
    return lua_tolstring(L, -1, n);
  }
  return luaL_tolstring(L, i, n);
}

/* ---- buffers ---- */

static void grow(lua_State *L, obuf_t *b, size_t n) {
  size_t cap = b->cap ? b->cap : WL_HTTP_BLOCK;  /* most heads fit */
  char *p;
  while (cap - b->len < n) {
    if (cap > ((size_t)-1) / 4)
      luaL_error(L, "http response too large");
    cap *= 2;
  }
  p = b->cap == 0 && cap == WL_HTTP_BLOCK ? wl_http_block()
                                          : realloc(b->p, cap);
  if (p == NULL)
    wl_raise(L, "write", UV_ENOMEM, NULL);
  b->p = p;
  b->cap = cap;
}

static inline void add(lua_State *L, obuf_t *b, const char *s, size_t n) {
  if (n > b->cap - b->len)
    grow(L, b, n);
  if (n > 0)
    memcpy(b->p + b->len, s, n);
  b->len += n;
}

#define ADDLIT(L, b, s) add(L, b, "" s, sizeof(s) - 1)

/* a head's line, "a mid c\r\n" (a status line, a field), room made once:
   the hot path of every response, one check and three copies */
static inline void add_line(lua_State *L, obuf_t *b, const char *a, size_t an,
                            const char *mid, size_t midn,
                            const char *c, size_t cn) {
  char *p;
  if (an + midn + cn + 2 > b->cap - b->len)
    grow(L, b, an + midn + cn + 2);
  p = b->p + b->len;
  memcpy(p, a, an);
  p += an;
  memcpy(p, mid, midn);
  p += midn;
  memcpy(p, c, cn);
  p += cn;
  *p++ = '\r';
  *p++ = '\n';
  b->len = (size_t)(p - b->p);
}

static void add_chunk_size(lua_State *L, writer_t *w, size_t n) {
  char hx[24];
  int k = snprintf(hx, sizeof hx, "%zx\r\n", n);
  add(L, &w->body, hx, (size_t)k);
}

/* An emptied buffer of one block goes back (the next response takes one
   again, without malloc), and so an idle kept-alive connection holds
   none; a bigger one stays while under KEEP_CAP, as a connection that
   needed it will again. */
static void trim(obuf_t *b) {
  if (b->len == 0 && (b->cap == WL_HTTP_BLOCK || b->cap > KEEP_CAP)) {
    wl_http_unblock(b->p, b->cap);
    b->p = NULL;
    b->cap = 0;
  }
}

/* ---- sending ---- */

static writer_t *check_writer(lua_State *L, int i) {
  writer_t *w = (writer_t *)lua_touserdata(L, i);
  /* a light userdata has length 0 */
  if (w == NULL || lua_rawlen(L, i) != sizeof *w || w->mark != WRITER_MARK)
    luaL_typeerror(L, i, "http.writer");
  return w;
}

/* Set under `wirelab --trace`: every byte leaves through the socket's
   sendall, the Lua method the trace wraps, instead of sendmsg here. */
static int via_sendall;

/* Sends the ended heads, the body, then x[0, xn): as much as the socket
   takes now. Returns 1 when all of it went; otherwise pushes what is left
   as one string. Either way the buffers are empty afterwards, but for a
   head still being built. */
static int send_now(lua_State *L, writer_t *w, const char *x, size_t xn) {
  const char *base[3];
  size_t len[3], off[3] = {0, 0, 0};
  int fd = wl_endpoint_fd(&w->ep), i, all = 1;
  base[0] = w->head.p, len[0] = w->ready;
  base[1] = w->body.p, len[1] = w->body.len;
  base[2] = x, len[2] = xn;
  if (xn == 0 && len[1] > 0 && len[1] <= COALESCE_AT &&
      w->head.len == w->ready && w->ready > 0) {
    /* a small body joins the head: one buffer, a send() that imports
       no iovec (most responses) */
    add(L, &w->head, w->body.p, w->body.len);
    w->ready = w->head.len;
    w->body.len = 0;
    base[0] = w->head.p, len[0] = w->ready;
    len[1] = 0;
  }
  for (;;) {
    struct iovec iov[3];
    struct msghdr m;
    ssize_t r;
    int n = 0;
    for (i = 0; i < 3; i++)
      if (off[i] < len[i]) {
        iov[n].iov_base = (char *)base[i] + off[i];
        iov[n++].iov_len = len[i] - off[i];
      }
    if (n == 0)
      break;
    if (fd < 0 || via_sendall) {
      all = 0;
      break;
    }
    if (n == 1) {
      r = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      memset(&m, 0, sizeof m);
      m.msg_iov = iov;
      m.msg_iovlen = (size_t)n;
      r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {               /* full, reset...: sendall waits or says */
      all = 0;
      break;
    }
    for (i = 0; i < 3 && r > 0; i++) {
      size_t k = len[i] - off[i];
      if (k > (size_t)r)
        k = (size_t)r;
      off[i] += k;
      r -= (ssize_t)k;
    }
  }
  if (!all) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i < 3; i++)
      if (off[i] < len[i])
        luaL_addlstring(&b, base[i] + off[i], len[i] - off[i]);
    luaL_pushresult(&b);
  }
  if (w->ready > 0) {
    if (w->head.len > w->ready)
      memmove(w->head.p, w->head.p + w->ready, w->head.len - w->ready);
    w->head.len -= w->ready;
    w->ready = 0;
  }
  w->body.len = 0;
  trim(&w->head);
  trim(&w->body);
  return all;
}

/* What a method returns once its bytes are out, after a wait too (the
   continuation context): the writer (at index 1), nothing, true, false. */
enum { RET_WRITER, RET_NONE, RET_TRUE, RET_FALSE };

static int sent_k(lua_State *L, int status, lua_KContext ret) {
  (void)status;
  switch (ret) {
  case RET_WRITER: lua_pushvalue(L, 1); return 1;
  case RET_TRUE: lua_pushboolean(L, 1); return 1;
  case RET_FALSE: lua_pushboolean(L, 0); return 1;
  default: return 0;
  }
}

/* The rest (at the top) goes through the socket's sendall, which waits
   with the socket's timeout or raises the error a user expects: a plain
   method call on the socket, the writer's user value. */
static int send_rest(lua_State *L, lua_KContext ret) {
  lua_getiuservalue(L, 1, 1);            /* rest sock */
  lua_rawgeti(L, lua_upvalueindex(1), C_SENDALL);
  lua_gettable(L, -2);                   /* rest sock sendall */
  lua_rotate(L, -3, 1);                  /* sendall rest sock */
  lua_insert(L, -2);                     /* sendall sock rest */
  lua_callk(L, 2, 0, ret, sent_k);
  return sent_k(L, LUA_OK, ret);
}

static int flush_out(lua_State *L, writer_t *w, lua_KContext ret) {
  if (send_now(L, w, NULL, 0))
    return sent_k(L, LUA_OK, ret);
  return send_rest(L, ret);
}

/* ---- the writer: a handler's wfile ---- */

/* core.writer(sock): sock is a stream endpoint (wl.h), a socket */
static int writer_new(lua_State *L) {
  writer_t *w;
  wl_endpoint_t ep;
  if (!wl_endpoint(L, 1, &ep))
    return luaL_typeerror(L, 1, "socket");
  w = (writer_t *)lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  w->mark = WRITER_MARK;
  w->ep = ep;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* write(...): strings or numbers, as a file's write; returns the writer */
static int writer_write(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  int i, n = lua_gettop(L);
  for (i = 2; i <= n; i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    if (w->no_body || len == 0)
      continue;
    if (w->chunked)
      add_chunk_size(L, w, len);
    if (len >= FLUSH_AT && i == n) {
      /* a big last piece leaves from the Lua string itself, uncopied */
      int all = send_now(L, w, s, len);
      if (w->chunked)
        ADDLIT(L, &w->body, "\r\n");
      if (all)
        return sent_k(L, LUA_OK, RET_WRITER);
      return send_rest(L, RET_WRITER);
    }
    add(L, &w->body, s, len);
    if (w->chunked)
      ADDLIT(L, &w->body, "\r\n");
  }
  if (w->body.len >= FLUSH_AT)
    return flush_out(L, w, RET_WRITER);
  lua_settop(L, 1);
  return 1;
}

/* flush(): sends the ended heads and the body now; returns the writer */
static int writer_flush(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  lua_settop(L, 1);
  return flush_out(L, w, RET_WRITER);
}

/* close(): the connection outlives the handler's wfile, as in Python */
static int writer_close(lua_State *L) {
  check_writer(L, 1);
  return 0;
}

/* status(version, code[, message[, head_request]]): begins a head with
   "version code message"; message defaults to the code's reason phrase.
   head_request: the response to a HEAD, which has no body. */
static int writer_status(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  lua_Integer code = lua_isinteger(L, 3) ? lua_tointeger(L, 3) : 0;
  int head_request = lua_toboolean(L, 5);  /* before to_string pushes */
  const char *msg, *proto;
  size_t mlen, plen;
  if (code < 100 || code > 999)
    return luaL_argerror(L, 3, "status code 100-999 expected");
  if (lua_isnoneornil(L, 4)) {
    msg = wl_http_reason(code);
    if (msg == NULL)
      msg = "";
    mlen = strlen(msg);
  } else {
    msg = luaL_checklstring(L, 4, &mlen);
    if (!wl_http_field_value(msg, mlen))
      return luaL_argerror(L, 4, "CR, LF or NUL in the reason phrase");
  }
  proto = to_string(L, 2, &plen);
  if (!wl_http_field_value(proto, plen))
    return luaL_argerror(L, 2, "CR, LF or NUL in the version");
  w->status = (int)code;
  w->building = 1;
  {                            /* code is 100..999 */
    char mid[5] = {' ', (char)('0' + code / 100), (char)('0' + code / 10 % 10),
                   (char)('0' + code % 10), ' '};
    add_line(L, &w->head, proto, plen, mid, sizeof mid, msg, mlen);
  }
  w->bodyless = code < 200 || code == 204 || code == 304 || head_request;
  w->no_body = 0;
  if (code >= 200)
    w->has_length = 0;
  return 0;
}

/* header(name, value) -> true for "Connection: close", false for
   "Connection: keep-alive", else nothing. A name that is not a token or a
   value with CR, LF or NUL raises, adding nothing (header injection,
   RELIABILITY.md item 11). Notes the fields that decide the framing. */
static int writer_header(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  char digits[24];
  size_t klen, vlen;
  const char *k, *v;
  int vt = lua_type(L, 3);
  k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL;
  if (k == NULL || !wl_http_token(k, klen)) {
    lua_pushfstring(L, "invalid header name \"%s\"",
                    luaL_tolstring(L, 2, NULL));
    return luaL_argerror(L, 2, lua_tostring(L, -1));
  }
  if (vt == LUA_TSTRING) {     /* the usual case first: one API call */
    v = lua_tolstring(L, 3, &vlen);
    if (!wl_http_field_value(v, vlen))
      return luaL_argerror(L, 3, "header value contains CR, LF or NUL");
  } else if (vt == LUA_TNUMBER && lua_isinteger(L, 3)) {
    /* Content-Length: digits, made here */
    lua_Integer iv = lua_tointeger(L, 3);
    lua_Unsigned u = iv < 0 ? 0u - (lua_Unsigned)iv : (lua_Unsigned)iv;
    char *p = digits + sizeof digits;
    do
      *--p = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (iv < 0)
      *--p = '-';
    v = p;
    vlen = (size_t)(digits + sizeof digits - p);
  } else if (vt == LUA_TNUMBER) {
    v = lua_tolstring(L, 3, &vlen);      /* a number has no CR or LF */
  } else {
    luaL_checkany(L, 3);
    v = to_string(L, 3, &vlen);
    if (!wl_http_field_value(v, vlen))
      return luaL_argerror(L, 3, "header value contains CR, LF or NUL");
  }
  w->building = 1;
  add_line(L, &w->head, k, klen, ": ", 2, v, vlen);
  if (klen == 10 && WL_HTTP_IEQ(k, klen, "connection")) {
    w->conn_header = 1;
    if (WL_HTTP_IEQ(v, vlen, "close")) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (WL_HTTP_IEQ(v, vlen, "keep-alive")) {
      lua_pushboolean(L, 0);
      return 1;
    }
  } else if (WL_HTTP_IEQ(k, klen, "content-length") ||
             WL_HTTP_IEQ(k, klen, "transfer-encoding")) {
    w->has_length = 1;         /* with TE, the handler frames the body */
  }
  return 0;
}

/* end_headers(close, chunk_ok) -> close: ends the head. A body without
   Content-Length goes chunked when chunk_ok (HTTP/1.1 both ways), else it
   ends with the connection and close becomes true; a closing connection
   gets "Connection: close" unless the head has a Connection field. An
   interim (1xx) head goes out at once. */
static int writer_end_headers(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  int close = lua_toboolean(L, 2), status;
  status = w->status ? w->status : 200;
  if (status >= 200) {
    if (!w->has_length && !w->bodyless) {
      if (lua_toboolean(L, 3)) {
        ADDLIT(L, &w->head, "Transfer-Encoding: chunked\r\n");
        w->chunked = 1;
      } else {
        close = 1;
      }
    }
    if (close && !w->conn_header)
      ADDLIT(L, &w->head, "Connection: close\r\n");
    w->no_body = w->bodyless;
    w->headers_sent = 1;
  }
  ADDLIT(L, &w->head, "\r\n");
  w->ready = w->head.len;
  w->building = w->conn_header = 0;
  lua_settop(L, 1);
  if (status < 200)            /* an interim response goes out at once */
    return flush_out(L, w, close ? RET_TRUE : RET_FALSE);
  lua_pushboolean(L, close);
  return 1;
}

/* finish() -> whether a head is still being built (the handler never
   ended it: the caller ends it, then calls finish again). Otherwise ends
   a chunked body, sends all that is buffered and readies the writer for
   the next response; returns false. */
static int writer_finish(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  lua_settop(L, 1);
  if (w->building) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (w->chunked)
    ADDLIT(L, &w->body, "0\r\n\r\n");
  w->status = w->has_length = w->bodyless = w->no_body = w->chunked = 0;
  w->headers_sent = 0;
  return flush_out(L, w, RET_FALSE);
}

/* discard(): drops all that is unsent, before an error page replaces it */
static int writer_discard(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  w->head.len = w->ready = w->body.len = 0;
  w->building = w->conn_header = w->no_body = w->chunked = 0;
  return 0;
}

static int writer_headers_sent(lua_State *L) {
  lua_pushboolean(L, check_writer(L, 1)->headers_sent);
  return 1;
}

static int writer_gc(lua_State *L) {
  writer_t *w = (writer_t *)lua_touserdata(L, 1);
  wl_http_unblock(w->head.p, w->head.cap);
  wl_http_unblock(w->body.p, w->body.cap);
  memset(w, 0, sizeof *w);     /* no mark: a resurrected writer is none */
  return 0;
}

static int writer_tostring(lua_State *L) {
  lua_pushfstring(L, "http.writer: %p", lua_touserdata(L, 1));
  return 1;
}

/* _send_by_sendall(flag): for the trace (socket.trace) */
static int http_send_by_sendall(lua_State *L) {
  via_sendall = lua_toboolean(L, 1);
  return 0;
}

static const luaL_Reg writer_methods[] = {
  {"write", writer_write}, {"flush", writer_flush}, {"close", writer_close},
  {"status", writer_status}, {"header", writer_header},
  {"end_headers", writer_end_headers}, {"finish", writer_finish},
  {"discard", writer_discard}, {"headers_sent", writer_headers_sent},
  {NULL, NULL}
};

/* Adds writer() and writer_methods (the methods, for callers that keep
   them in locals) to the module table at the top of the stack. */
void wl_http_writer_open(lua_State *L) {
  lua_createtable(L, C_N, 0);  /* upvalue 1: see C_SENDALL */
  lua_pushliteral(L, "sendall");
  lua_rawseti(L, -2, C_SENDALL);
  luaL_newmetatable(L, WRITER_MT);         /* module ctx mt */
  luaL_newlibtable(L, writer_methods);     /* module ctx mt methods */
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, writer_methods, 2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, -4, "writer_methods");   /* module ctx mt */
  lua_pushcfunction(L, writer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, writer_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, writer_new, 2);
  lua_setfield(L, -4, "writer");
  lua_pop(L, 2);
  lua_pushcfunction(L, http_send_by_sendall);
  lua_setfield(L, -2, "_send_by_sendall");
}
