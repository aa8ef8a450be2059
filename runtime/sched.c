/*
** sched.c: tasks over the libuv loop. A task is a coroutine plus a small
** struct (the userdata "wirelab.task"). Blocking calls park the running
** task on a waiter and yield; libuv callbacks wake waiters, which queues
** the task; the scheduler resumes ready tasks between loop iterations, so
** callbacks never run Lua. Timeouts of all tasks share one uv timer over a
** binary heap of deadlines: no libuv handle per task, so spawning is cheap
** and a finished task has nothing to close.
*/
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

#define TASK_MT "wirelab.task"
#define TASKS_KEY "wirelab.tasks"  /* live tasks: struct pointer -> udata */
#define WAITNAMES_KEY "wirelab.waitnames"  /* function -> its name */
#define MAX_BURST 1024             /* resumes between two polls of the loop */
#define SLICE_NS 5000000           /* run this long, and I/O that never waits
                                      yields to the loop (wl_turn_over) */

enum { T_READY, T_RUNNING, T_PARKED, T_DONE, T_FAILED };

/* Every idle connection has one: the flags are bytes, and the userdata
** has one user value, the thread while the task lives, then its results
** (or error) once it has ended. */
struct wl_task_t {
  lua_State *co;
  wl_waiter_t self;          /* for waits with no request of their own */
  wl_waiter_t *parked;       /* where the task waits, while T_PARKED */
  wl_waiter_t joiners;       /* tasks in join() */
  double deadline;           /* while in the timer heap */
  int hidx;                  /* index in the heap, -1 when not in it */
  int status;                /* resume value while T_READY */
  int id;                    /* 1, 2, 3... in the order of spawn */
  unsigned char state, started, cancelled, joined, is_main;
};

static struct {
  uv_loop_t loop;
  uv_timer_t timer;          /* fires at the earliest deadline */
  double armed;              /* deadline the timer is set for, or -1 */
  lua_State *L;              /* the main thread */
  wl_task_t **ready;         /* ring buffer */
  size_t rhead, rcount, rcap;
  wl_task_t **heap;
  size_t hcount, hcap;
  wl_task_t *current;
  wl_task_t *only;           /* in a forked child: the one task that runs */
  uint64_t polled_at;        /* uv_hrtime() of the loop's last poll */
  uint64_t resumed_at;       /* uv_hrtime() of the running task's resume */
  int handles;
  int last_id;               /* the id of the newest task */
  int closed;                /* wl_sched_close has run: nothing resumes */
} S;

uv_loop_t *wl_loop(void) { return &S.loop; }
void wl_handle_count(int delta) { S.handles += delta; }

static double now(void) { return (double)uv_hrtime() / 1e9; }

static wl_task_t *task_of(lua_State *L) {
  return *(wl_task_t **)lua_getextraspace(L);
}

wl_task_t *wl_task_of(lua_State *L) { return task_of(L); }
wl_task_t *wl_running_task(void) { return S.current; }
lua_State *wl_task_thread(wl_task_t *t) { return t->co; }

/* ---- ready queue ------------------------------------------------------ */

static void ready_push(wl_task_t *t) {
  if (S.rcount == S.rcap) {
    size_t ncap = S.rcap ? S.rcap * 2 : 64, i;
    wl_task_t **nr = malloc(ncap * sizeof *nr);
    if (nr == NULL) abort();   /* cannot lose a wakeup; nothing sane left */
    for (i = 0; i < S.rcount; i++)
      nr[i] = S.ready[(S.rhead + i) % S.rcap];
    free(S.ready);
    S.ready = nr;
    S.rhead = 0;
    S.rcap = ncap;
  }
  S.ready[(S.rhead + S.rcount++) % S.rcap] = t;
}

static wl_task_t *ready_pop(void) {
  wl_task_t *t = S.ready[S.rhead];
  S.rhead = (S.rhead + 1) % S.rcap;
  S.rcount--;
  return t;
}

/* ---- timer heap ------------------------------------------------------- */

static void heap_set(size_t i, wl_task_t *t) { S.heap[i] = t; t->hidx = (int)i; }

static void heap_up(size_t i) {
  wl_task_t *t = S.heap[i];
  while (i > 0 && S.heap[(i - 1) / 2]->deadline > t->deadline) {
    heap_set(i, S.heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(i, t);
}

static void heap_down(size_t i) {
  wl_task_t *t = S.heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= S.hcount) break;
    if (c + 1 < S.hcount && S.heap[c + 1]->deadline < S.heap[c]->deadline) c++;
    if (S.heap[c]->deadline >= t->deadline) break;
    heap_set(i, S.heap[c]);
    i = c;
  }
  heap_set(i, t);
}

