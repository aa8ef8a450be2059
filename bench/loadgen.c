/*
** loadgen.c: the one load client of the benchmarks. `tcp` keeps CONNS
** connections in ping-pong (send MSGSIZE bytes, wait for the same bytes
** back, verify them, repeat); `udp` keeps INFLIGHT datagrams outstanding,
** resending any not echoed within a short timeout so loss never stalls it;
** `idle` opens N connections and holds them until told to close. Every
** mode stops by itself: the measured modes after SECONDS, `idle` after a
** hold limit, and an alarm ends the process if anything hangs.
**
** The last line of `tcp` and `udp` is machine-readable:
**   RESULT mode=tcp rate=<msgs/s> msgs=<n> secs=<s> bytes=<verified> ...
*/
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define CONNECT_BATCH 256       /* connects in flight at once */
#define CONNECT_LIMIT_S 60      /* idle mode: give up establishing after */
#define HOLD_LIMIT_S 600        /* idle mode: close by itself after */
#define UDP_TIMEOUT_NS 100000000ull  /* resend a datagram after 100 ms */
#define UDP_MAGIC 0x574c5544u   /* "WLUD" */
#define UDP_HDR 16              /* magic, slot, sequence number */
#define PAT_SLACK 256           /* message k starts at pattern[k % 256] */
#define RBUF_SIZE (256 * 1024)

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  int idx;
  int writing;                 /* a uv_write is in flight */
  int send_pending;            /* next message waits for that write */
  uint64_t k;                  /* index of the message in flight */
  size_t got;                  /* bytes of it echoed and verified */
  uint64_t done;               /* messages verified while measuring */
  uint64_t last_done_at;       /* uv_hrtime of the last verified echo */
} conn_t;

typedef struct {
  uint64_t seq;
  uint64_t sent_at;
} slot_t;

static uv_loop_t *loop;
static struct sockaddr_storage peer;
static const char *mode;
static unsigned char *pattern;  /* pseudo-random bytes, msgsize + slack */
static char rbuf[RBUF_SIZE];    /* every read lands here, then is checked */
static size_t msgsize;
static double seconds;
static int nconns;
static conn_t *conns;
static int next_connect, connected, closed_by_peer, connect_failed;
static int measuring;
static uint64_t t_start;
static uint64_t total_msgs, total_bytes, errors;
static uv_timer_t stop_timer, tick_timer;

/* UDP state */
static uv_udp_t udp;
static slot_t *slots;
static int inflight;
static uint64_t udp_seq, timeouts, stale;

/* idle state */
static uv_signal_t sig_int, sig_term;
static union { uv_pipe_t pipe; uv_tty_t tty; } in;

static void die(const char *what, int rc) {
  fprintf(stderr, "loadgen: %s: %s\n", what, rc ? uv_strerror(rc) : "failed");
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
    "usage: loadgen tcp HOST PORT CONNS MSGSIZE SECONDS\n"
    "       loadgen udp HOST PORT INFLIGHT MSGSIZE SECONDS\n"
    "       loadgen idle HOST PORT N [HOLD_SECONDS]\n");
  exit(2);
}

static long parse_num(const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi)
    usage();
  return v;
}

static void parse_addr(const char *host, int port) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&peer) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&peer) != 0) {
    fprintf(stderr, "loadgen: %s: not a numeric address\n", host);
    exit(2);
  }
}

static double parse_secs(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= 0.05 && v <= 86400))
    usage();
  return v;
}

static void make_pattern(size_t n) {
  uint32_t x = 2463534242u;
  size_t i;
  pattern = malloc(n);
  if (pattern == NULL)
    die("malloc", 0);
  for (i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    pattern[i] = (unsigned char)(x >> 24);
  }
}

/* Bytes of message k on connection idx start here: each message differs
** from the one before, so an echo of stale or shifted data fails. */
static const unsigned char *msg_bytes(int idx, uint64_t k) {
  return pattern + (k * 13 + (uint64_t)idx * 7) % PAT_SLACK;
}

