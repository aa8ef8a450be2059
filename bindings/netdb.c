/*
** netdb.c: the socket module's other name lookups (module "socket.core"):
** hosts by name and by address with their aliases (gethostbyname_ex,
** gethostbyaddr), services (getservbyname, getservbyport), and the host
** name. The C library's calls may read /etc/hosts and /etc/services or
** ask a name server, so each runs on libuv's thread pool (uv_queue_work)
** and the loop goes on. A lookup holds its own waiter and its answer;
** when the task has stopped waiting (cancel, interrupt), the callback
** frees what it would have returned.
*/
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <lauxlib.h>
#include "socket.h"

#define HOSTBUF_MAX 65536    /* the C library's scratch space, at most */

enum { BYNAME, BYADDR, SERVBYNAME, SERVBYPORT };

typedef struct {
  uv_work_t uv;
  wl_waiter_t w;
  int kind;
  int status;                /* the lookup's: 0 or a libuv error */
  int port;                  /* in for SERVBYPORT, out for SERVBYNAME */
  char *query;               /* the host or service name, copied */
  char proto[16];            /* "" for any */
  char *out;                 /* answers: strings, each NUL-ended; an */
  size_t len, cap;           /* empty one ends a list */
} lookup_t;

static void free_lookup(lookup_t *l) {
  free(l->query);
  free(l->out);
  free(l);
}

/* ---- in the thread pool: no Lua here ---------------------------------- */

static int put(lookup_t *l, const char *s) {
  size_t n = strlen(s) + 1;
  if (l->len + n > l->cap) {
    size_t cap = (l->cap ? l->cap * 2 : 256) + n;
    char *p = realloc(l->out, cap);
    if (p == NULL) return UV_ENOMEM;
    l->out = p;
    l->cap = cap;
  }
  memcpy(l->out + l->len, s, n);
  l->len += n;
  return 0;
}

static int from_h_errno(int herr) {
  switch (herr) {
    case HOST_NOT_FOUND: return UV_EAI_NONAME;
    case TRY_AGAIN: return UV_EAI_AGAIN;
    case NO_DATA: return UV_EAI_NODATA;
    default: return UV_EAI_FAIL;
  }
}

static int from_eai(int rc) {
  switch (rc) {
    case EAI_NONAME: return UV_EAI_NONAME;
    case EAI_AGAIN: return UV_EAI_AGAIN;
    case EAI_FAMILY: return UV_EAI_FAMILY;
    case EAI_ADDRFAMILY: return UV_EAI_ADDRFAMILY;
    case EAI_NODATA: return UV_EAI_NODATA;
    case EAI_MEMORY: return UV_ENOMEM;
    case EAI_SYSTEM: return -errno;
    default: return UV_EAI_FAIL;
  }
}

/* Python's (hostname, aliaslist, ipaddrlist), flattened into l->out. */
static int put_host(lookup_t *l, const struct hostent *h) {
  char text[INET6_ADDRSTRLEN];
  int rc = put(l, h->h_name), i;
  for (i = 0; rc == 0 && h->h_aliases[i] != NULL; i++)
    rc = put(l, h->h_aliases[i]);
  if (rc == 0) rc = put(l, "");
  for (i = 0; rc == 0 && h->h_addr_list[i] != NULL; i++)
    rc = put(l, inet_ntop(h->h_addrtype, h->h_addr_list[i], text, sizeof text));
  return rc == 0 ? put(l, "") : rc;
}

