/*
** supervisor.c: `wirelab --supervise OPTIONS -- PROG ARGS`, the small
** process between wirelab and a sandboxed program. wirelab starts it with
** uv_spawn (libuv has no hook between fork and exec); it forks the
** program, sets up the sandbox in the child before exec (its own session,
** cgroups, network namespace, read-only mounts, rlimits, another uid, no
** new privileges, default signals, only fds 0-2), then watches: it is the
** child subreaper of everything the program starts, so setsid and double
** forks stay its descendants; it enforces the wall-clock limit, passes on
** wirelab's signals, and when the program ends (or wirelab goes away) it
** kills every process left, removes the cgroups and the scratch directory,
** and reports how the program ended. A process of its own, so that
** waitpid(-1) and the subreaper never touch wirelab's other children.
**
** The report, on fd 3 (a socketpair to wirelab), one record per line:
**   layer NAME [VALUE]          a layer in force (subreaper, uid, ...)
**   unavailable NAME REASON     a layer asked for and not had, and why
**   started PID | error STAGE ERRNO
**   end KEY VALUE               how it ended: code, signal, limit, ...
**   exit                        the last line
** wirelab writes commands on the same socket: "kill SIGNAL\n"; end of
** input means wirelab is gone or has closed the process: kill everything.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "wl.h"

#define CTL_FD 3
#define KILL_SECS 5.0        /* kill-all gives up after this (never seen) */

typedef struct {
  long long cpu, memory, fsize, nofile, nproc;    /* 0: no limit */
  double wall;
  int uid, gid;              /* -1: keep ours */
  int netns;                 /* fd to join, -1: none */
  int readonly, home, chdir_scratch;
  const char *scratch_base;  /* make a scratch directory under it */
  wl_cgroup_t found;         /* parents wirelab found, when cgroups asked */
  int cgroup;
  char **argv;
} opts_t;

static struct {
  opts_t o;
  pid_t child;
  int status, done;          /* the program's wait status, once reaped */
  struct rusage ru;
  double t0, t_end;
  const char *limit;         /* a limit the supervisor itself enforced */
  wl_cgroup_t cg;
  int have_cg, mem_cgroup, pids_cgroup;
  char scratch[PATH_MAX];
  char cwd[PATH_MAX];
} S;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* snprintf where cutting a long path short is accepted */
static void setf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

static void report(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  if (write(CTL_FD, buf, (size_t)n) < 0) { /* wirelab gone: go on */ }
}

/* ---- options ------------------------------------------------------------- */

static long long num(const char *s) { return strtoll(s, NULL, 10); }

/* KEY=VALUE words up to "--"; the program and its arguments after it. */
static int parse(int argc, char **argv, opts_t *o) {
  int i;
  memset(o, 0, sizeof *o);
  o->uid = o->gid = o->netns = -1;
  for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
    char *k = argv[i], *v = strchr(k, '=');
    if (v == NULL) return -1;
    *v++ = '\0';
    if (strcmp(k, "cpu") == 0) o->cpu = num(v);
    else if (strcmp(k, "memory") == 0) o->memory = num(v);
    else if (strcmp(k, "fsize") == 0) o->fsize = num(v);
    else if (strcmp(k, "nofile") == 0) o->nofile = num(v);
    else if (strcmp(k, "nproc") == 0) o->nproc = num(v);
    else if (strcmp(k, "wall") == 0) o->wall = strtod(v, NULL);
    else if (strcmp(k, "uid") == 0) o->uid = (int)num(v);
    else if (strcmp(k, "gid") == 0) o->gid = (int)num(v);
    else if (strcmp(k, "netns") == 0) o->netns = (int)num(v);
    else if (strcmp(k, "readonly") == 0) o->readonly = 1;
    else if (strcmp(k, "home") == 0) o->home = 1;
    else if (strcmp(k, "chdir") == 0) o->chdir_scratch = 1;
    else if (strcmp(k, "scratch") == 0) o->scratch_base = v;
    else if (strcmp(k, "cgroup") == 0) o->cgroup = 1;
    else if (strcmp(k, "cg2") == 0) setf(o->found.v2, WL_CG_PATH, "%s", v);
    else if (strcmp(k, "cgmem") == 0) setf(o->found.mem, WL_CG_PATH, "%s", v);
    else if (strcmp(k, "cgpids") == 0) setf(o->found.pids, WL_CG_PATH, "%s", v);
    else if (strcmp(k, "cg2mem") == 0) o->found.v2_memory = 1;
    else if (strcmp(k, "cg2pids") == 0) o->found.v2_pids = 1;
    else if (strcmp(k, "cgwhy") == 0) setf(o->found.why, sizeof o->found.why, "%s", v);
    else return -1;
  }
  if (i + 1 >= argc) return -1;
  o->argv = argv + i + 1;
  return 0;
}

