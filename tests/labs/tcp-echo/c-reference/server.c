/* A correct submission in C, built by its Makefile: the make start works. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void *serve(void *arg) {
  int c = (int)(long)arg; char buf[65536]; ssize_t n;
  while ((n = recv(c, buf, sizeof buf, 0)) > 0) {
    ssize_t off = 0;
    while (off < n) { ssize_t w = send(c, buf + off, n - off, MSG_NOSIGNAL); if (w <= 0) goto out; off += w; }
  }
out:
  close(c); return NULL;
}
int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 128) < 0) return 1;
  for (;;) { int c = accept(s, NULL, NULL); if (c < 0) continue; pthread_t t; pthread_create(&t, NULL, serve, (void *)(long)c); pthread_detach(t); }
}
