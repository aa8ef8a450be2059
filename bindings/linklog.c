/*
** linklog.c: the packet log of a netem.link. Every packet that enters the
** link gets a line: when, which way, its number in that direction, its
** size, what the emulator did with it and when it was due on the other
** side, and the few header fields a person reads in tcpdump (protocol,
** addresses, ports, TCP flags, sequence numbers, payload length). Lines
** are fixed-size records, parsed once as the packet passes; the words of
** link:events() are made only when asked. The log keeps at most `max`
** lines and counts the rest, so a long bulk transfer cannot eat memory.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <lauxlib.h>
#include "link.h"

static const char *const ACTIONS[] = {"pass", "drop", "overflow", "duplicate",
                                      "reorder"};
static const char *const DIRS[] = {"a>b", "b>a"};

static uint16_t be16(const unsigned char *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* The transport header at p (n bytes left), of a packet whose IP payload
** is plen bytes. */
static void parse_l4(wl_event_t *e, const unsigned char *p, uint32_t n,
                     uint32_t plen) {
  if (e->proto == IPPROTO_TCP && n >= 20) {
    uint32_t off = (uint32_t)(p[12] >> 4) * 4;
    e->sport = be16(p);
    e->dport = be16(p + 2);
    e->tseq = be32(p + 4);
    e->tack = be32(p + 8);
    e->flags = p[13];
    e->payload = (uint16_t)(plen > off ? plen - off : 0);
  } else if (e->proto == IPPROTO_UDP && n >= 8) {
    e->sport = be16(p);
    e->dport = be16(p + 2);
    e->payload = (uint16_t)(plen > 8 ? plen - 8 : 0);
  } else if ((e->proto == IPPROTO_ICMP || e->proto == IPPROTO_ICMPV6) &&
             n >= 2) {
    e->sport = p[0];                  /* type, code */
    e->dport = p[1];
  }
}

static void parse(wl_event_t *e, const unsigned char *p, uint32_t len) {
  if (len >= 20 && (p[0] >> 4) == 4) {
    uint32_t ihl = (uint32_t)(p[0] & 15) * 4, total = be16(p + 2);
    e->family = 4;
    e->proto = p[9];
    memcpy(e->src, p + 12, 4);
    memcpy(e->dst, p + 16, 4);
    if (total > len) total = len;
    /* later fragments carry no transport header */
    if (ihl >= 20 && ihl <= len && (be16(p + 6) & 0x1fff) == 0)
      parse_l4(e, p + ihl, len - ihl, total > ihl ? total - ihl : 0);
  } else if (len >= 40 && (p[0] >> 4) == 6) {
    e->family = 6;
    e->proto = p[6];                  /* extension headers: not followed */
    memcpy(e->src, p + 8, 16);
    memcpy(e->dst, p + 24, 16);
    parse_l4(e, p + 40, len - 40, be16(p + 4));
  }
}

void wl_log_add(wl_log_t *log, const wl_event_t *proto,
                const unsigned char *pkt, uint32_t len) {
  wl_event_t *e;
  if (log->n >= log->max) { log->lost++; return; }
  if (log->n == log->cap) {
    size_t ncap = log->cap ? log->cap * 2 : 1024;
    wl_event_t *nev;
    if (ncap > log->max) ncap = log->max;
    nev = realloc(log->ev, ncap * sizeof *nev);
    if (nev == NULL) { log->lost++; return; }
    log->ev = nev;
    log->cap = ncap;
  }
  e = &log->ev[log->n++];
  *e = *proto;
  e->family = e->proto = e->flags = 0;
  e->sport = e->dport = e->payload = 0;
  e->tseq = e->tack = 0;
  parse(e, pkt, len);
}

void wl_log_free(wl_log_t *log) {
  free(log->ev);
  log->ev = NULL;
  log->n = log->cap = 0;
}

/* "192.0.2.1:5000", "[2001:db8::1]:5000", or the address alone */
static void endpoint(char *buf, size_t size, int family, const uint8_t *a,
                     int port) {
  char ip[INET6_ADDRSTRLEN];
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a, ip, sizeof ip);
  if (port < 0) snprintf(buf, size, "%s", ip);
  else if (family == 4) snprintf(buf, size, "%s:%d", ip, port);
  else snprintf(buf, size, "[%s]:%d", ip, port);
}