static int heap_insert(wl_task_t *t, double deadline) {
  if (S.hcount == S.hcap) {
    size_t ncap = S.hcap ? S.hcap * 2 : 64;
    wl_task_t **nh = realloc(S.heap, ncap * sizeof *nh);
    if (nh == NULL) return UV_ENOMEM;
    S.heap = nh;
    S.hcap = ncap;
  }
  t->deadline = deadline;
  heap_set(S.hcount++, t);
  heap_up(S.hcount - 1);
  return 0;
}

static void heap_remove(wl_task_t *t) {
  size_t i = (size_t)t->hidx;
  wl_task_t *last = S.heap[--S.hcount];
  t->hidx = -1;
  if (i == S.hcount) return;
  heap_set(i, last);
  heap_up(i);
  heap_down((size_t)last->hidx);
}

static void on_timer(uv_timer_t *h);

static void start_timer(void) {
  double ms = ceil((S.heap[0]->deadline - now()) * 1000);
  S.armed = S.heap[0]->deadline;
  /* libuv counts from the loop's cached clock, stale by however long the
  ** tasks just ran: refresh it, or the timer fires early */
  uv_update_time(&S.loop);
  uv_timer_start(&S.timer, on_timer, ms > 0 ? (uint64_t)ms : 0, 0);
}

static void on_timer(uv_timer_t *h) {
  double t = now() + 0.0005;   /* uv timers have ms resolution */
  int woke = 0;
  (void)h;
  S.armed = -1;
  while (S.hcount > 0 && S.heap[0]->deadline <= t)
    woke += wl_wake(S.heap[0]->parked, UV_ETIMEDOUT);
  if (S.hcount > 0) start_timer();   /* early, or more deadlines to come */
  /* libuv (1.44) runs a timer already due before it polls: without a
  ** stop, uv_run(UV_RUN_ONCE) would then block in the poll, the woken
  ** task waiting for some other event (join(0), wait_readable(0)) */
  if (woke) uv_stop(&S.loop);
}

/* Once per loop iteration rather than on every park. */
static void arm_timer(void) {
  if (S.hcount == 0) {
    if (S.armed >= 0) uv_timer_stop(&S.timer);
    S.armed = -1;
  } else if (S.armed != S.heap[0]->deadline) {
    start_timer();
  }
}

/* ---- waiters ---------------------------------------------------------- */

void wl_waiter_init(wl_waiter_t *w) { w->task = NULL; w->prev = w->next = w; }
void wl_list_init(wl_waiter_t *head) { wl_waiter_init(head); }

void wl_list_add(wl_waiter_t *head, wl_waiter_t *w) {
  w->prev = head->prev;
  w->next = head;
  head->prev->next = w;
  head->prev = w;
}

int wl_list_park(lua_State *L, wl_waiter_t *head, double timeout,
                 lua_KFunction k, lua_KContext ctx) {
  wl_task_t *t;
  wl_check_park(L);
  t = task_of(L);
  wl_list_add(head, &t->self);
  return wl_park(L, &t->self, timeout, k, ctx);
}

int wl_list_wake_one(wl_waiter_t *head, int status) {
  while (head->next != head)
    if (wl_wake(head->next, status)) return 1;
  return 0;
}

int wl_list_wake_all(wl_waiter_t *head, int status) {
  int n = 0;
  while (head->next != head) n += wl_wake(head->next, status);
  return n;
}

int wl_wake(wl_waiter_t *w, int status) {
  wl_task_t *t = w->task;
  w->prev->next = w->next;   /* unlink: harmless when self-linked */
  w->next->prev = w->prev;
  w->prev = w->next = w;
  if (t == NULL) return 0;
  w->task = NULL;
  /* at exit, a request finishing in wl_loop_close (a lookup on the
  ** thread pool) finds its task freed by lua_close: it frees itself */
  if (S.closed) return 0;
  assert(t->state == T_PARKED && t->parked == w);
  t->parked = NULL;
  if (t->hidx >= 0) heap_remove(t);
  t->status = status;
  t->state = T_READY;
  ready_push(t);
  return 1;
}

wl_waiter_t *wl_self_waiter(lua_State *L) {
  wl_task_t *t = task_of(L);
  return t ? &t->self : NULL;
}

