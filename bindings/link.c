/*
** link.c: the packet path of netem.link (module "netem.link.core"). A link
** holds the TUN fds of its two sides (tun.c made them, one in each network
** namespace): every IP packet one side's kernel sends is read here,
** judged by the direction's emulator (emul.c), logged (linklog.c), and
** written to the other side's TUN when it is due. It all happens in libuv
** callbacks, without Lua: a poll per TUN fd, and a timerfd (a poll too)
** armed for the earliest packet due, since libuv's own timers count whole
** milliseconds and a 50 ms delay should be 50 ms. A packet due at once,
** with nothing of its direction waiting, is written straight from the
** read buffer. Taps (the capture module) get copies only while one is on.
**
** Lifetime: the userdata holds only a pointer. close() closes the three
** handles and the fds (the TUN ones on the thread pool, so the devices and
** then the namespaces go away soon after); the struct, packets still in
** flight and the log are freed when the last close callback has run.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include <lauxlib.h>
#include "wl.h"
#include "link.h"

#define LINK_MT "wirelab.link"
#define PKT_MAX 65536             /* the largest IP packet a TUN gives */
#define READ_BURST 128            /* packets per poll callback */
#define HELD_MAX (256u << 20)     /* bytes in flight, beyond: overflow */
#define TAP_MAX (64u << 20)       /* bytes a tap may fall behind */
#define TAP_BATCH 4096            /* packets one _tap_read returns at most */
#define EARLY_NS 20000            /* what is due this close is due now */

typedef struct link_s link_t;

typedef struct {
  uv_poll_t poll;                 /* first: callbacks get this pointer */
  link_t *link;
  int fd;
} port_t;

typedef struct pkt_s {
  uint64_t due, order;
  uint32_t len;
  int dir;
  unsigned char data[];
} pkt_t;

typedef struct tap_s {
  struct tap_s *next;
  uint64_t t;
  uint32_t len;
  int dir;
  unsigned char data[];
} tapitem_t;

struct link_s {
  port_t side[2];                 /* 0: A's TUN (reads a>b), 1: B's */
  port_t timer;                   /* the timerfd */
  int open_handles;               /* close callbacks still to come */
  wl_dir_t dir[2];
  pkt_t **heap;                   /* min-heap on (due, order) */
  size_t hn, hcap;
  uint64_t order, held_bytes, armed;
  size_t queued[2];               /* packets of each direction in the heap */
  wl_log_t log;
  int tap_on;
  tapitem_t *tap_head, *tap_tail;
  size_t tap_n;
  uint64_t tap_bytes, tap_lost;
  wl_waiter_t tapq;
};

static unsigned char rbuf[PKT_MAX];

static link_t **to_box(lua_State *L) { return luaL_checkudata(L, 1, LINK_MT); }

static link_t *check_open(lua_State *L, const char *op) {
  link_t *k = *to_box(L);
  if (k == NULL) wl_raise(L, op, UV_EBADF, NULL);
  return k;
}

/* ---- the heap of packets in flight ---- */

static int before(const pkt_t *a, const pkt_t *b) {
  return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static int heap_push(link_t *k, pkt_t *p) {
  size_t i;
  if (k->hn == k->hcap) {
    size_t ncap = k->hcap ? k->hcap * 2 : 256;
    pkt_t **nh = realloc(k->heap, ncap * sizeof *nh);
    if (nh == NULL) return -1;
    k->heap = nh;
    k->hcap = ncap;
  }
  i = k->hn++;
  while (i > 0 && before(p, k->heap[(i - 1) / 2])) {
    k->heap[i] = k->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  k->heap[i] = p;
  return 0;
}

static pkt_t *heap_pop(link_t *k) {
  pkt_t *top = k->heap[0], *last = k->heap[--k->hn];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= k->hn) break;
    if (c + 1 < k->hn && before(k->heap[c + 1], k->heap[c])) c++;
    if (!before(k->heap[c], last)) break;
    k->heap[i] = k->heap[c];
    i = c;
  }
  if (k->hn > 0) k->heap[i] = last;
  return top;
}

/* ---- delivery ---- */

static void tap_copy(link_t *k, int dir, const unsigned char *data,
                     uint32_t len, uint64_t now) {
  tapitem_t *t;
  if (k->tap_bytes + len > TAP_MAX || (t = malloc(sizeof *t + len)) == NULL) {
    k->tap_lost++;
    return;
  }
  t->next = NULL;
  t->t = now;
  t->len = len;
  t->dir = dir;
  memcpy(t->data, data, len);
  if (k->tap_tail) k->tap_tail->next = t; else k->tap_head = t;
  k->tap_tail = t;
  k->tap_n++;
  k->tap_bytes += len;
  wl_list_wake_one(&k->tapq, 0);
}

