/*
** process.c: child processes for `process` (module "process.core"): a
** program under test runs in its own process group, its output is read
** by tasks without blocking the loop, and kill() reaches the whole group.
** One struct owns the process handle and its pipes; it is freed when the
** last of those handles has closed.
**
** A sandboxed program (spawn with a "supervise" list) runs under
** `wirelab --supervise` (runtime/supervisor.c), which uv_spawn starts in
** its place: the program's pipes go through it untouched, and a fourth
** one, the control socket, carries its report (started, how it ended) and
** our kill requests. Such a process has ended once the supervisor has
** exited and the report has been read to its end. Output may be capped:
** past the cap it is read and counted, never stored, so the child never
** blocks and our memory stays bounded.
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <lauxlib.h>
#include "wl.h"
#include "process.h"

#define PROC_MT "wirelab.process"
#define OUT_MAX (64 * 1024 * 1024)  /* unread output beyond this: stop reading */
#define REPORT_MAX 4096             /* the supervisor's report is kept up to this */
#define START_SECS 30.0             /* a supervisor silent this long is broken */
#define CLOSE_SECS 5.0              /* close() waits this long for the kill-all */

typedef struct proc_t proc_t;

typedef struct {
  uv_pipe_t pipe;
  proc_t *p;
  char *buf;
  size_t len, cap;
  size_t limit, total, dropped;     /* the output cap (0: none) */
  char last;                        /* the last byte kept */
  int open, reading, eof, error;
  wl_waiter_t readers;
} pstream_t;

struct proc_t {
  uv_process_t proc;
  pstream_t io[3];           /* stdin, stdout, stderr */
  int refs;                  /* handles not yet closed */
  int pid, exited, code, signo;
  wl_waiter_t waiters;       /* tasks in wait() */
  /* sandboxed: the supervisor and its control socket */
  int supervised, sup_pid, sup_exited, sup_code, sup_signo;
  uv_pipe_t ctl;
  int ctl_open, ended, started, start_errno;
  char start_stage[16];
  char report[REPORT_MAX];
  size_t rlen, scanned;
  wl_waiter_t starter;       /* the task in spawn, until "started" */
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

/* Where bytes past the cap are read to be dropped: a read callback
** consumes them before the next read, so one buffer serves every pipe. */
static char discard[65536];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  pstream_t *st = (pstream_t *)h;
  size_t room = (size_t)-1, size;
  if (st->limit) {
    room = st->limit - st->total;
    if (room == 0) { *buf = uv_buf_init(discard, sizeof discard); return; }
    if (suggested > room) suggested = room;
  }
  if (st->cap - st->len < suggested) {
    size_t ncap = st->cap ? st->cap : 65536;
    char *nb;
    while (ncap - st->len < suggested) ncap *= 2;
    if ((nb = realloc(st->buf, ncap)) == NULL) { *buf = uv_buf_init(NULL, 0); return; }
    st->buf = nb;
    st->cap = ncap;
  }
  size = st->cap - st->len;
  *buf = uv_buf_init(st->buf + st->len, (unsigned)(size < room ? size : room));
}

static void maybe_ended(proc_t *p);

/* At the end of capped output: "[truncated N bytes]" on a line of its
** own, where the reader finds it after the bytes kept. */
static void add_marker(pstream_t *st) {
  char mark[64];
  int n = snprintf(mark, sizeof mark, "%s[truncated %zu bytes]\n",
                   st->total > 0 && st->last != '\n' ?
                   "\n" : "", st->dropped);
  char *nb;
  if (st->cap - st->len < (size_t)n) {
    if ((nb = realloc(st->buf, st->len + (size_t)n)) == NULL) return;
    st->buf = nb;
    st->cap = st->len + (size_t)n;
  }
  memcpy(st->buf + st->len, mark, (size_t)n);
  st->len += (size_t)n;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  pstream_t *st = (pstream_t *)s;
  if (n > 0 && buf->base == discard) {
    st->dropped += (size_t)n;
    return;                  /* nothing new for the readers */
  } else if (n > 0) {
    st->len += (size_t)n;
    st->total += (size_t)n;
    st->last = buf->base[n - 1];
    /* with a cap nothing waits: the cap bounds what is kept */
    if (!st->limit && st->len > OUT_MAX) { uv_read_stop(s); st->reading = 0; }
  } else if (n < 0) {
    if (n != UV_EOF) st->error = (int)n;
    uv_read_stop(s);
    st->reading = 0;
    st->eof = 1;
    if (st->dropped > 0) add_marker(st);
    if (st->p->supervised) maybe_ended(st->p);
  }
  wl_list_wake_all(&st->readers, 0);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int signo) {
  proc_t *p = (proc_t *)h;
  if (p->supervised) {
    p->sup_exited = 1;
    p->sup_code = (int)status;
    p->sup_signo = signo;
    maybe_ended(p);
  } else {
    p->exited = 1;
    p->code = (int)status;
    p->signo = signo;
    wl_list_wake_all(&p->waiters, 0);
  }
  uv_close((uv_handle_t *)h, on_proc_close);
}

