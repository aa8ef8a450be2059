/*
** c_echo.c: the reference echo server, plain C on libuv, as one would write
** it without heroics: TCP reads into one buffer and writes straight back
** (uv_try_write, queueing only what the kernel did not take), UDP sends
** each datagram back to its sender. Usage: c_echo tcp|udp PORT [HOST].
** Like every server of the harness, the first line on stdout is the port.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_SIZE 65536
#define WRITE_HIGH (4 * 1024 * 1024)   /* stop reading above this backlog */

typedef struct {
  uv_tcp_t tcp;
  int reading;
} conn_t;

typedef struct {
  uv_write_t req;
  char data[];
} write_req;

typedef struct {
  uv_udp_send_t req;
  struct sockaddr_storage to;
  char data[];
} send_req;

static uv_loop_t *loop;
static char rbuf[READ_SIZE];    /* reads are consumed before the next one */

static void die(const char *what, int rc) {
  fprintf(stderr, "c_echo: %s: %s\n", what, uv_strerror(rc));
  exit(1);
}

static void alloc_rbuf(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h; (void)size;
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

static void on_close(uv_handle_t *h) {
  free(h);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  conn_t *c = (conn_t *)req->handle;
  free(req);
  if (status < 0)
    return;                     /* the read side sees the error and closes */
  if (!c->reading &&
      uv_stream_get_write_queue_size((uv_stream_t *)c) < WRITE_HIGH
      && !uv_is_closing((uv_handle_t *)c)) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)c, alloc_rbuf, on_read);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  uv_buf_t out;
  write_req *w;
  int n;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (nread == 0)
    return;
  out = uv_buf_init(buf->base, (unsigned)nread);
  n = uv_try_write(s, &out, 1);
  if (n == nread)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (n < 0)
    n = 0;
  /* copy: the read buffer is reused by the next read */
  if ((w = malloc(sizeof *w + (size_t)(nread - n))) == NULL) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  memcpy(w->data, buf->base + n, (size_t)(nread - n));
  out = uv_buf_init(w->data, (unsigned)(nread - n));
  if (uv_write(&w->req, s, &out, 1, on_write) < 0) {
    free(w);
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (uv_stream_get_write_queue_size(s) >= WRITE_HIGH) {
    c->reading = 0;             /* the peer is not reading: stop echoing */
    uv_read_stop(s);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  conn_t *c;
  if (status < 0) {
    fprintf(stderr, "c_echo: accept: %s\n", uv_strerror(status));
    return;
  }
  if ((c = calloc(1, sizeof *c)) == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)c) < 0) {
    uv_close((uv_handle_t *)c, on_close);
    return;
  }
  c->reading = 1;
  uv_read_start((uv_stream_t *)c, alloc_rbuf, on_read);
}

static void on_udp_sent(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  uv_buf_t out;
  send_req *r;
  int n;
  (void)flags;
  if (nread < 0 || addr == NULL)
    return;
  out = uv_buf_init(buf->base, (unsigned)nread);
  n = uv_udp_try_send(h, &out, 1, addr);
  if (n != UV_EAGAIN)
    return;                     /* sent, or dropped as UDP may */
  if ((r = malloc(sizeof *r + (size_t)nread)) == NULL)
    return;
  memcpy(r->data, buf->base, (size_t)nread);
  out = uv_buf_init(r->data, (unsigned)nread);
  if (uv_udp_send(&r->req, h, &out, 1, addr, on_udp_sent) < 0)
    free(r);
}

static int bound_port(const uv_handle_t *h, int udp) {
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (udp)
    rc = uv_udp_getsockname((const uv_udp_t *)h, (struct sockaddr *)&ss, &len);
  else
    rc = uv_tcp_getsockname((const uv_tcp_t *)h, (struct sockaddr *)&ss, &len);
  if (rc < 0)
    die("getsockname", rc);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int main(int argc, char **argv) {
  static uv_tcp_t server;
  static uv_udp_t udp;
  struct sockaddr_storage addr;
  const char *host = argc > 3 ? argv[3] : "127.0.0.1";
  int port, rc;
  if (argc < 3 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "udp"))) {
    fprintf(stderr, "usage: c_echo tcp|udp PORT [HOST]\n");
    return 2;
  }
  port = atoi(argv[2]);
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)) != 0)
    die(host, rc);
  if (strcmp(argv[1], "tcp") == 0) {
    uv_tcp_init(loop, &server);
    if ((rc = uv_tcp_bind(&server, (struct sockaddr *)&addr, 0)) < 0)
      die("bind", rc);
    if ((rc = uv_listen((uv_stream_t *)&server, 1024, on_connection)) < 0)
      die("listen", rc);
    printf("%d\n", bound_port((uv_handle_t *)&server, 0));
  } else {
    uv_udp_init(loop, &udp);
    if ((rc = uv_udp_bind(&udp, (struct sockaddr *)&addr, 0)) < 0)
      die("bind", rc);
    if ((rc = uv_udp_recv_start(&udp, alloc_rbuf, on_udp_recv)) < 0)
      die("recv", rc);
    printf("%d\n", bound_port((uv_handle_t *)&udp, 1));
  }
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
