/*
** capture.c: packet capture on an interface for the `capture` module
** (module "capture.core"). An AF_PACKET socket of type SOCK_DGRAM gives
** each IP packet without its link-layer header, on any interface, with
** the kernel's receive timestamp (SO_TIMESTAMPNS). A classic BPF filter
** attached before the socket is bound drops, in the kernel, what the
** capture does not want: the outgoing copy of every packet on loopback
** (lo shows each packet twice, once leaving and once arriving) and, with
** a port, every TCP or UDP packet that is not to or from it. What passes
** is checked again here (IPv6 extension headers, the host) before it is
** kept, so a busy machine costs no Lua string per foreign packet.
**
** A uv_poll_t reads packets as they come into a C list, within the
** capture's limits (packets, bytes); c:take() hands them to Lua and
** forgets them. capture.lua parses them. The userdata holds only a
** pointer: the poll handle and the packets not yet taken live until the
** close callback, which may run after the userdata is collected.
*/
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <lauxlib.h>
#include "wl.h"

#define CAP_MT "wirelab.capture"
#define READ_MAX (256 * 1024)   /* beyond lo's 64 KiB MTU, and GSO's */
#define BURST 512               /* packets read per poll callback */
#define RCVBUF (8 * 1024 * 1024)

typedef struct pkt_t {
  struct pkt_t *next;
  int64_t ns;                  /* the kernel's receive time, CLOCK_REALTIME */
  uint32_t len, caplen;        /* on the wire; kept here */
  unsigned char data[];
} pkt_t;

typedef struct cap_t {
  uv_poll_t poll;              /* first: the close callback gets this pointer */
  int fd;
  int port;                    /* 0: any */
  int host_family;             /* 0: any host, else AF_INET or AF_INET6 */
  unsigned char host[16];
  pkt_t *head, *tail;          /* read, not yet taken */
  lua_Integer max_packets, max_bytes, snaplen;
  lua_Integer kept_packets, kept_bytes, not_kept;
  int err;                     /* a read error that stopped the capture */
  int64_t start_ns;            /* CLOCK_REALTIME at start */
  wl_waiter_t waitq;           /* tasks in c:wait() */
} cap_t;

static unsigned char buf[READ_MAX];   /* copied into a pkt_t at once */

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static cap_t **to_box(lua_State *L) {
  return (cap_t **)luaL_checkudata(L, 1, CAP_MT);
}

static cap_t *check_open(lua_State *L, const char *op) {
  cap_t *c = *to_box(L);
  if (c == NULL) wl_raise(L, op, UV_EBADF, NULL);
  return c;
}

/* ---- the kernel's filter ---------------------------------------------- */

/* A tiny assembler: jumps name labels, resolved once the program is laid
** out, so the filter reads top to bottom. */
enum { NEXT, ACCEPT, REJECT, LOOK, V4, P4, V6, P6, NLABELS };

typedef struct {
  struct sock_filter ins[40];
  int jt[40], jf[40];
  int at[NLABELS];
  int n;
} bpf_t;

static void op(bpf_t *b, uint16_t code, uint32_t k, int jt, int jf) {
  b->ins[b->n] = (struct sock_filter)BPF_STMT(code, k);
  b->jt[b->n] = jt;
  b->jf[b->n] = jf;
  b->n++;
}

static void label(bpf_t *b, int l) { b->at[l] = b->n; }

static void resolve(bpf_t *b) {
  int i;
  for (i = 0; i < b->n; i++) {
    if (BPF_CLASS(b->ins[i].code) != BPF_JMP) continue;
    b->ins[i].jt = (uint8_t)(b->jt[i] == NEXT ? 0 : b->at[b->jt[i]] - i - 1);
    b->ins[i].jf = (uint8_t)(b->jf[i] == NEXT ? 0 : b->at[b->jf[i]] - i - 1);
  }
}

#define LD(b, size, mode, k) op(b, BPF_LD | (size) | (mode), (uint32_t)(k), 0, 0)
#define J(b, cond, k, jt, jf) op(b, BPF_JMP | (cond) | BPF_K, (uint32_t)(k), jt, jf)

