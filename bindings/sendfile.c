/*
** sendfile.c: Python's socket.sendfile with sendfile(2), for module
** "socket.core" (the Lua half, s:sendfile, checks the arguments and
** opens a path). The kernel copies from the file to the socket without
** the bytes passing through Lua; each try is one non-blocking sendfile,
** and the task parks while the socket buffer is full. Offsets are given
** to the kernel, so the file's position moves only where Python moves
** it: to offset + bytes sent, on return and before any raise.
*/
#include <errno.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include <lualib.h>
#include "socket.h"

#define BLOCK_MAX ((lua_Integer)1 << 30)      /* one call at most, as Python */

static int sendfile_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: s, file, offset (where the next byte comes from), count (bytes
** still wanted, or nil: to the end), sent. The file's position follows
** offset before the task leaves: a wait may end in a raise. */
static int step(lua_State *L) {
  wl_sock_t *s = wl_check_sock(L, 1, "sendfile");
  luaL_Stream *f = (luaL_Stream *)luaL_checkudata(L, 2, LUA_FILEHANDLE);
  lua_Integer sent = lua_tointeger(L, 5);
  int fd;
  if (f->closef == NULL) return luaL_error(L, "attempt to use a closed file");
  fd = fileno(f->f);
  for (;;) {
    off_t offset = (off_t)lua_tointeger(L, 3);
    lua_Integer want = lua_isnil(L, 4) ? BLOCK_MAX : lua_tointeger(L, 4);
    ssize_t r;
    int e;
    if (want <= 0) break;
    if (want > BLOCK_MAX) want = BLOCK_MAX;
    if (wl_sock_turn_due(L, s)) {
      fseeko(f->f, offset, SEEK_SET);
      return wl_yield(L, sendfile_k, 0);
    }
    r = sendfile(s->fd, fd, &offset, (size_t)want);
    if (r > 0) {
      sent += r;
      lua_pushinteger(L, (lua_Integer)offset);
      lua_replace(L, 3);
      if (!lua_isnil(L, 4)) {
        lua_pushinteger(L, lua_tointeger(L, 4) - r);
        lua_replace(L, 4);
      }
      lua_pushinteger(L, sent);
      lua_replace(L, 5);
      continue;
    }
    if (r == 0) break;                             /* end of the file */
    if ((e = errno) == EINTR) continue;
    fseeko(f->f, offset, SEEK_SET);
    if (e == EAGAIN)       /* Python's: each wait under the socket's timeout */
      return wl_sock_wait(L, s, "sendfile", UV_WRITABLE, wl_sock_deadline(s),
                          sendfile_k);
    if (s->pending) return wl_sock_raise_pending(L, s, "sendfile");
    return wl_sock_raise(L, s, "sendfile", -e);
  }
  if (sent > 0) fseeko(f->f, (off_t)lua_tointeger(L, 3), SEEK_SET);
  lua_pushinteger(L, sent);
  return 1;
}

static int sendfile_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  wl_sock_woken(L, "sendfile");
  return step(L);
}

/* _sendfile(s, file, offset, count) -> bytes sent; an empty file (or one
** whose size the kernel does not know, a pipe) sends nothing, as Python. */
static int socket_sendfile(lua_State *L) {
  luaL_Stream *f = (luaL_Stream *)luaL_checkudata(L, 2, LUA_FILEHANDLE);
  struct stat st;
  wl_check_sock(L, 1, "sendfile");
  luaL_checkinteger(L, 3);
  lua_settop(L, 4);
  if (f->closef == NULL) return luaL_error(L, "attempt to use a closed file");
  if (fstat(fileno(f->f), &st) < 0) return wl_raise(L, "sendfile", -errno, NULL);
  if (st.st_size == 0) {
    lua_pushinteger(L, 0);
    return 1;
  }
  lua_pushinteger(L, 0);
  return step(L);
}

static const luaL_Reg funcs[] = {
  {"_sendfile", socket_sendfile}, {NULL, NULL}
};

/* Adds _sendfile to the module at index `module`, for the Lua half. */
void wl_sendfile_register(lua_State *L, int module) {
  lua_pushvalue(L, module);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
