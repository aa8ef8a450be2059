-- wirelab.repl: the interactive prompt (`wirelab`, `wirelab -i SCRIPT`).
-- It reads in a task, so while it waits for a line the loop runs on:
-- servers started with :start() or wirelab.spawn keep serving. A line is
-- an expression (its values are printed, as lua 5.4 does) or statements;
-- an unfinished one is continued with ">> ". From a pipe it reads lines
-- without prompts, so a session can be scripted.
local rl = require "wirelab.readline"
local reader = require "wirelab.reader"
local pretty = require "wirelab.pretty"
local complete = require "wirelab.complete"

local M = {}

M.isatty = rl.isatty

local pack, tostring = table.pack, tostring

-- load(src) as an expression first ("1 + 1" prints 2), then as statements
local function compile(src)
  local chunk = load("return " .. src, "=stdin", "t")
  if chunk then return chunk end
  return load(src, "=stdin", "t")
end

-- an error that only more lines can fix
local function incomplete(err)
  return err:find("<eof>$") ~= nil
end

-- the traceback of an error at the prompt, without the prompt's own frames
local function traceback(e)
  if type(e) ~= "string" and getmetatable(e) == nil then e = tostring(e) end
  local tb = debug.traceback(e, 2)
  if type(tb) ~= "string" then return tb end
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- the values of an expression, as wirelab.pretty prints them
local function show(res)
  local out = {}
  for i = 2, res.n do out[#out + 1] = pretty.show(res[i]) end
  io.stdout:write(table.concat(out, "\t"), "\n")
  io.stdout:flush()
end

-- The next line: edited on a terminal (libedit), else from the one reader
-- over stdin; nil at EOF.
local piped
local function read_line(prompt)
  if rl.isatty() then return rl.readline(prompt) end
  piped = piped or reader.new(rl.read)
  return piped:read("l")
end

-- os.exit at the prompt unwinds to run(), which leaves as Ctrl-D does
local Exit = {}

-- One chunk from the prompt, run: true, or false at EOF, or the Exit
-- object of an os.exit().
local function step(prompt, more)
  local line = read_line(prompt)
  if line == nil then return false end
  local src = line
  local chunk, err = compile(src)
  while not chunk and incomplete(err) do
    local next_line = read_line(more)
    if next_line == nil then break end
    src = src .. "\n" .. next_line
    chunk, err = compile(src)
  end
  if not chunk then
    io.stderr:write(err, "\n")
  else
    local res = pack(xpcall(chunk, traceback))
    if not res[1] and getmetatable(res[2]) == Exit then
      return res[2]                       -- os.exit(): leave
    elseif not res[1] then
      io.stderr:write(tostring(res[2]), "\n")
    elseif res.n > 1 then
      show(res)
    end
  end
  io.stderr:flush()
  return true
end

-- ---- what the prompt adds to the globals ------------------------------------

-- The modules a prompt user reaches for, as globals loaded on first use
-- (as node's REPL has its built-in modules): `socket.create_connection`
-- works without a require. `http` is a table of the http.* modules.
local LAZY = {"wirelab", "socket", "socketserver", "process", "lab", "netem", "capture"}

local function lazy_globals()
  local loaders = {}
  for _, name in ipairs(LAZY) do
    if package.preload[name] then loaders[name] = function() return require(name) end end
  end
  local http = setmetatable({}, {__index = function(t, k)
    if type(k) ~= "string" or not package.preload["http." .. k] then return nil end
    local m = require("http." .. k)
    rawset(t, k, m)
    return m
  end})
  loaders.http = function() return http end
  return loaders
end

-- help() and status(), and the lazy modules, unless a script (-i) has
-- its own by those names
local function setup_globals()
  local loaders = lazy_globals()
  complete.lazy = loaders
  if rawget(_G, "help") == nil then
    _G.help = function(...) require("wirelab.help").show(...) end
  end
  if rawget(_G, "status") == nil then
    _G.status = function() require("wirelab.status").show() end
  end
  if getmetatable(_G) == nil then
    setmetatable(_G, {__index = function(t, k)
      local load = loaders[k]
      if load == nil then return nil end
      local v = load()
      rawset(t, k, v)
      return v
    end})
  end
end

-- ---- leaving ------------------------------------------------------------------------


-- Leaving: the servers stop listening (their connections close as the
-- process ends), and history is written.
local function leave()
  local ss = package.loaded.socketserver
  for srv in pairs(ss and ss._servers or {}) do
    local sock = rawget(srv, "socket")
    if sock and not sock.closed then
      srv._shutdown_request = true     -- its serve_forever ends quietly
      pcall(sock.close, sock)
    end
  end
  rl.catch_sigint(false)
  rl.close()
end

-- run(): until EOF (Ctrl-D) or os.exit(); returns the exit status. Ctrl-C
-- stops what the prompt runs (a loop, a recv) or drops the line being
-- typed; the process and its servers go on.
function M.run()
  local tty = rl.isatty()
  local prompt, more = tty and "> " or "", tty and ">> " or ""
  local me, real_exit = require("wirelab").current(), os.exit
  setup_globals()
  if tty then
    io.stdout:write(require("wirelab").version or "wirelab",
                    "  (help() for help, Ctrl-D to leave)\n")
    rl.set_completer(complete.candidates)
  end
  os.exit = function(code, ...)
    if require("wirelab").current() ~= me then   -- a background task's
      leave()
      return real_exit(code, ...)
    end
    error(setmetatable({code = code}, Exit), 0)
  end
  rl.catch_sigint(true)
  local status = 0
  while true do
    local ok, going = pcall(step, prompt, more)
    if ok and going ~= true then
      if getmetatable(going) == Exit then
        local c = going.code
        status = c == nil and 0 or c == true and 0 or c == false and 1 or math.tointeger(c) or 0
      end
      break
    end
    if not ok then            -- interrupted outside what the chunk ran
      io.stdout:write(tty and "\n" or "")
      io.stdout:flush()
    end
  end
  os.exit = real_exit
  if tty then io.stdout:write("\n") end
  leave()
  return status
end

return M
