/*
** readline.c: module "wirelab.readline", the line reader of the
** interactive prompt. A task waiting for a line is parked and the loop
** goes on (servers keep serving while you type). On a terminal libedit
** edits the line through readline's callback interface, fed by a uv_poll
** on stdin. From a pipe or a file, read() hands over what stdin has and the
** prompt splits it with the one reader (wirelab.reader), as every other
** stream. A regular file cannot be polled: it is read at once, as it
** never blocks for long.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>

#include "wl.h"

/* The poll lives as long as the process: wl_loop_close closes it. */
static uv_poll_t poll_stdin;

#define CHUNK 65536            /* one read() of a piped stdin */

static struct {
  uv_poll_t *poll;             /* &poll_stdin once it is set up */
  int pollable, tty, eof, installed;
  wl_waiter_t waiter;          /* the task waiting for a line */
  char *line;                  /* a finished line, not yet taken */
  int have_line;
  int readable;                /* a piped stdin has bytes (or its end) */
} R = {NULL, -1, 0, 0, 0, {NULL, NULL, NULL}, NULL, 0, 0};


/* libedit calls this with a finished line (malloc'd) or NULL at EOF */
static void on_line(char *line) {
  rl_callback_handler_remove();
  R.installed = 0;
  R.line = line;
  R.have_line = 1;
  if (line == NULL)
    R.eof = 1;
}

/* ---- history: ~/.wirelab_history, for a terminal only ---------------- */

#define HISTORY_MAX 1000       /* lines kept across sessions */

static char history_path[4096];
/* the line added last, so no repeats in a row: ours (strdup), freed when
** the next line replaces it and in close() */
static char *last_added;

/* $WIRELAB_HISTORY, else $HOME/.wirelab_history; "" when neither is set */
static void history_open(void) {
  const char *p = getenv("WIRELAB_HISTORY"), *home = getenv("HOME");
  if (p != NULL && p[0] != '\0')
    snprintf(history_path, sizeof history_path, "%s", p);
  else if (home != NULL && home[0] != '\0')
    snprintf(history_path, sizeof history_path, "%s/.wirelab_history", home);
  using_history();
  stifle_history(HISTORY_MAX);
  if (history_path[0] != '\0' && read_history(history_path) == 0 &&
      history_length > 0) {        /* no history yet is fine */
    HIST_ENTRY *last = history_get(history_base + history_length - 1);
    if (last != NULL && last->line != NULL)
      last_added = strdup(last->line);
  }
}

static void history_add(const char *line) {
  if (line[0] == '\0' || (last_added != NULL && strcmp(last_added, line) == 0))
    return;
  add_history(line);
  free(last_added);
  last_added = strdup(line);
}

/* The first call: what stdin is. */
static void setup(void) {
  if (R.pollable >= 0)
    return;
  R.tty = isatty(0);
  R.pollable = uv_poll_init(wl_loop(), &poll_stdin, 0) == 0;
  R.poll = R.pollable ? &poll_stdin : NULL;
  if (R.tty)
    history_open();
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0)
    R.eof = 1;
  else if (R.tty)
    rl_callback_read_char();
  else
    R.readable = 1;
  if (R.have_line || R.eof || R.readable) {
    uv_poll_stop(R.poll);
    wl_wake(&R.waiter, 0);
  }
}

/* Pushes the finished line (or nil at EOF) and forgets it. */
static int push_line(lua_State *L) {
  if (R.have_line && R.line != NULL) {
    if (R.tty)
      history_add(R.line);
    lua_pushstring(L, R.line);
  } else {
    lua_pushnil(L);
  }
  free(R.line);
  R.line = NULL;
  R.have_line = 0;
  return 1;
}

/* Parks the task until stdin is readable; k gets the wake status. */
static int wait_stdin(lua_State *L, lua_KFunction k) {
  wl_check_park(L);
  uv_poll_start(R.poll, UV_READABLE, on_readable);
  return wl_park(L, &R.waiter, -1, k, 0);
}

/* The wake status on top, popped; < 0 when the wait was cancelled or
** interrupted, and the poll is stopped then. */
static int wake_status(lua_State *L) {
  int rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (rc < 0)
    uv_poll_stop(R.poll);
  return rc;
}

static int readline_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = wake_status(L);
  (void)status;
  (void)ctx;
  if (rc < 0) {                /* cancelled or interrupted while waiting */
    if (R.installed) {         /* Ctrl-C: the half-typed line is dropped */
      rl_callback_handler_remove();
      R.installed = 0;
    }
    return wl_raise(L, "readline", rc, NULL);
  }
  return push_line(L);
}

/* readline(prompt) -> the next line edited on the terminal, without its
** newline; nil at EOF. For a terminal only: see read() otherwise. */
static int rl_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (R.waiter.task != NULL)
    return luaL_error(L, "readline: another task is already reading");
  setup();
  if (!R.tty)
    return luaL_error(L, "readline: stdin is not a terminal (use read)");
  if (R.eof)
    return push_line(L);
  if (!R.installed) {
    fflush(stdout);
    rl_callback_handler_install(prompt, on_line);
    R.installed = 1;
  }
  return wait_stdin(L, readline_k);
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

/* read() -> what a piped stdin has (one read(2)), "" at its end */
static int rl_read(lua_State *L) {
  char buf[CHUNK];
  ssize_t r;
  if (R.waiter.task != NULL)
    return luaL_error(L, "read: another task is already reading");
  setup();
  if (R.eof) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (R.pollable && !R.readable)
    return wait_stdin(L, read_k);
  R.readable = 0;
  do
    r = read(0, buf, sizeof buf);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return rl_read(L);         /* woken without data: wait again */
  if (r <= 0) {
    R.eof = 1;
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushlstring(L, buf, (size_t)r);
  return 1;
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = wake_status(L);
  (void)status;
  (void)ctx;
  if (rc < 0)                  /* cancelled or interrupted while waiting */
    return wl_raise(L, "read", rc, NULL);
  if (R.eof) {
    lua_pushliteral(L, "");
    return 1;
  }
  return rl_read(L);
}

/* isatty([fd]): whether fd (default 0, stdin) is a terminal */
static int rl_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 0)));
  return 1;
}

/* close(): the terminal back as it was; nothing more will be read */
static int rl_close(lua_State *L) {
  (void)L;
  if (R.installed) {
    rl_callback_handler_remove();
    R.installed = 0;
  }
  if (R.poll != NULL)
    uv_poll_stop(R.poll);
  if (R.tty && history_path[0] != '\0') {
    stifle_history(HISTORY_MAX);
    write_history(history_path);
  }
  free(last_added);
  last_added = NULL;
  R.eof = 1;
  return 0;
}

/* catch_sigint(on): Ctrl-C interrupts the calling task, not the process */
static int rl_catch_sigint(lua_State *L) {
  luaL_checkany(L, 1);
  if (lua_toboolean(L, 1))
    wl_check_park(L);          /* only a task can be interrupted */
  wl_soft_sigint(L, lua_toboolean(L, 1));
  return 0;
}

static const luaL_Reg funcs[] = {
  {"readline", rl_readline}, {"read", rl_read}, {"isatty", rl_isatty},
  {"close", rl_close},
  {"catch_sigint", rl_catch_sigint},
  {NULL, NULL}
};

int luaopen_wirelab_readline(lua_State *L) {
  wl_waiter_init(&R.waiter);
  luaL_newlib(L, funcs);
  return 1;
}