int wl_can_park(lua_State *L) { return task_of(L) != NULL && lua_isyieldable(L); }

int wl_check_park(lua_State *L) {
  if (task_of(L) == NULL)
    return luaL_error(L, "blocking call outside a wirelab task "
                      "(run it in wirelab.spawn, not in a plain coroutine)");
  if (!lua_isyieldable(L))
    return luaL_error(L, "blocking call where the task cannot yield "
                      "(inside a metamethod, iterator or C callback)");
  return 0;
}

int wl_park(lua_State *L, wl_waiter_t *w, double timeout, lua_KFunction k,
            lua_KContext ctx) {
  wl_task_t *t;
  wl_check_park(L);
  t = task_of(L);
  if (t->cancelled) {        /* cancelled while running: raise at once */
    /* out of the wait list the caller put w in: a task that catches the
    ** error and waits again would add it twice (a list that loops, and
    ** a wake-up that never ends), and one that ends would leave its
    ** freed waiter in the list */
    wl_wake(w, 0);
    lua_pushinteger(L, UV_ECANCELED);
    return k(L, LUA_YIELD, ctx);
  }
  assert(w->task == NULL);
  w->task = t;
  t->parked = w;
  t->state = T_PARKED;
  if (timeout >= 0 && heap_insert(t, now() + timeout) < 0) {
    wl_wake(w, UV_ENOMEM);
  }
  return lua_yieldk(L, 0, ctx, k);
}

/* Park on the task's own waiter and queue it at once: a plain yield that
** lets every other ready task run first, and the loop too once the slice
** is over (see run_ready). */
int wl_yield(lua_State *L, lua_KFunction k, lua_KContext ctx) {
  wl_task_t *t;
  wl_check_park(L);
  t = task_of(L);
  t->self.task = t;
  t->parked = &t->self;
  t->state = T_PARKED;
  wl_wake(&t->self, 0);
  return lua_yieldk(L, 0, ctx, k);
}

static int yield_now(lua_State *L, lua_KFunction k) {
  return wl_yield(L, k, 0);
}

/* Whether the running task has had a whole slice since it was resumed: a
** socket call that would complete without waiting (a UDP flood, a fast
** peer) yields first, or one busy task would starve timers and every other
** client. Counted from the task's own resume, not from the loop's last
** poll: else a task resumed after a busy one found the slice spent, yielded
** before doing anything, and never got on (a connect done, its first send
** held off until the busy sender finished). */
int wl_turn_over(void) {
  return uv_hrtime() - S.resumed_at > SLICE_NS;
}

/* ---- tasks ------------------------------------------------------------ */

static wl_task_t *check_task(lua_State *L, int i) {
  return (wl_task_t *)luaL_checkudata(L, i, TASK_MT);
}

/* Push the udata of live or finished task t (it is in TASKS while live). */
static void push_task(lua_State *L, wl_task_t *t) {
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_rawgetp(L, -1, t);
  lua_remove(L, -2);
}

/* spawn(fn, ...): the function and its arguments move to the new thread. */
static int new_task(lua_State *L, int first) {
  int n = lua_gettop(L) - first + 1;
  wl_task_t *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->hidx = -1;
  t->id = ++S.last_id;
  wl_waiter_init(&t->self);
  wl_waiter_init(&t->joiners);
  luaL_setmetatable(L, TASK_MT);
  t->co = lua_newthread(L);
  *(wl_task_t **)lua_getextraspace(t->co) = t;
  lua_setiuservalue(L, -2, 1);               /* the thread stays alive */
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  lua_rotate(L, first, 1);                   /* task below fn and args */
  lua_xmove(L, t->co, n);
  t->state = T_READY;
  ready_push(t);
  return 1;
}

static int wl_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  return new_task(L, 1);
}

