/*
** readline.c: module "wirelab.readline", the line reader of the
** interactive prompt. A task waiting for a line is parked and the loop
** goes on (servers keep serving while you type). On a terminal libedit
** edits the line through readline's callback interface, fed by a uv_poll
** on stdin; from a pipe, lines are read as they come. A regular file
** cannot be polled: it is read at once, as it never blocks for long.
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

static struct {
  uv_poll_t *poll;             /* &poll_stdin once it is set up */
  int pollable, tty, eof, installed;
  wl_waiter_t waiter;          /* the task waiting for a line */
  char *line;                  /* a finished line, not yet taken */
  int have_line;
  char *buf;                   /* from a pipe: bytes not yet a line */
  size_t blen, bcap;
} R = {NULL, -1, 0, 0, 0, {NULL, NULL, NULL}, NULL, 0, NULL, 0, 0};


/* libedit calls this with a finished line (malloc'd) or NULL at EOF */
static void on_line(char *line) {
  rl_callback_handler_remove();
  R.installed = 0;
  R.line = line;
  R.have_line = 1;
  if (line == NULL)
    R.eof = 1;
}

/* A whole line in the pipe buffer becomes R.line; at EOF, the rest. */
static int take_buffered(void) {
  char *nl = R.blen ? memchr(R.buf, '\n', R.blen) : NULL;
  size_t n;
  if (nl == NULL && !(R.eof && R.blen > 0))
    return 0;
  n = nl ? (size_t)(nl - R.buf) : R.blen;
  R.line = malloc(n + 1);
  if (R.line == NULL)
    return 0;
  memcpy(R.line, R.buf, n);
  R.line[n] = '\0';
  if (n > 0 && R.line[n - 1] == '\r')
    R.line[n - 1] = '\0';
  n += nl != NULL;
  memmove(R.buf, R.buf + n, R.blen - n);
  R.blen -= n;
  R.have_line = 1;
  return 1;
}

/* Reads what stdin has into the buffer; sets R.eof at its end. */
static void read_some(void) {
  ssize_t r;
  if (R.bcap - R.blen < 4096) {
    size_t cap = R.bcap ? 2 * R.bcap : 8192;
    char *b = realloc(R.buf, cap);
    if (b == NULL) {
      R.eof = 1;
      return;
    }
    R.buf = b;
    R.bcap = cap;
  }
  do
    r = read(0, R.buf + R.blen, R.bcap - R.blen);
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
      R.eof = 1;
    return;
  }
  R.blen += (size_t)r;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0)
    R.eof = 1;
  else if (R.tty)
    rl_callback_read_char();
  else
    read_some();
  if (!R.tty && !R.have_line && !take_buffered() && R.eof)
    R.have_line = 1;           /* nothing more: the reader gets nil */
  if (R.have_line || R.eof) {
    uv_poll_stop(R.poll);
    wl_wake(&R.waiter, 0);
  }
}

/* Pushes the finished line (or nil at EOF) and forgets it. */
static int push_line(lua_State *L) {
  if (R.have_line && R.line != NULL) {
    if (R.tty && R.line[0] != '\0')
      add_history(R.line);
    lua_pushstring(L, R.line);
  } else {
    lua_pushnil(L);
  }
  free(R.line);
  R.line = NULL;
  R.have_line = 0;
  return 1;
}

static int readline_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status;
  (void)ctx;
  lua_pop(L, 1);
  if (rc < 0) {                /* cancelled or interrupted while waiting */
    uv_poll_stop(R.poll);
    if (R.installed) {         /* Ctrl-C: the half-typed line is dropped */
      rl_callback_handler_remove();
      R.installed = 0;
    }
    return wl_raise(L, "readline", rc, NULL);
  }
  return push_line(L);
}

/* readline(prompt) -> the next line without its newline, nil at EOF */
static int rl_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (R.waiter.task != NULL)
    return luaL_error(L, "readline: another task is already reading");
  if (R.pollable < 0) {        /* the first call: what stdin is */
    R.tty = isatty(0);
    R.pollable = uv_poll_init(wl_loop(), &poll_stdin, 0) == 0;
    R.poll = R.pollable ? &poll_stdin : NULL;
  }
  if (!R.tty && (take_buffered() || R.eof))
    return push_line(L);
  if (!R.pollable) {           /* a file: read on, it does not block */
    while (!take_buffered() && !R.eof)
      read_some();
    return push_line(L);
  }
  if (R.tty && !R.installed) {
    fflush(stdout);
    rl_callback_handler_install(prompt, on_line);
    R.installed = 1;
  }
  wl_check_park(L);
  uv_poll_start(R.poll, UV_READABLE, on_readable);
  return wl_park(L, &R.waiter, -1, readline_k, 0);
}

static int rl_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(0));
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
  free(R.buf);
  R.buf = NULL;
  R.blen = R.bcap = 0;
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
  {"readline", rl_readline}, {"isatty", rl_isatty}, {"close", rl_close},
  {"catch_sigint", rl_catch_sigint},
  {NULL, NULL}
};

int luaopen_wirelab_readline(lua_State *L) {
  wl_waiter_init(&R.waiter);
  luaL_newlib(L, funcs);
  return 1;
}
