/*
** cgroup.c: the control groups a sandboxed process runs in. wirelab finds
** once where it may make them (wl_cgroup_find: cgroup v2, the v1 memory
** and pids hierarchies, or a mix, as /proc/self/cgroup and mountinfo say);
** each supervisor makes its own group under those parents, sets the
** limits, moves its child in, kills everything in it at the end, reads
** what the kernel counted, and removes it (wl_cgroup_make ... _remove).
** Plain system calls, nothing from Lua or libuv: the supervisor runs it
** in a process that has neither.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "wl.h"

/* snprintf where cutting a long path short is accepted */
static void setf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

/* Writes s to the file at dir/name: 0 or -errno. */
static int put(const char *dir, const char *name, const char *s) {
  char path[WL_CG_PATH + 64];
  int fd, rc = 0;
  size_t n = strlen(s);
  setf(path, sizeof path, "%s/%s", dir, name);
  if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) return -errno;
  if (write(fd, s, n) != (ssize_t)n) rc = -errno;
  close(fd);
  return rc;
}

/* Reads dir/name into buf (NUL-terminated): its length or -errno. */
static ssize_t get(const char *dir, const char *name, char *buf, size_t size) {
  char path[WL_CG_PATH + 64];
  int fd;
  ssize_t n, total = 0;
  setf(path, sizeof path, "%s/%s", dir, name);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return -errno;
  while (total < (ssize_t)size - 1 &&
         (n = read(fd, buf + total, size - 1 - (size_t)total)) > 0)
    total += n;
  close(fd);
  buf[total] = '\0';
  return total;
}

/* The number after "key " in a "key value" file (memory.events,
** pids.events, memory.oom_control); -1 when absent. */
static long long keyed(const char *dir, const char *file, const char *key) {
  char buf[4096], *p;
  size_t k = strlen(key);
  if (get(dir, file, buf, sizeof buf) < 0) return -1;
  for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, key, k) == 0 && p[k] == ' ') return atoll(p + k + 1);
  return -1;
}

static long long number(const char *dir, const char *file) {
  char buf[64];
  if (get(dir, file, buf, sizeof buf) <= 0) return -1;
  return atoll(buf);
}

/* Whether the space-separated list in dir/file names word. */
static int lists(const char *dir, const char *file, const char *word) {
  char buf[1024], *tok, *save;
  if (get(dir, file, buf, sizeof buf) < 0) return 0;
  for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
    if (strcmp(tok, word) == 0) return 1;
  return 0;
}

/* ---- finding the parents ---------------------------------------------- */

typedef struct { char v2[WL_CG_PATH], mem[WL_CG_PATH], pids[WL_CG_PATH]; } mounts_t;

/* Mount points of cgroup2 and of the v1 hierarchies holding memory and
** pids, from mountinfo; each joined with the group /proc/self/cgroup
** names for us (made relative to the mount's root, which a cgroup
** namespace or a bind mount moves). */
static void find_mounts(mounts_t *m, mounts_t *root) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[4096];
  memset(m, 0, sizeof *m);
  memset(root, 0, sizeof *root);
  if (f == NULL) return;
  while (fgets(line, sizeof line, f)) {
    char mroot[WL_CG_PATH], point[WL_CG_PATH], *sep, fstype[64], src[256], opts[1024];
    /* widths of WL_CG_PATH - 1: a longer path is no cgroup of ours */
    if (sscanf(line, "%*s %*s %*s %511s %511s", mroot, point) != 2) continue;
    if ((sep = strstr(line, " - ")) == NULL) continue;
    if (sscanf(sep + 3, "%63s %255s %1023s", fstype, src, opts) != 3) continue;
    if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0]) {
      setf(m->v2, sizeof m->v2, "%s", point);
      setf(root->v2, sizeof root->v2, "%s", mroot);
    } else if (strcmp(fstype, "cgroup") == 0) {
      char *tok, *save;
      for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "memory") == 0 && !m->mem[0]) {
          setf(m->mem, sizeof m->mem, "%s", point);
          setf(root->mem, sizeof root->mem, "%s", mroot);
        } else if (strcmp(tok, "pids") == 0 && !m->pids[0]) {
          setf(m->pids, sizeof m->pids, "%s", point);
          setf(root->pids, sizeof root->pids, "%s", mroot);
        }
      }
    }
  }
  fclose(f);
}