/* The filter: no outgoing copies on loopback; with a port, only TCP and
** UDP to or from it (IPv6 with extension headers goes on to the C
** check, which walks them). */
static void build_filter(bpf_t *b, int port) {
  memset(b, 0, sizeof *b);
  LD(b, BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
  J(b, BPF_JEQ, PACKET_OUTGOING, NEXT, LOOK);
  LD(b, BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_HATYPE);
  J(b, BPF_JEQ, ARPHRD_LOOPBACK, REJECT, LOOK);
  label(b, LOOK);
  if (port != 0) {
    LD(b, BPF_B, BPF_ABS, 0);
    op(b, BPF_ALU | BPF_RSH | BPF_K, 4, 0, 0);
    J(b, BPF_JEQ, 4, V4, NEXT);
    J(b, BPF_JEQ, 6, V6, REJECT);
    label(b, V4);
    LD(b, BPF_B, BPF_ABS, 9);
    J(b, BPF_JEQ, IPPROTO_TCP, P4, NEXT);
    J(b, BPF_JEQ, IPPROTO_UDP, P4, REJECT);
    label(b, P4);
    LD(b, BPF_H, BPF_ABS, 6);
    J(b, BPF_JSET, 0x1fff, REJECT, NEXT);   /* a later fragment: no ports */
    op(b, BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0);
    LD(b, BPF_H, BPF_IND, 0);
    J(b, BPF_JEQ, port, ACCEPT, NEXT);
    LD(b, BPF_H, BPF_IND, 2);
    J(b, BPF_JEQ, port, ACCEPT, REJECT);
    label(b, V6);
    LD(b, BPF_B, BPF_ABS, 6);
    J(b, BPF_JEQ, IPPROTO_TCP, P6, NEXT);
    J(b, BPF_JEQ, IPPROTO_UDP, P6, ACCEPT);
    label(b, P6);
    LD(b, BPF_H, BPF_ABS, 40);
    J(b, BPF_JEQ, port, ACCEPT, NEXT);
    LD(b, BPF_H, BPF_ABS, 42);
    J(b, BPF_JEQ, port, ACCEPT, REJECT);
  }
  label(b, ACCEPT);
  op(b, BPF_RET | BPF_K, READ_MAX, 0, 0);
  label(b, REJECT);
  op(b, BPF_RET | BPF_K, 0, 0, 0);
  resolve(b);
}

/* ---- the check in C ------------------------------------------------------ */

/* The transport header of an IP packet: its protocol and offset, walking
** IPv6 extension headers; -1 when the packet is cut short or a later
** fragment (no ports in it). */
static int transport(const unsigned char *p, uint32_t n, int *proto) {
  if (n < 1) return -1;
  if (p[0] >> 4 == 4) {
    uint32_t ihl = (uint32_t)(p[0] & 0xf) * 4;
    if (n < 20 || ihl < 20 || ihl > n) return -1;
    if (((p[6] << 8 | p[7]) & 0x1fff) != 0) return -1;
    *proto = p[9];
    return (int)ihl;
  }
  if (p[0] >> 4 == 6) {
    uint32_t off = 40;
    int next, hops;
    if (n < 40) return -1;
    next = p[6];
    for (hops = 0; hops < 8; hops++) {
      if (next == 0 || next == 43 || next == 60) {         /* hop, route, dst */
        if (off + 8 > n) return -1;
        next = p[off];
        off += 8 + (uint32_t)p[off + 1] * 8;
      } else if (next == 44) {                              /* fragment */
        if (off + 8 > n) return -1;
        if (((p[off + 2] << 8 | p[off + 3]) & 0xfff8) != 0) return -1;
        next = p[off];
        off += 8;
      } else if (next == 51) {                              /* AH */
        if (off + 8 > n) return -1;
        next = p[off];
        off += ((uint32_t)p[off + 1] + 2) * 4;
      } else {
        break;
      }
    }
    if (off > n) return -1;
    *proto = next;
    return (int)off;
  }
  return -1;
}

static int wanted(const cap_t *c, const unsigned char *p, uint32_t n) {
  if (c->host_family == AF_INET) {
    if (n < 20 || p[0] >> 4 != 4) return 0;
    if (memcmp(p + 12, c->host, 4) != 0 && memcmp(p + 16, c->host, 4) != 0) return 0;
  } else if (c->host_family == AF_INET6) {
    if (n < 40 || p[0] >> 4 != 6) return 0;
    if (memcmp(p + 8, c->host, 16) != 0 && memcmp(p + 24, c->host, 16) != 0) return 0;
  }
  if (c->port != 0) {
    int proto = -1, off = transport(p, n, &proto);
    unsigned sport, dport;
    if (off < 0 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) return 0;
    if ((uint32_t)off + 4 > n) return 0;
    sport = (unsigned)(p[off] << 8 | p[off + 1]);
    dport = (unsigned)(p[off + 2] << 8 | p[off + 3]);
    if (sport != (unsigned)c->port && dport != (unsigned)c->port) return 0;
  }
  return 1;
}

/* ---- reading ---------------------------------------------------------- */

/* One packet from the socket into the list: 1 when one was read (kept or
** not), 0 when none was waiting, a libuv error otherwise. */
static int read_one(cap_t *c) {
  struct sockaddr_ll from;
  union { char b[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr a; } ctl;
  struct iovec iov = {buf, sizeof buf};
  struct msghdr m;
  struct cmsghdr *cm;
  int64_t ns = 0;
  ssize_t got;
  uint32_t caplen;
  pkt_t *k;
  memset(&m, 0, sizeof m);
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.b;
  m.msg_controllen = sizeof ctl.b;
  got = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_TRUNC);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -errno;
  }
  /* the filter's check, again: a filter the kernel refused to run is no
  ** reason to keep loopback's outgoing copies */
  if (from.sll_pkttype == PACKET_OUTGOING && from.sll_hatype == ARPHRD_LOOPBACK)
    return 1;
  caplen = (uint32_t)got < sizeof buf ? (uint32_t)got : (uint32_t)sizeof buf;
  if (!wanted(c, buf, caplen)) return 1;
  if (caplen > (uint32_t)c->snaplen) caplen = (uint32_t)c->snaplen;
  if (c->kept_packets >= c->max_packets ||
      c->kept_bytes + (lua_Integer)caplen > c->max_bytes) {
    c->not_kept++;
    return 1;
  }
  for (cm = CMSG_FIRSTHDR(&m); cm != NULL; cm = CMSG_NXTHDR(&m, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(cm), sizeof ts);
      ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
  if (ns == 0) ns = realtime_ns();
  if ((k = malloc(sizeof *k + caplen)) == NULL) {
    c->not_kept++;
    return 1;
  }
  k->next = NULL;
  k->ns = ns;
  k->len = (uint32_t)got;
  k->caplen = caplen;
  memcpy(k->data, buf, caplen);
  if (c->tail) c->tail->next = k;
  else c->head = k;
  c->tail = k;
  c->kept_packets++;
  c->kept_bytes += caplen;
  return 1;
}

/* Reads up to max packets; wakes c:wait()ers when one was kept. */
static void read_some(cap_t *c, int max) {
  int i, rc;
  pkt_t *before = c->tail;
  for (i = 0; i < max && c->err == 0; i++) {
    if ((rc = read_one(c)) == 0) break;
    if (rc < 0) {
      c->err = rc;             /* the interface went away: stop, say why */
      uv_poll_stop(&c->poll);
    }
  }
  if (c->tail != before || c->err != 0) wl_list_wake_all(&c->waitq, 0);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  cap_t *c = (cap_t *)h;
  (void)events;
  if (status < 0) {
    c->err = status;
    uv_poll_stop(&c->poll);
    wl_list_wake_all(&c->waitq, 0);
    return;
  }
  read_some(c, BURST);
}

/* ---- opening ---------------------------------------------------------- */

/* The packet socket, filtered, bound to the interface: 0 or a libuv
** error. Called inside the namespace when there is one: the interface's
** index is looked up there. */
static int open_socket(const char *ifname, int port, int *fdp) {
  struct sockaddr_ll sll;
  struct sock_fprog fprog;
  bpf_t b;
  int fd, one = 1, size = RCVBUF;
  unsigned idx = 0;
  if (strcmp(ifname, "any") != 0 && (idx = if_nametoindex(ifname)) == 0)
    return errno == ENXIO ? UV_ENODEV : -errno;
  /* protocol 0: nothing reaches the socket before its filter is on */
  fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  build_filter(&b, port);
  fprog.len = (unsigned short)b.n;
  fprog.filter = b.ins;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0)
    goto fail;
  /* room for a burst while the loop is busy elsewhere: FORCE where
  ** allowed (CAP_NET_ADMIN), else what rmem_max grants */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) goto fail;
  *fdp = fd;
  return 0;
