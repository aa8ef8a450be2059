/*
** process.c: child processes for `process` (module "process.core"): a
** program under test runs in its own process group, its output is read
** by tasks without blocking the loop, and kill() reaches the whole group.
** One struct owns the process handle and its three pipes; it is freed when
** the last of those handles has closed.
*/
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

#define PROC_MT "wirelab.process"
#define OUT_MAX (64 * 1024 * 1024)  /* unread output beyond this: stop reading */

typedef struct proc_t proc_t;

typedef struct {
  uv_pipe_t pipe;
  proc_t *p;
  char *buf;
  size_t len, cap;
  int open, reading, eof, error;
  wl_waiter_t readers;
} pstream_t;

struct proc_t {
  uv_process_t proc;
  pstream_t io[3];           /* stdin, stdout, stderr */
  int refs;                  /* handles not yet closed */
  int pid, exited, code, signo;
  wl_waiter_t waiters;       /* tasks in wait() */
};

typedef struct { uv_write_t uv; wl_waiter_t w; char data[]; } write_req;

static void unref_proc(proc_t *p) {
  if (--p->refs == 0) {
    free(p->io[1].buf);
    free(p->io[2].buf);
    free(p);
  }
}

static void on_pipe_close(uv_handle_t *h) {
  pstream_t *st = (pstream_t *)h;
  unref_proc(st->p);
}

static void on_proc_close(uv_handle_t *h) { unref_proc((proc_t *)h); }