/* mount + (group - the mount's root) into out; "" when not mounted. */
static void join_path(char *out, const char *mount, const char *mroot,
                      const char *group) {
  size_t r = strlen(mroot);
  out[0] = '\0';
  if (!mount[0]) return;
  if (strcmp(mroot, "/") != 0 && strncmp(group, mroot, r) == 0) group += r;
  if (strcmp(group, "/") == 0) group = "";
  setf(out, WL_CG_PATH, "%s%s", mount, group);
}

static void own_groups(mounts_t *own) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  char line[4096];
  memset(own, 0, sizeof *own);
  if (f == NULL) return;
  while (fgets(line, sizeof line, f)) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *tok, *save;
    if (c2 == NULL) continue;
    *c2 = '\0';
    c2[1 + strcspn(c2 + 1, "\n")] = '\0';
    if (strcmp(line, "0") == 0 && c1[1] == '\0') {
      setf(own->v2, sizeof own->v2, "%s", c2 + 1);
      continue;
    }
    for (tok = strtok_r(c1 + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (strcmp(tok, "memory") == 0) setf(own->mem, sizeof own->mem, "%s", c2 + 1);
      if (strcmp(tok, "pids") == 0) setf(own->pids, sizeof own->pids, "%s", c2 + 1);
    }
  }
  fclose(f);
}

/* Whether dir's cgroup.procs lists no process but ours. */
static int only_us(const char *dir) {
  char buf[4096], *tok, *save;
  if (get(dir, "cgroup.procs", buf, sizeof buf) < 0) return 0;
  for (tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
    if (atoi(tok) != getpid()) return 0;
  return 1;
}

/* cgroup v2 hands a controller to children only through the parent's
** cgroup.subtree_control, and a group with processes of its own cannot
** (the "no internal processes" rule) -- the usual case in a container,
** where everything runs in the namespace's root. When wirelab is the only
** process there, it moves itself into a leaf, wirelab.main, and enables
** memory and pids for its sandboxes: the layout systemd and Docker's init
** use. Returns 0, or -errno of the last write. */
static int delegate_v2(const char *dir, char *why, size_t size) {
  char leaf[WL_CG_PATH + 16], pid[32];
  int rc;
  if (lists(dir, "cgroup.subtree_control", "memory") &&
      lists(dir, "cgroup.subtree_control", "pids"))
    return 0;
  rc = put(dir, "cgroup.subtree_control", "+memory +pids");
  if (rc == -EBUSY && only_us(dir)) {
    setf(leaf, sizeof leaf, "%s/wirelab.main", dir);
    setf(pid, sizeof pid, "%d", (int)getpid());
    if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
      rc = -errno;
    } else if ((rc = put(leaf, "cgroup.procs", pid)) == 0) {
      rc = put(dir, "cgroup.subtree_control", "+memory +pids");
    }
  }
  if (rc < 0)
    setf(why, size, "cgroup v2 %s: cannot enable memory and pids for "
             "child groups (%s)%s", dir, strerror(-rc), rc == -EBUSY ?
             "; it holds other processes: run wirelab in a delegated "
             "group or set WIRELAB_CGROUP" : "");
  return rc;
}

