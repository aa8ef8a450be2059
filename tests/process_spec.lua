-- process: programs under test (docs/process.md): exit statuses, crashes,
-- signals, hangs, a program that ignores SIGTERM, children, a flood of
-- output, stdin, and the error model (timeouts raise ETIMEDOUT, a closed
-- process raises EBADF).
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"

local support = require "support"
local bounded = support.bounded

local function sh(script, opts)
  local spec = {"sh", "-c", script}
  for k, v in pairs(opts or {}) do spec[k] = v end
  return process.spawn(spec)
end

local alive = support.exists

local function code_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  assert.are.equal("table", type(err), tostring(err))
  return err.code, err
end

describe("process", function()
  it("exit status and no signal for a program that exits", bounded(10, function()
    local p <close> = sh("exit 3")
    local code, sig = p:wait(5)
    assert.are.equal(3, code)
    assert.is_nil(sig)
    assert.are.equal(3, (p:wait()), "wait again gives the same status")
  end))

  it("a crash reports its signal (SIGSEGV)", bounded(10, function()
    local p <close> = process.spawn{"python3", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"}
    local _, sig = p:wait(5)
    assert.are.equal(11, sig)
  end))

  it("wait(timeout) raises ETIMEDOUT on a hang, and kill ends it with its signal", bounded(10, function()
    local p <close> = sh("exec sleep 100")
    local t0 = wirelab.now()
    local code, err = code_of(p.wait, p, 0.2)
    assert.are.equal("ETIMEDOUT", code)
    assert.are.equal("wait", err.op)
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.19 and took < 1, "waited " .. took .. " s")
    assert.is_true(p:kill())
    local _, sig = p:wait(5)
    assert.are.equal(15, sig)
  end))

  it("a program that ignores SIGTERM survives kill(), not kill(9)", bounded(10, function()
    local p <close> = process.spawn{"python3", "-c",
      "import signal, time, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(100)"}
    assert.are.equal("ready", p.stdout:read("l"))
    p:kill()
    assert.are.equal("ETIMEDOUT", (code_of(p.wait, p, 0.3)))
    p:kill(9)
    local _, sig = p:wait(5)
    assert.are.equal(9, sig)
  end))

  it("kill reaches the whole process group: children die with the program", bounded(10, function()
    local p <close> = sh("sleep 100 & echo $!; wait")
    local child = math.tointeger(tonumber(p.stdout:read("l")))
    assert.is_true(alive(child))
    p:kill(9)
    p:wait(5)
    local deadline = wirelab.now() + 2
    while alive(child) and wirelab.now() < deadline do wirelab.sleep(0.01) end
    assert.is_false(alive(child), "the child outlived its program")
  end))

  it("100 MiB of output arrives whole", bounded(30, function()
    local p <close> = process.spawn{"head", "-c", tostring(100 * 1024 * 1024), "/dev/zero"}
    local n = 0
    while true do
      local d = p.stdout:read(1 << 20)
      if d == "" then break end
      n = n + #d
    end
    assert.are.equal(100 * 1024 * 1024, n)
    assert.are.equal(0, (p:wait(5)))
  end))

  it("stdin: written in pieces, then closed, comes back through cat", bounded(10, function()
    local p <close> = process.spawn{"cat", stdin = true}
    for i = 1, 100 do p:write(("line %d\n"):format(i)) end
    p:close_stdin()
    local lines = {}
    for l in p.stdout:lines() do lines[#lines + 1] = l end
    assert.are.equal(100, #lines)
    assert.are.equal("line 100", lines[100])
    assert.are.equal(0, (p:wait(5)))
  end))

  it("stdin as a string is fed and closed; stderr is its own stream", bounded(10, function()
    local p <close> = sh("cat; echo oops >&2", {stdin = "fed\n"})
    assert.are.equal("fed\n", p.stdout:read("a"))
    assert.are.equal("oops\n", p.stderr:read("a"))
    p:wait(5)
  end))

  it("write to a program that closed its stdin raises EPIPE", bounded(10, function()
    local p <close> = sh("exec 0<&-; echo closed; sleep 5", {stdin = true})
    assert.are.equal("closed", p.stdout:read("l"))
    local code
    for _ = 1, 100 do                -- the first writes may fit the pipe
      local ok, err = pcall(p.write, p, ("x"):rep(65536))
      if not ok then code = err.code; break end
    end
    assert.are.equal("EPIPE", code)
    p:kill(9)
    p:wait(5)
  end))

  it("an exited process: wait repeats, kill returns false, reads end", bounded(10, function()
    local p <close> = sh("echo bye")
    p:wait(5)
    assert.is_false(p:kill())
    assert.are.equal("bye\n", p.stdout:read("a"))
    assert.are.equal("", p.stdout:read(10))
    assert.is_nil(p.stdout:read("l"))
  end))

  it("a closed process raises EBADF from wait, kill, write and reads", bounded(10, function()
    local p = sh("sleep 100", {stdin = true})
    local pid = p.pid
    p:close()
    p:close()                          -- idempotent
    assert.are.equal("EBADF", (code_of(p.wait, p)))
    assert.are.equal("EBADF", (code_of(p.kill, p)))
    assert.are.equal("EBADF", (code_of(p.write, p, "x")))
    assert.are.equal("EBADF", (code_of(p.stdout.read, p.stdout, "a")))
    local deadline = wirelab.now() + 2
    while alive(pid) and wirelab.now() < deadline do wirelab.sleep(0.01) end
    assert.is_false(alive(pid), "close() left the program running")
  end))

  it("spawn of a missing program raises ENOENT naming it", bounded(10, function()
    local code, err = code_of(process.spawn, {"/nonexistent/prog"})
    assert.are.equal("ENOENT", code)
    assert.matches("/nonexistent/prog", err.message, 1, true)
  end))

  it("spawn with a bad argument raises Lua's argument error", function()
    local ok, err = pcall(process.spawn, "sh")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'spawn'", err)
  end)

  it("run() gives code, output and timed_out", bounded(10, function()
    local r = process.run{"sh", "-c", "echo out; echo err >&2; exit 4"}
    assert.are.same({4, "out\n", "err\n", false}, {r.code, r.stdout, r.stderr, r.timed_out})
    local t0 = wirelab.now()
    r = process.run{"sleep", "100", timeout = 0.2}
    assert.is_true(r.timed_out)
    assert.are.equal(9, r.signal)
    assert.is_true(wirelab.now() - t0 < 2)
  end))

  it("cwd and env reach the program", bounded(10, function()
    local r = process.run{"sh", "-c", "pwd; echo $WL_TEST", cwd = "/tmp", env = {WL_TEST = "yes"}}
    assert.are.equal("/tmp\nyes\n", r.stdout)
  end))

  it("wait_port waits for a listener, and raises ETIMEDOUT when none comes", bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    assert.is_true(process.wait_port("127.0.0.1", port, 2))
    srv:close()
    local code = code_of(process.wait_port, "127.0.0.1", port, 0.2)
    assert.are.equal("ETIMEDOUT", code)
  end))
end)
