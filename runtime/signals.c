/*
** signals.c: what the process does on SIGINT, SIGTERM and SIGPIPE.
** SIGINT and SIGTERM end the process with 128 + signal: the handler sets
** wl_signo, which the scheduler checks before every resume, and stops a
** task spinning in Lua with a hook. At the prompt (wl_soft_sigint) a
** Ctrl-C interrupts what the prompt runs instead. SIGPIPE does nothing:
** writes see EPIPE. A handler only sets flags, hooks and uv_async_send,
** all async-signal-safe; the wait of the prompt's task is ended from the
** loop, in on_wakeup.
*/
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

#define HOOK_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT)

volatile sig_atomic_t wl_signo;

static struct {
  uv_async_t wakeup;         /* handlers break uv_run with it */
  wl_task_t *soft;           /* the prompt's task: SIGINT interrupts it */
  volatile sig_atomic_t soft_pending;   /* ... once the loop gets it */
} G;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  G.soft_pending = 0;          /* a Ctrl-C at the prompt, delivered */
  luaL_error(L, "interrupted");
}

static void stop_task(wl_task_t *t) {
  lua_sethook(wl_task_thread(t), interrupt_hook, HOOK_MASK, 1);
}

static void on_sigpipe(int sig) { (void)sig; }

static void on_signal(int signo) {
  wl_task_t *t = wl_running_task();
  if (signo == SIGINT && G.soft != NULL && G.soft_pending < 2) {
    /* at the prompt, Ctrl-C stops what it runs, not the process: Lua
    ** code running now is interrupted by the hook; a wait (a recv, the
    ** prompt itself) is interrupted from the loop, in on_wakeup. If the
    ** loop does not get there (another task spins), a second Ctrl-C
    ** stops the task that runs; a third ends the process as usual. */
    if (G.soft_pending++ == 0 ? t == G.soft : t != NULL)
      stop_task(t);
    uv_async_send(&G.wakeup);
    return;
  }
  wl_signo = signo;
  if (t != NULL)   /* a task spinning in Lua never returns to the loop */
    stop_task(t);
  uv_async_send(&G.wakeup);    /* async-signal-safe */
}

static void on_wakeup(uv_async_t *h) {
  wl_task_t *t = G.soft;
  (void)h;
  if (!G.soft_pending || t == NULL)
    return;
  if (wl_task_interrupt(t, UV_EINTR)) {  /* its wait ends with EINTR */
    lua_sethook(wl_task_thread(t), NULL, 0, 0);
    G.soft_pending = 0;
  } else {                     /* queued or running: stopped by the hook */
    stop_task(t);
  }
}

/* The running task becomes the prompt's (on), or none (off): see
** on_signal. */
void wl_soft_sigint(lua_State *L, int on) {
  G.soft = on ? wl_task_of(L) : NULL;
  G.soft_pending = 0;
}

void wl_signals_task_ended(wl_task_t *t) {
  if (G.soft == t)
    G.soft = NULL;
}

/* A signal inherited as ignored stays ignored, as Python leaves it: a
** server started with & from a script must survive the terminal's Ctrl-C,
** and one started under nohup its hangup. */
static void catch_unless_ignored(int signo, const struct sigaction *sa) {
  struct sigaction old;
  if (sigaction(signo, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
    return;
  sigaction(signo, sa, NULL);
}

/* After wl_sched_init: the wakeup lives on the loop (wl_loop_close
** closes it), unreferenced so that it never keeps the loop alive. */
void wl_signals_init(void) {
  struct sigaction sa;
  uv_async_init(wl_loop(), &G.wakeup, on_wakeup);
  uv_unref((uv_handle_t *)&G.wakeup);
  /* SIGPIPE is caught by a handler that does nothing, not ignored: a
  ** write to a closed pipe returns EPIPE all the same, and exec resets a
  ** caught signal to its default, so programs started with io.popen or
  ** os.execute (which do not go through libuv's reset) get SIG_DFL */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  catch_unless_ignored(SIGINT, &sa);
  catch_unless_ignored(SIGTERM, &sa);
}