/* ---- the supervisor's control socket ------------------------------------ */

static proc_t *ctl_owner(uv_handle_t *h) {
  return (proc_t *)((char *)h - offsetof(proc_t, ctl));
}

/* A sandboxed process has ended once its supervisor has exited and its
** report is read: the whole tree is gone by then. A supervisor that died
** without its last line cleaned nothing up: its program's group at least
** is killed here. */
static void maybe_ended(proc_t *p) {
  if (!p->sup_exited || p->ctl_open || p->exited) return;
  /* and the output read to its end: the truncation counts are final */
  if (!p->io[1].eof || !p->io[2].eof) return;
  p->exited = 1;
  if (!p->ended) {
    if (p->pid > 0) kill(-p->pid, SIGKILL);
    p->code = p->sup_code;
    p->signo = p->sup_signo;
  }
  if (!p->started && !p->start_errno) {
    p->start_errno = EIO;
    snprintf(p->start_stage, sizeof p->start_stage, "supervisor");
  }
  wl_wake(&p->starter, 0);
  wl_list_wake_all(&p->waiters, 0);
}

static void on_ctl_close(uv_handle_t *h) {
  proc_t *p = ctl_owner(h);
  maybe_ended(p);
  unref_proc(p);
}

static void close_ctl(proc_t *p) {
  if (!p->ctl_open) return;
  p->ctl_open = 0;
  uv_close((uv_handle_t *)&p->ctl, on_ctl_close);
}

/* The lines that matter here; the rest is parsed by process.lua. */
static void scan_report(proc_t *p) {
  char *nl;
  while ((nl = memchr(p->report + p->scanned, '\n', p->rlen - p->scanned)) != NULL) {
    char line[128], stage[16];
    size_t n = (size_t)(nl - (p->report + p->scanned));
    int v;
    if (n >= sizeof line) n = sizeof line - 1;
    memcpy(line, p->report + p->scanned, n);
    line[n] = '\0';
    p->scanned = (size_t)(nl - p->report) + 1;
    if (sscanf(line, "started %d", &v) == 1) {
      p->started = 1;
      p->pid = v;
      wl_wake(&p->starter, 0);
    } else if (sscanf(line, "error %15s %d", stage, &v) == 2) {
      p->start_errno = v > 0 ? v : EIO;
      memcpy(p->start_stage, stage, sizeof stage);
      wl_wake(&p->starter, 0);
    } else if (sscanf(line, "end code %d", &v) == 1) {
      p->code = v;
    } else if (sscanf(line, "end signal %d", &v) == 1) {
      p->code = 0;
      p->signo = v;
    } else if (strcmp(line, "exit") == 0) {
      p->ended = 1;
    }
  }
}

static void on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  proc_t *p = ctl_owner(h);
  (void)suggested;
  if (p->rlen < REPORT_MAX)
    *buf = uv_buf_init(p->report + p->rlen, (unsigned)(REPORT_MAX - p->rlen));
  else                       /* a report that long is not ours: drop it */
    *buf = uv_buf_init(discard, sizeof discard);
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  proc_t *p = ctl_owner((uv_handle_t *)s);
  if (n > 0 && buf->base != discard) {
    p->rlen += (size_t)n;
    scan_report(p);
  } else if (n < 0) {
    close_ctl(p);
  }
}

static double mono(void) { return (double)uv_hrtime() / 1e9; }

