/*
** netns.c: stepping into a network namespace for one system call and
** back. A socket stays in the namespace it was made in, so wirelab's
** thread enters a namespace only to make one (sandbox.c's ns:_socket,
** capture.c's packet socket) and returns at once; everything else it
** does stays in its own namespace.
*/
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "wl.h"

static int host_ns = -1;     /* wirelab's own namespace, to come back to */

int wl_netns_save(void) {
  if (host_ns < 0)
    host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return host_ns < 0 ? -errno : 0;
}

int wl_netns_enter(int nsfd) {
  int rc = wl_netns_save();
  if (rc < 0) return rc;
  return setns(nsfd, CLONE_NEWNET) < 0 ? -errno : 0;
}

/* It cannot fail (we hold the namespace open and came from it); if it
** did, every later socket would be made in the wrong place, so stop. */
void wl_netns_leave(void) {
  if (setns(host_ns, CLONE_NEWNET) < 0) abort();
}
