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
