/*
** inet.c: the address conversions of the socket module (module
** "socket.core"): inet_aton, inet_ntoa, inet_pton, inet_ntop between text
** and packed addresses (a packed address is a Lua string of 4 or 16
** bytes, Python's bytes), and the byte-order functions htons, ntohs,
** htonl, ntohl. What Python raises as OSError is an error object here
** (EINVAL for text that is no address); its TypeError, ValueError and
** OverflowError are Lua's bad argument.
*/
#include <string.h>
#include <arpa/inet.h>
#include <lauxlib.h>
#include "socket.h"

/* The packed size of a family; a bad argument for others (ValueError). */
static size_t packed_size(lua_State *L, int i, int family) {
  if (family == AF_INET) return sizeof(struct in_addr);
  if (family == AF_INET6) return sizeof(struct in6_addr);
  luaL_argerror(L, i, lua_pushfstring(L, "unknown address family %d", family));
  return 0;
}

/* inet_aton(text) -> 4 bytes: C's inet_aton, as Python's, so "127.1",
** "0x7f.1" and "2130706433" are all 127.0.0.1. */
static int socket_inet_aton(lua_State *L) {
  const char *text = wl_check_host(L, 1);
  struct in_addr a;
  if (!inet_aton(text, &a)) return wl_raise(L, "inet_aton", UV_EINVAL, text);
  lua_pushlstring(L, (const char *)&a, sizeof a);
  return 1;
}

/* inet_ntoa(4 bytes) -> dotted quad */
static int socket_inet_ntoa(lua_State *L) {
  size_t n;
  const char *packed = luaL_checklstring(L, 1, &n);
  struct in_addr a;
  if (n != sizeof a) return wl_raise(L, "inet_ntoa", UV_EINVAL, NULL);
  memcpy(&a, packed, sizeof a);
  lua_pushstring(L, inet_ntoa(a));
  return 1;
}

/* inet_pton(family, text) -> 4 or 16 bytes, the strict forms only */
static int socket_inet_pton(lua_State *L) {
  int family = (int)luaL_checkinteger(L, 1);
  const char *text = wl_check_host(L, 2);
  unsigned char buf[sizeof(struct in6_addr)];
  int rc;
  if (family != AF_INET && family != AF_INET6)
    return wl_raise(L, "inet_pton", UV_EAFNOSUPPORT, NULL);
  rc = inet_pton(family, text, buf);
  if (rc != 1) return wl_raise(L, "inet_pton", UV_EINVAL, text);
  lua_pushlstring(L, (const char *)buf, family == AF_INET ? 4 : 16);
  return 1;
}

/* inet_ntop(family, packed) -> text */
static int socket_inet_ntop(lua_State *L) {
  int family = (int)luaL_checkinteger(L, 1);
  size_t n, want = packed_size(L, 1, family);
  const char *packed = luaL_checklstring(L, 2, &n);
  char text[INET6_ADDRSTRLEN];
  unsigned char buf[sizeof(struct in6_addr)];
  luaL_argcheck(L, n == want, 2, "invalid length of packed IP address string");
  memcpy(buf, packed, n);                  /* aligned for the C library */
  lua_pushstring(L, inet_ntop(family, buf, text, sizeof text));
  return 1;
}

/* The integer at i as an unsigned of `bits` bits (OverflowError). */
static lua_Integer check_unsigned(lua_State *L, int i, int bits) {
  lua_Integer v = luaL_checkinteger(L, i);
  luaL_argcheck(L, v >= 0 && v <= (((lua_Integer)1 << bits) - 1), i,
                bits == 16 ? "16-bit unsigned integer expected"
                           : "32-bit unsigned integer expected");
  return v;
}

static int socket_htons(lua_State *L) {
  lua_pushinteger(L, htons((uint16_t)check_unsigned(L, 1, 16)));
  return 1;
}

static int socket_ntohs(lua_State *L) {
  lua_pushinteger(L, ntohs((uint16_t)check_unsigned(L, 1, 16)));
  return 1;
}

static int socket_htonl(lua_State *L) {
  lua_pushinteger(L, htonl((uint32_t)check_unsigned(L, 1, 32)));
  return 1;
}

static int socket_ntohl(lua_State *L) {
  lua_pushinteger(L, ntohl((uint32_t)check_unsigned(L, 1, 32)));
  return 1;
}

static const luaL_Reg funcs[] = {
  {"inet_aton", socket_inet_aton}, {"inet_ntoa", socket_inet_ntoa},
  {"inet_pton", socket_inet_pton}, {"inet_ntop", socket_inet_ntop},
  {"htons", socket_htons}, {"ntohs", socket_ntohs},
  {"htonl", socket_htonl}, {"ntohl", socket_ntohl}, {NULL, NULL}
};

/* Adds the functions above to the module at index `module`. */
void wl_inet_register(lua_State *L, int module) {
  lua_pushvalue(L, module);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