/* Python's gethostbyaddr: a name stands for its first address. */
static int to_address(const char *host, unsigned char *addr, socklen_t *len,
                      int *family) {
  struct addrinfo hints, *res;
  int rc;
  if (inet_pton(AF_INET6, host, addr) == 1) {
    *family = AF_INET6;
    *len = 16;
    return 0;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) return from_eai(rc);
  *family = res->ai_family;
  if (*family == AF_INET6) {
    *len = 16;
    memcpy(addr, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, 16);
  } else {
    *len = 4;
    memcpy(addr, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
  }
  freeaddrinfo(res);
  return 0;
}

static int lookup_host(lookup_t *l) {
  struct hostent h, *res = NULL;
  unsigned char addr[16];
  socklen_t alen = 0;
  size_t size = 1024;
  int family = AF_INET, herr = 0, rc = 0;
  char *buf = NULL;
  if (l->kind == BYADDR && (rc = to_address(l->query, addr, &alen, &family)) < 0)
    return rc;
  for (;;) {                       /* ERANGE: the scratch space was short */
    char *p = realloc(buf, size);
    if (p == NULL) { rc = UV_ENOMEM; break; }
    buf = p;
    rc = l->kind == BYNAME
           ? gethostbyname_r(l->query, &h, buf, size, &res, &herr)
           : gethostbyaddr_r(addr, alen, family, &h, buf, size, &res, &herr);
    if (rc != ERANGE || size >= HOSTBUF_MAX) break;
    size *= 2;
  }
  if (rc > 0) rc = -rc;
  else if (rc == 0 && res == NULL) rc = from_h_errno(herr);
  else if (rc == 0) rc = put_host(l, res);
  free(buf);
  return rc;
}

static int lookup_service(lookup_t *l) {
  struct servent se, *res = NULL;
  char buf[1024];
  const char *proto = l->proto[0] ? l->proto : NULL;
  if (l->kind == SERVBYNAME)
    getservbyname_r(l->query, proto, &se, buf, sizeof buf, &res);
  else
    getservbyport_r(htons((uint16_t)l->port), proto, &se, buf, sizeof buf, &res);
  if (res == NULL) return UV_EAI_SERVICE;     /* Python: service/proto not found */
  if (l->kind == SERVBYNAME) {
    l->port = ntohs((uint16_t)res->s_port);
    return 0;
  }
  return put(l, res->s_name);
}

static void work(uv_work_t *uv) {
  lookup_t *l = (lookup_t *)uv;
  l->status = l->kind == BYNAME || l->kind == BYADDR ? lookup_host(l)
                                                     : lookup_service(l);
}

/* Wakes with 0 and leaves the answer in l: any other wake status came
** from elsewhere, while this callback still owned the lookup. */
static void after_work(uv_work_t *uv, int status) {
  lookup_t *l = (lookup_t *)uv;
  if (status < 0) l->status = status;
  if (!wl_wake(&l->w, 0)) free_lookup(l);   /* the task gave up on it */
}

/* ---- on the loop ------------------------------------------------------ */

static int lookup_k(lua_State *L, int status, lua_KContext ctx);

/* Starts a lookup of query (NULL for SERVBYPORT) and parks the task;
** the stack holds the query and the proto (slots 1, 2). */
static int start(lua_State *L, int kind, const char *op, const char *query,
                 int port, const char *proto) {
  lookup_t *l;
  int rc;
  wl_check_park(L);
  if ((l = calloc(1, sizeof *l)) == NULL) return wl_raise(L, op, UV_ENOMEM, query);
  if (query != NULL && (l->query = strdup(query)) == NULL) {
    free(l);
    return wl_raise(L, op, UV_ENOMEM, query);
  }
  l->kind = kind;
  l->port = port;
  if (proto != NULL) {
    if (strlen(proto) >= sizeof l->proto) {
      free_lookup(l);
      return luaL_argerror(L, 2, "protocol name too long");
    }
    strcpy(l->proto, proto);
  }
  wl_waiter_init(&l->w);
  if ((rc = uv_queue_work(wl_loop(), &l->uv, work, after_work)) < 0) {
    free_lookup(l);
    return wl_raise(L, op, rc, query);
  }
  lua_settop(L, 2);
  lua_pushstring(L, op);
  return wl_park(L, &l->w, -1, lookup_k, (lua_KContext)l);
}

/* The list of strings at *p, up to the empty one, as a Lua table. */
static const char *push_list(lua_State *L, const char *p) {
  int i = 0;
  lua_newtable(L);
  while (*p != '\0') {
    lua_pushstring(L, p);
    lua_rawseti(L, -2, ++i);
    p += strlen(p) + 1;
  }
  return p + 1;
}

/* Stack: the query, the proto, the op's name (start pushed it: after a
** wake from elsewhere, l may be freed already); errors name the query. */
static int lookup_k(lua_State *L, int status, lua_KContext ctx) {
  lookup_t *l = (lookup_t *)ctx;
  int rc = (int)lua_tointeger(L, -1), nres = 1;
  const char *op = lua_tostring(L, 3);
  (void)status;
  lua_pop(L, 1);
  if (lua_isstring(L, 2)) {                  /* a service: "http/tcp" */
    lua_pushfstring(L, "%s/%s", lua_tostring(L, 1), lua_tostring(L, 2));
    lua_replace(L, 1);
  }
  if (rc < 0) return wl_raise(L, op, rc, lua_tostring(L, 1));
  if ((rc = l->status) < 0) {
    free_lookup(l);
    return wl_raise(L, op, rc, lua_tostring(L, 1));
  }
  if (l->kind == SERVBYNAME) {
    lua_pushinteger(L, l->port);
  } else if (l->kind == SERVBYPORT) {
    lua_pushstring(L, l->out);
  } else {                                     /* name, aliases, addresses */
    const char *p = l->out;
    lua_pushstring(L, p);
    p = push_list(L, p + strlen(p) + 1);
    push_list(L, p);
    nres = 3;
  }
  free_lookup(l);
  return nres;
}

/* gethostbyname_ex(name) -> hostname, aliases, addresses (IPv4) */
static int socket_gethostbyname_ex(lua_State *L) {
  const char *name = wl_check_host(L, 1);
  lua_settop(L, 1);
  return start(L, BYNAME, "gethostbyname_ex", name, 0, NULL);
}

/* gethostbyaddr(host) -> hostname, aliases, addresses: the reverse
** lookup of host's address (of its first address, for a name) */
static int socket_gethostbyaddr(lua_State *L) {
  const char *host = wl_check_host(L, 1);
  lua_settop(L, 1);
  return start(L, BYADDR, "gethostbyaddr", host, 0, NULL);
}

/* getservbyname(name[, proto]) -> port */
static int socket_getservbyname(lua_State *L) {
  const char *name = wl_check_host(L, 1);
  const char *proto = lua_isnoneornil(L, 2) ? NULL : wl_check_host(L, 2);
  lua_settop(L, 2);
  return start(L, SERVBYNAME, "getservbyname", name, 0, proto);
}

/* getservbyport(port[, proto]) -> name */
static int socket_getservbyport(lua_State *L) {
  lua_Integer port = luaL_checkinteger(L, 1);
  const char *proto = lua_isnoneornil(L, 2) ? NULL : wl_check_host(L, 2);
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0-65535");
  lua_settop(L, 2);
  lua_pushinteger(L, port);
  lua_replace(L, 1);
  lua_tostring(L, 1);                        /* the error names "80" */
  return start(L, SERVBYPORT, "getservbyport", NULL, (int)port, proto);
}

static int socket_gethostname(lua_State *L) {
  char buf[256];
  size_t n = sizeof buf;
  int rc = uv_os_gethostname(buf, &n);
  if (rc < 0) return wl_raise(L, "gethostname", rc, NULL);
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"gethostbyname_ex", socket_gethostbyname_ex},
  {"gethostbyaddr", socket_gethostbyaddr},
  {"getservbyname", socket_getservbyname},
  {"getservbyport", socket_getservbyport},
  {"gethostname", socket_gethostname}, {NULL, NULL}
};

/* Adds the functions above to the module at index `module`. */
void wl_netdb_register(lua_State *L, int module) {
  lua_pushvalue(L, module);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
