-- reliability/sandbox_spec: RELIABILITY.md items 25-37, the grader's
-- sandbox against hostile programs (fork bomb, memory hog, CPU spin,
-- sleeper, crash, escape from the process group, output flood, a huge
-- file, the network, inheritance) and the Lua sandbox of `wirelab
-- --sandbox` (bytecode, environment escapes, infinite loops, C-level
-- hangs, memory bombs). Each ends with no process of the program left,
-- checked by PID in /proc. A layer this machine cannot give is skipped
-- with the reason the sandbox reports. Every loop bounded in count and
-- time; the network is a loopback-only namespace of our own.
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"
local fs = require "wirelab.fs"

local support = require "support"
local SANITIZED, note, defer, bounded = support.SANITIZED, support.note, support.defer, support.bounded
local stop, rss_kib = support.stop, support.rss_kib
local function wirelab_path() return support.wirelab end

local MiB = 1024 * 1024

local exists = support.exists

local in_session = support.in_session

-- nothing of p is left: no process in its session, its cgroups gone
local function nothing_left(p)
  assert.are.same({}, in_session(p.pid), "processes left in the program's session")
  for _, dir in ipairs(p.sandbox.cgroup_dirs or {}) do
    assert.is_nil(fs.stat(dir), "cgroup left behind: " .. dir)
  end
  if p.sandbox.scratch then assert.is_nil(fs.stat(p.sandbox.scratch), "scratch left behind") end
end

local function spawn(spec)
  local p = process.spawn(spec)
  defer(function() stop(p) end)
  return p
end

local iso
local function need(layer, value)
  iso = iso or process.isolation()
  if iso[layer] and (value == nil or iso[layer] == value) then return true end
  pending(support.skip(("%s%s unavailable here: %s"):format(layer, value and " = " .. value or "",
    tostring(iso.unavailable[layer] or iso[layer]))))
  return false
end

-- a temporary file holding text, readable by the sandbox's uid; removed
-- after the test
local function temp_file(text, suffix)
  local dir = support.tmpdir()
  process.run{"chmod", "755", dir, timeout = 5}
  local path = dir .. "/file" .. (suffix or "")
  support.write(path, text)
  return path
end