/* The uid the program runs as: the one asked for, or ours. */
static uid_t runs_as(void) {
  return S.o.uid >= 0 ? (uid_t)S.o.uid : geteuid();
}

/* ---- the child, between fork and exec ------------------------------------ */

/* A line to the supervisor on the exec-error pipe. */
static void tell(int fd, const char *fmt, ...) {
  char buf[600];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  if (write(fd, buf, (size_t)n) < 0) { /* the supervisor reads it */ }
}

static void fatal(int fd, const char *stage, int err) {
  tell(fd, "error %s %d", stage, err);
  _exit(127);
}

static void limit(int res, long long soft, long long hard) {
  struct rlimit rl;
  rl.rlim_cur = (rlim_t)soft;
  rl.rlim_max = (rlim_t)hard;
  setrlimit(res, &rl);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s) {
  char *d = s;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
      *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else {
      *d++ = *s++;
    }
  }
  *d = '\0';
}

static int under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return dir[0] && strncmp(path, dir, n) == 0 &&
         (path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* The mount flags a read-only remount must keep (a bind remount sets
** exactly the flags given). */
static unsigned long kept_flags(const char *opts) {
  unsigned long f = 0;
  char buf[512], *tok, *save;
  setf(buf, sizeof buf, "%s", opts);
  for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (strcmp(tok, "nosuid") == 0) f |= MS_NOSUID;
    else if (strcmp(tok, "nodev") == 0) f |= MS_NODEV;
    else if (strcmp(tok, "noexec") == 0) f |= MS_NOEXEC;
    else if (strcmp(tok, "noatime") == 0) f |= MS_NOATIME;
    else if (strcmp(tok, "nodiratime") == 0) f |= MS_NODIRATIME;
    else if (strcmp(tok, "relatime") == 0) f |= MS_RELATIME;
    else if (strcmp(tok, "strictatime") == 0) f |= MS_STRICTATIME;
  }
  return f;
}

/* A mount namespace of the child's own where every mount is read-only
** but the scratch directory and the working directory (bound onto
** themselves first, so they are mounts of their own that stay writable),
** and /proc. Writes anywhere else fail with EROFS. 0, or -1 with why. */
static int make_readonly(const char *keep1, const char *keep2, char *why,
                         size_t size) {
  FILE *f;
  char line[4096];
  int failed = 0;
  if (unshare(CLONE_NEWNS) < 0) {
    setf(why, size, "unshare(CLONE_NEWNS): %s", strerror(errno));
    return -1;
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    setf(why, size, "making / private: %s", strerror(errno));
    return -1;
  }
  if ((keep1[0] && mount(keep1, keep1, NULL, MS_BIND | MS_REC, NULL) < 0) ||
      (keep2[0] && mount(keep2, keep2, NULL, MS_BIND | MS_REC, NULL) < 0)) {
    setf(why, size, "binding the writable directories: %s", strerror(errno));
    return -1;
  }
  if ((f = fopen("/proc/self/mountinfo", "re")) == NULL) {
    setf(why, size, "/proc/self/mountinfo: %s", strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    char point[PATH_MAX], opts[512];
    if (sscanf(line, "%*s %*s %*s %*s %4095s %511s", point, opts) != 2) continue;
    unescape(point);
    if (under(point, "/proc") || under(point, keep1) || under(point, keep2))
      continue;
    if (mount(NULL, point, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
              kept_flags(opts), NULL) < 0 && !failed) {
      failed = 1;
      setf(why, size, "remounting %s read-only: %s", point, strerror(errno));
    }
  }
  fclose(f);
  return failed ? -1 : 0;
}

/* SIG_DFL for sig through the system call itself: glibc's sigaction
** refuses the two real-time signals it keeps for itself (32 and 33), and
** an ignored one would be inherited through exec. */
static void default_signal(int sig) {
  struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } act;
  memset(&act, 0, sizeof act);
  act.handler = SIG_DFL;
  syscall(SYS_rt_sigaction, sig, &act, NULL, sizeof act.mask);
}