/* tcpdump's letters: S F R P . (ACK) U E W */
static void tcp_flags(char *buf, int f) {
  static const struct { int bit; char c; } L[] = {
    {0x02, 'S'}, {0x01, 'F'}, {0x04, 'R'}, {0x08, 'P'}, {0x20, 'U'},
    {0x40, 'E'}, {0x80, 'W'}, {0x10, '.'}};
  size_t i, n = 0;
  for (i = 0; i < sizeof L / sizeof *L; i++)
    if (f & L[i].bit) buf[n++] = L[i].c;
  buf[n] = '\0';
}

static void summary(luaL_Buffer *b, const wl_event_t *e) {
  char s[64], d[64], fl[12], line[256];
  int tcp = e->proto == IPPROTO_TCP, udp = e->proto == IPPROTO_UDP;
  if (e->family == 0) {
    luaL_addstring(b, "not IP");
    return;
  }
  endpoint(s, sizeof s, e->family, e->src, tcp || udp ? e->sport : -1);
  endpoint(d, sizeof d, e->family, e->dst, tcp || udp ? e->dport : -1);
  if (tcp) {
    tcp_flags(fl, e->flags);
    snprintf(line, sizeof line, "TCP %s > %s [%s] seq=%u ack=%u len=%u", s, d,
             fl, e->tseq, e->tack, e->payload);
  } else if (udp) {
    snprintf(line, sizeof line, "UDP %s > %s len=%u", s, d, e->payload);
  } else if (e->proto == IPPROTO_ICMP || e->proto == IPPROTO_ICMPV6) {
    snprintf(line, sizeof line, "%s %s > %s type=%u code=%u",
             e->proto == IPPROTO_ICMP ? "ICMP" : "ICMPv6", s, d, e->sport,
             e->dport);
  } else {
    snprintf(line, sizeof line, "IPv%d %s > %s proto=%u", e->family, s, d,
             e->proto);
  }
  luaL_addstring(b, line);
}

static const char *proto_name(const wl_event_t *e) {
  switch (e->proto) {
  case IPPROTO_TCP: return "TCP";
  case IPPROTO_UDP: return "UDP";
  case IPPROTO_ICMP: return "ICMP";
  case IPPROTO_ICMPV6: return "ICMPv6";
  default: return e->family ? "IP" : "?";
  }
}

void wl_log_push(lua_State *L, const wl_log_t *log, size_t from) {
  size_t i;
  lua_createtable(L, from < log->n ? (int)(log->n - from) : 0, 0);
  for (i = from; i < log->n; i++) {
    const wl_event_t *e = &log->ev[i];
    luaL_Buffer b;
    lua_createtable(L, 0, 12);
    lua_pushnumber(L, (double)e->t / 1e9);
    lua_setfield(L, -2, "t");
    lua_pushstring(L, DIRS[e->dir & 1]);
    lua_setfield(L, -2, "dir");
    lua_pushinteger(L, e->seq);
    lua_setfield(L, -2, "seq");
    lua_pushinteger(L, e->size);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, ACTIONS[e->action]);
    lua_setfield(L, -2, "action");
    if (e->due) {
      lua_pushnumber(L, (double)(e->due - e->t) / 1e9);
      lua_setfield(L, -2, "delay");
    }
    lua_pushstring(L, proto_name(e));
    lua_setfield(L, -2, "proto");
    if (e->proto == IPPROTO_TCP || e->proto == IPPROTO_UDP) {
      lua_pushinteger(L, e->sport);
      lua_setfield(L, -2, "sport");
      lua_pushinteger(L, e->dport);
      lua_setfield(L, -2, "dport");
      lua_pushinteger(L, e->payload);
      lua_setfield(L, -2, "payload");
    }
    if (e->proto == IPPROTO_TCP) {
      char fl[12];
      tcp_flags(fl, e->flags);
      lua_pushstring(L, fl);
      lua_setfield(L, -2, "flags");
    }
    luaL_buffinit(L, &b);
    summary(&b, e);
    luaL_pushresult(&b);
    lua_setfield(L, -2, "summary");
    lua_rawseti(L, -2, (lua_Integer)(i - from + 1));
  }
}
