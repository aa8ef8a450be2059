/*
** http_check.c: the string helpers of module "http.core" that the Lua
** server and client need on every request: RFC 9110 syntax checks that
** refuse header injection, log escaping, reason phrases and HTTP dates.
** Dates are converted by hand, not with timegm/strftime, so neither the
** time zone nor the locale of the host can change them.
*/
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"

/* RFC 9110 tchar: the bytes of a token (method, header name). */
const unsigned char wl_http_tchar[256] = {
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,1,0,1,1,1,1,1,0,0,1,1,0,1,1,0,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,
  0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,1,0,1,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
};

int wl_http_token(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!wl_http_tchar[(unsigned char)s[i]])
      return 0;
  return n > 0;
}

static int http_valid_header_name(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, wl_http_token(s, n));
  return 1;
}

static int http_valid_method(lua_State *L) {
  return http_valid_header_name(L);
}

/* field-value: VCHAR, obs-text, SP, HTAB. Refusing every other control
   byte (CR, LF and NUL above all) is what stops header injection; our own
   parser refuses the same bytes, so nothing we send is refused by us. */
int wl_http_field_value(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  size_t i = 0;
  /* eight bytes at a time while none is below 0x20 or 0x7f (a word with
     such a byte, HTAB perhaps, is judged byte by byte): every response
     header passes here */
  for (; i + 8 <= n; i += 8) {
    uint64_t x, del;
    memcpy(&x, s + i, 8);
    del = x ^ (0x7f * ones);
    if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs)
      break;
  }
  for (; i < n; i++)
    if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
      return 0;
  return 1;
}

static int http_valid_header_value(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, wl_http_field_value(s, n));
  return 1;
}

/* A request target for http.client: no control bytes and no spaces, as
   CPython's _contains_disallowed_url_pchar_re. */
static int http_valid_target(lua_State *L) {
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  for (i = 0; i < n; i++)
    if (s[i] <= 0x20 || s[i] == 0x7f)
      break;
  lua_pushboolean(L, n > 0 && i == n);
  return 1;
}

/* Python's http.server log escaping (\xHH for controls, \\ for the
   backslash), extended to every byte >= 0x7f: Python prints 0xa0-0xff as
   Latin-1 characters, which would put invalid UTF-8 in our logs. */
