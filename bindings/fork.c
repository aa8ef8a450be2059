/*
** fork.c: module "wirelab.fork", the process calls under socketserver's
** Forking servers, Python's os.fork/os.waitpid/os._exit: fork() over a
** loop that survives it, where the child runs only the calling task
** (wl_sched_forked). wirelab re-exports them as wirelab.fork, waitpid and
** _exit. Each is one direct system call: no task parks.
*/
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
#include <lauxlib.h>
#include "wl.h"

/* fork() -> pid in the parent, 0 in the child */
static int fork_fork(lua_State *L) {
  pid_t pid;
  if (wl_task_of(L) == NULL)
    return luaL_error(L, "fork outside a wirelab task");
  fflush(NULL);                /* or buffered output is written twice */
  pid = fork();
  if (pid < 0) return wl_raise(L, "fork", -errno, NULL);
  if (pid == 0) {
    int rc = wl_sched_forked(L);
    if (rc < 0) return wl_raise(L, "fork", rc, NULL);
  }
  lua_pushinteger(L, pid);
  return 1;
}

/* waitpid(pid[, nohang]) -> code, signal | nil when still running */
static int fork_waitpid(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int st = 0, flags = lua_toboolean(L, 2) ? WNOHANG : 0;
  pid_t r;
  do r = waitpid(pid, &st, flags); while (r < 0 && errno == EINTR);
  if (r < 0) return wl_raise(L, "waitpid", -errno, NULL);
  if (r == 0) return 0;
  if (WIFSIGNALED(st)) {
    lua_pushnil(L);
    lua_pushinteger(L, WTERMSIG(st));
  } else {
    lua_pushinteger(L, WEXITSTATUS(st));
    lua_pushnil(L);
  }
  return 2;
}

/* _exit(code): leave a forked child without the parent's atexit work */
static int fork_exit(lua_State *L) {
  fflush(NULL);
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

static const luaL_Reg funcs[] = {
  {"fork", fork_fork}, {"waitpid", fork_waitpid}, {"_exit", fork_exit},
  {NULL, NULL}
};

int luaopen_wirelab_fork(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