/* close() or collection of a sandboxed process still running: end of
** input on the control socket makes the supervisor kill everything and
** exit. Waited for here, a few milliseconds, so that when close()
** returns no process of the program is left; a supervisor that does not
** answer is killed with the program's group. */
static void stop_supervisor(proc_t *p) {
  double until = mono() + CLOSE_SECS;
  uv_os_fd_t fd;
  int answered = 0, st;
  if (p->ctl_open && uv_fileno((uv_handle_t *)&p->ctl, &fd) == 0) {
    shutdown(fd, SHUT_WR);
    while (mono() < until) {
      struct pollfd pfd;
      ssize_t n;
      pfd.fd = fd;
      pfd.events = POLLIN;
      if (poll(&pfd, 1, (int)((until - mono()) * 1000) + 1) < 0 && errno != EINTR) break;
      n = read(fd, discard, sizeof discard);
      if (n == 0) { answered = 1; break; }
      if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    }
  }
  close_ctl(p);
  if (p->sup_exited) return;
  if (!answered) {
    kill(p->sup_pid, SIGKILL);
    if (p->pid > 0) kill(-p->pid, SIGKILL);
  }
  /* libuv forgets a closed process handle: the zombie is reaped here */
  uv_close((uv_handle_t *)&p->proc, on_proc_close);
  until = mono() + 2;
  while (waitpid(p->sup_pid, &st, WNOHANG) == 0 && mono() < until) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
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

/* The supervisor's command line: wirelab --supervise OPTIONS [netns=4]
** -- PROG ARGS, a char *[] in a userdata left on the stack. */
static char **supervisor_args(lua_State *L, char **sup, char **args, int netns) {
  int ns = 0, na = 0, i = 0, j;
  char **v;
  while (sup[ns]) ns++;
  while (args[na]) na++;
  v = lua_newuserdatauv(L, (size_t)(ns + na + 5) * sizeof *v, 0);
  v[i++] = "wirelab";
  v[i++] = "--supervise";
  for (j = 0; j < ns; j++) v[i++] = sup[j];
  if (netns) v[i++] = "netns=4";
  v[i++] = "--";
  for (j = 0; j < na; j++) v[i++] = args[j];
  v[i] = NULL;
  return v;
}

static int spawn_k(lua_State *L, int status, lua_KContext ctx);

/* spawn(argv, {cwd=, env={"K=V"...}, stdin=bool, stdout=bool, stderr=bool,
**        output=cap, supervise={"k=v"...}, netns=ns})
** Everything that may raise (the arguments, the box) comes first; from the
** calloc on nothing does until p is in its box, or closed on failure. A
** supervised spawn parks until the supervisor says the program runs (or
** why it could not start): the box and nil, stage, code then. */
static int process_spawn(lua_State *L) {
  uv_process_options_t opt;
  uv_stdio_container_t stdio[5];
  char **args, **env = NULL, **sup = NULL;
  int rc, modes[3], nsfd = -1, sv[2], i;
  lua_Integer cap;
  proc_t **box, *p;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, luaL_len(L, 1) > 0, 1, "empty argv");
  args = string_array(L, 1);                 /* freed by GC */
  if (lua_getfield(L, 2, "env") == LUA_TTABLE)
    env = string_array(L, lua_gettop(L));
  if (lua_getfield(L, 2, "supervise") == LUA_TTABLE) {
    wl_check_park(L);
    sup = string_array(L, lua_gettop(L));
    if (lua_getfield(L, 2, "netns") != LUA_TNIL)
      nsfd = wl_netns_fd(L, lua_gettop(L), "spawn");
    sup = supervisor_args(L, sup, args, nsfd >= 0);
  }
  lua_getfield(L, 2, "output");
  cap = luaL_optinteger(L, -1, 0);
  memset(&opt, 0, sizeof opt);
  opt.file = sup ? "/proc/self/exe" : args[0];   /* the same wirelab */
  opt.args = sup ? sup : args;
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
  if (sup && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = -errno;
    free(p);
    return wl_raise(L, "spawn", rc, NULL);
  }
  wl_waiter_init(&p->waiters);
  wl_waiter_init(&p->starter);
  open_stdio(p, modes, stdio);
  for (i = 1; i < 3; i++) p->io[i].limit = cap > 0 ? (size_t)cap : 0;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  if (sup) {
    p->supervised = 1;
    stdio[3].flags = UV_INHERIT_FD;          /* fd 3: the control socket */
    stdio[3].data.fd = sv[1];
    stdio[4].flags = UV_INHERIT_FD;          /* fd 4: the namespace to join */
    stdio[4].data.fd = nsfd;
    opt.stdio_count = nsfd >= 0 ? 5 : 4;
  }
  opt.exit_cb = on_exit_cb;
  rc = uv_spawn(wl_loop(), &p->proc, &opt);
  p->refs++;                                 /* the process handle */
  if (sup) close(sv[1]);
  if (rc < 0) {
    if (sup) close(sv[0]);
    discard_proc(p);
    return wl_raise(L, "spawn", rc, args[0]);
  }
  if (sup) {
    uv_pipe_init(wl_loop(), &p->ctl, 0);
    p->refs++;
    p->ctl_open = 1;
    if ((rc = uv_pipe_open(&p->ctl, sv[0])) == 0)
      rc = uv_read_start((uv_stream_t *)&p->ctl, on_ctl_alloc, on_ctl_read);
    p->sup_pid = p->proc.pid;
    if (rc < 0) close_ctl(p);                /* the supervisor sees the end */
  } else {
    p->pid = p->proc.pid;
  }
  start_reading(p);
  *box = p;
  wl_handle_count(1);
  if (!sup) return 1;
  return wl_park(L, &p->starter, START_SECS, spawn_k, lua_gettop(L));
}