static double elapsed_s(void) {
  return (double)(uv_hrtime() - t_start) / 1e9;
}

static void on_alarm(int sig) {
  static const char msg[] = "loadgen: time limit exceeded, exiting\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
  _exit(3);
}

static void alloc_rbuf(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h; (void)size;
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

static void on_close_free_nothing(uv_handle_t *h) { (void)h; }

/* ---- tcp ping-pong ---- */

static void send_msg(conn_t *c);

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  c->writing = 0;
  if (status < 0) {
    if (measuring)
      fprintf(stderr, "loadgen: conn %d: write: %s\n", c->idx,
              uv_strerror(status));
    errors++;
    return;
  }
  if (c->send_pending) {
    c->send_pending = 0;
    send_msg(c);
  }
}

static void send_msg(conn_t *c) {
  uv_buf_t buf;
  int n;
  if (c->writing) {             /* echo came back before our write's cb */
    c->send_pending = 1;
    return;
  }
  buf = uv_buf_init((char *)msg_bytes(c->idx, c->k), (unsigned)msgsize);
  n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (n == (int)msgsize)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    fprintf(stderr, "loadgen: conn %d: write: %s\n", c->idx, uv_strerror(n));
    errors++;
    return;
  }
  if (n > 0) {
    buf.base += n;
    buf.len -= n;
  }
  c->wreq.data = c;
  c->writing = 1;
  n = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (n < 0) {
    c->writing = 0;
    fprintf(stderr, "loadgen: conn %d: write: %s\n", c->idx, uv_strerror(n));
    errors++;
  }
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  const char *p = buf->base;
  if (nread < 0) {
    if (measuring)
      fprintf(stderr, "loadgen: conn %d: %s\n", c->idx,
              nread == UV_EOF ? "server closed the connection"
                              : uv_strerror((int)nread));
    errors++;
    closed_by_peer++;
    uv_read_stop(s);
    return;
  }
  while (nread > 0) {
    size_t want = msgsize - c->got, take = (size_t)nread;
    if (take > want)
      take = want;
    if (memcmp(p, msg_bytes(c->idx, c->k) + c->got, take) != 0) {
      fprintf(stderr, "loadgen: conn %d: echoed bytes differ from those "
              "sent (message %" PRIu64 ", offset %zu)\n", c->idx, c->k,
              c->got);
      exit(1);
    }
    c->got += take;
    p += take;
    nread -= (ssize_t)take;
    if (c->got == msgsize) {
      if (nread > 0) {
        fprintf(stderr, "loadgen: conn %d: server sent %zd bytes more than "
                "it was sent\n", c->idx, nread);
        exit(1);
      }
      if (measuring) {
        c->last_done_at = uv_hrtime();
        c->done++;
        total_msgs++;
        total_bytes += msgsize;
      }
      c->k++;
      c->got = 0;
      send_msg(c);
    }
  }
}

static void start_measuring(void) {
  int i;
  measuring = 1;
  t_start = uv_hrtime();
  for (i = 0; i < nconns; i++) {
    conns[i].last_done_at = t_start;
    send_msg(&conns[i]);
  }
}

/* A connection whose echo has not come back for this long has stalled:
** the server lost bytes or stopped serving it. */
static int count_stalled(void) {
  uint64_t now = uv_hrtime(), limit = (uint64_t)(seconds / 2 * 1e9);
  int i, n = 0;
  if (limit < 500000000ull)
    limit = 500000000ull;
  for (i = 0; i < nconns; i++)
    if (now - conns[i].last_done_at >= limit) {
      if (n++ < 5)
        fprintf(stderr, "loadgen: conn %d: no complete echo for %.1f s "
                "(%zu of %zu bytes of the message back)\n", i,
                (double)(now - conns[i].last_done_at) / 1e9, conns[i].got,
                msgsize);
    }
  return n;
}

static void connect_next(void);

