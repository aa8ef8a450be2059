/*
** output.c: the process's stdout and stderr. Both are streams of our own
** (fopencookie) over fds 1 and 2, so that wirelab, not libc, decides how
** their bytes reach the descriptor:
** - stderr is block-buffered and flushed, with stdout, once per loop turn
**   (the scheduler calls wl_output_flush before it polls) and at exit: a
**   server's access log is a line per request, which unbuffered is a
**   write(2) per line;
** - while the prompt edits a line, what tasks write goes above that line
**   and the prompt is redrawn below it, instead of into it
**   (wl_output_prompt);
** - a write that meets a full non-blocking descriptor waits for it: the
**   loop polls stdin, and on a terminal stdin, stdout and stderr share one
**   file description, so O_NONBLOCK on one is on all three, and libc's
**   own stream would drop the bytes.
** glibc lets stdout and stderr be assigned; this runs before any Lua, so
** print, io.write and io.stderr all use these streams.
*/
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>
#include "wl.h"

#define OUTBUF_SIZE (1 << 16)

static struct {
  void (*erase)(void), (*redraw)(void);   /* the prompt's, or NULL */
  int erased;        /* the edited line is off the screen until the flush */
  int last;          /* the last byte written: a line ended or not */
} O = {NULL, NULL, 0, '\n'};

/* Writes all of buf to fd, waiting while it is full; -1 on an error. */
static ssize_t write_all(int fd, const char *buf, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t r = write(fd, buf + done, size - done);
    if (r >= 0) {
      done += (size_t)r;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
    } else if (errno != EINTR) {
      return done > 0 ? (ssize_t)done : -1;
    }
  }
  return (ssize_t)done;
}

/* The cookie is the descriptor, as an intptr_t. */
static ssize_t out_write(void *cookie, const char *buf, size_t size) {
  int fd = (int)(intptr_t)cookie;
  ssize_t r;
  if (size == 0) return 0;
  if (O.erase != NULL && !O.erased && isatty(fd)) {
    O.erased = 1;
    O.erase();
  }
  r = write_all(fd, buf, size);
  if (r > 0) O.last = (unsigned char)buf[r - 1];
  return r;
}

static FILE *open_stream(int fd, int mode) {
  cookie_io_functions_t io = {NULL, out_write, NULL, NULL};
  FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
  if (f != NULL) setvbuf(f, NULL, mode, OUTBUF_SIZE);
  return f;
}

/* Before anything writes to stdout or stderr, and before the io library
** opens: it takes the streams as they are then. On a terminal stdout
** stays line-buffered, as libc has it, so a script's print shows before a
** long computation; a pipe or a file gets blocks. */
void wl_output_init(void) {
  FILE *out = open_stream(1, isatty(1) ? _IOLBF : _IOFBF);
  FILE *err = open_stream(2, _IOFBF);
  if (out != NULL) { fflush(stdout); stdout = out; }
  if (err != NULL) stderr = err;
}

void wl_output_flush(void) {
  fflush(stderr);
  fflush(stdout);
  if (O.erased) {
    O.erased = 0;
    if (O.last != '\n') write_all(1, "\n", 1);  /* the prompt on its own line */
    O.last = '\n';
    if (O.redraw != NULL) O.redraw();
  }
}

void wl_output_prompt(void (*erase)(void), void (*redraw)(void)) {
  if (erase == NULL && O.erased) {   /* the line ended: nothing to redraw */
    O.erased = 0;
    O.last = '\n';
  }
  O.erase = erase;
  O.redraw = redraw;
}
