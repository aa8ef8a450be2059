/*
** sockopt.c: what a socket says about itself and how it is tuned --
** options, addresses, multicast membership -- and the
** constants of the `socket` module, all with the system's own values so
** that any option number a student looks up works.
*/
#include <errno.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <lauxlib.h>
#include "socket.h"

/* An integer flag at stack slot i: true is 1 and false 0, as Python's
** setsockopt takes a bool; -1 when it is neither boolean nor integer. */
static int to_flag(lua_State *L, int i, int *v) {
  int isnum;
  if (lua_isboolean(L, i)) {
    *v = lua_toboolean(L, i);
    return 0;
  }
  *v = (int)lua_tointegerx(L, i, &isnum);
  return isnum ? 0 : -1;
}

/* SO_LINGER's value at 4: {onoff, seconds} (onoff a boolean or an
** integer), or seconds alone, where a negative number turns it off. */
static struct linger check_linger(lua_State *L) {
  struct linger lg;
  if (lua_istable(L, 4)) {
    int onoff, secs;
    lua_rawgeti(L, 4, 1);
    lua_rawgeti(L, 4, 2);
    if (to_flag(L, -2, &onoff) < 0 || !lua_isinteger(L, -1))
      luaL_argerror(L, 4, "{onoff, seconds} expected (onoff a boolean or "
                          "an integer, seconds an integer)");
    secs = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    lg.l_onoff = onoff != 0;
    lg.l_linger = secs;
  } else {
    lua_Integer secs = luaL_checkinteger(L, 4);
    lg.l_onoff = secs >= 0;
    lg.l_linger = secs >= 0 ? (int)secs : 0;
  }
  return lg;
}

static int sock_setsockopt(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "setsockopt");
  int level = (int)luaL_checkinteger(L, 2);
  int opt = (int)luaL_checkinteger(L, 3);
  int rc;
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    struct linger lg = check_linger(L);
    rc = setsockopt(s->fd, level, opt, &lg, sizeof lg);
  } else {
    int v;
    if (to_flag(L, 4, &v) < 0)
      luaL_typeerror(L, 4, "integer or boolean");
    rc = setsockopt(s->fd, level, opt, &v, sizeof v);
  }
  if (rc < 0) return wl_sock_raise(L, s, "setsockopt", -errno);
  return 0;
}

static int sock_getsockopt(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "getsockopt");
  int level = (int)luaL_checkinteger(L, 2);
  int opt = (int)luaL_checkinteger(L, 3);
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    struct linger lg;
    socklen_t len = sizeof lg;
    if (getsockopt(s->fd, level, opt, &lg, &len) < 0)
      return wl_sock_raise(L, s, "getsockopt", -errno);
    lua_pushinteger(L, lg.l_onoff);
    lua_pushinteger(L, lg.l_linger);
    return 2;
  } else {
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(s->fd, level, opt, &v, &len) < 0)
      return wl_sock_raise(L, s, "getsockopt", -errno);
    lua_pushinteger(L, v);
    return 1;
  }
}

static int sock_getsockname(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "getsockname");
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(s->fd, (struct sockaddr *)&sa, &len) < 0)
    return wl_sock_raise(L, s, "getsockname", -errno);
  return wl_push_addr(L, (struct sockaddr *)&sa);
}

static int sock_getpeername(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "getpeername");
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getpeername(s->fd, (struct sockaddr *)&sa, &len) < 0)
    return wl_sock_raise(L, s, "getpeername", -errno);
  return wl_push_addr(L, (struct sockaddr *)&sa);
}

/* join_group(group[, interface]): interface is an address (IPv4) or an
** interface index (IPv6); default: let the kernel choose. */
static int membership(lua_State *L, int join) {
  const char *op = join ? "join_group" : "leave_group";
  wl_sock_t *s = wl_check_sock(L, 1, op);
  const char *group = wl_check_host(L, 2);
  int rc;
  if (s->family == AF_INET) {
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    if (inet_pton(AF_INET, group, &mr.imr_multiaddr) != 1)
      return luaL_argerror(L, 2, "IPv4 multicast address expected");
    if (lua_type(L, 3) == LUA_TSTRING) {
      if (inet_pton(AF_INET, lua_tostring(L, 3), &mr.imr_address) != 1)
        return luaL_argerror(L, 3, "IPv4 interface address expected");
    } else if (lua_isinteger(L, 3)) {
      mr.imr_ifindex = (int)lua_tointeger(L, 3);
    }
    rc = setsockopt(s->fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                    &mr, sizeof mr);
  } else {
    struct ipv6_mreq mr;
    memset(&mr, 0, sizeof mr);
    if (inet_pton(AF_INET6, group, &mr.ipv6mr_multiaddr) != 1)
      return luaL_argerror(L, 2, "IPv6 multicast address expected");
    mr.ipv6mr_interface = (unsigned)luaL_optinteger(L, 3, 0);
    rc = setsockopt(s->fd, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
                    &mr, sizeof mr);
  }
  if (rc < 0) return wl_raise(L, op, -errno, group);
  return 0;
}

static int sock_join_group(lua_State *L) { return membership(L, 1); }
static int sock_leave_group(lua_State *L) { return membership(L, 0); }