/* To the other side's kernel; a TUN write does not block. */
static void deliver(link_t *k, int dir, const unsigned char *data, uint32_t len,
                    uint64_t now) {
  wl_dir_t *d = &k->dir[dir];
  if (write(k->side[1 - dir].fd, data, len) < 0) {
    d->st.write_errors++;
    return;
  }
  d->st.delivered++;
  d->st.delivered_bytes += len;
  if (k->tap_on) tap_copy(k, dir, data, len, now);
}

static void arm(link_t *k) {
  struct itimerspec its;
  uint64_t at = k->hn ? k->heap[0]->due : 0;
  if (at == k->armed) return;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at / 1000000000u);
  its.it_value.tv_nsec = (long)(at % 1000000000u);
  /* at 0 (nothing in flight) disarms */
  if (timerfd_settime(k->timer.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    k->armed = at;
}

static void run_due(link_t *k) {
  uint64_t now = uv_hrtime();
  while (k->hn > 0 && k->heap[0]->due <= now + EARLY_NS) {
    pkt_t *p = heap_pop(k);
    deliver(k, p->dir, p->data, p->len, now);
    k->queued[p->dir]--;
    k->held_bytes -= p->len;
    free(p);
  }
}

static int hold(link_t *k, int dir, const unsigned char *data, uint32_t len,
                uint64_t due) {
  pkt_t *p;
  if (k->held_bytes + len > HELD_MAX || (p = malloc(sizeof *p + len)) == NULL)
    return -1;
  p->due = due;
  p->order = k->order++;
  p->len = len;
  p->dir = dir;
  memcpy(p->data, data, len);
  if (heap_push(k, p) < 0) { free(p); return -1; }
  k->queued[dir]++;
  k->held_bytes += len;
  return 0;
}

/* One packet read from side dir's TUN. */
static void arrive(link_t *k, int dir, const unsigned char *data, uint32_t len,
                   uint64_t now) {
  wl_dir_t *d = &k->dir[dir];
  wl_verdict_t v;
  wl_event_t e;
  int i, n;
  uint64_t due[2];
  if (wl_dir_judge(d, now, len, &v) < 0) v.action = WL_OVERFLOW;
  memset(&e, 0, sizeof e);
  e.t = now;
  e.seq = d->seq;
  e.size = (uint16_t)len;
  e.dir = (uint8_t)dir;
  e.action = (uint8_t)v.action;
  e.due = v.action == WL_DROP || v.action == WL_OVERFLOW ? 0 : v.due;
  if (k->log.max > 0) wl_log_add(&k->log, &e, data, len);
  if (e.due == 0) return;
  due[0] = v.due;
  due[1] = v.due2;
  n = v.action == WL_DUPLICATE && v.due2 ? 2 : 1;
  for (i = 0; i < n; i++) {
    if (due[i] <= now && k->queued[dir] == 0) {
      deliver(k, dir, data, len, now);
    } else if (hold(k, dir, data, len, due[i]) < 0) {
      d->st.overflow++;
    }
  }
}

static void on_read(uv_poll_t *h, int status, int events) {
  port_t *pt = (port_t *)h;
  link_t *k = pt->link;
  int dir = pt == &k->side[0] ? 0 : 1, i;
  (void)events;
  if (status < 0) return;
  for (i = 0; i < READ_BURST; i++) {
    ssize_t n = read(pt->fd, rbuf, sizeof rbuf);
    if (n <= 0) break;
    /* packets that fell due while these were read go first */
    if (k->hn > 0 && k->heap[0]->due <= uv_hrtime()) run_due(k);
    arrive(k, dir, rbuf, (uint32_t)n, uv_hrtime());
  }
  arm(k);
}

static void on_timer(uv_poll_t *h, int status, int events) {
  link_t *k = ((port_t *)h)->link;
  uint64_t ticks;
  (void)status;
  (void)events;
  if (read(k->timer.fd, &ticks, sizeof ticks) < 0) { /* not expired yet */ }
  k->armed = 0;
  run_due(k);
  arm(k);
}

/* ---- creation and closing ---- */

static void free_link(link_t *k) {
  tapitem_t *t = k->tap_head;
  while (k->hn > 0) free(heap_pop(k));
  free(k->heap);
  while (t) { tapitem_t *n = t->next; free(t); t = n; }
  wl_dir_free(&k->dir[0]);
  wl_dir_free(&k->dir[1]);
  wl_log_free(&k->log);
  free(k);
}

static void on_close(uv_handle_t *h) {
  link_t *k = ((port_t *)h)->link;
  if (--k->open_handles == 0) free_link(k);
}

static void on_fs_close(uv_fs_t *req) {
  uv_fs_req_cleanup(req);
  free(req);
}

/* Closing a TUN fd unregisters its device, which waits for RCU grace
** periods: 30 to 60 ms measured, too long to hold the loop (and every
** other task's timing) for. It is done on libuv's thread pool. */
static void close_later(int fd) {
  uv_fs_t *req = malloc(sizeof *req);
  if (req == NULL || uv_fs_close(wl_loop(), req, fd, on_fs_close) < 0) {
    free(req);
    close(fd);
  }
}

static void close_link(link_t **box, int wake) {
  link_t *k = *box;
  port_t *ports[3];
  int i;
  *box = NULL;
  if (wake) wl_list_wake_all(&k->tapq, UV_EBADF);
  ports[0] = &k->side[0];
  ports[1] = &k->side[1];
  ports[2] = &k->timer;
  for (i = 0; i < 3; i++) {
    if (ports[i]->fd < 0) continue;
    uv_close((uv_handle_t *)&ports[i]->poll, on_close);   /* off epoll first */
    if (i < 2) close_later(ports[i]->fd); else close(ports[i]->fd);
    ports[i]->fd = -1;
  }
  wl_handle_count(-1);
}

static int init_port(link_t *k, port_t *pt, int fd, uv_poll_cb cb) {
  int rc;
  pt->link = k;
  pt->fd = fd;
  if ((rc = uv_poll_init(wl_loop(), &pt->poll, fd)) < 0) {
    pt->fd = -1;
    return rc;
  }
  k->open_handles++;
  return uv_poll_start(&pt->poll, UV_READABLE, cb);
}

/* _new(fd_a, fd_b[, log_max]) -> link: takes over both TUN fds (closed
** on failure too). */
static int link_new(lua_State *L) {
  int fds[2], tfd, rc = 0, i;
  lua_Integer logmax = luaL_optinteger(L, 3, 100000);
  link_t **box, *k;
  fds[0] = (int)luaL_checkinteger(L, 1);
  fds[1] = (int)luaL_checkinteger(L, 2);
  box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, LINK_MT);
  k = calloc(1, sizeof *k);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (k == NULL || tfd < 0) {
    rc = k == NULL ? UV_ENOMEM : -errno;
    free(k);
    if (tfd >= 0) close(tfd);
    close(fds[0]);
    close(fds[1]);
    return wl_raise(L, "link", rc, NULL);
  }
  k->side[0].fd = k->side[1].fd = k->timer.fd = -1;
  for (i = 0; i < 2; i++) wl_dir_init(&k->dir[i]);
  wl_dir_seed(&k->dir[1], 2);
  k->log.max = logmax > 0 ? (size_t)logmax : 0;
  wl_list_init(&k->tapq);
  *box = k;
  wl_handle_count(1);
  /* from here close_link owns whatever was set up */
  if ((rc = init_port(k, &k->side[0], fds[0], on_read)) < 0 ||
      (rc = init_port(k, &k->side[1], fds[1], on_read)) < 0 ||
      (rc = init_port(k, &k->timer, tfd, on_timer)) < 0) {
    if (k->side[0].fd < 0) close(fds[0]);
    if (k->side[1].fd < 0) close(fds[1]);
    if (k->timer.fd < 0) close(tfd);
    if (k->open_handles == 0) {
      *box = NULL;
      wl_handle_count(-1);
      free_link(k);
    } else {
      close_link(box, 0);
    }
    return wl_raise(L, "link", rc, NULL);
  }
  return 1;
}