static int safe_tostring(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* The task ended: its results (or error) replace the thread as the user
** value, and the joiners wake. */
static void finish(wl_task_t *t, int ok, int nres) {
  lua_State *L = S.L, *co = t->co;
  int i;
  wl_signals_task_ended(t);
  push_task(L, t);
  if (ok) {
    lua_createtable(L, nres, 1);
    lua_xmove(co, L, nres);
    for (i = nres; i >= 1; i--) lua_rawseti(L, -1 - i, i);
    lua_pushinteger(L, nres);
    lua_setfield(L, -2, "n");
    t->state = T_DONE;
  } else {
    /* a task stopped because the process ends on a signal has nothing to
    ** report: the exit status (128 + n) says it */
    int quiet = wl_signo != 0;
    lua_xmove(co, L, 1);       /* a dead thread cannot run __tostring */
    if (!quiet && lua_istable(L, -1) && t->cancelled) {
      lua_pushliteral(L, "code");
      lua_rawget(L, -2);
      quiet = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "ECANCELED") == 0;
      lua_pop(L, 1);
    }
    if (!quiet && t->joiners.next == &t->joiners) {
      /* protected: __tostring may itself raise (RELIABILITY item 37) */
      lua_pushcfunction(L, safe_tostring);
      lua_pushvalue(L, -2);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushliteral(L, "(error object cannot be printed)");
      }
      luaL_traceback(L, co, lua_tostring(L, -1), 0);
      lua_writestringerror("wirelab: %s\n", lua_tostring(L, -1));
      if (!t->is_main)
        lua_writestringerror("%s\n", "(in a background task; the process goes on)");
      lua_pop(L, 2);
    }
    /* a failed coroutine is not unwound: close its <close> variables (a
    ** cancelled task's sockets) now, not whenever the collector runs */
    lua_resetthread(co);
    t->state = T_FAILED;
  }
  lua_setiuservalue(L, -2, 1);               /* the thread may go */
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_pushnil(L);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  wl_list_wake_all(&t->joiners, 0);
  t->co = NULL;
}

static void run_task(wl_task_t *t) {
  lua_State *co = t->co;
  int nargs, nres, rc;
  if (!t->started) {
    t->started = 1;
    if (t->cancelled) {                      /* never ran: a clean cancel */
      lua_settop(co, 0);
      wl_push_error(co, "task", UV_ECANCELED, NULL);
      finish(t, 0, 1);
      return;
    }
    nargs = lua_gettop(co) - 1;
  } else {
    lua_pushinteger(co, t->cancelled ? UV_ECANCELED : t->status);
    nargs = 1;
  }
  t->state = T_RUNNING;
  S.current = t;
  S.resumed_at = uv_hrtime();
  rc = lua_resume(co, S.L, nargs, &nres);
  S.current = NULL;
  if (rc == LUA_YIELD) {
    lua_pop(co, nres);
    if (t->state == T_RUNNING) {             /* a bare coroutine.yield() */
      t->self.task = t;
      t->parked = &t->self;
      t->state = T_PARKED;
      wl_wake(&t->self, 0);
    }
  } else {
    finish(t, rc == LUA_OK, rc == LUA_OK ? nres : 1);
  }
}

/* Runs the ready tasks. One queued meanwhile (a wake-up by another task,
** a yield) runs in the same burst only while the slice lasts, so a task
** that keeps yielding cannot hold off timers and I/O. */
static void run_ready(void) {
  size_t n = 0, at_start = S.rcount;
  while (S.rcount > 0 && n < MAX_BURST && !wl_signo) {
    wl_task_t *t;
    if (n >= at_start && uv_hrtime() - S.polled_at > SLICE_NS) break;
    n++;
    t = ready_pop();
    if (S.only == NULL || t == S.only) run_task(t);
  }
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  wl_task_t *t = check_task(L, 1);
  int rc = (int)lua_tointeger(L, -1), i, n;
  (void)status; (void)ctx;
  lua_pop(L, 1);
  if (t->state != T_DONE && t->state != T_FAILED)
    return wl_raise(L, "join", rc < 0 ? rc : UV_EINVAL, NULL);
  t->joined = 1;
  lua_getiuservalue(L, 1, 1);
  if (t->state == T_FAILED)
    return lua_error(L);
  n = (int)(lua_getfield(L, -1, "n"), lua_tointeger(L, -1));
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  return n;
}

static int task_join(lua_State *L) {
  wl_task_t *t = check_task(L, 1);
  double timeout = luaL_optnumber(L, 2, -1);
  lua_settop(L, 1);
  if (t->state == T_DONE || t->state == T_FAILED) {
    lua_pushinteger(L, 0);
    return join_k(L, LUA_OK, 0);
  }
  if (task_of(L) == t)
    return luaL_error(L, "a task cannot join itself");
  return wl_list_park(L, &t->joiners, timeout, join_k, 0);
}

static int task_cancel(lua_State *L) {
  wl_task_t *t = check_task(L, 1);
  if (t->state == T_DONE || t->state == T_FAILED || t->cancelled) return 0;
  t->cancelled = 1;
  if (t->state == T_PARKED) wl_wake(t->parked, UV_ECANCELED);
  return 0;
}

