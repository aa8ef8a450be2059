/*
** fs.c: the few file-system calls the Lua modules need and Lua's standard
** library lacks (module "wirelab.fs"): realpath, stat, listing a directory,
** reading a symbolic link, the working directory. Each is one quick local system call, made
** directly: no task parks. Failures return nil, message, code (io style).
** An open directory is held by a box ("wirelab.dir") while the listing
** is built, so a memory error half-way closes it from __gc.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "wl.h"

#define DIR_MT "wirelab.dir"

static int fail(lua_State *L, const char *what) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushstring(L, strerrorname_np(e) ? strerrorname_np(e) : "EIO");
  return 3;
}

static const char *kind_of(mode_t m) {
  return S_ISREG(m) ? "file" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "link" : "other";
}

/* realpath(path) -> the absolute path, symlinks resolved */
static int fs_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *real = realpath(path, NULL);
  if (real == NULL) return fail(L, path);
  lua_pushstring(L, real);
  free(real);
  return 1;
}

/* stat(path[, follow]) -> {kind=, size=, mtime=, mode=}; follow defaults
** to true (stat), false gives lstat */
static int fs_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int follow = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) return fail(L, path);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind_of(st.st_mode));
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  return 1;
}

/* The one place a listed directory is closed; the box holds NULL after. */
static int close_dir(DIR **box) {
  int rc = *box ? closedir(*box) : 0;
  *box = NULL;
  return rc;
}

static int dir_gc(lua_State *L) {
  close_dir(luaL_checkudata(L, 1, DIR_MT));
  return 0;
}

/* listdir(path) -> {{name=, isdir=, islink=}...} without "." and "..";
** isdir follows symlinks, as a listing shows where a link leads */
static int fs_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **box, *d;
  struct dirent *de;
  int i = 0;
  box = lua_newuserdatauv(L, sizeof *box, 0);  /* first, holding NULL */
  *box = NULL;
  luaL_setmetatable(L, DIR_MT);
  if ((d = *box = opendir(path)) == NULL) return fail(L, path);
  lua_newtable(L);
  while ((errno = 0, de = readdir(d)) != NULL) {
    struct stat st, lst;
    int isdir = 0, islink = 0;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (fstatat(dirfd(d), de->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
      islink = S_ISLNK(lst.st_mode);
      isdir = S_ISDIR(lst.st_mode);
      if (islink && fstatat(dirfd(d), de->d_name, &st, 0) == 0)
        isdir = S_ISDIR(st.st_mode);
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, de->d_name);
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, isdir);
    lua_setfield(L, -2, "isdir");
    lua_pushboolean(L, islink);
    lua_setfield(L, -2, "islink");
    lua_rawseti(L, -2, ++i);
  }
  if (errno != 0) {
    int e = errno;
    close_dir(box);
    errno = e;
    return fail(L, path);
  }
  close_dir(box);
  return 1;
}

/* readlink(path) -> what the link holds, unresolved: a path, or what
** /proc shows for an fd that is no file ("socket:[12345]") */
static int fs_readlink(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  ssize_t n = readlink(path, buf, sizeof buf);
  if (n < 0) return fail(L, path);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static int fs_getcwd(lua_State *L) {
  char *cwd = getcwd(NULL, 0);
  if (cwd == NULL) return fail(L, "getcwd");
  lua_pushstring(L, cwd);
  free(cwd);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"realpath", fs_realpath}, {"stat", fs_stat}, {"listdir", fs_listdir},
  {"readlink", fs_readlink}, {"getcwd", fs_getcwd}, {NULL, NULL}
};

int luaopen_wirelab_fs(lua_State *L) {
  if (luaL_newmetatable(L, DIR_MT)) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
