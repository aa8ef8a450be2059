/*
** alloc.c: the Lua state's allocator. Most of what Lua allocates is small
** (strings, tables, closures, upvalues, a coroutine's call frames): an
** idle connection holds a hundred such blocks. malloc gives each a header
** and rounds it to 16 bytes, 32 at least: about 12 bytes lost per block.
** Here blocks up to SMALL_MAX bytes come in size classes of GRAIN bytes,
** cut from slabs with no header at all (Lua tells the size on every free
** and realloc), and a freed block goes on its class's free list for the
** next one of that size. Larger blocks are plain malloc.
**
** Slabs are never given back while the state lives (a free list keeps
** their blocks for reuse) and all go at once after lua_close. Under
** AddressSanitizer, or with WIRELAB_ALLOC=malloc in the environment,
** every block is plain malloc, so sanitizers and valgrind see each one.
*/
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

#if defined(__SANITIZE_ADDRESS__)
#define WL_ALLOC_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WL_ALLOC_PLAIN 1
#endif
#endif

#define GRAIN 8                /* Lua's objects need no more alignment */
#define SMALL_MAX 256
#define NCLASS (SMALL_MAX / GRAIN)
#define SLAB_SIZE (64 * 1024)

typedef struct slab_t {
  struct slab_t *next;
  double pad;                  /* blocks start 16 bytes in */
} slab_t;

static struct {
  void *free[NCLASS + 1];      /* class c: free blocks of c * GRAIN bytes */
  char *cur, *end;             /* the unused rest of the newest slab */
  slab_t *slabs;
} A;

/* the class of a block of n bytes (1 .. SMALL_MAX), 0 above */
static size_t class_of(size_t n) {
  return n <= SMALL_MAX ? (n + GRAIN - 1) / GRAIN : 0;
}

static void *small_alloc(size_t c) {
  size_t n = c * GRAIN;
  void *p = A.free[c];
  if (p != NULL) {
    A.free[c] = *(void **)p;
    return p;
  }
  if ((size_t)(A.end - A.cur) < n) {
    /* the slab's tail, too short for this block, stays unused */
    slab_t *s = malloc(SLAB_SIZE);
    if (s == NULL) return NULL;
    s->next = A.slabs;
    A.slabs = s;
    A.cur = (char *)(s + 1);
    A.end = (char *)s + SLAB_SIZE;
  }
  p = A.cur;
  A.cur += n;
  return p;
}

static void small_free(void *p, size_t c) {
  *(void **)p = A.free[c];
  A.free[c] = p;
}

static void *slab_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t oc, nc;
  void *q;
  (void)ud;
  oc = ptr != NULL ? class_of(osize) : 0;   /* no ptr: osize is a type tag */
  if (nsize == 0) {
    if (oc) small_free(ptr, oc);
    else free(ptr);
    return NULL;
  }
  nc = class_of(nsize);
  if (ptr == NULL) return nc ? small_alloc(nc) : malloc(nsize);
  if (oc == nc) return oc ? ptr : realloc(ptr, nsize);
  q = nc ? small_alloc(nc) : malloc(nsize);
  if (q == NULL) return NULL;               /* Lua keeps the old block */
  memcpy(q, ptr, osize < nsize ? osize : nsize);
  if (oc) small_free(ptr, oc);
  else free(ptr);
  return q;
}

static void *plain_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

static int plain(void) {
#ifdef WL_ALLOC_PLAIN
  return 1;
#else
  const char *e = getenv("WIRELAB_ALLOC");
  return e != NULL && strcmp(e, "malloc") == 0;
#endif
}

/* luaL_newstate's panic and warning functions, which lauxlib keeps
** static: the state is made with lua_newstate, so that every block it
** ever has is this allocator's (and lua_close frees them all through it) */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  lua_writestringerror("PANIC: unprotected error in call to Lua API (%s)\n",
                       msg ? msg : "error object is not a string");
  return 0;
}

static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);
static void warn_cont(void *ud, const char *msg, int tocont);

/* a control message ("@on", "@off") switches warnings; others are ignored */
static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || *msg++ != '@') return 0;
  if (strcmp(msg, "off") == 0) lua_setwarnf(L, warn_off, L);
  else if (strcmp(msg, "on") == 0) lua_setwarnf(L, warn_on, L);
  return 1;
}

static void warn_off(void *ud, const char *msg, int tocont) {
  warn_control((lua_State *)ud, msg, tocont);
}

static void warn_cont(void *ud, const char *msg, int tocont) {
  lua_State *L = (lua_State *)ud;
  lua_writestringerror("%s", msg);
  if (tocont) {
    lua_setwarnf(L, warn_cont, L);
  } else {
    lua_writestringerror("%s", "\n");
    lua_setwarnf(L, warn_on, L);
  }
}

static void warn_on(void *ud, const char *msg, int tocont) {
  if (warn_control((lua_State *)ud, msg, tocont)) return;
  lua_writestringerror("%s", "Lua warning: ");
  warn_cont(ud, msg, tocont);
}

lua_State *wl_alloc_newstate(void) {
  lua_State *L = lua_newstate(plain() ? plain_alloc : slab_alloc, NULL);
  if (L != NULL) {
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_off, L);
  }
  return L;
}

void wl_alloc_close(void) {
  while (A.slabs != NULL) {
    slab_t *s = A.slabs;
    A.slabs = s->next;
    free(s);
  }
  memset(&A, 0, sizeof A);
}