/* The socket's __tostring, what it is now as ss would show it:
** <tcp 127.0.0.1:5000 -> 127.0.0.1:41234 ESTABLISHED>, <tcp6 [::]:80
** LISTEN>, <udp 127.0.0.1:9000>, <unix stream fd=5>, <socket closed>. */
int wl_sock_tostring(lua_State *L) {
  wl_sock_t *s = *(wl_sock_t **)luaL_checkudata(L, 1, SOCK_MT);
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  char laddr[80] = "?", raddr[80] = "";
  const char *state = NULL;
  int tcp;
  if (s == NULL) {
    lua_pushliteral(L, "<socket closed>");
    return 1;
  }
  tcp = s->type == SOCK_STREAM;
  if (s->family == AF_UNIX) {
    lua_pushfstring(L, "<unix %s fd=%d>", tcp ? "stream" : "dgram", s->fd);
    return 1;
  }
  if (getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0)
    wl_format_sockaddr((struct sockaddr *)&sa, laddr, sizeof laddr);
  len = sizeof sa;
  if (getpeername(s->fd, (struct sockaddr *)&sa, &len) == 0)
    wl_format_sockaddr((struct sockaddr *)&sa, raddr, sizeof raddr);
  if (tcp) state = wl_tcp_state(s->fd);
  lua_pushfstring(L, "<%s%s %s%s%s%s%s>", tcp ? "tcp" : "udp",
                  s->family == AF_INET6 ? "6" : "", laddr,
                  raddr[0] ? " -> " : "", raddr, state ? " " : "",
                  state ? state : "");
  return 1;
}

static const luaL_Reg methods[] = {
  {"setsockopt", sock_setsockopt}, {"getsockopt", sock_getsockopt},
  {"getsockname", sock_getsockname}, {"getpeername", sock_getpeername},
  {"join_group", sock_join_group}, {"leave_group", sock_leave_group},
  {NULL, NULL}
};

static const struct { const char *name; int value; } constants[] = {
  {"AF_INET", AF_INET}, {"AF_INET6", AF_INET6}, {"AF_UNSPEC", AF_UNSPEC},
  {"AF_UNIX", AF_UNIX},                     /* socketpair's default */
  {"SOCK_STREAM", SOCK_STREAM}, {"SOCK_DGRAM", SOCK_DGRAM},
  {"SOCK_RAW", SOCK_RAW},                   /* in getaddrinfo's answers */
  {"AI_PASSIVE", AI_PASSIVE}, {"AI_CANONNAME", AI_CANONNAME},
  {"AI_NUMERICHOST", AI_NUMERICHOST}, {"AI_NUMERICSERV", AI_NUMERICSERV},
  {"AI_ADDRCONFIG", AI_ADDRCONFIG}, {"AI_V4MAPPED", AI_V4MAPPED},
  {"AI_ALL", AI_ALL},
  {"SOL_SOCKET", SOL_SOCKET}, {"SO_REUSEADDR", SO_REUSEADDR},
  {"SO_REUSEPORT", SO_REUSEPORT}, {"SO_BROADCAST", SO_BROADCAST},
  {"SO_KEEPALIVE", SO_KEEPALIVE}, {"SO_RCVBUF", SO_RCVBUF},
  {"SO_SNDBUF", SO_SNDBUF}, {"SO_LINGER", SO_LINGER}, {"SO_ERROR", SO_ERROR},
  {"SO_TYPE", SO_TYPE}, {"SO_RCVLOWAT", SO_RCVLOWAT},
  {"IPPROTO_TCP", IPPROTO_TCP}, {"IPPROTO_UDP", IPPROTO_UDP},
  {"IPPROTO_IP", IPPROTO_IP}, {"IPPROTO_IPV6", IPPROTO_IPV6},
  {"TCP_NODELAY", TCP_NODELAY}, {"TCP_MAXSEG", TCP_MAXSEG},
  {"TCP_KEEPIDLE", TCP_KEEPIDLE}, {"TCP_KEEPINTVL", TCP_KEEPINTVL},
  {"TCP_KEEPCNT", TCP_KEEPCNT}, {"TCP_QUICKACK", TCP_QUICKACK},
  {"IP_TTL", IP_TTL}, {"IP_TOS", IP_TOS},
  {"IP_MULTICAST_TTL", IP_MULTICAST_TTL}, {"IP_MULTICAST_LOOP", IP_MULTICAST_LOOP},
  {"IPV6_V6ONLY", IPV6_V6ONLY}, {"IPV6_MULTICAST_HOPS", IPV6_MULTICAST_HOPS},
  {"IPV6_MULTICAST_LOOP", IPV6_MULTICAST_LOOP},
  {"SHUT_RD", SHUT_RD}, {"SHUT_WR", SHUT_WR}, {"SHUT_RDWR", SHUT_RDWR},
  {"MSG_PEEK", MSG_PEEK}, {"MSG_WAITALL", MSG_WAITALL},
  {"MSG_DONTWAIT", MSG_DONTWAIT}, {"MSG_TRUNC", MSG_TRUNC}, {"SOMAXCONN", SOMAXCONN},
  {NULL, 0}
};

/* Adds the methods above to the table at index `methods` and the
** constants to the module at index `module`. */
void wl_sockopt_register(lua_State *L, int methods_idx, int module) {
  int i;
  lua_pushvalue(L, methods_idx);
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 1);
  wl_sockinfo_register(L, methods_idx);
  for (i = 0; constants[i].name != NULL; i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, module, constants[i].name);
  }
}
