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
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>

#include "wl.h"

static void on_line(char *line);

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
  char prompt[64];             /* the prompt of the line being edited */
} R = {NULL, -1, 0, 0, 0, {NULL, NULL, NULL}, NULL, 0, 0, ""};

/* ---- the edited line and what tasks print meanwhile ------------------ */

/* Takes the edited line off the screen, the cursor at its start: output.c
** calls it before the first byte a task writes while a line is edited. A
** line longer than the terminal is wide spans rows above the cursor. */
static void erase_line(void) {
  struct winsize ws;
  int cols = ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  int up = ((int)strlen(R.prompt) + rl_point) / cols;
  if (up > 0) fprintf(rl_outstream, "\r\033[%dA\033[J", up);
  else fputs("\r\033[J", rl_outstream);
  fflush(rl_outstream);
}

/* The prompt and the half-typed line again, below what was written. */
static void redraw_line(void) {
  rl_forced_update_display();
}

static void edit_begin(const char *prompt) {
  snprintf(R.prompt, sizeof R.prompt, "%s", prompt);
  fflush(stdout);
  rl_callback_handler_install(prompt, on_line);
  R.installed = 1;
  wl_output_prompt(erase_line, redraw_line);
}

static void edit_end(void) {
  if (R.installed) rl_callback_handler_remove();
  R.installed = 0;
  wl_output_prompt(NULL, NULL);
}


/* libedit calls this with a finished line (malloc'd) or NULL at EOF */
static void on_line(char *line) {
  edit_end();
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

/* ---- Tab completion: the candidates come from Lua ------------------- */

/* Tab is ours (rl_add_defun), not libedit's completion, which rings the
** bell even after it completed a word. The completer runs in libedit's key
** callback, outside any task: on the main thread, where it must not yield
** (a pcall there says so). */
static lua_State *mainL;
static int completer = LUA_NOREF;  /* registry ref of the Lua function */

/* Word breaks for Lua: `.` and `:` are not among them, so the word at the
** cursor is a whole path (`srv:se`); a quote is, so `require "so` gives
** the module name. */
static const char word_breaks[] = " \t\n\"'`@$><=;|&{(,+-*/%^~#[]";

/* The candidates' longest common prefix, past the len bytes of the word
** they all start with; NULL when none is longer. malloc'd. */
static char *common_rest(lua_State *L, int t, size_t len) {
  int n = (int)lua_rawlen(L, t), i;
  const char *first;
  size_t common;
  lua_rawgeti(L, t, 1);
  first = lua_tolstring(L, -1, &common);
  lua_pop(L, 1);              /* the table still holds it */
  if (first == NULL) return NULL;
  for (i = 2; i <= n; i++) {
    size_t j = 0, clen;
    const char *c;
    lua_rawgeti(L, t, i);
    c = lua_tolstring(L, -1, &clen);
    while (c != NULL && j < common && j < clen && first[j] == c[j]) j++;
    common = c != NULL ? j : common;
    lua_pop(L, 1);
  }
  return common > len ? strndup(first + len, common - len) : NULL;
}

/* Several candidates and nothing to add: they are listed under the line,
** as many to a row as the terminal is wide, and the line is drawn again. */
static void list_candidates(lua_State *L, int t) {
  struct winsize ws;
  int cols = ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  int n = (int)lua_rawlen(L, t), i, col = 0;
  size_t width = 0;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    if (lua_rawlen(L, -1) > width) width = lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  width += 2;
  fputs("\n", rl_outstream);
  for (i = 1; i <= n && i <= 200; i++) {
    lua_rawgeti(L, t, i);
    if (col > 0 && col + (int)width > cols) { fputs("\n", rl_outstream); col = 0; }
    fprintf(rl_outstream, "%-*s", (int)width, lua_tostring(L, -1));
    col += (int)width;
    lua_pop(L, 1);
  }
  if (n > 200) fprintf(rl_outstream, "\n... (%d more)", n - 200);
  fputs("\n", rl_outstream);
  fflush(rl_outstream);
  rl_forced_update_display();
}

/* Tab: the word before the cursor, completed from the Lua completer's
** list. One candidate, or a longer prefix they share, is inserted;
** several with nothing to add are listed. (libedit's own completion rings
** the bell even when it completes.) Returns 0: a key handler's "done". */
static int tab_key(int count, int key) {
  lua_State *L = mainL;
  int top, start = rl_point;
  (void)count;
  (void)key;
  if (L == NULL || completer == LUA_NOREF) return 0;
  while (start > 0 && strchr(word_breaks, rl_line_buffer[start - 1]) == NULL)
    start--;
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer);
  lua_pushlstring(L, rl_line_buffer, (size_t)rl_point);
  lua_pushlstring(L, rl_line_buffer + start, (size_t)(rl_point - start));
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1) && lua_rawlen(L, -1) > 0) {
    char *rest = common_rest(L, lua_gettop(L), (size_t)(rl_point - start));
    if (rest != NULL) {
      erase_line();            /* libedit redraws from the line's start */
      rl_insert_text(rest);
      free(rest);
      rl_forced_update_display();
    } else if (lua_rawlen(L, -1) > 1) {
      list_candidates(L, lua_gettop(L));
    }
  }
  lua_settop(L, top);
  return 0;
}

/* The first call: what stdin is. On a terminal, libedit draws on its own
** stream over fd 1, apart from stdout: output.c takes what tasks write to
** stdout for output to move above the line, never libedit's drawing. */
static void setup(void) {
  if (R.pollable >= 0)
    return;
  R.tty = isatty(0);
  R.pollable = uv_poll_init(wl_loop(), &poll_stdin, 0) == 0;
  R.poll = R.pollable ? &poll_stdin : NULL;
  if (R.tty) {
    int fd = dup(1);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL && fd >= 0) close(fd);
    rl_outstream = out != NULL ? out : stderr;
    rl_readline_name = "wirelab";
    history_open();            /* initializes libedit, then Tab is ours */
    rl_add_defun("wirelab-complete", tab_key, '\t');
  }
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
    edit_end();                /* Ctrl-C: the half-typed line is dropped */
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
  if (!R.installed)
    edit_begin(prompt);
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
  edit_end();
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

/* set_completer(fn): Tab calls fn(line up to the cursor, word at the
** cursor) for a list of what the word may become */
static int rl_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  mainL = lua_tothread(L, -1);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, completer);
  lua_pushvalue(L, 1);
  completer = luaL_ref(L, LUA_REGISTRYINDEX);
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
  {"close", rl_close}, {"set_completer", rl_set_completer},
  {"catch_sigint", rl_catch_sigint},
  {NULL, NULL}
};

int luaopen_wirelab_readline(lua_State *L) {
  wl_waiter_init(&R.waiter);
  luaL_newlib(L, funcs);
  return 1;
}
