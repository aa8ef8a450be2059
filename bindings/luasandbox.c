/*
** luasandbox.c: the C half of `wirelab --sandbox` (module
** "wirelab.sandbox.core"; the Lua half is scripts/wirelab/sandbox.lua):
** the bounds a script cannot lift from Lua. A count hook on the main
** thread and the running one, which every coroutine and task created
** afterwards inherits (lua_newthread copies the hook), ends the process
** once its CPU time passes the budget; RLIMIT_CPU one second later is the
** watchdog for a hang inside C (a pathological string.find), where no
** hook runs; an allocator over Lua's own refuses to grow the heap past
** the memory budget, so allocation fails with Lua's "not enough memory"
** error, as it would on a machine that is full.
*/
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <lauxlib.h>
#include "wl.h"

#define HOOK_COUNT 10000     /* instructions between two looks at the clock */

static struct {
  double cpu;                /* seconds, 0: none */
  size_t budget, used;       /* bytes of Lua heap, budget 0: none */
  lua_Alloc alloc;           /* Lua's own, under ours */
  void *ud;
  int refused;
} B;

static double cpu_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Past the budget: not a Lua error, which pcall would catch and a loop
** would retry, but the end of the process by SIGXCPU -- the signal
** RLIMIT_CPU sends, so a supervisor reports a CPU limit either way. */
static void cpu_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (cpu_time() < B.cpu) return;
  luaL_traceback(L, L, NULL, 0);
  fprintf(stderr, "wirelab: CPU time limit exceeded (--cpu %g s)\n%s\n", B.cpu,
          lua_tostring(L, -1));
  fflush(NULL);
  signal(SIGXCPU, SIG_DFL);
  raise(SIGXCPU);
  _exit(152);                /* 128 + SIGXCPU, had the signal been blocked */
}

/* Past the budget every request that grows the heap is refused: Lua
** collects, tries once more, then raises "not enough memory", which a
** script may catch (and be refused again). */
static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr ? osize : 0;
  void *np;
  (void)ud;
  if (nsize > old && B.used + (nsize - old) > B.budget) {
    B.refused = 1;
    return NULL;
  }
  np = B.alloc(B.ud, ptr, osize, nsize);
  if (np != NULL || nsize == 0) B.used = B.used - old + nsize;
  return np;
}

/* A heap so full that even reporting the error fails (a script that
** stopped the collector and filled the budget) ends here, outside any
** protected call: Lua's own panic would abort without a word. */
static int on_panic(lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
  fflush(stdout);
  fprintf(stderr, "wirelab: %s: the Lua memory budget of %zu MiB (--mem) is "
          "exhausted\n", msg, B.budget >> 20);
  fflush(stderr);
  _exit(1);
  return 0;
}

static void say_refused(void) {
  if (B.refused)
    fprintf(stderr, "wirelab: the Lua memory budget of %zu MiB (--mem) was "
            "reached\n", B.budget >> 20);
}

/* limit(cpu_seconds | nil, memory_bytes | nil): the bounds, once. */
static int sandbox_limit(lua_State *L) {
  double cpu = luaL_optnumber(L, 1, 0);
  lua_Integer mem = luaL_optinteger(L, 2, 0);
  struct rlimit rl;
  luaL_argcheck(L, cpu >= 0, 1, "non-negative number of seconds expected");
  luaL_argcheck(L, mem >= 0, 2, "non-negative number of bytes expected");
  if (B.cpu > 0 || B.budget > 0) return luaL_error(L, "the sandbox is set once");
  rl.rlim_cur = rl.rlim_max = 0;
  setrlimit(RLIMIT_CORE, &rl);   /* a SIGXCPU leaves no core file behind */
  if (cpu > 0) {
    lua_State *main;
    B.cpu = cpu;
    lua_sethook(L, cpu_hook, LUA_MASKCOUNT, HOOK_COUNT);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_sethook(main, cpu_hook, LUA_MASKCOUNT, HOOK_COUNT);
    if (getrlimit(RLIMIT_CPU, &rl) == 0) {
      rlim_t soft = (rlim_t)ceil(cpu) + 1;
      if (rl.rlim_max == RLIM_INFINITY || soft < rl.rlim_max) {
        rl.rlim_cur = soft;
        rl.rlim_max = soft + 1;  /* SIGKILL for a process ignoring SIGXCPU */
        setrlimit(RLIMIT_CPU, &rl);
      }
    }
  }
  if (mem > 0) {
    B.budget = (size_t)mem;
    B.used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
             (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    B.alloc = lua_getallocf(L, &B.ud);
    lua_setallocf(L, budget_alloc, NULL);
    lua_atpanic(L, on_panic);
    atexit(say_refused);
  }
  return 0;
}

/* used() -> bytes of Lua heap counted against the budget */
static int sandbox_used(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)B.used);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"limit", sandbox_limit}, {"used", sandbox_used}, {NULL, NULL}
};

int luaopen_wirelab_sandbox_core(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