/* Everything between fork and exec; never returns. fd is the exec-error
** pipe (close-on-exec: exec closes it, and its end of file tells the
** supervisor the program runs). */
static void child(int fd) {
  opts_t *o = &S.o;
  char why[512];
  sigset_t none;
  int i;
  setsid();                  /* a group of its own: kill(-pid) */
  if (S.have_cg) {
    int rc = wl_cgroup_join(&S.cg);
    if (rc < 0) fatal(fd, "cgroup", -rc);
  }
  if (o->netns >= 0 && setns(o->netns, CLONE_NEWNET) < 0) fatal(fd, "setns", errno);
  if (o->readonly) {
    /* the working directory stays writable only when it was given: one
    ** inherited from wirelab is the grader's, and the program works in
    ** its scratch directory instead */
    const char *cwd = o->chdir_scratch ? "" : S.cwd;
    if (make_readonly(S.scratch, cwd, why, sizeof why) < 0)
      tell(fd, "unavailable readonly %s", why);
    else
      tell(fd, "layer readonly");
    /* the old working directory is a path on the read-only mount now */
    if (cwd[0] && chdir(cwd) < 0) fatal(fd, "chdir", errno);
  }
  if (o->chdir_scratch && S.scratch[0] && chdir(S.scratch) < 0)
    fatal(fd, "chdir", errno);
  limit(RLIMIT_CORE, 0, 0);  /* SIGSEGV, SIGXCPU, SIGXFSZ: no core files */
  if (o->cpu > 0) limit(RLIMIT_CPU, o->cpu, o->cpu + 1);   /* SIGXCPU, then SIGKILL */
  if (o->memory > 0 && !S.mem_cgroup) limit(RLIMIT_AS, o->memory, o->memory);
  if (o->fsize > 0) limit(RLIMIT_FSIZE, o->fsize, o->fsize);
  if (o->nofile > 0) limit(RLIMIT_NOFILE, o->nofile, o->nofile);
  /* RLIMIT_NPROC counts every process of the uid on the machine, and
  ** nothing for root: the pids cgroup, when there is one, counts the
  ** sandbox alone */
  if (o->nproc > 0 && !S.pids_cgroup && runs_as() != 0)
    limit(RLIMIT_NPROC, o->nproc, o->nproc);
  if (o->gid >= 0) {
    if (setgroups(0, NULL) < 0) fatal(fd, "setgroups", errno);
    if (setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) < 0) fatal(fd, "setgid", errno);
  }
  if (o->uid >= 0 && setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) < 0)
    fatal(fd, "setuid", errno);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);   /* setuid binaries stay powerless */
  for (i = 1; i < NSIG; i++)
    if (i != SIGKILL && i != SIGSTOP) default_signal(i);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* fds 0-2 only: everything else is closed by exec, the error pipe too */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (i = 3; i < 65536; i++) fcntl(i, F_SETFD, FD_CLOEXEC);
  }
  execvp(o->argv[0], o->argv);
  fatal(fd, "exec", errno);
}

/* ---- watching -------------------------------------------------------------- */

static void reap(void) {
  pid_t r;
  int st;
  struct rusage ru;
  while ((r = wait4(-1, &st, WNOHANG, &ru)) > 0) {
    if (r == S.child && !S.done) {
      S.done = 1;
      S.status = st;
      S.ru = ru;
      S.t_end = now();
    }
  }
}

static int no_children(void) {
  siginfo_t si;
  return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/* Signals each direct child of the supervisor: the program while it
** lives, and every orphan of the tree (the subreaper adopts them). A
** direct child cannot vanish and lend its pid to a stranger before this
** process reaps it, so the signal never goes astray. */
static int signal_children(int sig) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  pid_t self = getpid();
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL) {
    char path[64], buf[512], *rp;
    int fd;
    ssize_t len;
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    setf(path, sizeof path, "/proc/%s/stat", e->d_name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) continue;
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parens */
    if ((rp = strrchr(buf, ')')) == NULL) continue;
    if (atoi(rp + 4) == self) {
      kill((pid_t)atoi(e->d_name), sig);
      n++;
    }
  }
  closedir(d);
  return n;
}

/* A signal from wirelab (p:kill): the program's group, every process in
** its cgroups, and the orphans. */
static void signal_tree(int sig) {
  if (!S.done) kill(-S.child, sig);
  if (S.have_cg) wl_cgroup_signal(&S.cg, sig);
  signal_children(sig);
}

