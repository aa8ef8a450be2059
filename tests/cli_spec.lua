-- cli_spec: the command line of API.md section 9 and the process rules of
-- section 1 (exit status, background tasks, signals, deadlock), checked by
-- running the wirelab binary itself as a subprocess.
local wirelab = require "wirelab"
local process = require "process"

local support = require "support"
local bounded = support.bounded

-- run{args..., stdin=} -> {code=, signal=, stdout=, stderr=} of wirelab
local function run(spec)
  local argv = {support.wirelab, timeout = 5, stdin = spec.stdin}
  for i = 1, #spec do argv[i + 1] = spec[i] end
  local r = process.run(argv)
  assert.is_false(r.timed_out, "wirelab did not exit within 5 s")
  return r
end

local tmpdir

local function write(name, text)
  local path = tmpdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("wirelab command line", function()
  local remove_tmpdir
  setup(function() tmpdir, remove_tmpdir = support.tmpdir() end)
  teardown(function() if remove_tmpdir then remove_tmpdir() end end)

  describe("options", function()
    it("-v prints the version", bounded(10, function()
      local r = run{"-v"}
      assert.are.equal(0, r.code)
      assert.matches("^wirelab %d+%.%d+%.%d+", r.stdout)
      assert.matches("Lua 5.4", r.stdout, 1, true)
      assert.are.equal(wirelab.version, r.stdout:match("^(wirelab %S+)"))
      local r2 = run{"--version"}
      assert.are.equal(r.stdout, r2.stdout)
    end))

    it("--help prints the usage and exits 0", bounded(10, function()
      local r = run{"--help"}
      assert.are.equal(0, r.code)
      assert.matches("usage: wirelab", r.stdout, 1, true)
      assert.matches("-e CODE", r.stdout, 1, true)
      assert.are.equal("", r.stderr)
      assert.are.equal(r.stdout, run{"-h"}.stdout)
    end))

    it("an unknown option exits 2 with a message", bounded(10, function()
      local r = run{"--bogus"}
      assert.are.equal(2, r.code)
      assert.matches("unknown option", r.stderr, 1, true)
      assert.matches("--bogus", r.stderr, 1, true)
      assert.are.equal("", r.stdout)
    end))

    it("-e without its argument exits 2", bounded(10, function()
      local r = run{"-e"}
      assert.are.equal(2, r.code)
      assert.matches("-e", r.stderr, 1, true)
    end))

    it("-e runs code", bounded(10, function()
      local r = run{"-e", "io.write(6 * 7)"}
      assert.are.equal(0, r.code)
      assert.are.equal("42", r.stdout)
    end))

    it("several -e run in order", bounded(10, function()
      local r = run{"-e", "x = 1; io.write('a', x)", "-e", "x = x + 1; io.write('b', x)",
                    "-e", "io.write('c', x + 1)"}
      assert.are.equal(0, r.code)
      assert.are.equal("a1b2c3", r.stdout)
    end))

    it("-e with an error exits 1", bounded(10, function()
      local r = run{"-e", "error('from -e')"}
      assert.are.equal(1, r.code)
      assert.matches("from -e", r.stderr, 1, true)
    end))

    it("-l MODULE sets the global of that name", bounded(10, function()
      local r = run{"-l", "socket", "-e", "io.write(type(socket), ' ', type(socket.create_server))"}
      assert.are.equal(0, r.code)
      assert.are.equal("table function", r.stdout)
      write("wl_cli_mod.lua", "return {value = 'from module'}\n")
      local r2 = run{"-e", "package.path = '" .. tmpdir .. "/?.lua;' .. package.path",
                     "-l", "wl_cli_mod", "-e", "io.write(wl_cli_mod.value)"}
      assert.are.equal(0, r2.code, r2.stderr)
      assert.are.equal("from module", r2.stdout)
    end))

    it("-m MODULE runs the module's main with the arguments after it", bounded(10, function()
      write("wl_cli_main.lua", [[
local M = {}
function M.main(args)
  io.write("main:", #args, ":", table.concat(args, ","))
  return 4
end
return M
]])
      local r = run{"-e", "package.path = '" .. tmpdir .. "/?.lua;' .. package.path",
                    "-m", "wl_cli_main", "a", "b c", "-e"}
      assert.are.equal(4, r.code, r.stderr)
      assert.are.equal("main:3:a,b c,-e", r.stdout)
    end))

    it("-m on a module without main exits 2", bounded(10, function()
      local r = run{"-m", "wirelab.class"}
      assert.are.equal(2, r.code)
      assert.matches("no main function", r.stderr, 1, true)
    end))
  end)

  describe("scripts", function()
    it("a script gets arg and ...", bounded(10, function()
      local path = write("args.lua", [[
io.write(arg[0], "|", arg[1], "|", arg[2], "|", #arg, "|", select("#", ...), "|", table.concat({...}, ","))
]])
      local r = run{path, "one", "two words"}
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(path .. "|one|two words|2|2|one,two words", r.stdout)
    end))

    it("options before the script are not in arg", bounded(10, function()
      local path = write("args2.lua", "io.write(#arg, ':', tostring(arg[1]), ':', tostring(x))\n")
      local r = run{"-e", "x = 5", path, "-e"}
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("1:-e:5", r.stdout)
    end))

    it("a runtime error exits 1 naming the file and line, with a traceback", bounded(10, function()
      local path = write("rt_error.lua", "local x = 1\n\nerror('kaboom')\n")
      local r = run{path}
      assert.are.equal(1, r.code)
      assert.matches("rt_error.lua:3:", r.stderr, 1, true)
      assert.matches("kaboom", r.stderr, 1, true)
      assert.matches("stack traceback", r.stderr, 1, true)
    end))

    it("an error object with __tostring is printed through it", bounded(10, function()
      local path = write("obj_error.lua",
        "require('wirelab.error').raise('connect', 'ECONNREFUSED', '127.0.0.1', 9)\n")
      local r = run{path}
      assert.are.equal(1, r.code)
      assert.matches("connect 127.0.0.1:9: connection refused (ECONNREFUSED)", r.stderr, 1, true)
    end))

    it("a syntax error exits 1 naming the file and line", bounded(10, function()
      local path = write("syntax.lua", "local x = 1\nlocal y = = 2\n")
      local r = run{path}
      assert.are.equal(1, r.code)
      assert.matches("syntax.lua:2:", r.stderr, 1, true)
    end))

    it("a missing script exits 1 with a message", bounded(10, function()
      local r = run{tmpdir .. "/no_such_script.lua"}
      assert.are.equal(1, r.code)
      assert.matches("no_such_script.lua", r.stderr, 1, true)
    end))

    it("os.exit(7) exits 7", bounded(10, function()
      local path = write("exit7.lua", "io.write('before')\nos.exit(7)\nio.write('after')\n")
      local r = run{path}
      assert.are.equal(7, r.code)
      assert.are.equal("before", r.stdout)
    end))

    it("os.exit in a background task exits with its status", bounded(10, function()
      local r = run{"-e", [[
local wirelab = require "wirelab"
wirelab.spawn(function() os.exit(5) end)
wirelab.sleep(100)
]]}
      assert.are.equal(5, r.code)
    end))

    it("a script returning an integer exits with it", bounded(10, function()
      local r = run{write("ret3.lua", "return 3\n")}
      assert.are.equal(3, r.code)
      local r2 = run{write("retstr.lua", "return 'not a status'\n")}
      assert.are.equal(0, r2.code)
    end))

    it("reads the script from stdin with '-'", bounded(10, function()
      local r = run{"-", "x", "y", stdin = "io.write('stdin:', arg[0], ':', ...)\n"}
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("stdin:-:xy", r.stdout)
    end))
  end)

  describe("process lifetime", function()
    it("exits promptly when main returns with a server accepting and a task asleep",
      bounded(10, function()
        local path = write("abandon.lua", [[
local wirelab = require "wirelab"
local socket = require "socket"
local srv = socket.create_server("127.0.0.1", 0)
wirelab.spawn(function() while true do srv:accept() end end)
wirelab.spawn(function() wirelab.sleep(100) end)
wirelab.sleep(0)
io.write("main done")
]])
        local t0 = wirelab.now()
        local r = run{path}
        local took = wirelab.now() - t0
        assert.are.equal(0, r.code, r.stderr)
        assert.are.equal("main done", r.stdout)
        assert.are.equal("", r.stderr)
        assert.is_true(took < 2, "exit took " .. took .. " s")
      end))

    it("an error in a background task is printed and the script goes on", bounded(10, function()
      local path = write("bg_error.lua", [[
local wirelab = require "wirelab"
local t = wirelab.spawn(function() error("background boom") end)
while not t:done() do wirelab.sleep(0) end
io.write("still running")
]])
      local r = run{path}
      assert.are.equal(0, r.code)
      assert.are.equal("still running", r.stdout)
      assert.matches("background boom", r.stderr, 1, true)
      assert.matches("bg_error.lua:2:", r.stderr, 1, true)
      assert.matches("stack traceback", r.stderr, 1, true)
    end))

    it("a blocking call in a background task does not block the main task", bounded(10, function()
      local path = write("bg_block.lua", [[
local wirelab = require "wirelab"
local socket = require "socket"
local srv <close> = socket.create_server("127.0.0.1", 0)
local accepted = wirelab.event()
wirelab.spawn(function()
  local c = srv:accept()      -- blocks this task only
  accepted:set()
  c:close()
end)
for i = 1, 3 do wirelab.sleep(0.01); io.write("tick", i, " ") end
io.write(tostring(accepted:is_set()), " ")
local _, port = srv:getsockname()
local c <close> = socket.create_connection("127.0.0.1", port, 5)
io.write(tostring(accepted:wait(5)))
]])
      local r = run{path}
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("tick1 tick2 tick3 false true", r.stdout)
    end))

    it("a deadlocked main task exits 1 with a 'deadlock' message", bounded(10, function()
      local path = write("deadlock.lua", [[
local wirelab = require "wirelab"
wirelab.event():wait()
io.write("woke up")
]])
      local t0 = wirelab.now()
      local r = run{path}
      assert.are.equal(1, r.code)
      assert.matches("deadlock", r.stderr, 1, true)
      assert.are.equal("", r.stdout)
      assert.is_true(wirelab.now() - t0 < 2)
    end))

    it("a main task joining a task that waits forever is a deadlock too", bounded(10, function()
      local r = run{"-e", [[
local wirelab = require "wirelab"
local q = wirelab.queue()
wirelab.spawn(function() q:get() end):join()
]]}
      assert.are.equal(1, r.code)
      assert.matches("deadlock", r.stderr, 1, true)
    end))
  end)

  describe("signals", function()
    -- Starts code that prints "ready" when it is about to do the thing;
    -- waits for "ready" and for the process to be in the expected state,
    -- sends sig, and checks it ends promptly with 128 + sig.
    local function check_signal(code, sig, settled)
      local p <close> = process.spawn{support.wirelab, "-e", code}
      assert.are.equal("ready", p.stdout:read("l"))
      settled(p.pid)
      local t0 = wirelab.now()
      p:kill(sig)
      local ok, status, signo = pcall(p.wait, p, 5)
      local took = wirelab.now() - t0
      if not ok then p:kill(9); p:wait(5) end
      assert.are.equal(128 + sig, status, "the process did not exit with 128 + signal")
      assert.is_nil(signo, "the process was killed by the signal instead of exiting")
      assert.is_true(took < 2, "exit took " .. took .. " s")
    end

    local function sleeping(pid)
      support.wait_until("the process sleeps", function() return support.proc_stat(pid) == "S" end)
    end

    local function spinning(pid)
      local _, cpu = support.proc_stat(pid)
      support.wait_until("the process has spun for a while", function()
        local _, now = support.proc_stat(pid)
        return now >= cpu + 0.03
      end)
    end

    local SLEEPER = "print('ready'); require('wirelab').sleep(100)"
    local SPINNER = "print('ready'); while true do end"
    local BG_SPINNER = [[
local wirelab = require "wirelab"
wirelab.spawn(function() print('ready'); while true do end end)
wirelab.sleep(100)
]]

    it("SIGTERM ends a sleeping script with status 143", bounded(10, function()
      check_signal(SLEEPER, 15, sleeping)
    end))

    it("SIGINT ends a sleeping script with status 130", bounded(10, function()
      check_signal(SLEEPER, 2, sleeping)
    end))

    it("SIGTERM ends a script spinning in 'while true do end'", bounded(10, function()
      check_signal(SPINNER, 15, spinning)
    end))

    it("SIGINT ends a script spinning in 'while true do end'", bounded(10, function()
      check_signal(SPINNER, 2, spinning)
    end))

    it("SIGTERM ends a script whose background task spins", bounded(10, function()
      check_signal(BG_SPINNER, 15, spinning)
    end))

    -- Python leaves a signal inherited as ignored ignored: a server started
    -- with & from a script survives the terminal's Ctrl-C
    for _, sig in ipairs{2, 15} do
      it("a signal inherited as ignored stays ignored (" .. sig .. ")", bounded(10, function()
        local p <close> = process.spawn{"sh", "-c", ("trap '' %d; exec \"$0\" -e \"$1\""):format(sig),
          support.wirelab, "print('ready'); require('wirelab').sleep(0.5); print('survived')"}
        assert.are.equal("ready", p.stdout:read("l"))
        sleeping(p.pid)
        p:kill(sig)
        assert.are.equal(0, (p:wait(5)))
        assert.are.equal("survived\n", p.stdout:read("a"))
      end))
    end
  end)

  describe("wirelab test", function()
    it("runs specs and reports '1 passed, 1 failed' with a non-zero status", bounded(15, function()
      local r0 = process.run{"mkdir", tmpdir .. "/specs", timeout = 5}
      assert.are.equal(0, r0.code)
      write("specs/pass_spec.lua", [[
describe("good", function() it("passes", function() assert.are.equal(2, 1 + 1) end) end)
]])
      write("specs/fail_spec.lua", [[
describe("bad", function() it("fails", function() assert.are.equal(3, 1 + 1) end) end)
]])
      local r = run{"test", tmpdir .. "/specs"}
      assert.matches("1 passed, 1 failed", r.stdout, 1, true)
      assert.are_not.equal(0, r.code)
      assert.matches("bad fails", r.stdout, 1, true)
    end))

    it("runs blocking calls inside specs", bounded(15, function()
      local r0 = process.run{"mkdir", "-p", tmpdir .. "/specs2", timeout = 5}
      assert.are.equal(0, r0.code)
      write("specs2/block_spec.lua", [[
local wirelab = require "wirelab"
it("sleeps and joins", function()
  wirelab.sleep(0.01)
  assert.are.equal(3, wirelab.spawn(function(a, b) return a + b end, 1, 2):join())
end)
]])
      local r = run{"test", tmpdir .. "/specs2"}
      assert.matches("1 passed, 0 failed", r.stdout, 1, true)
      assert.are.equal(0, r.code)
    end))
  end)
end)