static int http_escape_log(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  for (i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\')
      break;
  if (i == n) {                /* the usual case: nothing to escape */
    lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)s, i);
  for (; i < n; i++) {
    unsigned char c = s[i];
    if (c == '\\') {
      luaL_addlstring(&b, "\\\\", 2);
    } else if (c < 0x20 || c >= 0x7f) {
      char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
      luaL_addlstring(&b, e, 4);
    } else {
      luaL_addchar(&b, (char)c);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* Python 3.11's http.HTTPStatus phrases. */
static const struct { int code; const char *phrase; } reasons[] = {
  {100, "Continue"}, {101, "Switching Protocols"}, {102, "Processing"},
  {103, "Early Hints"}, {200, "OK"}, {201, "Created"}, {202, "Accepted"},
  {203, "Non-Authoritative Information"}, {204, "No Content"},
  {205, "Reset Content"}, {206, "Partial Content"}, {207, "Multi-Status"},
  {208, "Already Reported"}, {226, "IM Used"}, {300, "Multiple Choices"},
  {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
  {304, "Not Modified"}, {305, "Use Proxy"}, {307, "Temporary Redirect"},
  {308, "Permanent Redirect"}, {400, "Bad Request"}, {401, "Unauthorized"},
  {402, "Payment Required"}, {403, "Forbidden"}, {404, "Not Found"},
  {405, "Method Not Allowed"}, {406, "Not Acceptable"},
  {407, "Proxy Authentication Required"}, {408, "Request Timeout"},
  {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
  {412, "Precondition Failed"}, {413, "Request Entity Too Large"},
  {414, "Request-URI Too Long"}, {415, "Unsupported Media Type"},
  {416, "Requested Range Not Satisfiable"}, {417, "Expectation Failed"},
  {418, "I'm a Teapot"}, {421, "Misdirected Request"},
  {422, "Unprocessable Entity"}, {423, "Locked"}, {424, "Failed Dependency"},
  {425, "Too Early"}, {426, "Upgrade Required"},
  {428, "Precondition Required"}, {429, "Too Many Requests"},
  {431, "Request Header Fields Too Large"},
  {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"},
  {501, "Not Implemented"}, {502, "Bad Gateway"},
  {503, "Service Unavailable"}, {504, "Gateway Timeout"},
  {505, "HTTP Version Not Supported"}, {506, "Variant Also Negotiates"},
  {507, "Insufficient Storage"}, {508, "Loop Detected"},
  {510, "Not Extended"}, {511, "Network Authentication Required"},
};

const char *wl_http_reason(lua_Integer code) {
  size_t lo = 0, hi = sizeof reasons / sizeof reasons[0];
  while (lo < hi) {            /* the table is sorted by code */
    size_t mid = (lo + hi) / 2;
    if (reasons[mid].code == code)
      return reasons[mid].phrase;
    if (reasons[mid].code < code)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static int http_status_reason(lua_State *L) {
  const char *r = wl_http_reason(luaL_checkinteger(L, 1));
  if (r == NULL)
    lua_pushnil(L);
  else
    lua_pushstring(L, r);
  return 1;
}

static const char *const wdays[] = {
  "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const months[] = {
  "Jan", "Feb", "Mar", "Apr", "May", "Jun",
  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", of a
   time in years 1..9999; out holds WL_HTTP_DATE_LEN + 1 bytes. */
void wl_http_date(char *out, int64_t secs) {
  int64_t days, z, era, doe, yoe, y, doy, mp, d, m;
  days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  secs -= days * 86400;
  z = days + 719468;           /* civil_from_days, H. Hinnant */
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  snprintf(out, WL_HTTP_DATE_LEN + 1, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           wdays[((days % 7) + 11) % 7], (int)d, months[m - 1], (int)y,
           (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

/* httpdate([t]): t defaults to now, whose text changes once a second:
   a server asks for it on every response, so it is formatted only then,
   and kept as a Lua string in upvalue 1 ([1] the text, [2] its second),
   so that a response pays no string hashing for it either */
static int http_httpdate(lua_State *L) {
  lua_Number t;
  int64_t secs;
  char out[WL_HTTP_DATE_LEN + 1];
  if (lua_isnoneornil(L, 1)) {
    secs = (int64_t)time(NULL);
    lua_rawgeti(L, lua_upvalueindex(1), 2);
    if (lua_tointeger(L, -1) != secs || lua_isnil(L, -1)) {
      wl_http_date(out, secs);
      lua_pushlstring(L, out, WL_HTTP_DATE_LEN);
      lua_rawseti(L, lua_upvalueindex(1), 1);
      lua_pushinteger(L, (lua_Integer)secs);
      lua_rawseti(L, lua_upvalueindex(1), 2);
    }
    lua_rawgeti(L, lua_upvalueindex(1), 1);
    return 1;
  }
  t = luaL_checknumber(L, 1);
  luaL_argcheck(L, t >= -62135596800.0 && t < 253402300800.0, 1,
                "time out of range");
  secs = (int64_t)t;
  if ((lua_Number)secs > t)
    secs--;                    /* floor, for negative fractions */
  wl_http_date(out, secs);
  lua_pushstring(L, out);
  return 1;
}

/* Adds httpdate, with its cache, to the module table at the top. */
void wl_http_date_open(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_pushcclosure(L, http_httpdate, 1);
  lua_setfield(L, -2, "httpdate");
}

typedef struct { const char *s, *e; } cursor;

static int take_int(cursor *c, int min_digits, int max_digits, int *out) {
  int n = 0, v = 0;
  while (c->s < c->e && *c->s >= '0' && *c->s <= '9' && n < max_digits) {
    v = v * 10 + (*c->s++ - '0');
    n++;
  }
  *out = v;
  return n >= min_digits;
}

static int take_lit(cursor *c, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(c->e - c->s) < n || memcmp(c->s, lit, n) != 0)
    return 0;
  c->s += n;
  return 1;
}

static int take_month(cursor *c, int *m) {
  int i;
  for (i = 0; i < 12; i++)
    if (take_lit(c, months[i])) {
      *m = i + 1;
      return 1;
    }
  return 0;
}

static int take_time(cursor *c, int *hh, int *mm, int *ss) {
  return take_int(c, 2, 2, hh) && take_lit(c, ":") &&
         take_int(c, 2, 2, mm) && take_lit(c, ":") &&
         take_int(c, 2, 2, ss) && *hh < 24 && *mm < 60 && *ss <= 60;
}

/* The three formats RFC 9110 5.6.7 makes recipients accept; the weekday
   is skipped, not checked against the date. */
static int parse_date(const char *s, size_t n, int64_t *t) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  cursor c = {s, s + n};
  int y = 0, m = 0, d = 0, hh = 0, mm = 0, ss = 0, ok;
  while (c.s < c.e && (*c.s == ' ' || *c.s == '\t')) c.s++;
  while (c.e > c.s && (c.e[-1] == ' ' || c.e[-1] == '\t')) c.e--;
  while (c.s < c.e && ((*c.s | 0x20) >= 'a' && (*c.s | 0x20) <= 'z')) c.s++;
  if (take_lit(&c, ", ")) {
    if (!take_int(&c, 1, 2, &d))
      return 0;
    if (take_lit(&c, " "))     /* IMF-fixdate */
      ok = take_month(&c, &m) && take_lit(&c, " ") &&
           take_int(&c, 4, 4, &y) && take_lit(&c, " ");
    else {                     /* RFC 850: two-digit year, as Python */
      ok = take_lit(&c, "-") && take_month(&c, &m) && take_lit(&c, "-") &&
           take_int(&c, 2, 2, &y) && take_lit(&c, " ");
      y += y > 68 ? 1900 : 2000;
    }
    ok = ok && take_time(&c, &hh, &mm, &ss) &&
         (take_lit(&c, " GMT") || take_lit(&c, " UTC"));
  } else {                     /* asctime: "Sun Nov  6 08:49:37 1994" */
    ok = take_lit(&c, " ") && take_month(&c, &m) && take_lit(&c, " ");
    if (ok && c.s < c.e && *c.s == ' ')
      c.s++;
    ok = ok && take_int(&c, 1, 2, &d) && take_lit(&c, " ") &&
         take_time(&c, &hh, &mm, &ss) && take_lit(&c, " ") &&
         take_int(&c, 4, 4, &y);
  }
  if (!ok || c.s != c.e || d < 1 || d > mdays[m - 1] ||
      (m == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0))))
    return 0;
  *t = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
  return 1;
}

static int http_parse_httpdate(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int64_t t;
  if (parse_date(s, n, &t))
    lua_pushinteger(L, (lua_Integer)t);
  else
    lua_pushnil(L);
  return 1;
}

const luaL_Reg wl_http_helpers[] = {
  {"valid_header_name", http_valid_header_name},
  {"valid_header_value", http_valid_header_value},
  {"valid_method", http_valid_method},
  {"valid_target", http_valid_target},
  {"escape_log", http_escape_log},
  {"status_reason", http_status_reason},
  {"parse_httpdate", http_parse_httpdate},
  {NULL, NULL}
};