/* SIGKILL to everything until nothing is left: killed processes' children
** are adopted by this subreaper and killed in the next round, and the
** cgroup catches what is not a descendant any more. */
static void kill_all(void) {
  double until = now() + KILL_SECS;
  for (;;) {
    if (!S.done) kill(-S.child, SIGKILL);
    if (S.have_cg) wl_cgroup_signal(&S.cg, SIGKILL);
    signal_children(SIGKILL);
    reap();
    if (no_children() && (!S.have_cg || wl_cgroup_empty(&S.cg))) break;
    if (now() > until) {
      report("note kill-all: processes still left after %.0f s", KILL_SECS);
      break;
    }
    {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
}

/* Commands from wirelab; returns 0 at its end of input. */
static int read_commands(void) {
  char buf[256];
  ssize_t n = read(CTL_FD, buf, sizeof buf - 1);
  char *line, *save;
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (n <= 0) return 0;
  buf[n] = '\0';
  for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int sig;
    if (sscanf(line, "kill %d", &sig) == 1 && sig > 0 && sig < NSIG) {
      if (sig == SIGKILL) kill_all(); else signal_tree(sig);
    }
  }
  return 1;
}

/* Until the program has ended and nothing of it is left. */
static void watch(int sfd) {
  int ctl_open = 1;
  while (!S.done) {
    struct pollfd fds[2];
    int timeout = -1, rc;
    if (S.o.wall > 0) {
      double left = S.t0 + S.o.wall - now();
      timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
    }
    fds[0].fd = sfd;
    fds[0].events = POLLIN;
    fds[1].fd = ctl_open ? CTL_FD : -1;
    fds[1].events = POLLIN;
    rc = poll(fds, 2, timeout);
    if (rc < 0 && errno != EINTR) break;
    if (S.o.wall > 0 && now() >= S.t0 + S.o.wall && !S.done) {
      S.limit = "wall";
      kill_all();
      break;
    }
    if (rc > 0 && fds[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGCHLD) {   /* the supervisor told to stop */
          report("note supervisor got signal %u", si.ssi_signo);
          kill_all();
        }
      }
      reap();
    }
    if (rc > 0 && ctl_open && fds[1].revents && !read_commands()) {
      ctl_open = 0;            /* wirelab closed the process, or died */
      kill_all();
    }
  }
  kill_all();                  /* the rest of the tree ends with it */
}

/* ---- before and after ------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  remove(path);
  return 0;
}

/* The scratch directory: owned by the program's uid, HOME and TMPDIR
** when asked, the working directory when asked. */
static int make_scratch(void) {
  setf(S.scratch, sizeof S.scratch, "%s/wirelab-scratch-XXXXXX", S.o.scratch_base);
  if (mkdtemp(S.scratch) == NULL) {
    report("unavailable scratch mkdtemp %s: %s", S.scratch, strerror(errno));
    S.scratch[0] = '\0';
    return -1;
  }
  if (S.o.uid >= 0 && chown(S.scratch, (uid_t)S.o.uid, (gid_t)(S.o.gid >= 0 ? S.o.gid : S.o.uid)) < 0)
    report("note chown %s: %s", S.scratch, strerror(errno));
  chmod(S.scratch, 0700);
  if (S.o.home) {
    setenv("HOME", S.scratch, 1);
    setenv("TMPDIR", S.scratch, 1);
  }
  report("layer scratch %s", S.scratch);
  return 0;
}

static void report_layers(void) {
  report("layer subreaper");
  report("layer no_new_privs");
  if (S.o.uid >= 0) report("layer uid %d %d", S.o.uid, S.o.gid >= 0 ? S.o.gid : S.o.uid);
  if (S.have_cg) {
    report("layer cgroup %s", S.cg.v2_memory || S.cg.v2_pids ? "v2" :
           S.cg.mem[0] || S.cg.pids[0] ? "v1" : "v2");
    if (S.cg.v2[0]) report("layer cgdir %s", S.cg.v2);
    if (S.cg.mem[0]) report("layer cgdir %s", S.cg.mem);
    if (S.cg.pids[0]) report("layer cgdir %s", S.cg.pids);
  }
  if (S.o.cgroup && S.cg.why[0]) report("unavailable cgroup %s", S.cg.why);
  report("layer kill %s", S.have_cg && S.cg.v2_kill ? "cgroup.kill" :
         S.have_cg ? "cgroup" : "subreaper");
  if (S.o.memory > 0) report("layer memory %s", S.mem_cgroup ? "cgroup" : "rlimit");
  if (S.o.nproc > 0) {
    if (S.pids_cgroup) report("layer pids cgroup");
    else if (runs_as() != 0) report("layer pids rlimit");
    else report("unavailable pids RLIMIT_NPROC does nothing for root, and "
                "there is no pids cgroup");
  }
  if (S.o.netns >= 0) report("layer netns");
}

