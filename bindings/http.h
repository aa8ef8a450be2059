/*
** http.h: what the files of module "http.core" share: the parser
** (http.c), the response writer (http_out.c), the string helpers
** (http_check.c) and the head buffers' blocks (http_buf.c).
*/
#ifndef WL_HTTP_H
#define WL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#define WL_HTTP_DATE_LEN 29    /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* An ASCII case-insensitive comparison of s[0..n) with a lowercase
   literal: WL_HTTP_IEQ(name, len, "host"). Inline: per header field. */
static inline int wl_http_ieq(const char *s, size_t n, const char *lit,
                              size_t litn) {
  size_t i;
  if (n != litn)
    return 0;
  for (i = 0; i < n; i++)
    if ((char)(s[i] | 0x20) != lit[i])
      return 0;
  return 1;
}
#define WL_HTTP_IEQ(s, n, lit) wl_http_ieq(s, n, "" lit, sizeof(lit) - 1)

/* http_check.c */
extern const unsigned char wl_http_tchar[256];
extern const luaL_Reg wl_http_helpers[];
int wl_http_token(const char *s, size_t n);
int wl_http_field_value(const char *s, size_t n);
const char *wl_http_reason(lua_Integer code);
void wl_http_date(char *out, int64_t secs);
void wl_http_date_open(lua_State *L);   /* adds httpdate() */

/* http_buf.c: a head buffer's first block, WL_HTTP_BLOCK bytes (NULL when
   out of memory), and a buffer given back (one of another size is freed) */
#define WL_HTTP_BLOCK 256
void *wl_http_block(void);
void wl_http_unblock(void *p, size_t size);
void wl_http_blocks_open(lua_State *L);  /* frees the kept ones at close */

/* http_out.c: adds writer() and writer_methods to the module table at
   the top of the stack */
void wl_http_writer_open(lua_State *L);

#endif
