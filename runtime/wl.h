/*
** wl.h: the runtime's table of contents -- everything bindings may use
** across files: the loop, parking a task and waking it, signals, errors,
** addresses, embedding.
**
** The rule for C files. runtime/ is the host program and the services
** that other C code shares: the process (main.c), the embedded modules
** (embed.c; tools/embed.c is the build tool behind build/scripts.c),
** the loop and scheduler (sched.c), signals (signals.c), stdout
** and stderr (output.c), errors (error.c), addresses (addr.c), network
** namespaces entered for one call (netns.c), the
** sandbox supervisor main() becomes under --supervise (supervisor.c),
** the cgroups it shares with process.core (cgroup.c), the Lua state's
** allocator (alloc.c) and the stream
** endpoints that let one binding reach another's descriptors
** (endpoint.c). Each service is
** declared here, and may carry its own Lua face (wirelab.core,
** wirelab.error). bindings/ is the C half of one Lua module each
** (socket.core, http.core, process.core, wirelab.fs, wirelab.fork,
** wirelab.readline, wirelab.sandbox.core), one file per concern, the
** files of one module sharing a bindings/ header (socket.h, http.h,
** process.h). A binding reaches the runtime only through this header;
** nothing in runtime/ calls into bindings/ but embed.c's table of
** luaopen_* functions. The test: if other C code calls it, it belongs in
** runtime/; if only Lua does, in bindings/.
*/
#ifndef WL_H
#define WL_H

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <lua.h>
#include <uv.h>

#define WL_VERSION "wirelab 0.1.0"

/* ---- scheduler (sched.c) -------------------------------------------- */

typedef struct wl_task_t wl_task_t;

/*
** A place where one task waits. A waiter is either empty (task == NULL) or
** holds exactly one parked task. It may also sit in a wait list (prev/next)
** so that many tasks can wait on one thing (join, events); waking unlinks
** it, so a late notification can never reach a later wait.
*/
typedef struct wl_waiter_t {
  wl_task_t *task;
  struct wl_waiter_t *prev, *next;
} wl_waiter_t;

/* The loop, the timer heap and the task table, before any module loads. */
void wl_sched_init(lua_State *L);
uv_loop_t *wl_loop(void);

void wl_waiter_init(wl_waiter_t *w);
/* Park the running task on w; resumes in k with the wake status on top of
** the stack. timeout < 0 waits forever. Always used as a tail call. */
int wl_park(lua_State *L, wl_waiter_t *w, double timeout, lua_KFunction k,
            lua_KContext ctx);
/* Queue w's task to resume with status (0 or a negative libuv error);
** a no-op on an empty waiter. Returns 1 when a task was woken. */
int wl_wake(wl_waiter_t *w, int status);
/* The running task's own waiter, for waits that have no request of their
** own (sleep, join, events, queues). NULL outside a task. */
wl_waiter_t *wl_self_waiter(lua_State *L);
/* Nonzero when L can park (it is a task and may yield). */
int wl_can_park(lua_State *L);
/* Raises a clear error unless L can park. */
int wl_check_park(lua_State *L);
/* Requeue the running task behind the loop's next poll, then k(ctx) with
** status 0 at the top, as after a wake-up. */
int wl_yield(lua_State *L, lua_KFunction k, lua_KContext ctx);
/* Whether the running task has held the loop past its slice (5 ms). */
int wl_turn_over(void);

/* The task L runs in (NULL for the main thread and plain coroutines); the
** task running now (NULL between tasks: safe in a signal handler); a
** task's thread; waking a parked task with status (1 when it was parked). */
wl_task_t *wl_task_of(lua_State *L);
wl_task_t *wl_running_task(void);
lua_State *wl_task_thread(wl_task_t *t);
int wl_task_interrupt(wl_task_t *t, int status);
/* In the child of fork(): the loop made usable again, and from now on
** only L's task runs. 0 or a libuv error. */
int wl_sched_forked(lua_State *L);

/* Wait lists: a waiter used as the list head, never parked itself. */
void wl_list_init(wl_waiter_t *head);
void wl_list_add(wl_waiter_t *head, wl_waiter_t *w);
/* Park the running task on its own waiter in list head: wl_park's wait
** for what many tasks may wait on (join, queues, a process's exit, a
** socket's readiness). Used as a tail call. */
int wl_list_park(lua_State *L, wl_waiter_t *head, double timeout,
                 lua_KFunction k, lua_KContext ctx);
