/*
** addr.c: socket addresses to and from Lua's (host, port) pairs, and the
** one place that decides what is a numeric host and how "[v6]:port" is
** written. Only numeric hosts are parsed here; names are resolved,
** without blocking the loop, by socket.getaddrinfo before they get this
** far.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include "wl.h"

/* A literal to parse, never a name to resolve: "", "<broadcast>", digits
** and dots with a dot ("1.2.3.4", or a malformed "999.1.1.1"), or hex
** digits, dots and colons with a colon. "123" and "cafe.be" are names,
** as getaddrinfo has them; a scoped "fe80::1%eth0" is resolved too. */
int wl_numeric_host(const char *host) {
  if (host[0] == '\0' || strcmp(host, "<broadcast>") == 0) return 1;
  if (strchr(host, ':') != NULL)
    return strspn(host, "0123456789abcdefABCDEF.:") == strlen(host);
  return strspn(host, "0123456789.") == strlen(host) && strchr(host, '.');
}

const char *wl_check_host(lua_State *L, int i) {
  size_t len;
  const char *host = luaL_checklstring(L, i, &len);
  /* C would read up to the NUL: "127.0.0.1\0evil" must not reach 127.0.0.1 */
  luaL_argcheck(L, strlen(host) == len, i, "host name must not contain a NUL byte");
  return host;
}

/* The plain dotted quad, "a.b.c.d" without leading zeros, read as
** inet_pton reads it, at a fraction of its cost: sendto parses its host on
** every datagram. 0 for anything else, which goes the long way. */
static int parse_dotted_quad(const char *p, struct in_addr *a) {
  unsigned char b[4];
  int i;
  for (i = 0; i < 4; i++) {
    unsigned v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9' && n < 4) {
      v = v * 10 + (unsigned)(*p++ - '0');
      n++;
    }
    if (n == 0 || n > 3 || v > 255 || (n > 1 && p[-n] == '0')) return 0;
    b[i] = (unsigned char)v;
    if (*p++ != (i < 3 ? '.' : '\0')) return 0;
  }
  memcpy(&a->s_addr, b, 4);
  return 1;
}

/* a's "a.b.c.d" into out (16 bytes at least), as inet_ntop writes it, at
** a tenth of its cost: recvfrom gives its sender on every datagram.
** Returns the length. */
static size_t format_ipv4(const struct in_addr *a, char *out) {
  const unsigned char *b = (const unsigned char *)&a->s_addr;
  char *p = out;
  int i;
  for (i = 0; i < 4; i++) {
    unsigned v = b[i];
    if (v >= 100) *p++ = (char)('0' + v / 100);
    if (v >= 10) *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    *p++ = '.';
  }
  p[-1] = '\0';
  return (size_t)(p - 1 - out);
}

int wl_parse_ipv4(const char *host, struct in_addr *a) {
  /* the dotted quad first: inet_pton is a third of inet_aton's cost, and
  ** sendto parses its host on every datagram */
  if (parse_dotted_quad(host, a) || inet_pton(AF_INET, host, a) == 1) return 1;
  /* inet_aton stops at white space and takes "127.1 junk": refuse that */
  return host[strcspn(host, " \t\n\v\f\r")] == '\0' && inet_aton(host, a);
}

int wl_parse_addr(const char *host, int port, int family,
                  struct sockaddr_storage *sa, socklen_t *len) {
  memset(sa, 0, sizeof *sa);
  if (port < 0 || port > 65535) return UV_EINVAL;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
    if (host[0] == '\0' || strcmp(host, "::") == 0) {
      a->sin6_addr = in6addr_any;
      return 0;
    }
    if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1) return 0;
    {                          /* an IPv4 literal on a v6 socket: mapped */
      struct in_addr v4;
      if (wl_parse_ipv4(host, &v4)) {
        a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
        return 0;
      }
    }
  } else if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)sa;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
    if (host[0] == '\0') { a->sin_addr.s_addr = htonl(INADDR_ANY); return 0; }
    if (strcmp(host, "<broadcast>") == 0) {
      a->sin_addr.s_addr = htonl(INADDR_BROADCAST);
      return 0;
    }
    if (wl_parse_ipv4(host, &a->sin_addr)) return 0;
  } else {
    return UV_EAFNOSUPPORT;
  }
  /* a malformed literal, or a name to resolve first */
  return wl_numeric_host(host) ? UV_EINVAL : UV_EAI_NONAME;
}

/* The last IPv4 host pushed, and its string in the registry: a server's
** datagrams come from few peers, and pushing a kept string is a fifth of
** formatting and interning it again. One Lua state, which lives until exit. */
static struct { int ref; in_addr_t addr; } last_v4 = {LUA_NOREF, 0};

static void push_ipv4(lua_State *L, const struct in_addr *a) {
  char buf[INET_ADDRSTRLEN];
  if (last_v4.ref != LUA_NOREF && last_v4.addr == a->s_addr) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, last_v4.ref);
    return;
  }
  lua_pushlstring(L, buf, format_ipv4(a, buf));
  lua_pushvalue(L, -1);
  if (last_v4.ref == LUA_NOREF) last_v4.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else lua_rawseti(L, LUA_REGISTRYINDEX, last_v4.ref);
  last_v4.addr = a->s_addr;
}

int wl_push_addr(lua_State *L, const struct sockaddr *sa) {
  char buf[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    push_ipv4(L, &a->sin_addr);
    lua_pushinteger(L, ntohs(a->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    lua_pushstring(L, buf);
    lua_pushinteger(L, ntohs(a->sin6_port));
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  return 2;
}

void wl_format_addr(const char *host, lua_Integer port, char *out,
                    size_t size) {
  if (port < 0)
    snprintf(out, size, "%s", host);
  else
    snprintf(out, size, strchr(host, ':') ? "[%s]:%lld" : "%s:%lld", host,
             (long long)port);
}

void wl_format_sockaddr(const struct sockaddr *sa, char *out, size_t size) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    format_ipv4(&a->sin_addr, buf);
    wl_format_addr(buf, ntohs(a->sin_port), out, size);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    wl_format_addr(buf, ntohs(a->sin6_port), out, size);
  } else {
    snprintf(out, size, "?");
  }
}