int wl_task_interrupt(wl_task_t *t, int status) {
  return t->state == T_PARKED && wl_wake(t->parked, status);
}

/* interrupt(): wake a parked task with EINTR, without the stickiness of
** cancel -- for a server's shutdown() to end its wait for a client. */
static int task_interrupt(lua_State *L) {
  lua_pushboolean(L, wl_task_interrupt(check_task(L, 1), UV_EINTR));
  return 1;
}

static int task_done(lua_State *L) {
  wl_task_t *t = check_task(L, 1);
  lua_pushboolean(L, t->state == T_DONE || t->state == T_FAILED);
  return 1;
}

static const char *const state_names[] = {
  "ready", "running", "waiting", "done", "failed"
};

/* The name of the call a parked task waits in ("recv", "sleep"): the
** nearest call written as a method or a field (s:recv, q:get,
** wirelab.sleep), since below it a tail call has no name, or helpers do;
** else the name the waiting C function was given with _name_waits (a
** call through pcall has none). NULL when unknown. L: any thread but co,
** to look in the registry with. */
static const char *waiting_in(lua_State *L, wl_task_t *t) {
  lua_Debug ar;
  const char *name = NULL;
  int level;
  if (t->state != T_PARKED || t->co == NULL) return NULL;
  for (level = 0; level < 6 && lua_getstack(t->co, level, &ar); level++)
    if (lua_getinfo(t->co, "n", &ar) && ar.name != NULL &&
        (strcmp(ar.namewhat, "method") == 0 || strcmp(ar.namewhat, "field") == 0))
      return ar.name;
  if (lua_getstack(t->co, 0, &ar) && lua_getinfo(t->co, "f", &ar)) {
    lua_xmove(t->co, L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, WAITNAMES_KEY);
    lua_rotate(L, -2, 1);
    if (lua_rawget(L, -2) == LUA_TSTRING)
      name = lua_tostring(L, -1);     /* held by the registry table */
    lua_pop(L, 2);
  }
  return name;
}

/* _name_waits(t): the functions in t are known by their keys there when
** a task waits in them (socket methods called through pcall) */
static int wl_name_waits(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, LUA_REGISTRYINDEX, WAITNAMES_KEY);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);         /* names[fn] = key */
    } else {
      lua_pop(L, 1);
    }
  }
  return 0;
}

/* <task 3 waiting in recv>, <task 1 running>, <task 4 done> */
static int task_tostring(lua_State *L) {
  wl_task_t *t = check_task(L, 1);
  const char *in = waiting_in(L, t);
  lua_pushfstring(L, "<task %d %s%s%s>", t->id, state_names[t->state],
                  in ? " in " : "", in ? in : "");
  return 1;
}

/* t:state() -> "ready"|"running"|"waiting"|"done"|"failed", id[, call] */
static int task_state(lua_State *L) {
  wl_task_t *t = check_task(L, 1);
  const char *in = waiting_in(L, t);
  lua_pushstring(L, state_names[t->state]);
  lua_pushinteger(L, t->id);
  if (in == NULL) return 2;
  lua_pushstring(L, in);
  return 3;
}

static int by_id(const void *a, const void *b) {
  int x = (*(wl_task_t *const *)a)->id, y = (*(wl_task_t *const *)b)->id;
  return (x > y) - (x < y);
}

/* tasks() -> the live tasks (not yet done), oldest first */
static int wl_tasks(lua_State *L) {
  wl_task_t **all = NULL;
  size_t n = 0, cap = 0, i;
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    wl_task_t *t = (wl_task_t *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (t == NULL || t->state == T_DONE || t->state == T_FAILED) continue;
    if (n == cap) {
      wl_task_t **more = realloc(all, (cap = cap ? 2 * cap : 16) * sizeof *all);
      if (more == NULL) { free(all); return wl_raise(L, "tasks", UV_ENOMEM, NULL); }
      all = more;
    }
    all[n++] = t;
  }
  qsort(all, n, sizeof *all, by_id);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_rawgetp(L, -2, all[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(all);
  return 1;
}

/* ---- sleeping and time ------------------------------------------------ */

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status; (void)ctx;
  if (rc < 0 && rc != UV_ETIMEDOUT) return wl_raise(L, "sleep", rc, NULL);
  return 0;
}

static int wl_sleep(lua_State *L) {
  double s = luaL_optnumber(L, 1, 0);
  luaL_argcheck(L, s >= 0 && s == s, 1, "must be a non-negative number");
  if (s == 0) return yield_now(L, sleep_k);
  wl_check_park(L);
  return wl_park(L, &task_of(L)->self, s, sleep_k, 0);
}

static int wl_now(lua_State *L) { lua_pushnumber(L, now()); return 1; }

static int wl_time(lua_State *L) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  lua_pushnumber(L, (double)tv.tv_sec + tv.tv_usec / 1e6);
  return 1;
}