int wl_list_wake_one(wl_waiter_t *head, int status);
int wl_list_wake_all(wl_waiter_t *head, int status);

/* waitq.c: wirelab.core.waitq(), set in the module table at index module;
** and the timed wait on a wait list behind it: parks the running task on
** head (timeout < 0: for ever), then returns true when woken, false when
** the time ran out, or raises a "wait" error. Used as a tail call. */
void wl_waitq_register(lua_State *L, int module);
int wl_list_wait(lua_State *L, wl_waiter_t *head, double timeout);

/* Handles counted for wirelab.handles(): sockets, servers, processes. */
void wl_handle_count(int delta);

int wl_sched_run(lua_State *L, int nargs);      /* runs the main task */
/* At exit: wl_sched_close forgets every wait before lua_close; after it,
** wl_loop_close runs the close callbacks of what is left and closes the
** loop. */
void wl_sched_close(void);
void wl_loop_close(void);
int luaopen_wirelab_core(lua_State *L);

/* ---- signals (signals.c) --------------------------------------------- */

/* SIGINT and SIGTERM end the process with 128 + signal once the running
** task is stopped; SIGPIPE is caught and does nothing (EPIPE instead). */
void wl_signals_init(void);
/* The signal that ends the process, 0 until one comes: the scheduler
** stops at its next turn. Read on every resume, hence a variable. */
extern volatile sig_atomic_t wl_signo;
/* While on, SIGINT interrupts the running task (the prompt's) with an
** error, or its wait with EINTR, instead of ending the process. */
void wl_soft_sigint(lua_State *L, int on);
/* Task t has ended: it is no longer the one SIGINT interrupts. */
void wl_signals_task_ended(wl_task_t *t);

/* ---- stdout and stderr (output.c) ------------------------------------ */

/* stdout and stderr as wirelab's own streams: before any output and Lua. */
void wl_output_init(void);
/* What tasks wrote to stderr and stdout goes out: once per loop turn. */
void wl_output_flush(void);
/* While the prompt edits a line: erase() takes it off the screen before
** the first byte tasks write to a terminal, redraw() puts it back below
** what they wrote, at the next flush. (NULL, NULL) once the line is done. */
void wl_output_prompt(void (*erase)(void), void (*redraw)(void));

/* ---- errors (error.c) ------------------------------------------------ */

/* Raise the error object of API.md section 2. addr may be NULL. */
int wl_raise(lua_State *L, const char *op, int code, const char *addr);
/* Same, with the address "host:port" taken from stack slots hi, hi+1. */
int wl_raise_addr(lua_State *L, const char *op, int code, int hi);
void wl_push_error(lua_State *L, const char *op, int code, const char *addr);
/* Whether the value at idx is such an error object. */
int wl_is_error(lua_State *L, int idx);
int luaopen_wirelab_error(lua_State *L);

/* ---- addresses (addr.c) ---------------------------------------------- */

/* The host argument at i: a string with no NUL byte in it, or a bad
** argument error (Python's TypeError). */
const char *wl_check_host(lua_State *L, int i);
/* Whether host is a literal to parse, not a name to resolve. */
int wl_numeric_host(const char *host);
/* Every form inet_aton takes, as Python's getaddrinfo does ("127.1",
** "0x7f.0.0.1", "2130706433"), and nothing after it: 1 when host is one. */
int wl_parse_ipv4(const char *host, struct in_addr *a);
/* Numeric host (or "" / "<broadcast>") + port into sa; 0 or a libuv
** error (UV_EAI_NONAME when host is a name that needs resolving). */
int wl_parse_addr(const char *host, int port, int family,
                  struct sockaddr_storage *sa, socklen_t *len);
/* Pushes host, port of sa; returns 2. */
int wl_push_addr(lua_State *L, const struct sockaddr *sa);
/* "host:port", or "[v6]:port" when host has a colon; host alone when
** port < 0. The one place this is written (Lua's: http.url.authority). */
void wl_format_addr(const char *host, lua_Integer port, char *buf,
                    size_t size);