static int link_close(lua_State *L) {
  link_t **box = to_box(L);
  if (*box) close_link(box, 1);
  return 0;
}

static int link_gc(lua_State *L) {
  link_t **box = to_box(L);
  if (*box) close_link(box, 0);
  return 0;
}

/* ---- conditions, seeds, counters, the log ---- */

static int dir_arg(lua_State *L) {
  lua_Integer d = luaL_checkinteger(L, 2);
  luaL_argcheck(L, d == 1 || d == 2, 2, "direction 1 (a>b) or 2 (b>a)");
  return (int)d - 1;
}

static double num_field(lua_State *L, int t, const char *name, double v) {
  lua_getfield(L, t, name);
  if (!lua_isnil(L, -1)) v = luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* _set(dir, {delay=, jitter=, loss=, duplicate=, reorder=, reorder_gap=,
** rate=, queue=, queue_bytes=}): fields not given keep their value; the
** Lua side has checked ranges and units. */
static int link_set(lua_State *L) {
  link_t *k = check_open(L, "set");
  wl_impair_t *p = &k->dir[dir_arg(L)].p;
  luaL_checktype(L, 3, LUA_TTABLE);
  p->delay = num_field(L, 3, "delay", p->delay);
  p->jitter = num_field(L, 3, "jitter", p->jitter);
  p->loss = num_field(L, 3, "loss", p->loss);
  p->duplicate = num_field(L, 3, "duplicate", p->duplicate);
  p->reorder = num_field(L, 3, "reorder", p->reorder);
  p->reorder_gap = num_field(L, 3, "reorder_gap", p->reorder_gap);
  p->rate = num_field(L, 3, "rate", p->rate);
  p->queue = (uint32_t)num_field(L, 3, "queue", p->queue);
  p->queue_bytes =
    (uint64_t)num_field(L, 3, "queue_bytes", (double)p->queue_bytes);
  return 0;
}

static int link_seed(lua_State *L) {
  link_t *k = check_open(L, "seed");
  wl_dir_seed(&k->dir[dir_arg(L)], (uint64_t)luaL_checkinteger(L, 3));
  return 0;
}

#define SETI(name, v) \
  (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))

