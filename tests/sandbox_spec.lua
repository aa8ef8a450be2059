-- sandbox_spec: process.spawn with limits and a sandbox (docs/process.md):
-- the limits and how an end is reported (status, limit, message), the
-- output cap, p.sandbox, the clean start (uid, environment, fds,
-- signals, read-only files, scratch), network namespaces and the
-- grader's sockets inside them, and that nothing of a program outlives
-- wait() or close(). A layer this machine cannot give is skipped with
-- the reason the sandbox reports.
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"

local support = require "support"
local bounded, defer, stop = support.bounded, support.defer, support.stop

local MiB = 1024 * 1024

local exists = support.exists

local in_session = support.in_session

local function spawn(spec)
  local p = process.spawn(spec)
  defer(function() stop(p) end)
  return p
end

local function sh(script, extra)
  local spec = {"sh", "-c", script}
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

-- the sandbox's view of this machine, computed once
local iso
local function isolation()
  iso = iso or process.isolation()
  return iso
end

local function need(layer)
  local s = isolation()
  if s[layer] then return true end
  pending(support.skip(("%s unavailable here: %s"):format(layer, tostring(s.unavailable[layer]))))
  return false
end

describe("process limits", function()
  it("sizes: a number is MiB, a string carries its unit", bounded(10, function()
    local p = spawn{"true", limits = {memory = 256, output = "512k", fsize = "1G"}}
    assert.are.same({256 * MiB, 512 * 1024, 1024 * MiB},
                    {p.limits.memory, p.limits.output, p.limits.fsize})
    p:wait(5)
    p = spawn{"true", limits = {memory = 0.5, output = "100 bytes", fsize = "16"}}
    assert.are.same({MiB // 2, 100, 16 * MiB}, {p.limits.memory, p.limits.output, p.limits.fsize})
    p:wait(5)
  end))

  it("argument errors for bad limits and sandbox values", function()
    local ok, err = pcall(process.spawn, {"true", limits = {cpu = -1}})
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'spawn' %(limits.cpu", err)
    ok, err = pcall(process.spawn, {"true", limits = {memroy = 1}})
    assert.matches("unknown limit 'memroy'", err)
    ok, err = pcall(process.spawn, {"true", limits = {memory = "lots"}})
    assert.matches("limits.memory: a number of MiB", err)
    ok, err = pcall(process.spawn, {"true", sandbox = "yes"})
    assert.matches("sandbox: true, false or a table", err)
  end)

  it("exit codes: OK and RE, with the program's times", bounded(10, function()
    local r = process.run{"true", limits = {wall = 5}}
    assert.are.same({0, "OK", "exited with status 0"}, {r.code, r.status, r.message})
    r = process.run(sh("exit 3", {limits = {wall = 5}}))
    assert.are.same({3, "RE", "exited with status 3"}, {r.code, r.status, r.message})
    assert.is_nil(r.limit)
    assert.is_number(r.cpu_time)
    assert.is_true(r.wall_time >= 0 and r.wall_time < 5)
    assert.is_true(r.max_rss > 0)
  end))

  it("a crash is SG with its signal; wait gives code, signal, result", bounded(10, function()
    local p = spawn{"python3", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
                    limits = {wall = 5}}
    local code, sig, r = p:wait(5)
    assert.are.same({0, 11, "SG"}, {code, sig, r.status})
    assert.are.equal("killed by signal 11 (SIGSEGV)", r.message)
    assert.are.equal(r, select(3, p:wait()), "the same result again")
  end))

  it("a CPU spin ends at the CPU limit: TO, limit cpu, SIGXCPU", bounded(15, function()
    local t0 = wirelab.now()
    local r = process.run{"python3", "-c", "while True: pass", limits = {cpu = 1, wall = 10}}
    assert.are.same({"TO", "cpu", 24}, {r.status, r.limit, r.signal})
    assert.are.equal("CPU time limit exceeded (1 s)", r.message)
    assert.is_true(r.cpu_time >= 0.9, "cpu " .. r.cpu_time)
    assert.is_true(wirelab.now() - t0 < 8)
  end))

  it("a program ignoring SIGXCPU is killed a second later, still as cpu", bounded(15, function()
    local r = process.run{"python3", "-c",
      "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass",
      limits = {cpu = 1, wall = 10}}
    assert.are.same({"TO", "cpu", 9}, {r.status, r.limit, r.signal})
  end))

  it("a sleeper ends at the wall-clock limit", bounded(10, function()
    local t0 = wirelab.now()
    local r = process.run{"sleep", "100", limits = {wall = 0.5}}
    local took = wirelab.now() - t0
    assert.are.same({"TO", "wall", 9}, {r.status, r.limit, r.signal})
    assert.are.equal("timed out after 0.5 s (wall clock)", r.message)
    assert.is_true(took >= 0.45 and took < 3, "took " .. took)
  end))

  it("run's timeout is reported as a wall-clock limit too", bounded(10, function()
    local r = process.run{"sleep", "100", timeout = 0.3}
    assert.are.same({"TO", "wall", true}, {r.status, r.limit, r.timed_out})
    assert.are.equal("timed out after 0.3 s (wall clock)", r.message)
  end))

  it("output past the cap is counted, marked and dropped; the child never blocks",
    bounded(20, function()
    local r = process.run(sh("head -c 5000000 /dev/zero; echo done >&2",
                             {limits = {output = "1M", wall = 10}}))
    assert.are.equal("OK", r.status)
    assert.are.equal(MiB + #"\n[truncated 3951424 bytes]\n", #r.stdout)
    assert.are.equal("\n[truncated 3951424 bytes]\n", r.stdout:sub(MiB + 1))
    assert.are.same({stdout = 5000000 - MiB, stderr = 0}, r.truncated)
    assert.are.equal("done\n", r.stderr)
    assert.is_true(r.exceeded.output)
    assert.matches("output cut at 1 MiB", r.message)
  end))

  it("output up to the cap is whole, with no marker", bounded(10, function()
    local r = process.run(sh("printf 'a\\nb\\n'", {limits = {output = "4B"}}))
    assert.are.equal("a\nb\n", r.stdout)
    assert.are.same({stdout = 0, stderr = 0}, r.truncated)
  end))

  it("a missing program raises ENOENT as without limits", bounded(10, function()
    local ok, err = pcall(process.spawn, {"/nonexistent/prog", limits = {wall = 1}})
    assert.is_false(ok)
    assert.are.equal("ENOENT", err.code)
    assert.are.equal("spawn /nonexistent/prog: no such file or directory (ENOENT)", tostring(err))
  end))

  it("a file past fsize: SIGXFSZ, limit fsize", bounded(10, function()
    local dir = support.tmpdir()
    local r = process.run(sh("exec head -c 100000000 /dev/zero > big",
                             {cwd = dir, limits = {fsize = "1M", wall = 5}}))
    assert.are.same({"SG", "fsize", 25}, {r.status, r.limit, r.signal})
    assert.are.equal("killed: file size limit 1 MiB (SIGXFSZ)", r.message)
    local f = io.open(dir .. "/big", "rb")
    assert.are.equal(MiB, f:seek("end"))
    f:close()
  end))

  it("kill() signals the program; wait reports SG", bounded(10, function()
    local p = spawn(sh("echo ready; exec sleep 100", {limits = {wall = 10}}))
    assert.are.equal("ready", p.stdout:read("l"))
    assert.is_true(p:kill())
    local _, sig, r = p:wait(5)
    assert.are.same({15, "SG", "killed by signal 15 (SIGTERM)"}, {sig, r.status, r.message})
    assert.is_false(p:kill(), "nothing left to signal")
  end))
end)

describe("process sandbox", function()
  it("p.sandbox names the layers in force, and why others are not", bounded(10, function()
    local p = spawn{"true", sandbox = true}
    local s = p.sandbox
    assert.is_true(s.supervised and s.subreaper and s.no_new_privs)
    assert.are.equal("clean", s.env)
    assert.is_string(s.kill)
    assert.is_table(s.unavailable)
    for _, layer in ipairs({"uid", "cgroup", "netns", "readonly"}) do
      assert.is_true(s[layer] ~= nil and s[layer] ~= false or type(s.unavailable[layer]) == "string",
        layer .. " neither in force nor explained")
    end
    p:wait(5)
  end))

  it("runs as an unprivileged uid with a scratch HOME, removed afterwards", bounded(10, function()
    if not need("uid") then return end
    local r = process.run{"sh", "-c", "id -u; id -g; echo $HOME; pwd; touch $HOME/x && echo wrote",
                          sandbox = true}
    local uid, gid, home, pwd, wrote = r.stdout:match("^(%d+)\n(%d+)\n(%S+)\n(%S+)\n(%a+)\n$")
    assert.are.equal(r.sandbox.uid, tonumber(uid))
    assert.are.equal(r.sandbox.gid, tonumber(gid))
    assert.are_not.equal(0, tonumber(uid))
    assert.are.equal(r.sandbox.scratch, home)
    assert.are.equal(home, pwd, "the scratch is the working directory when no cwd is given")
    assert.are.equal("wrote", wrote)
    assert.is_nil(io.open(home), "the scratch directory outlived the run")
  end))

  it("the environment holds only the documented variables and those given", bounded(10, function()
    local r = process.run{"env", sandbox = true, env = {EXTRA = "1"}}
    local names = {}
    for name in r.stdout:gmatch("([%w_]+)=[^\n]*\n") do names[#names + 1] = name end
    table.sort(names)
    assert.are.same({"EXTRA", "HOME", "LANG", "PATH", "TMPDIR"}, names)
    assert.matches("LANG=C.UTF%-8\n", r.stdout)
  end))

  it("only fds 0-2, default signal dispositions, an empty mask", bounded(10, function()
    -- a Lua file handle wirelab holds open must not leak into the child
    local leak = io.open("/dev/null")
    local p = spawn{"sleep", "10", sandbox = true}
    -- sleep's own start-up (setlocale reading each locale file) opens and
    -- closes fd 3 again and again after exec, slowly on a busy machine: the
    -- fds are counted once it sleeps (state S: blocked, in its nanosleep)
    local fs = require "wirelab.fs"
    support.wait_until("sleep to be asleep", function()
      return (support.proc_status(p.pid, "State") or ""):match("^S") ~= nil
    end, 5)
    local fds, what = {}, {}
    for _, e in ipairs(fs.listdir("/proc/" .. p.pid .. "/fd")) do fds[#fds + 1] = tonumber(e.name) end
    table.sort(fds)
    for _, fd in ipairs(fds) do
      what[#what + 1] = fd .. " -> " .. tostring(fs.readlink("/proc/" .. p.pid .. "/fd/" .. fd))
    end
    assert.are.same({0, 1, 2}, fds, table.concat(what, ", "))
    for _, field in ipairs({"SigBlk", "SigIgn", "SigCgt"}) do
      assert.are.equal("0000000000000000", support.proc_status(p.pid, field), field)
    end
    leak:close()
  end))

  it("files outside the scratch and cwd are read-only", bounded(10, function()
    if not need("readonly") then return end
    local r = process.run(sh("echo x > /tmp/wirelab-sandbox-probe; echo x > $HOME/ok && echo home-ok",
                             {sandbox = true}))
    assert.matches("Read%-only file system", r.stderr)
    assert.are.equal("home-ok\n", r.stdout)
    assert.is_nil(io.open("/tmp/wirelab-sandbox-probe"))
  end))

  it("the grader's own directory is read-only to a program that runs elsewhere", bounded(10, function()
    if not need("readonly") then return end
    local here = require("wirelab.fs").getcwd()
    local probe = here .. "/wirelab-sandbox-probe"
    defer(function() os.remove(probe) end)
    -- as root (uid = false), so that only the read-only mount can refuse
    local r = process.run{"sh", "-c", 'echo x > "$1"', "sh", probe, sandbox = {uid = false}}
    assert.matches("Read%-only file system", r.stderr)
    assert.is_nil(io.open(probe))
    -- a cwd given is the program's to write
    local dir = support.tmpdir()
    r = process.run{"sh", "-c", "echo x > f && echo ok", cwd = dir, sandbox = {uid = false}}
    assert.are.equal("ok\n", r.stdout, r.stderr)
  end))

  it("a setsid escape and a double fork are gone after wait()", bounded(15, function()
    local p = spawn(sh("setsid sleep 1000 & echo $!; (sleep 1001 & echo $!) ; sleep 0.2",
                       {sandbox = true}))
    local a = tonumber(p.stdout:read("l"))
    local b = tonumber(p.stdout:read("l"))
    assert.is_true(exists(a) and exists(b))
    local _, _, r = p:wait(5)
    assert.are.equal("OK", r.status)
    assert.is_false(exists(a), "setsid sleep survived")
    assert.is_false(exists(b), "the double-forked sleep survived")
    assert.are.same({}, in_session(p.pid))
  end))

  it("close() leaves nothing of a running program", bounded(15, function()
    local p = process.spawn(sh("setsid sleep 1000 & echo $!; sleep 1001", {sandbox = true}))
    local escaped = tonumber(p.stdout:read("l"))
    local pid = p.pid
    p:close()
    assert.is_false(exists(pid))
    assert.is_false(exists(escaped), "close() returned with the escaped sleep alive")
  end))

  it("the network: loopback only, shared with the grader's sockets", bounded(15, function()
    if not need("netns") then return end
    local p = spawn{"python3", "-c", [[
import socket
s = socket.socket(); s.bind(("127.0.0.1", 7000)); s.listen()
print("listening", flush=True)
for _ in range(2):     # wait_port's connection, then the echo
    c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
t = socket.socket(); t.settimeout(2)
print(t.connect_ex(("192.0.2.1", 80)), flush=True)
]], sandbox = true}
    assert.is_true(p.sandbox.netns)
    assert.are.equal("listening", p.stdout:read("l"))
    assert.is_true(p:wait_port("127.0.0.1", 7000, 5))
    local c <close> = p:create_connection("127.0.0.1", 7000, 5)
    c:sendall("ping")
    assert.are.equal("ping", c:recv(10))
    assert.are.equal("101", p.stdout:read("l"), "expected ENETUNREACH (101)")
    -- the host's 127.0.0.1:7000 is another place
    local h = socket.socket()
    assert.are.equal("ECONNREFUSED", h:connect_ex("127.0.0.1", 7000))
    h:close()
  end))

  it("a namespace made first: the grader listens, the program connects", bounded(15, function()
    if not need("netns") then return end
    local ns <close> = process.netns()
    local srv <close> = ns:create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local p = spawn{"python3", "-c", ([[
import socket
c = socket.create_connection(("127.0.0.1", %d)); c.sendall(b"hi"); c.close()]]):format(port),
                    sandbox = {netns = ns}}
    srv:settimeout(5)
    local conn = srv:accept()
    assert.are.equal("hi", conn:recv(10))
    conn:close()
    assert.are.equal("OK", select(3, p:wait(5)).status)
    assert.are.equal(ns, p.netns)
  end))

  -- Under a user namespace wirelab may make namespaces but never setns
  -- back into the host's: the work is done by a helper thread, and
  -- wirelab's own thread never leaves (it used to abort here).
  it("under unshare -r: a namespace, a server in it, a sandboxed client", bounded(20, function()
    local unshare = support.find("unshare")
    if not unshare then pending(support.skip("no unshare(1) here")); return end
    local probe = process.run{unshare, "-r", "true", timeout = 5}
    if probe.code ~= 0 then pending(support.skip("no user namespaces: " .. probe.stderr)); return end
    local r = process.run{unshare, "-r", support.wirelab, "-e", [[
local process = require "process"
local ns = process.netns()
local srv = ns:create_server("127.0.0.1", 0)
local _, port = srv:getsockname()
local p = process.spawn{"python3", "-c",
  "import socket; socket.create_connection(('127.0.0.1', " .. port .. ")).sendall(b'hi')",
  sandbox = {netns = ns}}
srv:settimeout(5)
local c = srv:accept()
local code = p:wait(5)
print(c:recv(10), code, p.sandbox.netns, p.sandbox.unavailable.uid ~= nil)
]], timeout = 15}
    assert.are.equal(0, r.code, r.stderr)
    -- the uid switch is not there (only uid 0 is mapped), and says so
    assert.are.equal("hi\t0\ttrue\ttrue", r.stdout:match("^(.-)%s*$"))
  end))

  it("ns objects: EBADF once closed", function()
    if not need("netns") then return end
    local ns = process.netns()
    ns:close()
    ns:close()
    local ok, err = pcall(ns.socket, ns)
    assert.is_false(ok)
    assert.are.equal("EBADF", err.code)
  end)

  it("sandbox = {netns = false, uid = false}: those layers are left out", bounded(10, function()
    local r = process.run{"id", "-u", sandbox = {netns = false, uid = false}}
    assert.is_false(r.sandbox.netns)
    assert.is_nil(r.sandbox.uid)
    assert.is_string(r.sandbox.unavailable.uid)
  end))
end)