/* The same for a socket address. */
void wl_format_sockaddr(const struct sockaddr *sa, char *buf, size_t size);

/* ---- network namespaces (netns.c) ------------------------------------ */

/* fn(arg) run inside the network namespace nsfd (-1: a new one, which
** the calling thread then stays in only for fn): by wirelab's thread,
** which enters and comes straight back where it may, or, under `unshare
** -r`, where it could not come back, by a short-lived helper thread.
** Returns fn's result (0 or -errno), or the -errno of entering. */
int wl_netns_run(int nsfd, int (*fn)(void *), void *arg);

/* ---- stream endpoints (endpoint.c) --------------------------------- */

/* An object that carries bytes over a descriptor (a socket) registers its
** metatable (at stack slot mt) with a function that gives the object's fd
** from its userdata block, -1 once it is closed. Other C code (http.core's
** response writer) asks wl_endpoint for the value at stack slot i: 1 and
** *ep filled in when it is such an object, else 0. The userdata must be
** kept alive (a user value) while ep is used. */
typedef int (*wl_fd_fn)(void *udata);
typedef struct wl_endpoint_t {
  void *udata;
  wl_fd_fn fd;
} wl_endpoint_t;
void wl_endpoint_register(lua_State *L, int mt, wl_fd_fn fd);
int wl_endpoint(lua_State *L, int i, wl_endpoint_t *ep);
/* The descriptor now, or -1 once the object is closed. */
static inline int wl_endpoint_fd(const wl_endpoint_t *ep) {
  return ep->fd(ep->udata);
}

/* ---- the sandbox supervisor (supervisor.c, cgroup.c) ----------------- */

/* main() of `wirelab --supervise OPTIONS -- PROG ARGS`: the process that
** runs one sandboxed program (see supervisor.c for the protocol). */
int wl_supervise(int argc, char **argv);

#define WL_CG_PATH 512

/* Control groups: the parents wl_cgroup_find found for sandboxes, or the
** groups wl_cgroup_make made for one. Empty strings where there are none;
** why says why a limit cannot be had. */
typedef struct wl_cgroup_t {
  char v2[WL_CG_PATH];       /* cgroup v2 (also for cgroup.kill alone) */
  char mem[WL_CG_PATH];      /* cgroup v1, memory hierarchy */
  char pids[WL_CG_PATH];     /* cgroup v1, pids hierarchy */
  int v2_memory, v2_pids;    /* the v2 group enforces memory / pids */
  int v2_kill;               /* it has cgroup.kill (Linux 5.14) */
  char why[400];
} wl_cgroup_t;

typedef struct wl_cgroup_stats_t {
  long long oom_kills, pids_max, memory_peak;   /* -1: not known */
} wl_cgroup_stats_t;

/* Where wirelab may make groups (once per process: it may move wirelab
** into a leaf of its own v2 group). 0, or -ENOENT when nowhere. */
int wl_cgroup_find(wl_cgroup_t *found);
int wl_cgroup_make(wl_cgroup_t *sb, const wl_cgroup_t *found,
                   const char *name, long long memory, long long pids);
int wl_cgroup_join(const wl_cgroup_t *sb);
int wl_cgroup_signal(const wl_cgroup_t *sb, int sig);
int wl_cgroup_empty(const wl_cgroup_t *sb);
void wl_cgroup_stats(const wl_cgroup_t *sb, wl_cgroup_stats_t *st);
void wl_cgroup_remove(wl_cgroup_t *sb);

/* ---- the Lua state's allocator (alloc.c) ---------------------------- */

/* A new Lua state whose small blocks come from size-class slabs (plain
** malloc under ASan or WIRELAB_ALLOC=malloc); wl_alloc_close after
** lua_close gives the slabs back. */
lua_State *wl_alloc_newstate(void);
void wl_alloc_close(void);

/* ---- embedding (embed.c) --------------------------------------------- */

typedef struct wl_script_t {
  const char *name, *chunkname, *src;
  size_t len;
} wl_script_t;
extern const wl_script_t wl_scripts[];     /* build/scripts.c */

void wl_open_modules(lua_State *L);

#endif
