/*
** http_out.c: the response half of http.server, for module "http.core".
** A writer (core.writer(sock)) holds the head being built and the body
** written so far; both leave in one sendmsg when the handler is done or
** the body passes 64 KiB. BaseHTTPRequestHandler's send_response_only,
** send_header and end_headers are the functions here (they take the
** handler and find its writer at self._w) and the writer is its wfile, so
** a response makes no Lua string per header line. Only when the socket
** cannot take the bytes now does the socket's own sendall get them: it
** waits, yielding the task, under the socket's timeout.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "http.h"
#include "socket.h"

#define WRITER_MT "wirelab.http_writer"
#define FLUSH_AT 65536         /* body bytes buffered before a send */
#define KEEP_CAP 16384         /* a bigger buffer is freed once empty: an
                                  idle keep-alive connection holds little */

typedef struct obuf_t { char *p; size_t len, cap; } obuf_t;

typedef struct writer_t {
  obuf_t head;       /* ended heads in [0, ready), then the head being built */
  size_t ready;
  obuf_t body;
  int building;      /* a head has begun that end_headers has not ended */
  int status;        /* of the last send_response_only; 0 before one */
  int has_length;    /* the handler sent Content-Length or Transfer-Encoding */
  int conn_header;   /* the head being built has a Connection field */
  int bodyless;      /* the status (or HEAD) allows no body */
  int no_body;       /* ... and its head has ended: writes are dropped */
  int chunked;       /* we frame the body in chunks */
  int headers_sent;  /* a final (>= 200) head has ended */
  int http09;        /* request_version was HTTP/0.9: no head at all */
} writer_t;

/* Upvalue 1 of every function here: the writer metatable and the field
   names they use, so no call hashes a C string (lua_getfield does). */
enum {
  C_WRITER_MT = 1, C_W, C_REQUEST_VERSION, C_PROTOCOL_VERSION, C_COMMAND,
  C_CLOSE_CONNECTION, C_SERVER_VERSION, C_SYS_VERSION, C_SENDALL,
  C_LOG_REQUEST, C_SEND_RESPONSE_ONLY, C_VERSION_STRING, C_SEND_HEADER,
  C_PY_SEND_RESPONSE,          /* set by set_send_response_fallback */
  C_N
};
static const char *const ctx_names[C_N] = {
  NULL, NULL, "_w", "request_version", "protocol_version", "command",
  "close_connection", "server_version", "sys_version", "sendall",
  "log_request", "send_response_only", "version_string", "send_header",
  NULL
};

/* Pushes obj[name], obj at an absolute index, metamethods honoured. */
static int get_field(lua_State *L, int obj, int name) {
  lua_rawgeti(L, lua_upvalueindex(1), name);
  return lua_gettable(L, obj);
}

/* obj[name] = the value at the top, popped. */
static void set_field(lua_State *L, int obj, int name) {
  lua_rawgeti(L, lua_upvalueindex(1), name);
  lua_insert(L, -2);
  lua_settable(L, obj);
}

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