static int link_stats(lua_State *L) {
  link_t *k = check_open(L, "stats");
  int i;
  lua_createtable(L, 2, 4);
  for (i = 0; i < 2; i++) {
    const wl_dir_stats_t *s = &k->dir[i].st;
    lua_createtable(L, 0, 14);
    SETI("packets", s->packets);
    SETI("bytes", s->bytes);
    SETI("delivered", s->delivered);
    SETI("delivered_bytes", s->delivered_bytes);
    SETI("dropped", s->dropped);
    SETI("overflow", s->overflow);
    SETI("duplicated", s->duplicated);
    SETI("reordered", s->reordered);
    SETI("delayed", s->delayed);
    SETI("write_errors", s->write_errors);
    SETI("queue_max", s->queue_max);
    SETI("in_flight", k->queued[i]);
    lua_rawseti(L, -2, i + 1);
  }
  SETI("log_lost", k->log.lost);
  SETI("tap_lost", k->tap_lost);
  return 1;
}

/* _events([from]) -> the log from line `from` (1-based) on */
static int link_events(lua_State *L) {
  link_t *k = check_open(L, "events");
  lua_Integer from = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, from >= 1, 2, "a line number from 1 expected");
  wl_log_push(L, &k->log, (size_t)from - 1);
  return 1;
}

static int link_clear(lua_State *L) {
  link_t *k = check_open(L, "events");
  k->log.n = 0;
  k->log.lost = 0;
  return 0;
}

/* ---- taps ---- */

static int link_tap(lua_State *L) {
  link_t *k = check_open(L, "tap");
  k->tap_on = lua_toboolean(L, 2);
  return 0;
}

static int tap_read_do(lua_State *L);

static int tap_read_k(lua_State *L, int status, lua_KContext ctx) {
  int rc = (int)lua_tointeger(L, -1);
  (void)status;
  (void)ctx;
  lua_pop(L, 1);
  if (rc < 0)
    return wl_raise(L, "tap", *to_box(L) == NULL ? UV_EBADF : rc, NULL);
  return tap_read_do(L);
}

/* _tap_read() -> times, dirs, packets: what was delivered since the last
** call (at most TAP_BATCH), waiting for the first. */
static int tap_read_do(lua_State *L) {
  link_t *k = check_open(L, "tap");
  int i, n;
  if (k->tap_n == 0) return wl_list_park(L, &k->tapq, -1, tap_read_k, 0);
  n = k->tap_n > TAP_BATCH ? TAP_BATCH : (int)k->tap_n;
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    tapitem_t *t = k->tap_head;
    k->tap_head = t->next;
    if (k->tap_head == NULL) k->tap_tail = NULL;
    k->tap_n--;
    k->tap_bytes -= t->len;
    lua_pushnumber(L, (double)t->t / 1e9);
    lua_rawseti(L, -4, i);
    lua_pushstring(L, t->dir ? "b>a" : "a>b");
    lua_rawseti(L, -3, i);
    lua_pushlstring(L, (const char *)t->data, t->len);
    lua_rawseti(L, -2, i);
    free(t);
  }
  return 3;
}

static int link_tap_read(lua_State *L) { return tap_read_do(L); }

static const luaL_Reg funcs[] = {
  {"_new", link_new}, {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"_set", link_set}, {"_seed", link_seed}, {"stats", link_stats},
  {"_events", link_events}, {"_clear", link_clear}, {"_tap", link_tap},
  {"_tap_read", link_tap_read}, {"close", link_close}, {NULL, NULL}
};

int luaopen_netem_link_core(lua_State *L) {
  luaL_newlib(L, funcs);
  wl_tun_register(L);
  luaL_newmetatable(L, LINK_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, link_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, link_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  return 1;
}
