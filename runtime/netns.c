/*
** netns.c: work inside a network namespace: making a namespace
** (sandbox.c), a socket in one (sandbox.c's ns:_socket, capture.c's packet
** socket), a TUN device (tun.c). A socket stays in the namespace it was
** made in, so only that one call runs there; everything else wirelab does
** stays in its own namespace.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include "wl.h"

/* Work inside a namespace: wirelab's thread enters it for the call and
** comes straight back, where it may. Under `unshare -r` it may not: setns
** back into the host's namespace needs CAP_SYS_ADMIN over the initial
** user namespace, which a user namespace does not give, so wirelab could
** never return. There a short-lived thread does the work instead (network
** namespaces belong to threads): it unshares or joins, works, and ends,
** and wirelab's thread never leaves. The thread costs about 60 us a call,
** the direct way 5 (a socket). */
typedef struct {
  int nsfd;                  /* the namespace to join; -1: a new one */
  int (*fn)(void *);
  void *arg;
  int rc;
} ns_job_t;

static int host_ns = -1;     /* wirelab's namespace, when it may go back */
static int direct = -1;      /* 1: enter and come back; 0: a thread */

/* setns into the namespace it is in needs what coming back needs */
static int can_come_back(void) {
  if (direct < 0) {
    host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    direct = host_ns >= 0 && setns(host_ns, CLONE_NEWNET) == 0;
    if (!direct && host_ns >= 0) {
      close(host_ns);
      host_ns = -1;
    }
  }
  return direct;
}

static int enter(const ns_job_t *j) {
  int rc = j->nsfd >= 0 ? setns(j->nsfd, CLONE_NEWNET) : unshare(CLONE_NEWNET);
  return rc < 0 ? -errno : 0;
}

static void *ns_thread(void *p) {
  ns_job_t *j = p;
  if ((j->rc = enter(j)) == 0) j->rc = j->fn(j->arg);
  return NULL;
}

int wl_netns_run(int nsfd, int (*fn)(void *), void *arg) {
  ns_job_t j;
  pthread_t th;
  sigset_t all, old;
  int e;
  j.nsfd = nsfd;
  j.fn = fn;
  j.arg = arg;
  j.rc = 0;
  if (can_come_back()) {
    if ((e = enter(&j)) < 0) return e;
    j.rc = fn(arg);
    /* it cannot fail (it did just now); if it did, every later socket
    ** would be made in the wrong place, so stop here */
    if (setns(host_ns, CLONE_NEWNET) < 0) abort();
    return j.rc;
  }
  /* no signal meant for wirelab lands on the helper */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e = pthread_create(&th, NULL, ns_thread, &j);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) return -e;
  pthread_join(th, NULL);
  return j.rc;
}