fail:
  {
    int e = -errno;
    close(fd);
    return e;
  }
}

/* open_socket inside a check's namespace (wl_netns_run) */
typedef struct { const char *ifname; int port, fd; } open_job_t;

static int open_in_ns(void *arg) {
  open_job_t *j = arg;
  return open_socket(j->ifname, j->port, &j->fd);
}

static void on_close(uv_handle_t *h) {
  cap_t *c = (cap_t *)h;
  pkt_t *k = c->head, *next;
  for (; k != NULL; k = next) {
    next = k->next;
    free(k);
  }
  free(c);
}

/* The one place a capture is closed; wake: tell waiting tasks (close());
** not from __gc, where no task can be waiting. */
static void close_cap(cap_t **box, int wake) {
  cap_t *c = *box;
  *box = NULL;
  if (wake) wl_list_wake_all(&c->waitq, UV_EBADF);
  uv_close((uv_handle_t *)&c->poll, on_close);
  close(c->fd);
  wl_handle_count(-1);
}

/* open(ifname, nsfd|nil, port, host|nil, max_packets, max_bytes, snaplen)
** -> c: capturing from now on. Errors name the interface: EPERM (or
** EACCES) without CAP_NET_RAW, ENODEV for an unknown interface. */
static int capture_open(lua_State *L) {
  const char *ifname = luaL_checkstring(L, 1);
  int nsfd = (int)luaL_optinteger(L, 2, -1);
  lua_Integer port = luaL_optinteger(L, 3, 0);
  const char *host = luaL_optstring(L, 4, NULL);
  cap_t **box, *c;
  int fd = -1, rc;
  luaL_argcheck(L, port >= 0 && port <= 65535, 3, "port out of range");
  box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, CAP_MT);
  if ((c = calloc(1, sizeof *c)) == NULL)
    return wl_raise(L, "capture", UV_ENOMEM, ifname);
  c->fd = -1;
  c->port = (int)port;
  c->max_packets = luaL_optinteger(L, 5, 100000);
  c->max_bytes = luaL_optinteger(L, 6, 64 * 1024 * 1024);
  c->snaplen = luaL_optinteger(L, 7, READ_MAX);
  if (c->snaplen <= 0 || c->snaplen > READ_MAX) c->snaplen = READ_MAX;
  if (host != NULL) {
    if (inet_pton(AF_INET, host, c->host) == 1) c->host_family = AF_INET;
    else if (inet_pton(AF_INET6, host, c->host) == 1) c->host_family = AF_INET6;
    else {
      free(c);
      return luaL_argerror(L, 4, "a numeric IPv4 or IPv6 address expected");
    }
  }
  wl_waiter_init(&c->waitq);
  if (nsfd >= 0) {
    open_job_t j;
    j.ifname = ifname;
    j.port = c->port;
    j.fd = -1;
    rc = wl_netns_run(nsfd, open_in_ns, &j);
    fd = j.fd;
  } else {
    rc = open_socket(ifname, c->port, &fd);
  }
  if (rc == 0 && (rc = uv_poll_init_socket(wl_loop(), &c->poll, fd)) < 0)
    close(fd);
  if (rc < 0) {
    free(c);
    return wl_raise(L, "capture", rc, ifname);
  }
  c->fd = fd;
  c->start_ns = realtime_ns();
  *box = c;
  wl_handle_count(1);
  uv_poll_start(&c->poll, UV_READABLE, on_poll);
  return 1;
}

