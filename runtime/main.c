/*
** main.c: the process -- a Lua state with wirelab's modules, the command
** line handed to wirelab.main as the main task, the exit status, and an
** orderly teardown: no handle left open, so sanitizers see a clean exit.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>
#include "wl.h"

static lua_State *gL;   /* reachable at exit(): LeakSanitizer scans it */

/* os.exit(code): flush and leave. The Lua state is not closed: the call may
** come from deep inside a task, where closing it would pull the stack from
** under the running code. */
static int os_exit(lua_State *L) {
  int code;
  if (lua_isboolean(L, 1))
    code = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
  else
    code = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
  fflush(stdout);
  fflush(stderr);
  exit(code);
  return 0;
}

int main(int argc, char **argv) {
  int i, code;
  lua_State *L;
  /* before any Lua: the supervisor of a sandboxed program is plain C */
  if (argc > 1 && strcmp(argv[1], "--supervise") == 0)
    return wl_supervise(argc, argv);
  L = gL = wl_alloc_newstate();
  if (L == NULL) {
    fprintf(stderr, "wirelab: cannot create the Lua state\n");
    return 1;
  }
  wl_output_init();            /* before any output and the io library */
  /* generational: what a server allocates per message (the 64 KiB string
  ** each recv returns) dies young, and a minor collection frees it without
  ** marking the long-lived rest (bulk echo through ThreadingTCPServer: 1.17x
  ** the messages/s of the incremental collector in one run, at 27.2 us of
  ** CPU per message instead of 32.0, bench/README.md). A minor collection
  ** every 10% of growth, not 20%: a body streamed through http.server then
  ** keeps fewer of its pieces alive across two collections, which would
  ** promote them (RELIABILITY item 6: RSS grew 692-800 KiB, against
  ** 968-1092 at 20% and a bound of 1024) */
  lua_gc(L, LUA_GCGEN, 10, 100);
  luaL_openlibs(L);
  wl_sched_init(L);
  wl_signals_init();
  wl_open_modules(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, os_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "wirelab.main");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "wirelab: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  code = wl_sched_run(L, 1);
  fflush(stdout);
  wl_sched_close();
  lua_close(L);
  gL = NULL;
  wl_alloc_close();
  wl_loop_close();
  return code;
}
