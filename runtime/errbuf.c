/*
** errbuf.c: stderr buffering. A server's access log is a line per
** request; unbuffered, that is a write(2) per line. stderr is
** block-buffered instead and flushed, with stdout, once per loop turn
** (the scheduler calls wl_errbuf_flush before it polls) and at exit.
*/
#include <stdio.h>
#include "wl.h"

#define ERRBUF_SIZE (1 << 16)

/* Before anything is written to stderr: setvbuf must come first. */
void wl_errbuf_init(void) {
  setvbuf(stderr, NULL, _IOFBF, ERRBUF_SIZE);
}

void wl_errbuf_flush(void) {
  fflush(stderr);
  fflush(stdout);
}