static void on_tcp_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0) {
    fprintf(stderr, "loadgen: connect %d: %s\n", c->idx, uv_strerror(status));
    exit(1);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->tcp.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_rbuf, on_tcp_read);
  connected++;
  connect_next();
}

static void start_connect(conn_t *c, uv_connect_cb cb) {
  int rc;
  if ((rc = uv_tcp_init(loop, &c->tcp)) < 0)
    die("tcp init", rc);
  c->creq.data = c;
  rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&peer, cb);
  if (rc < 0)
    die("connect", rc);
}

static void on_stop(uv_timer_t *t);

static void connect_next(void) {
  if (next_connect < nconns)
    start_connect(&conns[next_connect++], on_tcp_connect);
  else if (connected == nconns && !measuring) {
    start_measuring();
    uv_timer_start(&stop_timer, on_stop, (uint64_t)(seconds * 1000), 0);
  }
}

static void print_result(void) {
  double secs = elapsed_s();
  double rate = total_msgs / secs;
  if (strcmp(mode, "tcp") == 0) {
    uint64_t lo = UINT64_MAX, hi = 0;
    int i, stalled = count_stalled();
    errors += (uint64_t)stalled;
    for (i = 0; i < nconns; i++) {
      if (conns[i].done < lo) lo = conns[i].done;
      if (conns[i].done > hi) hi = conns[i].done;
    }
    printf("loadgen tcp: %d conns x %zu B, %.3f s: %" PRIu64 " msgs, "
           "%.1f msgs/s, %.1f MB/s echoed, %" PRIu64 " bytes verified, "
           "per conn %" PRIu64 "..%" PRIu64 ", %d stalled\n", nconns, msgsize,
           secs, total_msgs, rate, total_bytes / secs / 1e6, total_bytes, lo,
           hi, stalled);
    printf("RESULT mode=tcp rate=%.1f msgs=%" PRIu64 " secs=%.3f "
           "bytes=%" PRIu64 " errors=%" PRIu64 " min_conn=%" PRIu64
           " max_conn=%" PRIu64 " stalled=%d\n", rate, total_msgs, secs,
           total_bytes, errors, lo, hi, stalled);
  } else {
    printf("loadgen udp: %d in flight x %zu B, %.3f s: %" PRIu64 " msgs, "
           "%.1f msgs/s, %" PRIu64 " bytes verified, %" PRIu64
           " resent after timeout, %" PRIu64 " late echoes ignored\n",
           inflight, msgsize, secs, total_msgs, rate, total_bytes, timeouts,
           stale);
    printf("RESULT mode=udp rate=%.1f msgs=%" PRIu64 " secs=%.3f "
           "bytes=%" PRIu64 " errors=%" PRIu64 " timeouts=%" PRIu64
           " stale=%" PRIu64 "\n", rate, total_msgs, secs, total_bytes,
           errors, timeouts, stale);
  }
  fflush(stdout);
}

static void on_stop(uv_timer_t *t) {
  (void)t;
  measuring = 0;
  print_result();
  /* exit without closing: the kernel resets the connections at once, and
  ** every server must cope with clients that vanish */
  exit(total_msgs > 0 && errors == 0 ? 0 : 1);
}

static void run_tcp(int argc, char **argv) {
  if (argc != 7)
    usage();
  nconns = (int)parse_num(argv[4], 1, 100000);
  msgsize = (size_t)parse_num(argv[5], 1, 64L * 1024 * 1024);
  seconds = parse_secs(argv[6]);
  make_pattern(msgsize + PAT_SLACK);
  if ((conns = calloc((size_t)nconns, sizeof *conns)) == NULL)
    die("calloc", 0);
  for (int i = 0; i < nconns; i++)
    conns[i].idx = i;
  uv_timer_init(loop, &stop_timer);
  for (int i = 0; i < nconns && i < CONNECT_BATCH; i++)
    start_connect(&conns[next_connect++], on_tcp_connect);
  alarm((unsigned)seconds + CONNECT_LIMIT_S);
}