/* How it ended, in "end" records: the wait status, the limit that ended
** it, what the program used, and what the kernel counted. */
static void report_end(void) {
  wl_cgroup_stats_t st = {-1, -1, -1};
  double cpu = (double)S.ru.ru_utime.tv_sec + S.ru.ru_utime.tv_usec / 1e6 +
               (double)S.ru.ru_stime.tv_sec + S.ru.ru_stime.tv_usec / 1e6;
  const char *lim = S.limit;
  if (S.have_cg) wl_cgroup_stats(&S.cg, &st);
  if (WIFEXITED(S.status)) {
    report("end code %d", WEXITSTATUS(S.status));
  } else if (WIFSIGNALED(S.status)) {
    int sig = WTERMSIG(S.status);
    report("end signal %d", sig);
    if (lim == NULL) {
      if (sig == SIGXCPU) lim = "cpu";
      else if (sig == SIGXFSZ) lim = "fsize";
      else if (sig == SIGKILL && st.oom_kills > 0) lim = "memory";
      else if (sig == SIGKILL && S.o.cpu > 0 && cpu >= (double)S.o.cpu) lim = "cpu";
    }
  }
  if (lim) report("end limit %s", lim);
  report("end cpu %.3f", cpu);
  report("end wall %.3f", S.t_end - S.t0);
  report("end max_rss %ld", S.ru.ru_maxrss);
  if (st.memory_peak >= 0) report("end memory_peak %lld", st.memory_peak);
  if (st.oom_kills > 0) report("end oom_kills %lld", st.oom_kills);
  if (st.pids_max > 0) report("end pids_max %lld", st.pids_max);
}

int wl_supervise(int argc, char **argv) {
  sigset_t mask;
  int sfd, pipefd[2], keep;
  char buf[4096];
  size_t len = 0;
  ssize_t n;
  int failed = 0;
  if (parse(argc, argv, &S.o) < 0) {
    fprintf(stderr, "wirelab: --supervise is for wirelab's own use\n");
    return 2;
  }
  keep = S.o.netns > CTL_FD ? S.o.netns : CTL_FD;
  close_range((unsigned)keep + 1, ~0U, 0);     /* what uv_spawn let through */
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (getcwd(S.cwd, sizeof S.cwd) == NULL) S.cwd[0] = '\0';
  if (S.o.scratch_base) make_scratch();
  if (S.o.cgroup) {
    char name[64];
    setf(name, sizeof name, "wirelab-sandbox-%d", (int)getpid());
    S.have_cg = wl_cgroup_make(&S.cg, &S.o.found, name, S.o.memory, S.o.nproc) == 0;
    S.mem_cgroup = S.cg.v2_memory || S.cg.mem[0];
    S.pids_cgroup = S.cg.v2_pids || S.cg.pids[0];
  }
  report_layers();
  if (pipe2(pipefd, O_CLOEXEC) < 0 || (S.child = fork()) < 0) {
    report("error fork %d", errno);
    failed = 1;
  } else if (S.child == 0) {
    close(pipefd[0]);
    close(CTL_FD);
    child(pipefd[1]);
  } else {
    S.t0 = now();
    close(pipefd[1]);
    if (S.o.netns >= 0) close(S.o.netns);
    /* the child's lines, until exec closes the pipe */
    while (len < sizeof buf - 1 &&
           ((n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0 ||
            (n < 0 && errno == EINTR)))
      if (n > 0) len += (size_t)n;
    close(pipefd[0]);
    buf[len] = '\0';
    if (len > 0 && write(CTL_FD, buf, len) < 0) { /* wirelab gone */ }
    failed = strstr(buf, "error ") == buf || strstr(buf, "\nerror ") != NULL;
    if (!failed) report("started %d", (int)S.child);
  }
  /* the pipes to wirelab are the program's alone now: their end of file
  ** comes when the last process of the tree has closed them */
  {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); close(null); }
  }
  if (S.child > 0) {
    if (failed) { kill_all(); } else { watch(sfd); report_end(); }
  }
  if (S.have_cg) wl_cgroup_remove(&S.cg);
  if (S.scratch[0]) nftw(S.scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  report("exit");
  return 0;
}