static void add(lua_State *L, obuf_t *b, const char *s, size_t n) {
  if (n == 0)
    return;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 128;   /* most heads fit 256 bytes */
    char *p;
    while (cap - b->len < n) {
      if (cap > ((size_t)-1) / 4)
        luaL_error(L, "http response too large");
      cap *= 2;
    }
    if ((p = realloc(b->p, cap)) == NULL)
      wl_raise(L, "write", UV_ENOMEM, NULL);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

#define ADDLIT(L, b, s) add(L, b, "" s, sizeof(s) - 1)

static void add_chunk_size(lua_State *L, writer_t *w, size_t n) {
  char hx[24];
  int k = snprintf(hx, sizeof hx, "%zx\r\n", n);
  add(L, &w->body, hx, (size_t)k);
}

static void trim(obuf_t *b) {
  if (b->len == 0 && b->cap > KEEP_CAP) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

/* ---- sending ---- */

static writer_t *to_writer(lua_State *L, int i) {
  writer_t *w = (writer_t *)lua_touserdata(L, i);
  int ok;
  if (w == NULL || !lua_getmetatable(L, i))
    return NULL;
  lua_rawgeti(L, lua_upvalueindex(1), C_WRITER_MT);
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok ? w : NULL;
}

static writer_t *check_writer(lua_State *L, int i) {
  writer_t *w = to_writer(L, i);
  if (w == NULL)
    luaL_typeerror(L, i, "http.writer");
  return w;
}

/* The socket's fd, or -1 once it is closed. writer() made sure the user
   value is a socket. */
static int writer_fd(lua_State *L, int wi) {
  wl_sock_t **box;
  int fd = -1;
  lua_getiuservalue(L, wi, 1);
  box = (wl_sock_t **)lua_touserdata(L, -1);
  if (box != NULL && *box != NULL)
    fd = (*box)->fd;
  lua_pop(L, 1);
  return fd;
}

/* Set under `wirelab --trace`: every byte leaves through the socket's
   sendall, the Lua method the trace wraps, instead of sendmsg here. */
static int via_sendall;

/* Sends the ended heads, the body, then x[0, xn): as much as the socket
   takes now. Returns 1 when all of it went; otherwise pushes what is left
   as one string. Either way the buffers are empty afterwards, but for a
   head still being built. */
static int send_now(lua_State *L, writer_t *w, int wi, const char *x,
                    size_t xn) {
  const char *base[3];
  size_t len[3], off[3] = {0, 0, 0};
  int fd = writer_fd(L, wi), i, all = 1;
  base[0] = w->head.p, len[0] = w->ready;
  base[1] = w->body.p, len[1] = w->body.len;
  base[2] = x, len[2] = xn;
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
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
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
    memmove(w->head.p, w->head.p + w->ready, w->head.len - w->ready);
    w->head.len -= w->ready;
    w->ready = 0;
  }
  w->body.len = 0;
  trim(&w->head);
  trim(&w->body);
  return all;
}

/* What a function returns once its bytes are out, after a wait too: file
   methods return the writer (at index 1), handler methods nothing. */
enum { RET_WRITER, RET_NONE };

static int sent_k(lua_State *L, int status, lua_KContext ret) {
  (void)status;
  if (ret == RET_NONE)
    return 0;
  lua_pushvalue(L, 1);
  return 1;
}

static int sent_k_none(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* The rest (at the top) goes through the socket's sendall, which waits
   with the socket's timeout or raises the error a user expects. */
static int send_rest(lua_State *L, int wi, lua_KContext ret) {
  lua_getiuservalue(L, wi, 1);           /* rest sock */
  get_field(L, lua_gettop(L), C_SENDALL); /* rest sock sendall */
  lua_rotate(L, -3, 1);                  /* sendall rest sock */
  lua_insert(L, -2);                     /* sendall sock rest */
  lua_callk(L, 2, 0, ret, sent_k);
  return sent_k(L, LUA_OK, ret);
}

static int flush_out(lua_State *L, writer_t *w, int wi, lua_KContext ret) {
  if (send_now(L, w, wi, NULL, 0))
    return sent_k(L, LUA_OK, ret);
  return send_rest(L, wi, ret);
}

/* ---- the writer: the handler's wfile ---- */

static int writer_new(lua_State *L) {
  writer_t *w;
  luaL_checkudata(L, 1, SOCK_MT);
  w = (writer_t *)lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, WRITER_MT);
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
      int all = send_now(L, w, 1, s, len);
      if (w->chunked)
        ADDLIT(L, &w->body, "\r\n");
      if (all)
        return sent_k(L, LUA_OK, RET_WRITER);
      return send_rest(L, 1, RET_WRITER);
    }
    add(L, &w->body, s, len);
    if (w->chunked)
      ADDLIT(L, &w->body, "\r\n");
  }
  if (w->body.len >= FLUSH_AT)
    return flush_out(L, w, 1, RET_WRITER);
  lua_settop(L, 1);
  return 1;
}

static int writer_flush(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  lua_settop(L, 1);
  return flush_out(L, w, 1, RET_WRITER);
}

/* close(): the connection outlives the handler's wfile, as in Python */
static int writer_close(lua_State *L) {
  check_writer(L, 1);
  return 0;
}