static int spawn_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  proc_t *p = *(proc_t **)lua_touserdata(L, (int)ctx);
  (void)status;
  lua_pop(L, 1);
  if (p == NULL) return wl_raise(L, "spawn", UV_EBADF, NULL);
  if (p->started) { lua_pushvalue(L, (int)ctx); return 1; }
  if (!p->start_errno)       /* the wait ended first: a timeout, a cancel */
    return wl_raise(L, "spawn", rc < 0 ? rc : UV_EIO, NULL);
  lua_pushvalue(L, (int)ctx);
  lua_pushnil(L);
  lua_pushstring(L, p->start_stage);
  lua_pushinteger(L, -p->start_errno);
  return 4;
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
  lua_settop(L, 1);
  if (p == NULL) return wl_raise(L, "wait", UV_EBADF, NULL);
  if (p->exited) { lua_pushinteger(L, 0); return wait_k(L, 0, 0); }
  return wl_list_park(L, &p->waiters, timeout, wait_k, 0);
}

/* kill([signal]): the whole process group, so helpers it started go too */
static int proc_kill(lua_State *L) {
  proc_t *p = check_proc(L);
  int sig = (int)luaL_optinteger(L, 2, SIGTERM);
  if (p == NULL) return wl_raise(L, "kill", UV_EBADF, NULL);
  /* an exited child has nothing to signal (Python's send_signal) */
  if (p->exited || (p->supervised && (p->ended || !p->ctl_open))) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (p->supervised) {       /* the supervisor knows the whole tree */
    char cmd[32];
    uv_buf_t b;
    int rc;
    luaL_argcheck(L, sig > 0 && sig < NSIG, 2, "signal number expected");
    b = uv_buf_init(cmd, (unsigned)snprintf(cmd, sizeof cmd, "kill %d\n", sig));
    if ((rc = uv_try_write((uv_stream_t *)&p->ctl, &b, 1)) < 0)
      return wl_raise(L, "kill", rc, NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
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
  return wl_list_park(L, &st->readers, luaL_optnumber(L, 4, -1), read_k, 0);
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
  if (p->supervised) {
    if (!p->exited) stop_supervisor(p);
  } else if (!p->exited) {
    kill(-p->pid, SIGKILL);
    uv_close((uv_handle_t *)&p->proc, on_proc_close);
  }
  for (i = 0; i < 3; i++) close_stream(&p->io[i]);
  wl_wake(&p->starter, UV_EBADF);
  wl_list_wake_all(&p->waiters, UV_EBADF);
  wl_handle_count(-1);
  return 0;
}

static int proc_index(lua_State *L) {
  proc_t *p = check_proc(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "pid") == 0) {
    if (p && p->pid > 0) lua_pushinteger(L, p->pid); else lua_pushnil(L);
    return 1;
  }
  if (strcmp(k, "exited") == 0) { lua_pushboolean(L, p == NULL || p->exited); return 1; }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

/* _dropped(i) -> bytes of stdout (1) or stderr (2) past the cap */
static int proc_dropped(lua_State *L) {
  proc_t *p = check_proc(L);
  int i = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, i == 1 || i == 2, 2, "1 (stdout) or 2 (stderr) expected");
  if (p == NULL) return wl_raise(L, "dropped", UV_EBADF, NULL);
  lua_pushinteger(L, (lua_Integer)p->io[i].dropped);
  return 1;
}

/* _report() -> the supervisor's report so far ("" when not sandboxed) */
static int proc_report(lua_State *L) {
  proc_t *p = check_proc(L);
  if (p == NULL) return wl_raise(L, "report", UV_EBADF, NULL);
  lua_pushlstring(L, p->report, p->rlen);
  return 1;
}

static const luaL_Reg methods[] = {
  {"wait", proc_wait}, {"kill", proc_kill}, {"_read", read_do},
  {"_report", proc_report}, {"_dropped", proc_dropped},
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
  wl_sandbox_open(L);
  return 1;
}
