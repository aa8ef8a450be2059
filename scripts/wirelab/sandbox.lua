-- wirelab.sandbox: `wirelab --sandbox SCRIPT` (RELIABILITY.md 33-37), for
-- a script that may be a student's. Binary chunks are refused everywhere
-- (load, loadfile, dofile, require); os.execute, io.popen,
-- package.loadlib, the C module searchers, debug (but debug.traceback)
-- and the process module are gone. The script runs in an environment of
-- its own, holding copies of the standard libraries, so what it replaces
-- or removes there (string.rep = nil, rawset(_G, ...)) changes nothing
-- for wirelab's own modules or the prompt; the string metatable shows it
-- its copy. CPU time and the Lua heap are bounded by the C half
-- (bindings/luasandbox.c). Nothing here is a wall against the operating
-- system: that is the process sandbox's job (docs/process.md).
local core = require "wirelab.sandbox.core"

local M = {}

local pairs, select, type, error = pairs, select, type, error
local real_load, real_loadfile, real_require = load, loadfile, require

M.DEFAULT_CPU = 60               -- seconds of CPU time
M.DEFAULT_MEM = 256              -- MiB of Lua heap

local LIBS = {"string", "table", "math", "io", "os", "coroutine", "utf8"}
local GONE = {os = {"execute"}, io = {"popen"}, package = {"loadlib"}}
local BLOCKED = {process = true, ["process.core"] = true, ["wirelab.sandbox.core"] = true,
                 ["wirelab.sandbox"] = true}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- load/loadfile in text mode only; the chunk's _ENV is env unless given
-- (an explicit nil too, as Lua's own do)
local function text_load(env)
  return function(chunk, name, mode, ...)
    local _ = mode
    if select("#", ...) > 0 then return real_load(chunk, name, "t", (...)) end
    return real_load(chunk, name, "t", env)
  end
end

local function text_loadfile(env)
  return function(path, mode, ...)
    local _ = mode
    if select("#", ...) > 0 then return real_loadfile(path, "t", (...)) end
    return real_loadfile(path, "t", env)
  end
end

-- The package searcher for Lua files, in text mode and in env, along the
-- script's package.path: every Lua file not built into wirelab is the
-- script's own code.
local function file_searcher(env)
  return function(name)
    local path, err = package.searchpath(name, env.package.path)
    if not path then return "\n\t" .. err end
    local chunk, lerr = real_loadfile(path, "t", env)
    if not chunk then
      error(("error loading module '%s' from file '%s':\n\t%s"):format(name, path, lerr), 0)
    end
    return chunk, path
  end
end

-- enable{cpu=, mem=} -> env: the bounds, the libraries stripped, and the
-- environment the script's chunks are loaded in.
function M.enable(opts)
  core.limit(opts.cpu, opts.mem and opts.mem * 1024 * 1024)
  for lib, names in pairs(GONE) do
    for _, n in ipairs(names) do _G[lib][n] = nil end
  end
  local traceback = debug.traceback
  _G.debug = {traceback = traceback}
  package.loaded.debug = _G.debug
  package.cpath = ""

  package.searchers = {package.searchers[1], false}

  local env = {}
  for k, v in pairs(_G) do env[k] = v end
  for _, lib in ipairs(LIBS) do env[lib] = copy(_G[lib]) end
  env.debug = {traceback = traceback}
  env._G = env
  env.load, env.loadfile = text_load(env), text_loadfile(env)
  env.dofile = function(path)
    local chunk, err = env.loadfile(path)
    if not chunk then error(err, 2) end
    return chunk()
  end
  -- the standard libraries by name are the script's copies
  local own = {_G = env, debug = env.debug}
  for _, lib in ipairs(LIBS) do own[lib] = env[lib] end
  env.package = copy(package)
  own.package = env.package
  env.package.loaded = setmetatable(copy(own), {__index = package.loaded})
  env.require = function(name)
    if type(name) == "string" and own[name] then return own[name] end
    if BLOCKED[name] then error(("module '%s' is not available in --sandbox"):format(name), 2) end
    local ok, mod, where = pcall(real_require, name)
    if not ok then error(mod, 0) end
    return mod, where
  end

  -- wirelab's own state: text chunks only, no C modules, nothing from
  -- files in anything but env
  _G.load, _G.loadfile = text_load(_G), text_loadfile(_G)
  _G.dofile = env.dofile
  package.searchers[2] = file_searcher(env)
  env.package.searchers = copy(package.searchers)
  getmetatable("").__metatable = {__index = env.string}
  return env
end

return M