static void close_stream(pstream_t *st) {
  if (!st->open) return;
  st->open = 0;
  st->eof = 1;
  wl_list_wake_all(&st->readers, 0);
  uv_close((uv_handle_t *)&st->pipe, on_pipe_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  pstream_t *st = (pstream_t *)h;
  if (st->cap - st->len < suggested) {
    size_t ncap = st->cap ? st->cap : 65536;
    char *nb;
    while (ncap - st->len < suggested) ncap *= 2;
    if ((nb = realloc(st->buf, ncap)) == NULL) { *buf = uv_buf_init(NULL, 0); return; }
    st->buf = nb;
    st->cap = ncap;
  }
  *buf = uv_buf_init(st->buf + st->len, (unsigned)(st->cap - st->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  pstream_t *st = (pstream_t *)s;
  (void)buf;
  if (n > 0) {
    st->len += (size_t)n;
    if (st->len > OUT_MAX) { uv_read_stop(s); st->reading = 0; }
  } else if (n < 0) {
    if (n != UV_EOF) st->error = (int)n;
    uv_read_stop(s);
    st->reading = 0;
    st->eof = 1;
  }
  wl_list_wake_all(&st->readers, 0);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int signo) {
  proc_t *p = (proc_t *)h;
  p->exited = 1;
  p->code = (int)status;
  p->signo = signo;
  wl_list_wake_all(&p->waiters, 0);
  uv_close((uv_handle_t *)h, on_proc_close);
}

static proc_t *check_proc(lua_State *L) {
  proc_t **box = luaL_checkudata(L, 1, PROC_MT);
  return *box;
}

/* The strings of the array at idx, as a NULL-terminated char *[] in a
** userdata left on the stack (collected with it); the strings stay alive
** in the table. */
static char **string_array(lua_State *L, int idx) {
  int n = (int)luaL_len(L, idx), i;
  char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = (char *)luaL_checkstring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

enum { STDIO_IGNORE, STDIO_PIPE, STDIO_INHERIT };

/* What the options at index 2 ask for stdin, stdout, stderr: true makes a
** pipe, "inherit" (stdout, stderr) shares ours, anything else /dev/null.
** Read before anything is allocated: a getfield may raise. */
static void stdio_modes(lua_State *L, int modes[3]) {
  static const char *names[] = {"stdin", "stdout", "stderr"};
  int i;
  for (i = 0; i < 3; i++) {
    lua_getfield(L, 2, names[i]);
    if (lua_type(L, -1) != LUA_TSTRING && lua_toboolean(L, -1))
      modes[i] = STDIO_PIPE;
    else if (i > 0 && lua_isstring(L, -1) &&
             strcmp(lua_tostring(L, -1), "inherit") == 0)
      modes[i] = STDIO_INHERIT;
    else
      modes[i] = STDIO_IGNORE;
    lua_pop(L, 1);
  }
}

/* The three stdio slots of p as modes says; never raises. */
static void open_stdio(proc_t *p, const int modes[3],
                       uv_stdio_container_t *stdio) {
  int i;
  for (i = 0; i < 3; i++) {
    pstream_t *st = &p->io[i];
    st->p = p;
    wl_waiter_init(&st->readers);
    if (modes[i] == STDIO_PIPE) {
      uv_pipe_init(wl_loop(), &st->pipe, 0);
      st->open = 1;
      p->refs++;
      stdio[i].flags = UV_CREATE_PIPE |
                       (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
      stdio[i].data.stream = (uv_stream_t *)&st->pipe;
    } else if (modes[i] == STDIO_INHERIT) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
      st->eof = 1;                           /* nothing to read on our side */
    } else {
      stdio[i].flags = UV_IGNORE;
      st->eof = 1;
    }
  }
}

/* After a failed uv_spawn: libuv wants the handle closed all the same;
** the close callbacks free p. */
static void discard_proc(proc_t *p) {
  int i;
  for (i = 0; i < 3; i++) close_stream(&p->io[i]);
  uv_close((uv_handle_t *)&p->proc, on_proc_close);
}

static void start_reading(proc_t *p) {
  int i;
  for (i = 1; i < 3; i++)
    if (p->io[i].open) {
      uv_read_start((uv_stream_t *)&p->io[i].pipe, on_alloc, on_read);
      p->io[i].reading = 1;
    }
}

/* spawn(argv, {cwd=, env={"K=V"...}, stdin=bool, stdout=bool, stderr=bool})
** Everything that may raise (the arguments, the box) comes first; from the
** calloc on nothing does until p is in its box, or closed on failure. */
static int process_spawn(lua_State *L) {
  uv_process_options_t opt;
  uv_stdio_container_t stdio[3];
  char **args, **env = NULL;
  int rc, modes[3];
  proc_t **box, *p;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, luaL_len(L, 1) > 0, 1, "empty argv");
  args = string_array(L, 1);                 /* freed by GC */
  if (lua_getfield(L, 2, "env") == LUA_TTABLE)
    env = string_array(L, lua_gettop(L));
  memset(&opt, 0, sizeof opt);
  opt.file = args[0];
  opt.args = args;
  opt.env = env;
  opt.flags = UV_PROCESS_DETACHED;           /* own process group */
  lua_getfield(L, 2, "cwd");
  opt.cwd = lua_tostring(L, -1);
  stdio_modes(L, modes);
  box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, PROC_MT);
  if ((p = calloc(1, sizeof *p)) == NULL) 
    return wl_raise(L, "spawn", UV_ENOMEM, NULL);
  wl_waiter_init(&p->waiters);
  open_stdio(p, modes, stdio);
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = on_exit_cb;
  rc = uv_spawn(wl_loop(), &p->proc, &opt);
  p->refs++;                                 /* the process handle */
  if (rc < 0) {
    discard_proc(p);
    return wl_raise(L, "spawn", rc, args[0]);
  }
  p->pid = p->proc.pid;
  start_reading(p);
  *box = p;
  wl_handle_count(1);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  proc_t *p = check_proc(L);
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  if (rc < 0) return wl_raise(L, "wait", rc, NULL);   /* ETIMEDOUT too */
  if (p == NULL || !p->exited) return wl_raise(L, "wait", UV_EBADF, NULL);
  lua_pushinteger(L, p->code);
  if (p->signo) lua_pushinteger(L, p->signo); else lua_pushnil(L);
  return 2;
}

/* wait([timeout]) -> code, signal; raises ETIMEDOUT when the timeout
** passes first (Python's Popen.wait raises TimeoutExpired) */
static int proc_wait(lua_State *L) {
  proc_t *p = check_proc(L);
  double timeout = luaL_optnumber(L, 2, -1);
  wl_waiter_t *w;
  lua_settop(L, 1);
  if (p == NULL) return wl_raise(L, "wait", UV_EBADF, NULL);
  if (p->exited) { lua_pushinteger(L, 0); return wait_k(L, 0, 0); }
  wl_check_park(L);
  w = wl_self_waiter(L);
  wl_list_add(&p->waiters, w);
  return wl_park(L, w, timeout, wait_k, 0);
}

/* kill([signal]): the whole process group, so helpers it started go too */
static int proc_kill(lua_State *L) {
  proc_t *p = check_proc(L);
  int sig = (int)luaL_optinteger(L, 2, SIGTERM);
  if (p == NULL) return wl_raise(L, "kill", UV_EBADF, NULL);
  /* an exited child has nothing to signal (Python's send_signal) */
  if (p->exited) { lua_pushboolean(L, 0); return 1; }
  if (kill(-p->pid, sig) < 0 && kill(p->pid, sig) < 0)
    return wl_raise(L, "kill", -errno, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

/* _read(i[, max]) -> data; "" at end of output. i: 1 stdout, 2 stderr */
static int read_do(lua_State *L) {
  proc_t *p = check_proc(L);
  int i = (int)luaL_checkinteger(L, 2);
  size_t max = (size_t)luaL_optinteger(L, 3, OUT_MAX);
  pstream_t *st;
  luaL_argcheck(L, i == 1 || i == 2, 2, "1 (stdout) or 2 (stderr) expected");
  if (p == NULL) return wl_raise(L, "read", UV_EBADF, NULL);
  st = &p->io[i];
  if (st->len > 0) {
    size_t n = st->len < max ? st->len : max;
    lua_pushlstring(L, st->buf, n);
    memmove(st->buf, st->buf + n, st->len - n);
    st->len -= n;
    if (!st->reading && !st->eof && st->open) {
      uv_read_start((uv_stream_t *)&st->pipe, on_alloc, on_read);
      st->reading = 1;
    }
    return 1;
  }
  if (st->eof) { lua_pushliteral(L, ""); return 1; }
  wl_check_park(L);
  wl_list_add(&st->readers, wl_self_waiter(L));
  return wl_park(L, wl_self_waiter(L), luaL_optnumber(L, 4, -1), read_k, 0);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  lua_pop(L, 1);
  if (rc < 0) return wl_raise(L, "read", rc, NULL);
  return read_do(L);
}

static void on_written(uv_write_t *uv, int status) {
  write_req *req = (write_req *)uv;
  wl_wake(&req->w, status);
  free(req);
}

static int write_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  if (rc < 0) return wl_raise(L, "write", rc, NULL);
  return 0;
}

static int proc_write(lua_State *L) {
  proc_t *p = check_proc(L);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  write_req *req;
  uv_buf_t buf;
  int rc;
  if (p == NULL) return wl_raise(L, "write", UV_EBADF, NULL);
  if (!p->io[0].open) return wl_raise(L, "write", UV_EPIPE, NULL);
  wl_check_park(L);
  /* copy: a task that times out unwinds its stack, and the string with it */
  if ((req = malloc(sizeof *req + n)) == NULL)
    return wl_raise(L, "write", UV_ENOMEM, NULL);
  memcpy(req->data, data, n);
  wl_waiter_init(&req->w);
  buf = uv_buf_init(req->data, (unsigned)n);
  rc = uv_write(&req->uv, (uv_stream_t *)&p->io[0].pipe, &buf, 1, on_written);
  if (rc < 0) { free(req); return wl_raise(L, "write", rc, NULL); }
  return wl_park(L, &req->w, -1, write_k, 0);
}

static int proc_close_stdin(lua_State *L) {
  proc_t *p = check_proc(L);
  if (p != NULL) close_stream(&p->io[0]);
  return 0;
}

/* Drop our side: pipes closed, and a child still running is killed with
** its group -- a forgotten server under test must not outlive the lab. */
static int proc_gc(lua_State *L) {
  proc_t **box = luaL_checkudata(L, 1, PROC_MT);
  proc_t *p = *box;
  int i;
  if (p == NULL) return 0;
  *box = NULL;
  if (!p->exited) {
    kill(-p->pid, SIGKILL);
    uv_close((uv_handle_t *)&p->proc, on_proc_close);
  }
  for (i = 0; i < 3; i++) close_stream(&p->io[i]);
  wl_list_wake_all(&p->waiters, UV_EBADF);
  wl_handle_count(-1);
  return 0;
}

static int proc_index(lua_State *L) {
  proc_t *p = check_proc(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "pid") == 0) {
    if (p) lua_pushinteger(L, p->pid); else lua_pushnil(L);
    return 1;
  }
  if (strcmp(k, "exited") == 0) { lua_pushboolean(L, p == NULL || p->exited); return 1; }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

static const luaL_Reg methods[] = {
  {"wait", proc_wait}, {"kill", proc_kill}, {"_read", read_do},
  {"write", proc_write}, {"close_stdin", proc_close_stdin},
  {"close", proc_gc}, {NULL, NULL}
};

int luaopen_process_core(lua_State *L) {
  luaL_newmetatable(L, PROC_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, proc_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, proc_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, proc_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, process_spawn);
  lua_setfield(L, -2, "spawn");
  return 1;
}