/* ---- udp: INFLIGHT slots, each with one datagram outstanding ---- */

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint64_t get64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static unsigned char *dgram;    /* scratch for building one datagram */

static void udp_send(int slot) {
  uint64_t seq = ++udp_seq;
  uv_buf_t buf;
  int rc;
  put32(dgram, UDP_MAGIC);
  put32(dgram + 4, (uint32_t)slot);
  put64(dgram + 8, seq);
  memcpy(dgram + UDP_HDR, msg_bytes(slot, seq) + UDP_HDR,
         msgsize - UDP_HDR);
  slots[slot].seq = seq;
  slots[slot].sent_at = uv_hrtime();
  buf = uv_buf_init((char *)dgram, (unsigned)msgsize);
  rc = uv_udp_try_send(&udp, &buf, 1, NULL);
  /* EAGAIN or ECONNREFUSED (ICMP from an earlier send): the timeout
  ** resends, so nothing stalls */
  if (rc < 0 && rc != UV_EAGAIN && rc != UV_ECONNREFUSED && rc != UV_ENOBUFS)
    die("send", rc);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  uint32_t slot;
  (void)h; (void)addr;
  if (nread == 0)
    return;
  if (nread < 0) {
    errors += (nread != UV_ECONNREFUSED);
    return;
  }
  if (flags & UV_UDP_PARTIAL || (size_t)nread != msgsize ||
      get32(buf->base) != UDP_MAGIC ||
      (slot = get32(buf->base + 4)) >= (uint32_t)inflight) {
    fprintf(stderr, "loadgen: echoed datagram of %zd bytes is not one we "
            "sent\n", nread);
    exit(1);
  }
  if (get64(buf->base + 8) != slots[slot].seq) {
    stale++;                    /* echo of a datagram already resent */
    return;
  }
  if (memcmp(buf->base + UDP_HDR, msg_bytes((int)slot, slots[slot].seq) +
             UDP_HDR, msgsize - UDP_HDR) != 0) {
    fprintf(stderr, "loadgen: echoed datagram differs from the one sent\n");
    exit(1);
  }
  if (measuring) {
    total_msgs++;
    total_bytes += msgsize;
  }
  udp_send((int)slot);
}

static void on_udp_tick(uv_timer_t *t) {
  uint64_t now = uv_hrtime();
  int i;
  (void)t;
  for (i = 0; i < inflight; i++)
    if (now - slots[i].sent_at > UDP_TIMEOUT_NS) {
      timeouts++;
      udp_send(i);
    }
}

static void run_udp(int argc, char **argv) {
  int rc, i;
  if (argc != 7)
    usage();
  inflight = (int)parse_num(argv[4], 1, 100000);
  msgsize = (size_t)parse_num(argv[5], UDP_HDR, 65507);
  seconds = parse_secs(argv[6]);
  make_pattern(msgsize + PAT_SLACK);
  if ((slots = calloc((size_t)inflight, sizeof *slots)) == NULL ||
      (dgram = malloc(msgsize)) == NULL)
    die("calloc", 0);
  if ((rc = uv_udp_init(loop, &udp)) < 0)
    die("udp init", rc);
  if ((rc = uv_udp_connect(&udp, (struct sockaddr *)&peer)) < 0)
    die("udp connect", rc);
  if ((rc = uv_udp_recv_start(&udp, alloc_rbuf, on_udp_recv)) < 0)
    die("udp recv", rc);
  uv_timer_init(loop, &stop_timer);
  uv_timer_init(loop, &tick_timer);
  uv_timer_start(&tick_timer, on_udp_tick, 10, 10);
  measuring = 1;
  t_start = uv_hrtime();
  for (i = 0; i < inflight; i++)
    udp_send(i);
  uv_timer_start(&stop_timer, on_stop, (uint64_t)(seconds * 1000), 0);
  alarm((unsigned)seconds + 10);
}

/* ---- idle: hold N connections until a newline, EOF or signal ---- */

static void finish_idle(const char *why) {
  printf("closing %d connections (%s)\n", connected - closed_by_peer, why);
  fflush(stdout);
  exit(0);
}