/* begin(): a new request; a head left half-built is dropped */
static int writer_begin(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  w->head.len = w->ready;
  w->building = w->status = w->has_length = w->conn_header = 0;
  w->bodyless = w->no_body = w->chunked = w->headers_sent = w->http09 = 0;
  return 0;
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

/* end_response() -> whether a head is still being built: ends a chunked
   body first */
static int writer_end_response(lua_State *L) {
  writer_t *w = check_writer(L, 1);
  if (w->chunked) {
    ADDLIT(L, &w->body, "0\r\n\r\n");
    w->chunked = 0;
  }
  lua_pushboolean(L, w->building);
  return 1;
}

static int writer_gc(lua_State *L) {
  writer_t *w = (writer_t *)lua_touserdata(L, 1);
  free(w->head.p);
  free(w->body.p);
  memset(w, 0, sizeof *w);
  return 0;
}

static int writer_tostring(lua_State *L) {
  lua_pushfstring(L, "http.writer: %p", lua_touserdata(L, 1));
  return 1;
}

/* ---- handler methods: self at 1, its writer at self._w ---- */

static writer_t *handler_writer(lua_State *L, const char *op, int *wi) {
  writer_t *w;
  luaL_checktype(L, 1, LUA_TTABLE);
  get_field(L, 1, C_W);
  w = to_writer(L, -1);
  if (w == NULL)
    luaL_error(L, "%s: the handler has no response writer (did setup() run?)",
               op);
  *wi = lua_gettop(L);
  return w;
}

/* Whether self[field] is the string lit. */
static int field_is(lua_State *L, int field, const char *lit) {
  size_t n;
  const char *s = NULL;
  int eq;
  if (get_field(L, 1, field) == LUA_TSTRING)
    s = lua_tolstring(L, -1, &n);
  eq = s != NULL && n == strlen(lit) && memcmp(s, lit, n) == 0;
  lua_pop(L, 1);
  return eq;
}

/* The status line of send_response_only(code[, message]), args at 1..3. */
static void response_line(lua_State *L) {
  lua_Integer code = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
  const char *msg, *proto;
  size_t mlen, plen;
  char num[5];
  int wi;
  writer_t *w;
  if (code < 100 || code > 999)
    luaL_argerror(L, 2, "status code 100-999 expected");
  if (lua_isnil(L, 3)) {
    msg = wl_http_reason(code);
    if (msg == NULL)
      msg = "";
    mlen = strlen(msg);
  } else {
    msg = luaL_checklstring(L, 3, &mlen);
    if (!wl_http_field_value(msg, mlen))
      luaL_argerror(L, 3, "CR, LF or NUL in the reason phrase");
  }
  w = handler_writer(L, "send_response_only", &wi);
  w->status = (int)code;
  /* Python checks request_version on every field; a handler cannot turn
     a parsed request into HTTP/0.9, so once per response is the same */
  w->http09 = field_is(L, C_REQUEST_VERSION, "HTTP/0.9");
  if (!w->http09) {
    get_field(L, 1, C_PROTOCOL_VERSION);
    proto = to_string(L, -1, &plen);
    w->building = 1;
    add(L, &w->head, proto, plen);
    num[0] = num[4] = ' ';     /* code is 100..999 */
    num[1] = (char)('0' + code / 100);
    num[2] = (char)('0' + code / 10 % 10);
    num[3] = (char)('0' + code % 10);
    add(L, &w->head, num, 5);
    add(L, &w->head, msg, mlen);
    ADDLIT(L, &w->head, "\r\n");
  }
  w->bodyless = code < 200 || code == 204 || code == 304 ||
                field_is(L, C_COMMAND, "HEAD");
  w->no_body = 0;
  if (code >= 200)
    w->has_length = 0;
}

static int handler_send_response_only(lua_State *L) {
  lua_settop(L, 3);
  response_line(L);
  return 0;
}

/* send_header(keyword, value): raises, sending nothing, for a malformed
   name or a value with CR, LF or NUL (header injection, RELIABILITY.md
   item 11); tracks the fields that decide the framing */
static int handler_send_header(lua_State *L) {
  char digits[24];
  size_t klen, vlen;
  const char *k, *v;
  int wi;
  writer_t *w;
  lua_settop(L, 3);
  k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL;
  if (k == NULL || !wl_http_token(k, klen)) {
    lua_pushfstring(L, "invalid header name \"%s\"",
                    luaL_tolstring(L, 2, NULL));
    return luaL_argerror(L, 2, lua_tostring(L, -1));
  }
  if (lua_isinteger(L, 3)) {   /* Content-Length: digits, made here */
    lua_Integer i = lua_tointeger(L, 3);
    lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
    char *p = digits + sizeof digits;
    do
      *--p = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (i < 0)
      *--p = '-';
    v = p;
    vlen = (size_t)(digits + sizeof digits - p);
  } else if (lua_type(L, 3) == LUA_TNUMBER) {
    v = lua_tolstring(L, 3, &vlen);      /* a number has no CR or LF */
  } else {
    v = to_string(L, 3, &vlen);
    lua_replace(L, 3);
    if (!wl_http_field_value(v, vlen))
      return luaL_argerror(L, 3, "header value contains CR, LF or NUL");
  }
  w = handler_writer(L, "send_header", &wi);
  if (!w->http09) {
    w->building = 1;
    add(L, &w->head, k, klen);
    ADDLIT(L, &w->head, ": ");
    add(L, &w->head, v, vlen);
    ADDLIT(L, &w->head, "\r\n");
  }
  if (WL_HTTP_IEQ(k, klen, "connection")) {
    if (WL_HTTP_IEQ(v, vlen, "close")) {
      lua_pushboolean(L, 1);
      set_field(L, 1, C_CLOSE_CONNECTION);
    } else if (WL_HTTP_IEQ(v, vlen, "keep-alive")) {
      lua_pushboolean(L, 0);
      set_field(L, 1, C_CLOSE_CONNECTION);
    }
    w->conn_header = 1;
  } else if (WL_HTTP_IEQ(k, klen, "content-length") ||
             WL_HTTP_IEQ(k, klen, "transfer-encoding")) {
    w->has_length = 1;         /* with TE, the handler frames the body */
  }
  return 0;
}

/* end_headers(): a body without Content-Length goes chunked to an
   HTTP/1.1 client, or ends with the connection */
static int handler_end_headers(lua_State *L) {
  int wi, status;
  writer_t *w;
  lua_settop(L, 1);
  w = handler_writer(L, "end_headers", &wi);
  if (!w->building)
    return 0;
  status = w->status ? w->status : 200;
  if (status >= 200) {
    if (!w->has_length && !w->bodyless) {
      if (field_is(L, C_REQUEST_VERSION, "HTTP/1.1") &&
          field_is(L, C_PROTOCOL_VERSION, "HTTP/1.1")) {
        ADDLIT(L, &w->head, "Transfer-Encoding: chunked\r\n");
        w->chunked = 1;
      } else {
        lua_pushboolean(L, 1);
        set_field(L, 1, C_CLOSE_CONNECTION);
      }
    }
    get_field(L, 1, C_CLOSE_CONNECTION);
    if (lua_toboolean(L, -1) && !w->conn_header)
      ADDLIT(L, &w->head, "Connection: close\r\n");
    lua_pop(L, 1);
    w->no_body = w->bodyless;
    w->headers_sent = 1;
  }
  ADDLIT(L, &w->head, "\r\n");
  w->ready = w->head.len;
  w->building = w->conn_header = 0;
  if (status < 200)            /* an interim response goes out at once */
    return flush_out(L, w, wi, RET_NONE);
  return 0;
}

/* version_string(): server_version .. " " .. sys_version */
static int handler_version_string(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  get_field(L, 1, C_SERVER_VERSION);
  to_string(L, 2, NULL);       /* self server_version string */
  lua_pushliteral(L, " ");
  get_field(L, 1, C_SYS_VERSION);
  to_string(L, 5, NULL);       /* ... " " sys_version string */
  lua_remove(L, 5);
  lua_concat(L, 3);
  return 1;
}

/* The Server and Date fields of send_response: version is the string at
   vi, or nil for the default version_string, read here without making a
   string. The date is formatted once a second. */
static void server_fields(lua_State *L, int vi) {
  static int64_t date_at = -1;
  static char date[WL_HTTP_DATE_LEN + 1];
  int64_t now = (int64_t)time(NULL);
  size_t n;
  const char *s;
  int wi;
  writer_t *w = handler_writer(L, "send_response", &wi);
  if (w->http09)
    return;
  w->building = 1;
  ADDLIT(L, &w->head, "Server: ");
  if (lua_isnil(L, vi)) {
    get_field(L, 1, C_SERVER_VERSION);
    s = to_string(L, -1, &n);
    add(L, &w->head, s, n);
    ADDLIT(L, &w->head, " ");
    get_field(L, 1, C_SYS_VERSION);
    s = to_string(L, -1, &n);
    add(L, &w->head, s, n);
  } else {
    s = to_string(L, vi, &n);
    if (!wl_http_field_value(s, n))
      luaL_error(L, "version_string() contains CR, LF or NUL");
    add(L, &w->head, s, n);
  }
  if (now != date_at) {
    wl_http_date(date, now);
    date_at = now;
  }
  ADDLIT(L, &w->head, "\r\nDate: ");
  add(L, &w->head, date, WL_HTTP_DATE_LEN);
  ADDLIT(L, &w->head, "\r\n");
}

/* send_response(code[, message]), as Python's: log_request(code),
   send_response_only, then Server (version_string()) and Date. Overridden
   methods are called, the C ones run in place. Stages of send_response_k:
   1 after log_request, 2 after send_response_only, 3 with the version
   string (or nil) at 4. */
static int send_response_k(lua_State *L, int status, lua_KContext stage) {
  (void)status;
  if (stage == 1) {
    lua_settop(L, 3);
    get_field(L, 1, C_SEND_RESPONSE_ONLY);
    if (lua_tocfunction(L, -1) == handler_send_response_only) {
      lua_pop(L, 1);
      response_line(L);
    } else {
      lua_pushvalue(L, 1);
      lua_pushvalue(L, 2);
      lua_pushvalue(L, 3);
      lua_callk(L, 3, 0, 2, send_response_k);
    }
    stage = 2;
  }
  if (stage == 2) {
    lua_settop(L, 3);
    get_field(L, 1, C_VERSION_STRING);
    if (lua_tocfunction(L, -1) == handler_version_string) {
      lua_pop(L, 1);
      lua_pushnil(L);
    } else {
      lua_pushvalue(L, 1);
      lua_callk(L, 1, 1, 3, send_response_k);
    }
  }
  server_fields(L, 4);
  return 0;
}

static int handler_send_response(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  get_field(L, 1, C_SEND_HEADER);
  if (lua_tocfunction(L, -1) != handler_send_header) {
    /* an overridden send_header must see Server and Date, as in Python:
       the Lua version of send_response calls everything by name */
    lua_pop(L, 1);
    lua_rawgeti(L, lua_upvalueindex(1), C_PY_SEND_RESPONSE);
    lua_insert(L, 1);
    lua_callk(L, 3, 0, 0, sent_k_none);
    return 0;
  }
  lua_pop(L, 1);
  get_field(L, 1, C_LOG_REQUEST);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_callk(L, 2, 0, 1, send_response_k);
  return send_response_k(L, LUA_OK, 1);
}

/* set_send_response_fallback(fn): the send_response that calls each step
   by name, for handlers that override send_header */
static int http_set_send_response_fallback(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawseti(L, lua_upvalueindex(1), C_PY_SEND_RESPONSE);
  return 0;
}

/* _send_by_sendall(flag): for the trace (socket.trace) */
static int http_send_by_sendall(lua_State *L) {
  via_sendall = lua_toboolean(L, 1);
  return 0;
}

static const luaL_Reg writer_methods[] = {
  {"write", writer_write}, {"flush", writer_flush}, {"close", writer_close},
  {"begin", writer_begin}, {"discard", writer_discard},
  {"headers_sent", writer_headers_sent},
  {"end_response", writer_end_response},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"writer", writer_new},
  {"send_response_only", handler_send_response_only},
  {"send_header", handler_send_header},
  {"end_headers", handler_end_headers},
  {"send_response", handler_send_response},
  {"set_send_response_fallback", http_set_send_response_fallback},
  {"version_string", handler_version_string},
  {"_send_by_sendall", http_send_by_sendall},
  {NULL, NULL}
};

void wl_http_writer_open(lua_State *L) {
  int i;
  lua_createtable(L, C_N, 0);  /* the context, see C_WRITER_MT */
  luaL_newmetatable(L, WRITER_MT);
  lua_rawseti(L, -2, C_WRITER_MT);
  for (i = C_W; i < C_N; i++) {
    if (ctx_names[i] == NULL)
      continue;
    lua_pushstring(L, ctx_names[i]);
    lua_rawseti(L, -2, i);
  }
  lua_rawgeti(L, -1, C_WRITER_MT);
  luaL_newlibtable(L, writer_methods);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, writer_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, writer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, writer_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);               /* module ctx */
  luaL_setfuncs(L, funcs, 1);
}