describe("sandbox escapes (RELIABILITY 25-32)", function()
  it("25 a fork bomb is stopped by the process limit; the host stays responsive",
    bounded(30, function()
    iso = iso or process.isolation()
    if not iso.pids then
      pending(support.skip("no process limit here: " .. tostring(iso.unavailable.pids)))
      return
    end
    local p = spawn{"bash", "-c", ":(){ :|:& };:; sleep 10", sandbox = true,
                    limits = {nproc = 32, wall = 3}}
    -- while it runs: timers keep time and a loopback echo answers
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local echo = wirelab.spawn(function()
      local c = srv:accept()
      c:sendall(c:recv(10))
      c:close()
    end)
    local worst = 0
    for _ = 1, 20 do
      local t0 = wirelab.now()
      wirelab.sleep(0.05)
      worst = math.max(worst, wirelab.now() - t0 - 0.05)
    end
    local c <close> = socket.create_connection("127.0.0.1", port, 2)
    c:sendall("x")
    assert.are.equal("x", c:recv(10))
    echo:join(2)
    note("fork bomb: worst timer lateness %.3f s", worst)
    assert.is_true(worst < 0.5, "timers late by " .. worst .. " s")
    local _, _, r = p:wait(10)
    assert.are.equal("wall", r.limit)
    if iso.pids == "cgroup" then        -- RLIMIT_NPROC counts no refusals
      assert.is_true(r.exceeded.nproc, "the process limit was never reached")
      assert.matches("process limit 32 reached", r.message)
    end
    nothing_left(p)
  end))

  it("26 a memory hog is killed at the limit and reported as memory", bounded(20, function()
    if not need("memory", "cgroup") then return end
    local p = spawn{"python3", "-c", "a = []\nwhile True: a.append(bytearray(1 << 20))",
                    sandbox = true, limits = {memory = "64M", wall = 10}}
    local _, sig, r = p:wait(15)
    assert.are.same({9, "SG", "memory"}, {sig, r.status, r.limit})
    assert.are.equal("killed: memory limit 64 MiB", r.message)
    assert.is_true(r.memory_peak <= 64 * MiB + 4096)
    nothing_left(p)
  end))

  it("26 a large virtual reservation with a small RSS is not killed", bounded(20, function()
    if not need("memory", "cgroup") then return end
    local r = process.run{"python3", "-c",
      "import mmap\nm = mmap.mmap(-1, 4 << 30)\nm[0:4096] = b'x' * 4096\nprint('ok')",
      sandbox = true, limits = {memory = "64M", wall = 10}}
    assert.are.same({"OK", "ok\n"}, {r.status, r.stdout})
  end))

  it("26 without a memory cgroup, RLIMIT_AS: allocation fails in the program", bounded(20, function()
    local r = process.run{"python3", "-c", "b = bytearray(200 << 20)",
      sandbox = {cgroup = false}, limits = {memory = "64M", wall = 10}}
    assert.are.equal("rlimit", r.sandbox.memory)
    assert.are.equal("RE", r.status)
    assert.matches("MemoryError", r.stderr)
  end))

  it("27 CPU spin, sleeper, crash and exit code, each reported", bounded(30, function()
    local spin = process.run{"python3", "-c", "while True: pass", sandbox = true,
                             limits = {cpu = 1, wall = 10}}
    assert.are.same({"TO", "cpu"}, {spin.status, spin.limit})
    local sleeper = process.run{"sleep", "100", sandbox = true, limits = {wall = 0.5}}
    assert.are.same({"TO", "wall"}, {sleeper.status, sleeper.limit})
    local crash = process.run{"python3", "-c", "import os; os.abort()", sandbox = true,
                              limits = {wall = 10}}
    assert.are.same({"SG", 6}, {crash.status, crash.signal})
    local code = process.run{"sh", "-c", "exit 42", sandbox = true, limits = {wall = 10}}
    assert.are.same({"RE", 42}, {code.status, code.code})
  end))

  for _, variant in ipairs({{"with the cgroup", true}, {"with the subreaper alone", false}}) do
    it("28 setsid and a double fork leave nothing behind, " .. variant[1], bounded(20, function()
      local p = spawn{"sh", "-c",
        "setsid sleep 1000 & echo $!; (setsid sh -c 'sleep 1002 & echo $!' &); sleep 0.3",
        sandbox = {cgroup = variant[2]}}
      local a = tonumber(p.stdout:read("l"))
      local b = tonumber(p.stdout:read("l"))
      assert.is_true(exists(a) and exists(b), "the escapes did not start")
      p:wait(10)
      assert.is_false(exists(a), "setsid sleep survived")
      assert.is_false(exists(b), "the double-forked sleep survived")
      nothing_left(p)
    end))
  end

  it("28 a grader killed with SIGKILL leaves nothing of its programs", bounded(20, function()
    local grader = spawn{wirelab_path(), "-e", [[
      local process = require "process"
      local p = process.spawn{"sh", "-c", "setsid sleep 1000 & echo $!; exec sleep 1001", sandbox = true}
      print(p.pid, p.stdout:read("l"))
      io.stdout:flush()
      require("wirelab").sleep(100)]]}
    local a, b = grader.stdout:read("l"):match("^(%d+)%s+(%d+)$")
    a, b = tonumber(a), tonumber(b)
    assert.is_true(exists(a) and exists(b))
    grader:kill(9)
    grader:wait(5)
    local deadline = wirelab.now() + 5
    while (exists(a) or exists(b)) and wirelab.now() < deadline do wirelab.sleep(0.02) end
    assert.is_false(exists(a), "the program outlived its grader")
    assert.is_false(exists(b), "its setsid escape outlived the grader")
  end))

  it("29 an output flood is capped with a marker; the grader's memory stays bounded",
    bounded(60, function()
    collectgarbage()
    local before = rss_kib("self")
    local r = process.run{"sh", "-c", "head -c 200000000 /dev/zero & head -c 200000000 /dev/zero >&2; wait",
                          sandbox = true, limits = {wall = 30}}
    local grew = rss_kib("self") - before
    note("output flood: grader RSS grew %d KiB", grew)
    assert.are.equal("OK", r.status)
    assert.are.same({stdout = 200000000 - MiB, stderr = 200000000 - MiB}, r.truncated)
    assert.matches("\n%[truncated 198951424 bytes%]\n$", r.stdout)
    assert.matches("\n%[truncated 198951424 bytes%]\n$", r.stderr)
    if not SANITIZED then assert.is_true(grew < 16 * 1024, "the grader grew by " .. grew .. " KiB") end
  end))

  it("30 a 1 GiB file stops at the file size limit; the scratch is removed", bounded(20, function()
    local p = spawn{"sh", "-c", "exec head -c 1073741824 /dev/zero > $HOME/big", sandbox = true}
    local _, sig, r = p:wait(15)
    assert.are.same({25, "SG", "fsize"}, {sig, r.status, r.limit})
    assert.are.equal("killed: file size limit 16 MiB (SIGXFSZ)", r.message)
    nothing_left(p)
  end))

  it("30 writes outside the scratch directory fail", bounded(10, function()
    if not need("readonly") then return end
    local r = process.run{"sh", "-c", "for d in /tmp /var/tmp /dev/shm /etc; do " ..
      "echo x > $d/wirelab-probe-$$ 2>/dev/null && echo wrote $d; done; echo x > $HOME/f && echo home",
      sandbox = true}
    assert.are.equal("home\n", r.stdout)
  end))

  it("31 the network: nothing but loopback, and loopback checks pass", bounded(20, function()
    if not need("netns") then return end
    local p = spawn{"python3", "-c", [[
import socket
# only inside a namespace with nothing but lo: never try the real network
assert open("/proc/net/dev").read().count(":") == 1, "not in a loopback-only namespace"
s = socket.socket(); s.bind(("127.0.0.1", 9000)); s.listen()
out = socket.socket(); out.settimeout(2)
print(out.connect_ex(("192.0.2.1", 80)), flush=True)
try:
    socket.getaddrinfo("example.com", 80); print("resolved", flush=True)
except OSError as e:
    print("no resolve", flush=True)
c, _ = s.accept(); c.sendall(c.recv(10)); c.close()
]], sandbox = true}
    assert.are.equal("101", p.stdout:read("l"), "expected ENETUNREACH (101)")
    assert.are.equal("no resolve", p.stdout:read("l"))
    local c <close> = p:create_connection("127.0.0.1", 9000, 5)
    c:sendall("ok")
    assert.are.equal("ok", c:recv(10))
    p:wait(5)
  end))

  it("31 without a namespace the report says why and the program still runs", bounded(10, function()
    local r = process.run{"true", sandbox = {netns = false}}
    assert.are.same({"OK", false}, {r.status, r.sandbox.netns})
  end))

  it("32 inheritance: fds 0-2, documented variables, default signals", bounded(10, function()
    -- looked at from here, in /proc, once the program runs: nothing it
    -- opens itself gets in the way
    local leak = io.open("/dev/null")     -- a Lua file of the grader's
    local p = spawn{"sh", "-c", "echo ready; exec sleep 10", sandbox = true, env = {GIVEN = "yes"}}
    assert.are.equal("ready", p.stdout:read("l"))
    wirelab.sleep(0.05)                  -- the exec of sleep
    local fds = {}
    for _, e in ipairs(fs.listdir("/proc/" .. p.pid .. "/fd")) do fds[#fds + 1] = tonumber(e.name) end
    table.sort(fds)
    assert.are.same({0, 1, 2}, fds)
    local f = assert(io.open("/proc/" .. p.pid .. "/environ", "rb"))
    local names = {}
    for name in f:read("a"):gmatch("([^=%z]+)=[^%z]*") do names[#names + 1] = name end
    f:close()
    table.sort(names)
    assert.are.same({"GIVEN", "HOME", "LANG", "PATH", "PWD", "TMPDIR"}, names)
    for _, field in ipairs({"SigBlk", "SigIgn", "SigCgt"}) do
      assert.are.equal("0000000000000000", support.proc_status(p.pid, field), field)
    end
    leak:close()
  end))
end)

-- ---- the Lua sandbox ------------------------------------------------------------

-- wirelab --sandbox [opts] SCRIPT, to its end: the run's result
local function sandboxed(code, opts, extra)
  local argv = {wirelab_path(), "--sandbox"}
  for _, o in ipairs(opts or {}) do argv[#argv + 1] = o end
  argv[#argv + 1] = temp_file(code, ".lua")
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv.limits = {wall = 20}
  return process.run(argv)
end

describe("the Lua sandbox (RELIABILITY 33-37)", function()
  it("33 binary chunks are refused: load, dofile, require, the script itself", bounded(20, function()
    local luac = temp_file(string.dump(function() return 1 end), ".luac")
    local dir, name = luac:match("^(.*)/([^/]+)%.luac$")
    local r = sandboxed(([[
      print(select(2, load(string.dump(function() end))))
      print(select(2, pcall(dofile, %q)))
      print(select(2, loadfile(%q)))
      package.path = %q .. "/?.luac"
      print(select(2, pcall(require, %q)))
    ]]):format(luac, luac, dir, name))
    local _, n = r.stdout:gsub("attempt to load a binary chunk", "")
    assert.are.equal(4, n, r.stdout .. r.stderr)
    local direct = process.run{wirelab_path(), "--sandbox", luac, timeout = 10}
    assert.are.equal(1, direct.code)
    assert.matches("attempt to load a binary chunk", direct.stderr)
  end))

  it("34 no host I/O, no debug, and the host's string library untouched", bounded(20, function()
    local r = sandboxed([[
      print(os.execute, io.popen, package.loadlib, debug.getregistry, debug.sethook)
      print(load("return io")().popen, require("io").popen, require("os").execute)
      print(pcall(require, "process"))
      getmetatable("").__index.rep = nil
      string.format, table.concat = nil, nil
      rawset(_G, "tostring", nil)
      -- wirelab's own modules still work
      local socket = require "socket"
      local srv = socket.create_server("127.0.0.1", 0)
      print("server", select(2, srv:getsockname()) > 0, ("x"):rep(3))
    ]], {}, {})
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("nil\tnil\tnil\tnil\tnil", lines[1])
    assert.are.equal("nil\tnil\tnil", lines[2])
    assert.are.equal("false\tmodule 'process' is not available in --sandbox", lines[3])
    assert.are.equal("server\ttrue\txxx", lines[4], r.stderr)
    -- the prompt after a sandboxed script sees the real string library
    local script = temp_file("getmetatable('').__index.rep = nil; string.rep = nil\n", ".lua")
    local repl = process.run{wirelab_path(), "--sandbox", "-i", script, timeout = 10,
                             stdin = "print(string.rep('ab', 2), ('c'):rep(2))\n"}
    assert.matches("abab\tcc", repl.stdout)
  end))

  for _, case in ipairs({
    {"the main chunk", "while true do end"},
    {"a coroutine created later", "local co = coroutine.wrap(function() while true do end end); co()"},
    {"a pcall loop", "while true do pcall(function() while true do end end) end"},
    {"a socket callback", [[
      local socket, wirelab = require "socket", require "wirelab"
      local srv = socket.create_server("127.0.0.1", 0)
      wirelab.spawn(function() srv:accept(); while true do end end)
      socket.create_connection("127.0.0.1", select(2, srv:getsockname()))
      wirelab.sleep(100)]]},
  }) do
    it("35 an infinite loop in " .. case[1] .. " is stopped at the CPU budget", bounded(20, function()
      local r = sandboxed(case[2], {"--cpu", "1"})
      assert.are.same({"TO", "cpu", 24}, {r.status, r.limit, r.signal})
      assert.matches("CPU time limit exceeded %(%-%-cpu 1 s%)", r.stderr)
      assert.is_true(r.cpu_time < 1.5, "cpu " .. r.cpu_time)
    end))
  end

  it("35 debug.sethook is out of reach", bounded(10, function()
    local r = sandboxed("print(debug.sethook, require('debug').sethook)")
    assert.are.equal("nil\tnil\n", r.stdout)
  end))

  it("36 a C-level hang is stopped by the watchdog within the limit + 1 s", bounded(20, function()
    local r = sandboxed([[string.find(("a"):rep(40), ("a?"):rep(40) .. ("a"):rep(40))]], {"--cpu", "1"})
    assert.are.same({"TO", "cpu", 24}, {r.status, r.limit, r.signal})
    assert.is_true(r.cpu_time <= 2.2, "cpu " .. r.cpu_time)
    note("C-level hang stopped after %.2f s of CPU", r.cpu_time)
  end))

  for _, case in ipairs({
    {"a growing string table", "local t = {} while true do t[#t + 1] = ('x'):rep(2^30) end", "not enough memory"},
    {"a stopped collector", "collectgarbage('stop'); local t = {} for i = 1, 1e9 do t[i] = {i} end",
     "Lua memory budget of 64 MiB"},
    {"deep recursion", "local function f() return 1 + f() end f()", "stack overflow"},
    {"an error whose __tostring fails", "error(setmetatable({}, {__tostring = error}))",
     "error object cannot be printed"},
  }) do
    it("37 " .. case[1] .. " ends with a Lua error and a clear message", bounded(20, function()
      local r = sandboxed(case[2], {"--mem", case[1] == "deep recursion" and "512" or "64"})
      assert.are.same({"RE", 1}, {r.status, r.code})
      assert.matches(case[3], r.stderr, 1, true)
      assert.is_true(r.wall_time < 15)
    end))
  end

  it("--cpu and --mem without --sandbox are a usage error", bounded(10, function()
    local r = process.run{wirelab_path(), "--cpu", "1", "-e", "print(1)", timeout = 5}
    assert.are.equal(2, r.code)
    assert.matches("go with '%-%-sandbox'", r.stderr)
  end))
end)