static void on_idle_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread == 0)
    return;
  if (nread > 0) {
    fprintf(stderr, "loadgen: idle connection received %zd bytes\n", nread);
    return;
  }
  closed_by_peer++;
  uv_read_stop(s);
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)s;
  if (nread < 0)
    finish_idle("end of input");
  else if (nread > 0 && memchr(buf->base, '\n', (size_t)nread) != NULL)
    finish_idle("newline on input");
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  finish_idle(signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_hold_limit(uv_timer_t *t) {
  (void)t;
  finish_idle("hold limit reached");
}

static void wait_for_input(void) {
  uv_handle_type t = uv_guess_handle(0);
  int rc = -1;
  if (t == UV_TTY)
    rc = uv_tty_init(loop, &in.tty, 0, 1);
  else if (t == UV_NAMED_PIPE && (rc = uv_pipe_init(loop, &in.pipe, 0)) == 0)
    rc = uv_pipe_open(&in.pipe, 0);
  if (rc == 0)
    uv_read_start((uv_stream_t *)&in, alloc_rbuf, on_stdin);
  else if (t == UV_FILE)        /* /dev/null or a file: its end is now */
    finish_idle("stdin is a file");
}

static void on_connect_limit(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "loadgen: only %d of %d connections established in %d s "
          "(%d failed)\n", connected, nconns, CONNECT_LIMIT_S, connect_failed);
  exit(1);
}

static void idle_next(void);

static void on_idle_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0) {
    fprintf(stderr, "loadgen: connect %d: %s\n", c->idx, uv_strerror(status));
    connect_failed++;
    uv_close((uv_handle_t *)&c->tcp, on_close_free_nothing);
    if (connect_failed > 100)
      exit(1);
  } else {
    c->tcp.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_rbuf, on_idle_read);
    connected++;
  }
  idle_next();
}

static void idle_next(void) {
  if (next_connect < nconns) {
    start_connect(&conns[next_connect++], on_idle_connect);
  } else if (connected + connect_failed == nconns) {
    if (connect_failed > 0) {
      fprintf(stderr, "loadgen: %d connections failed\n", connect_failed);
      exit(1);
    }
    uv_timer_stop(&stop_timer);
    printf("established %d connections\n", connected);
    fflush(stdout);
    wait_for_input();
    uv_timer_start(&tick_timer, on_hold_limit, (uint64_t)(seconds * 1000), 0);
  }
}

static void run_idle(int argc, char **argv) {
  int i;
  if (argc != 5 && argc != 6)
    usage();
  nconns = (int)parse_num(argv[4], 1, 1000000);
  seconds = argc == 6 ? parse_secs(argv[5]) : HOLD_LIMIT_S;
  if ((conns = calloc((size_t)nconns, sizeof *conns)) == NULL)
    die("calloc", 0);
  for (i = 0; i < nconns; i++)
    conns[i].idx = i;
  uv_signal_init(loop, &sig_int);
  uv_signal_init(loop, &sig_term);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_timer_init(loop, &stop_timer);
  uv_timer_init(loop, &tick_timer);
  uv_timer_start(&stop_timer, on_connect_limit, CONNECT_LIMIT_S * 1000, 0);
  for (i = 0; i < nconns && i < CONNECT_BATCH; i++)
    start_connect(&conns[next_connect++], on_idle_connect);
  alarm((unsigned)seconds + CONNECT_LIMIT_S + 10);
}

int main(int argc, char **argv) {
  if (argc < 5)
    usage();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  loop = uv_default_loop();
  mode = argv[1];
  parse_addr(argv[2], (int)parse_num(argv[3], 1, 65535));
  if (strcmp(mode, "tcp") == 0)
    run_tcp(argc, argv);
  else if (strcmp(mode, "udp") == 0)
    run_udp(argc, argv);
  else if (strcmp(mode, "idle") == 0)
    run_idle(argc, argv);
  else
    usage();
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