int wl_cgroup_find(wl_cgroup_t *cg) {
  mounts_t mnt, mroot, own;
  const char *env = getenv("WIRELAB_CGROUP");
  memset(cg, 0, sizeof *cg);
  find_mounts(&mnt, &mroot);
  own_groups(&own);
  if (env && env[0]) {
    setf(cg->v2, sizeof cg->v2, "%s", env);
  } else {
    join_path(cg->v2, mnt.v2, mroot.v2, own.v2);
  }
  join_path(cg->mem, mnt.mem, mroot.mem, own.mem);
  join_path(cg->pids, mnt.pids, mroot.pids, own.pids);
  if (cg->v2[0] && access(cg->v2, W_OK) < 0) cg->v2[0] = '\0';
  if (cg->mem[0] && access(cg->mem, W_OK) < 0) cg->mem[0] = '\0';
  if (cg->pids[0] && access(cg->pids, W_OK) < 0) cg->pids[0] = '\0';
  if (cg->v2[0]) {
    /* a controller bound to a v1 hierarchy is never listed in v2 */
    int mem = lists(cg->v2, "cgroup.controllers", "memory");
    int pids = lists(cg->v2, "cgroup.controllers", "pids");
    if ((mem || pids) && delegate_v2(cg->v2, cg->why, sizeof cg->why) == 0) {
      cg->v2_memory = mem;
      cg->v2_pids = pids;
    }
  }
  if (!cg->v2_memory && !cg->mem[0] && !cg->why[0])
    setf(cg->why, sizeof cg->why, "no writable cgroup with the memory "
             "controller (%s)", mnt.v2[0] || mnt.mem[0] ?
             "wirelab is not allowed to make groups there" : "none mounted");
  return cg->v2[0] || cg->mem[0] || cg->pids[0] ? 0 : -ENOENT;
}

/* ---- one sandbox's groups ---------------------------------------------- */

static int make_dir(char *out, const char *parent, const char *name) {
  setf(out, WL_CG_PATH, "%s/%s", parent, name);
  if (mkdir(out, 0755) < 0 && errno != EEXIST) {
    int rc = -errno;
    out[0] = '\0';
    return rc;
  }
  return 0;
}

/* Makes the groups of one sandbox, named name, under the parents in
** found, and sets the limits (0: none). sb gets the paths of what was
** made and which limits each enforces; why says what could not be had. */
int wl_cgroup_make(wl_cgroup_t *sb, const wl_cgroup_t *found,
                   const char *name, long long memory, long long pids) {
  char num[32];
  int rc;
  memset(sb, 0, sizeof *sb);
  setf(sb->why, sizeof sb->why, "%s", found->why);
  if (found->v2[0] && (rc = make_dir(sb->v2, found->v2, name)) < 0)
    setf(sb->why, sizeof sb->why, "mkdir %s/%s: %s", found->v2, name, strerror(-rc));
  if (sb->v2[0]) {
    char kill_file[WL_CG_PATH + 16];
    setf(kill_file, sizeof kill_file, "%s/cgroup.kill", sb->v2);
    sb->v2_kill = access(kill_file, F_OK) == 0;     /* Linux 5.14 */
    if (found->v2_memory && memory > 0) {
      setf(num, sizeof num, "%lld", memory);
      if (put(sb->v2, "memory.max", num) == 0) {
        sb->v2_memory = 1;
        put(sb->v2, "memory.swap.max", "0");     /* absent without swap */
        put(sb->v2, "memory.oom.group", "1");    /* the whole tree ends */
      }
    }
    if (found->v2_pids && pids > 0) {
      setf(num, sizeof num, "%lld", pids);
      sb->v2_pids = put(sb->v2, "pids.max", num) == 0;
    }
  }
  if (!sb->v2_memory && found->mem[0] && memory > 0 &&
      make_dir(sb->mem, found->mem, name) == 0) {
    setf(num, sizeof num, "%lld", memory);
    if (put(sb->mem, "memory.limit_in_bytes", num) < 0) {
      rmdir(sb->mem);
      sb->mem[0] = '\0';
    } else {
      put(sb->mem, "memory.memsw.limit_in_bytes", num);  /* with swap accounting */
    }
  }
  if (!sb->v2_pids && found->pids[0] && pids > 0 &&
      make_dir(sb->pids, found->pids, name) == 0) {
    setf(num, sizeof num, "%lld", pids);
    if (put(sb->pids, "pids.max", num) < 0) {
      rmdir(sb->pids);
      sb->pids[0] = '\0';
    }
  }
  if ((memory > 0 && !sb->v2_memory && !sb->mem[0]) ||
      (pids > 0 && !sb->v2_pids && !sb->pids[0])) {
    if (!sb->why[0])
      setf(sb->why, sizeof sb->why, "the %s controller cannot be used",
               memory > 0 && !sb->v2_memory && !sb->mem[0] ? "memory" : "pids");
  } else {
    sb->why[0] = '\0';
  }
  return sb->v2[0] || sb->mem[0] || sb->pids[0] ? 0 : -ENOENT;
}

