/*
** http_buf.c: the 256-byte blocks every HTTP head buffer starts in (a
** parser's arena, field list and start line; a writer's head and body),
** kept for all connections at once. A connection gives its blocks back
** when a message is done, so that a kept-alive connection idles without
** them (10,000 idle ones held 1.5 KiB of buffers each, waiting for a
** next request), and the next request takes them again from here,
** without malloc. Under AddressSanitizer a kept block is poisoned: a
** use after it was given back is reported as a use after free would be.
*/
#include <stdlib.h>

#include "http.h"

#if defined(__SANITIZE_ADDRESS__)
#define WL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WL_ASAN 1
#endif
#endif
#ifdef WL_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define KEEP 64                /* enough for the requests of one poll */

static struct {
  void *b[KEEP];
  int n;
} pool;

void *wl_http_block(void) {
  void *p;
  if (pool.n == 0)
    return malloc(WL_HTTP_BLOCK);
  p = pool.b[--pool.n];
  ASAN_UNPOISON_MEMORY_REGION(p, WL_HTTP_BLOCK);
  return p;
}

void wl_http_unblock(void *p, size_t size) {
  if (p != NULL && size == WL_HTTP_BLOCK && pool.n < KEEP) {
    ASAN_POISON_MEMORY_REGION(p, WL_HTTP_BLOCK);
    pool.b[pool.n++] = p;
  } else {
    free(p);
  }
}

/* The Lua state closes: the kept blocks go (valgrind sees none left).
   Its parsers and writers were finalized before, as they were made
   after the anchor. */
static int blocks_gc(lua_State *L) {
  (void)L;
  while (pool.n > 0) {
    void *p = pool.b[--pool.n];
    ASAN_UNPOISON_MEMORY_REGION(p, WL_HTTP_BLOCK);
    free(p);
  }
  return 0;
}

void wl_http_blocks_open(lua_State *L) {
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, blocks_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "wirelab.http_blocks");
}
