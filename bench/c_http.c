/*
** c_http.c: the reference HTTP server, plain C on libuv with llhttp: every
** request gets "hello world" (text/plain, Content-Length), connections are
** kept alive unless the request says otherwise, pipelined requests are
** answered in order with one write per read. Usage: c_http PORT [HOST].
** The first line on stdout is the bound port.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "llhttp.h"

#define READ_SIZE 65536
#define MAX_BATCH 64            /* responses built per read before writing */

static const char RESPONSE[] =
  "HTTP/1.1 200 OK\r\n"
  "Content-Type: text/plain\r\n"
  "Content-Length: 11\r\n"
  "\r\n"
  "hello world";
static const char BAD_REQUEST[] =
  "HTTP/1.1 400 Bad Request\r\n"
  "Content-Length: 0\r\n"
  "Connection: close\r\n"
  "\r\n";

typedef struct {
  uv_tcp_t tcp;
  llhttp_t parser;
  int responses;                /* complete requests in this read */
  int close_after;              /* last request asked for Connection: close */
} conn_t;

typedef struct {
  uv_write_t req;
  char data[];
} write_req;

static uv_loop_t *loop;
static llhttp_settings_t settings;
static char rbuf[READ_SIZE];
static char out[MAX_BATCH * sizeof RESPONSE];

static void die(const char *what, int rc) {
  fprintf(stderr, "c_http: %s: %s\n", what, uv_strerror(rc));
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

static void close_conn(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)c))
    uv_close((uv_handle_t *)c, on_close);
}

static void on_write(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  close_conn((conn_t *)req->handle);
  free(req);
}

/* Write len bytes of buf, copying only what the kernel did not take. */
static void send_bytes(conn_t *c, const char *buf, size_t len) {
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  write_req *w;
  int n = uv_try_write((uv_stream_t *)c, &b, 1);
  if (n == (int)len)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    close_conn(c);
    return;
  }
  if (n < 0)
    n = 0;
  if ((w = malloc(sizeof *w + len - (size_t)n)) == NULL) {
    close_conn(c);
    return;
  }
  memcpy(w->data, buf + n, len - (size_t)n);
  b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
  if (uv_write(&w->req, (uv_stream_t *)c, &b, 1, on_write) < 0) {
    free(w);
    close_conn(c);
  }
}

static void finish_after_writes(conn_t *c) {
  uv_shutdown_t *req = malloc(sizeof *req);
  uv_read_stop((uv_stream_t *)c);
  if (req == NULL || uv_shutdown(req, (uv_stream_t *)c, on_shutdown) < 0) {
    free(req);
    close_conn(c);
  }
}

static void flush_responses(conn_t *c) {
  size_t len = 0;
  int i;
  for (i = 0; i < c->responses; i++) {
    memcpy(out + len, RESPONSE, sizeof RESPONSE - 1);
    len += sizeof RESPONSE - 1;
  }
  c->responses = 0;
  if (len > 0)
    send_bytes(c, out, len);
}

static int on_message_complete(llhttp_t *p) {
  conn_t *c = p->data;
  if (!llhttp_should_keep_alive(p))
    c->close_after = 1;
  if (++c->responses == MAX_BATCH)
    flush_responses(c);
  /* stop after a request that closes: what follows is not served */
  return c->close_after ? HPE_PAUSED : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  llhttp_errno_t err;
  if (nread < 0) {
    close_conn(c);
    return;
  }
  if (nread == 0)
    return;
  err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
  flush_responses(c);
  if (err == HPE_OK && !c->close_after)
    return;
  if (err != HPE_OK && err != HPE_PAUSED)
    send_bytes(c, BAD_REQUEST, sizeof BAD_REQUEST - 1);
  if (!uv_is_closing((uv_handle_t *)c))
    finish_after_writes(c);
}

static void on_connection(uv_stream_t *server, int status) {
  conn_t *c;
  if (status < 0) {
    fprintf(stderr, "c_http: accept: %s\n", uv_strerror(status));
    return;
  }
  if ((c = calloc(1, sizeof *c)) == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)c) < 0) {
    close_conn(c);
    return;
  }
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)c, alloc_rbuf, on_read);
}

int main(int argc, char **argv) {
  static uv_tcp_t server;
  struct sockaddr_storage addr;
  const char *host = argc > 2 ? argv[2] : "127.0.0.1";
  int len = sizeof addr, rc, port;
  if (argc < 2) {
    fprintf(stderr, "usage: c_http PORT [HOST]\n");
    return 2;
  }
  port = atoi(argv[1]);
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_message_complete;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)) != 0)
    die(host, rc);
  uv_tcp_init(loop, &server);
  if ((rc = uv_tcp_bind(&server, (struct sockaddr *)&addr, 0)) < 0)
    die("bind", rc);
  if ((rc = uv_listen((uv_stream_t *)&server, 1024, on_connection)) < 0)
    die("listen", rc);
  if ((rc = uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len)) < 0)
    die("getsockname", rc);
  printf("%d\n", ntohs(((struct sockaddr_in *)&addr)->sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