static int wl_handles(lua_State *L) { lua_pushinteger(L, S.handles); return 1; }

static int wl_current(lua_State *L) {
  wl_task_t *t = task_of(L);
  if (t == NULL) return 0;
  push_task(L, t);
  return 1;
}

/* ---- the main loop ---------------------------------------------------- */

/* Runs the function on the stack (below nargs arguments) as the main task
** until it ends; returns the process exit status. */
int wl_sched_run(lua_State *L, int nargs) {
  wl_task_t *main;
  int code;
  new_task(L, lua_gettop(L) - nargs);
  main = (wl_task_t *)lua_touserdata(L, -1);
  main->is_main = 1;
  S.polled_at = uv_hrtime();
  for (;;) {
    run_ready();
    if (main->state == T_DONE || main->state == T_FAILED || wl_signo) break;
    arm_timer();
    wl_output_flush();            /* once per loop turn, not per log line */
    if (S.rcount > 0) {
      uv_run(&S.loop, UV_RUN_NOWAIT);
    } else if (!uv_loop_alive(&S.loop)) {
      lua_writestringerror("%s\n", "wirelab: deadlock: the main task waits "
                           "for something no task, timer or socket can do");
      lua_pop(L, 1);
      return 1;
    } else {
      uv_run(&S.loop, UV_RUN_ONCE);
    }
    S.polled_at = uv_hrtime();
  }
  if (wl_signo) {
    code = 128 + wl_signo;
  } else if (main->state == T_FAILED) {
    code = 1;
  } else {                   /* wirelab.main returns the exit status */
    lua_getiuservalue(L, -1, 1);
    lua_rawgeti(L, -1, 1);
    code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return code;
}

static const luaL_Reg funcs[] = {
  {"spawn", wl_spawn}, {"sleep", wl_sleep}, {"now", wl_now},
  {"time", wl_time}, {"handles", wl_handles}, {"current", wl_current},
  {"tasks", wl_tasks}, {"_name_waits", wl_name_waits}, {NULL, NULL}
};
static const luaL_Reg task_methods[] = {
  {"join", task_join}, {"cancel", task_cancel}, {"done", task_done},
  {"interrupt", task_interrupt}, {"state", task_state}, {NULL, NULL}
};

static void new_task_class(lua_State *L) {
  luaL_newmetatable(L, TASK_MT);
  luaL_newlib(L, task_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, task_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* Before any module loads (main.c): luaopen_wirelab_core only registers. */
void wl_sched_init(lua_State *L) {
  /* copied into every new coroutine: plain coroutines are not tasks */
  *(wl_task_t **)lua_getextraspace(L) = NULL;
  S.L = L;
  S.armed = -1;
  uv_loop_init(&S.loop);
  uv_timer_init(&S.loop, &S.timer);   /* active only while tasks sleep */
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, WAITNAMES_KEY);
  new_task_class(L);
}

/* fork() in the child: the parent's other tasks (its accept loop) must
** not run twice, so only the calling task goes on. */
int wl_sched_forked(lua_State *L) {
  int rc = uv_loop_fork(&S.loop);
  if (rc < 0) return rc;
  S.only = task_of(L);
  return 0;
}

int luaopen_wirelab_core(lua_State *L) {
  assert(S.L != NULL);         /* wl_sched_init first */
  luaL_newlib(L, funcs);
  wl_waitq_register(L, -1);
  lua_pushliteral(L, WL_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}

/* At exit: nothing will be resumed again; forget every wait so that the
** timer never touches a task lua_close is about to free. */
void wl_sched_close(void) {
  S.closed = 1;
  S.hcount = 0;
  S.rcount = 0;
  uv_timer_stop(&S.timer);
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* After lua_close: run close callbacks of everything still open. */
void wl_loop_close(void) {
  uv_walk(&S.loop, close_any, NULL);
  uv_run(&S.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&S.loop) != 0) assert(!"handles left open at exit");
  free(S.ready);
  free(S.heap);
  S.ready = NULL;
  S.heap = NULL;
}
