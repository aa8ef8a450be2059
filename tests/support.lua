-- tests/support.lua: what every spec shares, defined once: bounded test
-- bodies that also prove no handle leaked, the binary under test, echo
-- servers, temp dirs, wirelab scripts as subprocesses, skips that fail in
-- CI, and looks at other processes through /proc. Specs get it with
-- `require "support"`: `wirelab test` puts the directory holding this file
-- on package.path (scripts/wirelab/test.lua).
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"
local fs = require "wirelab.fs"
local luassert = require "luassert"

local M = {}

-- Under AddressSanitizer freed memory sits in quarantine and everything
-- runs slower: RSS and CPU bounds apply to the plain build only.
M.SANITIZED = os.getenv("ASAN_OPTIONS") ~= nil

-- CI=true: a machine known to have root, namespaces, IPv6, prlimit and
-- python3, where a test that cannot run is a failure (see skip below)
M.CI = os.getenv("CI") == "true"

-- the directory of this file: tests/, where run.sh is
M.DIR = fs.realpath((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or ".")

M.PID = (function()
  local f <close> = assert(io.open("/proc/self/stat"))
  return f:read("n")
end)()

-- note(fmt, ...): with WIRELAB_TEST_VERBOSE=1, what a test measured
function M.note(fmt, ...)
  if os.getenv("WIRELAB_TEST_VERBOSE") then
    io.stderr:write("    ", fmt:format(...), "\n")
    io.stderr:flush()
  end
end

-- ---- the binary under test --------------------------------------------------

-- an executable by name: the absolute path PATH gives it, or nil
local function on_path(name)
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local st = fs.stat(dir .. "/" .. name)
    if st and st.kind == "file" then return fs.realpath(dir .. "/" .. name) end
  end
  return nil
end

-- find(cmd) -> its absolute path, or nil when the machine has no such command
function M.find(cmd)
  if cmd:find("/", 1, true) then return fs.realpath(cmd) end
  return on_path(cmd)
end

-- $WIRELAB (tests/run.sh sets it), else the interpreter running the specs
-- (arg[-1], as lua gives it), made absolute: specs run it from other
-- directories and inside network namespaces
M.wirelab = (function()
  local given = os.getenv("WIRELAB")
  if given == nil or given == "" then given = arg and arg[-1] or "./wirelab" end
  return M.find(given) or given
end)()

-- ---- bounded test bodies ----------------------------------------------------

-- What a test opened is closed afterwards, even when it failed half-way,
-- so a failure leaves no server, helper or socket behind for the next test.
local cleanup, in_test = {}, false
function M.defer(fn) cleanup[#cleanup + 1] = fn end

-- bounded(seconds, fn) -> a body for busted's `it`: fn runs under
-- wirelab.timeout(seconds), its deferred cleanups run in reverse (bounded
-- too), and the count of open handles must be back where it started.
function M.bounded(seconds, fn)
  if type(seconds) ~= "number" or type(fn) ~= "function" then
    error("bad arguments to 'bounded' (seconds, function expected)", 2)
  end
  return function()
    collectgarbage()
    local before = wirelab.handles()
    -- a bounded body may run another (a fixture): each has its own cleanups
    local outer_cleanup, outer_in_test = cleanup, in_test
    cleanup, in_test = {}, true
    local ok, err = pcall(wirelab.timeout, seconds, fn)
    local list = cleanup
    cleanup, in_test = outer_cleanup, outer_in_test
    local cok, cerr = pcall(wirelab.timeout, 10, function()
      for i = #list, 1, -1 do pcall(list[i]) end
    end)
    collectgarbage()
    if not ok then error(err, 0) end
    if not cok then error("the test's cleanup did not finish: " .. tostring(cerr), 0) end
    luassert.are.equal(before, wirelab.handles(), "open handles leaked")
  end
end

-- skip(reason) -> reason, for `pending(support.skip(reason))`: a test this
-- machine cannot run (no namespaces, no prlimit...). A user sees it
-- skipped with its reason; in CI, where everything it needs is there, it
-- is a failure, so a reliability item cannot turn green by not running.
function M.skip(reason)
  if M.CI then
    error("cannot run in CI, where it must: " .. reason, 2)
  end
  return reason
end

-- ---- processes --------------------------------------------------------------

-- stop(p): kills a process the spec started, by its handle (its group)
function M.stop(p)
  pcall(p.kill, p, 9)
  pcall(p.wait, p, 5)
  pcall(p.close, p)
end

-- spawn(argv) -> p: process.spawn, stopped when the test ends
function M.spawn(argv)
  local p = process.spawn(argv)
  if in_test then M.defer(function() M.stop(p) end) end
  return p
end

-- script(code[, opts]) -> p, first line: `wirelab -e code` as a subprocess,
-- after opts.prefix (e.g. prlimit and its options), with opts.stdin;
-- stopped when the test ends. The first line is what the script printed
-- first (its port, "ready"); a script that prints none is an error.
function M.script(code, opts)
  opts = opts or {}
  local argv = {}
  for _, a in ipairs(opts.prefix or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = M.wirelab
  argv[#argv + 1] = "-e"
  argv[#argv + 1] = code
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  argv.stdin, argv.cwd = opts.stdin, opts.cwd
  local p = M.spawn(argv)
  local line = p.stdout:read("l")
  if line == nil or line == "" then
    local err = p.stderr:read("a")
    M.stop(p)
    error("the script printed nothing before it ended: " .. tostring(err), 2)
  end
  return p, line
end

-- wait_until(what, pred[, seconds]): another process's state has no event
-- to wait on, so /proc is polled for it, within a bound
function M.wait_until(what, pred, seconds)
  local deadline = wirelab.now() + (seconds or 5)
  while not pred() do
    if wirelab.now() >= deadline then error("gave up waiting until " .. what, 2) end
    wirelab.sleep(0.005)
  end
end

-- proc_status(pid, field) -> a field of /proc/PID/status ("self" too)
function M.proc_status(pid, field)
  local f <close> = assert(io.open("/proc/" .. pid .. "/status"))
  return f:read("a"):match(field .. ":%s*(%S+)")
end

function M.rss_kib(pid) return tonumber(M.proc_status(pid, "VmRSS")) end

-- in_session(sid) -> the pids of every process whose session is sid (a
-- sandboxed program leads its own: sid is its pid), from /proc
function M.in_session(sid)
  local found = {}
  for _, e in ipairs(fs.listdir("/proc")) do
    if e.name:match("^%d+$") then
      local f = io.open("/proc/" .. e.name .. "/stat")
      local stat = f and f:read("a")
      if f then f:close() end
      -- fields after "(comm)": state, ppid, pgrp, session
      local s = stat and stat:match("%)%s+%a%s+%d+%s+%d+%s+(%d+)")
      if tonumber(s) == sid then found[#found + 1] = tonumber(e.name) end
    end
  end
  return found
end

-- exists(pid): /proc/PID is there and not a zombie (a process of another
-- program, watched by pid: nothing to wait on)
function M.exists(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- nfds(pid[, kind]) -> how many fds the process has open; with kind
-- "socket", only its sockets (sanitizers and the C library open files of
-- their own, which make the full count noisy). This process counts its
-- own from inside: an `ls` it spawned would list the pipes to that ls too.
function M.nfds(pid, kind)
  if kind == nil and (pid == M.PID or pid == "self") then
    return #fs.listdir("/proc/self/fd") - 1        -- less listdir's own
  end
  local r = process.run{"ls", "-l", "/proc/" .. pid .. "/fd", timeout = 5}
  local n = 0
  for line in r.stdout:gmatch("[^\n]+") do
    if line:find(" -> ", 1, true) and (kind == nil or line:find(kind .. ":", 1, true)) then
      n = n + 1
    end
  end
  return n
end

-- proc_stat(pid) -> state letter, CPU seconds used (utime + stime), or nil
-- once the process is gone
local CLK_TCK
function M.proc_stat(pid)
  if not CLK_TCK then
    local r = process.run{"getconf", "CLK_TCK", timeout = 5}
    CLK_TCK = tonumber(r.stdout:match("%d+")) or 100
  end
  local f <close> = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local fields = {}
  for w in f:read("a"):match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  return fields[1], (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

-- ---- temp dirs --------------------------------------------------------------

-- tmpdir() -> path, remove: a new directory under /tmp; inside a bounded
-- test it is removed when the test ends, elsewhere (setup) call remove
function M.tmpdir()
  local r = process.run{"mktemp", "-d", "/tmp/wirelab-test.XXXXXX", timeout = 5}
  if r.code ~= 0 then error("mktemp -d failed: " .. r.stderr, 2) end
  local dir = r.stdout:match("^(.-)%s*$")
  -- traversable: a sandboxed program runs as nobody, and may need to
  -- reach a binary or a submission made under it
  process.run{"chmod", "755", dir, timeout = 5}
  local function remove()
    if dir:match("^/tmp/wirelab%-test%.%w+$") then process.run{"rm", "-rf", dir, timeout = 10} end
  end
  if in_test then M.defer(remove) end
  return dir, remove
end

-- write(path, data): a whole file, binary
function M.write(path, data)
  local f <close> = assert(io.open(path, "wb"))
  f:write(data)
end

-- read(path) -> a whole file, binary
function M.read(path)
  local f <close> = assert(io.open(path, "rb"))
  return f:read("a")
end

-- ---- echo servers -----------------------------------------------------------

-- echo_server([{family=, host=, type=}]) -> host, port, stop: an echo
-- server in background tasks of this process, TCP (socket.SOCK_STREAM,
-- the default) or UDP, on 127.0.0.1 or ::1 (family AF_INET6). Every
-- connection is served by its own task. stop() closes everything and waits
-- for the tasks; inside a bounded test it also runs when the test ends.
function M.echo_server(opts)
  opts = opts or {}
  local family = opts.family or socket.AF_INET
  local host = opts.host or (family == socket.AF_INET6 and "::1" or "127.0.0.1")
  local stopped, stop = false, nil
  local port
  if opts.type == socket.SOCK_DGRAM then
    local u = socket.socket(family, socket.SOCK_DGRAM)
    u:bind(host, 0)
    port = select(2, u:getsockname())
    local task = wirelab.spawn(function()
      while true do
        local ok, d, h, p = pcall(u.recvfrom, u, 65535)
        if not ok then return end
        pcall(u.sendto, u, d, h, p)
      end
    end)
    stop = function()
      if stopped then return end
      stopped = true
      u:close()
      pcall(task.join, task, 5)
    end
  else
    local srv = socket.create_server(host, 0, {family = family})
    port = select(2, srv:getsockname())
    local conns, tasks = {}, {}
    local acceptor = wirelab.spawn(function()
      while true do
        local ok, c = pcall(srv.accept, srv)
        if not ok then return end
        conns[#conns + 1] = c
        tasks[#tasks + 1] = wirelab.spawn(function()
          while true do
            local rok, d = pcall(c.recv, c, 65536)
            if not rok or d == "" then break end
            if not pcall(c.sendall, c, d) then break end
          end
          c:close()
        end)
      end
    end)
    stop = function()
      if stopped then return end
      stopped = true
      srv:close()
      pcall(acceptor.join, acceptor, 5)
      for _, c in ipairs(conns) do c:close() end
      for _, t in ipairs(tasks) do pcall(t.join, t, 5) end
    end
  end
  if in_test then M.defer(stop) end
  return host, port, stop
end

-- echo_script(queue) -> the code of a socketserver echo server, as a
-- student writes it, that prints its port and serves until killed
function M.echo_script(queue)
  return ([[
local socketserver = require "socketserver"
local Echo = socketserver.StreamRequestHandler:extend()
function Echo:handle()
  for line in self.rfile:lines("L") do self.wfile:write(line) end
end
local S = socketserver.ThreadingTCPServer:extend({request_queue_size = %d, daemon_threads = true})
local srv = S({"127.0.0.1", 0}, Echo)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]):format(queue or 5)
end

return M