/* ---- methods ---------------------------------------------------------- */

/* c:take() -> {{t=, data=, len=}...}: the packets read since the last
** take, after reading what the socket holds now (a packet that arrived
** just before a stop is in it); t is seconds since the start. */
static int cap_take(lua_State *L) {
  cap_t *c = check_open(L, "take");
  pkt_t *k, *next;
  lua_Integer i = 0;
  read_some(c, 1 << 20);
  lua_newtable(L);
  for (k = c->head; k != NULL; k = next) {
    next = k->next;
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (double)(k->ns - c->start_ns) / 1e9);
    lua_setfield(L, -2, "t");
    lua_pushlstring(L, (const char *)k->data, k->caplen);
    lua_setfield(L, -2, "data");
    lua_pushinteger(L, k->len);
    lua_setfield(L, -2, "len");
    lua_rawseti(L, -2, ++i);
    c->head = next;            /* forgotten as it goes: an error midway */
    if (next == NULL) c->tail = NULL;   /* leaks nothing */
    free(k);
  }
  return 1;
}

/* c:wait([timeout]) -> true once a packet is there to take (at once when
** one is), false when the time ran out. */
static int cap_wait(lua_State *L) {
  cap_t *c = check_open(L, "wait");
  double timeout = luaL_optnumber(L, 2, -1);
  read_some(c, BURST);
  if (c->head != NULL || c->err != 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return wl_list_wait(L, &c->waitq, timeout);
}

/* c:stats() -> {kept=, bytes=, not_kept=, kernel_drops=}: kernel_drops
** counts since the last call (PACKET_STATISTICS resets on reading) */
static int cap_stats(lua_State *L) {
  cap_t *c = check_open(L, "stats");
  struct tpacket_stats st;
  socklen_t len = sizeof st;
  memset(&st, 0, sizeof st);
  getsockopt(c->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, c->kept_packets);
  lua_setfield(L, -2, "kept");
  lua_pushinteger(L, c->kept_bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, c->not_kept);
  lua_setfield(L, -2, "not_kept");
  lua_pushinteger(L, st.tp_drops);
  lua_setfield(L, -2, "kernel_drops");
  return 1;
}

/* c:now() -> seconds since the start, on the clock of the timestamps */
static int cap_now(lua_State *L) {
  cap_t *c = check_open(L, "now");
  lua_pushnumber(L, (double)(realtime_ns() - c->start_ns) / 1e9);
  return 1;
}

/* c:started_ns() -> the start, in nanoseconds since the epoch (pcap
** files carry absolute times) */
static int cap_started_ns(lua_State *L) {
  cap_t *c = check_open(L, "started_ns");
  lua_pushinteger(L, (lua_Integer)c->start_ns);
  return 1;
}

/* c:error() -> why the capture stopped reading (the interface went
** away), or nil */
static int cap_error(lua_State *L) {
  cap_t *c = check_open(L, "error");
  if (c->err == 0) return 0;
  lua_pushstring(L, uv_strerror(c->err));
  return 1;
}

static int cap_close(lua_State *L) {
  cap_t **box = to_box(L);
  if (*box != NULL) close_cap(box, 1);
  return 0;
}

static int cap_gc(lua_State *L) {
  cap_t **box = to_box(L);
  if (*box != NULL) close_cap(box, 0);
  return 0;
}

/* realtime_ns() -> nanoseconds since the epoch: a capture on a link
** starts its pcap clock with it */
static int capture_realtime_ns(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)realtime_ns());
  return 1;
}

static const luaL_Reg funcs[] = {
  {"open", capture_open}, {"realtime_ns", capture_realtime_ns}, {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"take", cap_take}, {"wait", cap_wait}, {"stats", cap_stats},
  {"now", cap_now}, {"started_ns", cap_started_ns}, {"error", cap_error},
  {"close", cap_close},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", cap_gc}, {"__close", cap_close}, {NULL, NULL}
};

int luaopen_capture_core(lua_State *L) {
  luaL_newmetatable(L, CAP_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