/* In the child before exec: joins every group of sb (as root, before the
** uid changes). 0 or -errno. */
int wl_cgroup_join(const wl_cgroup_t *sb) {
  const char *dirs[3];
  int i, rc;
  dirs[0] = sb->v2;
  dirs[1] = sb->mem;
  dirs[2] = sb->pids;
  for (i = 0; i < 3; i++)
    if (dirs[i][0] && (rc = put(dirs[i], "cgroup.procs", "0")) < 0) return rc;
  return 0;
}

/* Signals every process in the groups of sb; returns how many were
** found. SIGKILL through cgroup.kill where the kernel has it (one atomic
** step, forks included). */
int wl_cgroup_signal(const wl_cgroup_t *sb, int sig) {
  const char *dirs[3];
  char buf[16384], *tok, *save;
  int i, n = 0;
  if (sig == SIGKILL && sb->v2_kill && put(sb->v2, "cgroup.kill", "1") == 0)
    return wl_cgroup_empty(sb) ? 0 : 1;
  dirs[0] = sb->v2;
  dirs[1] = sb->mem;
  dirs[2] = sb->pids;
  for (i = 0; i < 3; i++) {
    if (!dirs[i][0] || get(dirs[i], "cgroup.procs", buf, sizeof buf) < 0) continue;
    for (tok = strtok_r(buf, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
      kill((pid_t)atoi(tok), sig);
      n++;
    }
  }
  return n;
}

int wl_cgroup_empty(const wl_cgroup_t *sb) {
  const char *dirs[3];
  char buf[64];
  int i;
  dirs[0] = sb->v2;
  dirs[1] = sb->mem;
  dirs[2] = sb->pids;
  for (i = 0; i < 3; i++)
    if (dirs[i][0] && get(dirs[i], "cgroup.procs", buf, sizeof buf) > 0) return 0;
  return 1;
}

/* What the kernel counted: OOM kills, refused forks, peak memory. */
void wl_cgroup_stats(const wl_cgroup_t *sb, wl_cgroup_stats_t *st) {
  st->oom_kills = st->pids_max = st->memory_peak = -1;
  if (sb->v2_memory) {
    st->oom_kills = keyed(sb->v2, "memory.events", "oom_kill");
    st->memory_peak = number(sb->v2, "memory.peak");
  } else if (sb->mem[0]) {
    st->oom_kills = keyed(sb->mem, "memory.oom_control", "oom_kill");
    st->memory_peak = number(sb->mem, "memory.max_usage_in_bytes");
  }
  if (sb->v2_pids) st->pids_max = keyed(sb->v2, "pids.events", "max");
  else if (sb->pids[0]) st->pids_max = keyed(sb->pids, "pids.events", "max");
}

/* rmdir each group; a group whose last process has just been reaped may
** stay busy for a moment (memory being uncharged), hence the retries. */
void wl_cgroup_remove(wl_cgroup_t *sb) {
  char *dirs[3];
  int i, tries;
  dirs[0] = sb->v2;
  dirs[1] = sb->mem;
  dirs[2] = sb->pids;
  for (i = 0; i < 3; i++) {
    if (!dirs[i][0]) continue;
    for (tries = 0; tries < 200 && rmdir(dirs[i]) < 0 && errno == EBUSY; tries++) {
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, NULL);
    }
    dirs[i][0] = '\0';
  }
}
