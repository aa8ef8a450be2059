-- repl_spec: the interactive prompt (API.md section 9: `wirelab`,
-- `wirelab -i SCRIPT`), driven as a user would: lines on a pipe, and a
-- terminal (a pty, from python3) for libedit's prompt and editing. The
-- point of the prompt is that the loop keeps running between lines.
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"

local support = require "support"
local bounded = support.bounded

-- session(args) -> p: `wirelab -i ARGS`, its stdin a pipe the test writes
local function session(...)
  local p = process.spawn{support.wirelab, "-i", ..., stdin = true}
  return p
end

-- stderr_reader(p) -> until(text): reads p's stderr line by line until a
-- line holding text has come (the bounded test limits the wait); -> that line
local function stderr_reader(p)
  return function(text)
    while true do
      local line = p.stderr:read("l")
      assert(line ~= nil and line ~= "", "stderr ended before '" .. text .. "'")
      if line:find(text, 1, true) then return line end
    end
  end
end

-- true while SIGINT is pending for pid (sent, its handler not yet run)
local function sigint_pending(pid)
  for _, field in ipairs{"SigPnd", "ShdPnd"} do
    if (tonumber(support.proc_status(pid, field), 16) >> 1) & 1 == 1 then return true end
  end
  return false
end

local function finish(p)
  p:close_stdin()
  local code = p:wait(5)
  local err = p.stderr:read("a")
  p:close()
  return code, err
end

-- python3 drives wirelab on a pty: start(binary[, env]) -> the process,
-- its terminal in m; until(marker) reads what the terminal shows up to
-- marker (5 s at most)
local PTY = [==[
import os, pty, select, subprocess, sys, time
m = None
def start(binary, env=None):
    global m
    m, s = pty.openpty()
    argv = binary if isinstance(binary, list) else [binary]
    # its own session: libedit passes a SIGINT it catches on to its process group
    p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, close_fds=True,
                         start_new_session=True, env=env)
    os.close(s)
    return p
def until(marker, limit=5):
    out, end = b"", time.time() + limit
    while marker not in out and time.time() < end:
        r, _, _ = select.select([m], [], [], 0.05)
        if r:
            try:
                out += os.read(m, 4096)
            except OSError:
                break
    return out
]==]

describe("the interactive prompt", function()
  it("prints expressions, runs statements, continues unfinished ones and survives errors",
     bounded(15, function()
    local p = session()
    p:write("1 + 1\n")
    assert.are.equal("2", p.stdout:read("l"))
    p:write("x = 20\nx * 2 + 2, 'b', nil\n")
    assert.are.equal("42\tb\tnil", p.stdout:read("l"))
    p:write("for i = 1, 2 do\nprint('i=' .. i)\nend\n")
    assert.are.equal("i=1", p.stdout:read("l"))
    assert.are.equal("i=2", p.stdout:read("l"))
    p:write("error('boom')\nx +\n\n= 1\n'after'\n")
    assert.are.equal("after", p.stdout:read("l"))
    local code, err = finish(p)
    assert.are.equal(0, code)
    assert.matches("stdin:1: boom", err, 1, true)
    assert.matches("stack traceback:", err, 1, true)
    assert.is_nil(err:find("repl.lua", 1, true), "the prompt's own frames in a traceback")
  end))

  it("keeps the loop running between lines: a server started at the prompt answers",
     bounded(15, function()
    local p = session()
    p:write([[
socket = require "socket"; wirelab = require "wirelab"
srv = socket.create_server("127.0.0.1", 0)
server_task = wirelab.spawn(function() while true do local c = srv:accept(); c:sendall(c:recv(100):upper()); c:close() end end)
select(2, srv:getsockname())
]])
    local port = math.tointeger(tonumber(p.stdout:read("l")))
    assert.is_not_nil(port)
    -- nothing more is typed: the prompt waits, the server serves
    for _ = 1, 3 do
      local c <close> = socket.create_connection("127.0.0.1", port, 2)
      c:settimeout(2)
      c:sendall("hello")
      assert.are.equal("HELLO", c:recv(100))
    end
    p:write("'still here'\n")
    assert.are.equal("still here", p.stdout:read("l"))
    assert.are.equal(0, (finish(p)))
  end))

  -- Each Ctrl-C is sent once the prompt is in the state it must stop, and
  -- the next line only once the prompt has said it stopped (on stderr): no
  -- sleeping. A half-typed chunk and an idle prompt print nothing from a
  -- pipe, so those two are in the terminal test below, where the fresh
  -- prompt shows.
  it("Ctrl-C (SIGINT) stops what the prompt runs, not the process", bounded(15, function()
    local p = session()
    local stderr_until = stderr_reader(p)
    -- a busy loop, once it has spun a while
    p:write("n = 0\nwhile true do n = n + 1; if n == 1000 then print('spinning'); io.stdout:flush() end end\n")
    assert.are.equal("spinning", p.stdout:read("l"))
    p:kill(2)
    stderr_until("interrupted")
    p:write("'after a busy loop', n >= 1000\n")
    assert.are.equal("after a busy loop\ttrue", p.stdout:read("l"))
    -- an accept, once the process sleeps in it
    p:write("s = require('socket').socket(); s:bind('127.0.0.1', 0); s:listen(1); " ..
            "print('accepting'); io.stdout:flush(); s:accept()\n")
    assert.are.equal("accepting", p.stdout:read("l"))
    support.wait_until("the prompt waits in accept", function() return support.proc_stat(p.pid) == "S" end)
    p:kill(2)
    assert.matches("accept", stderr_until("EINTR"), 1, true)
    p:write("s:close()\n'after a blocked accept'\n")
    assert.are.equal("after a blocked accept", p.stdout:read("l"))
    assert.are.equal(0, (finish(p)))
  end))

  it("a second Ctrl-C stops a background task that never yields", bounded(15, function()
    local p = session()
    p:write("wirelab = require 'wirelab'\n" ..
            "t = wirelab.spawn(function() print('spinning'); io.stdout:flush(); while true do end end)\n")
    assert.are.equal("spinning", p.stdout:read("l"))   -- the prompt gets no turn now
    p:kill(2)
    -- delivered (two pending SIGINTs would be one), yet the process goes on
    support.wait_until("the first SIGINT is delivered", function() return not sigint_pending(p.pid) end)
    local exited, err = pcall(p.wait, p, 0.05)
    assert.is_false(exited, "one Ctrl-C ended wirelab")
    assert.are.equal("ETIMEDOUT", err.code)
    p:kill(2)                     -- stops the spinning task
    p:write("'back', t:done()\n")
    assert.are.equal("back\ttrue", p.stdout:read("l"))
    local code, err = finish(p)
    assert.are.equal(0, code)
    assert.matches("interrupted", err, 1, true)
    assert.matches("in a background task", err, 1, true)
  end))

  it("-i SCRIPT runs the script first, its globals at the prompt", bounded(15, function()
    local script = support.tmpdir() .. "/lab.lua"
    support.write(script, "greeting = 'hi from ' .. arg[1]\nprint('script ran')\n")
    local p = process.spawn{support.wirelab, "-i", script, "lab", stdin = true}
    assert.are.equal("script ran", p.stdout:read("l"))
    p:write("greeting\n")
    assert.are.equal("hi from lab", p.stdout:read("l"))
    assert.are.equal(0, (finish(p)))
  end))

  it("on a terminal: a prompt, line editing, '>>' for more, Ctrl-C, Ctrl-D to leave",
     bounded(15, function()
    -- python3 runs wirelab on a pty and reports what the terminal showed
    local r = process.run{"python3", "-c", PTY .. [==[
p = start(sys.argv[1])
shown = until(b"> ")
os.write(m, b"2 + 3\r"); shown += until(b"5\r\n> ")
os.write(m, b"for i = 7, 8 do\r"); shown += until(b">> ")
os.write(m, b"print(i) end\r"); shown += until(b"8\r\n> ")
os.write(m, b"xyz\x7f\x7f\x7f'edited'\r"); shown += until(b"edited\r\n> ")
# Ctrl-C in a busy loop, once it says it spins (142: not in the echo)
os.write(m, b"n = 0 while true do n = n + 1 if n == 1000 then print(6 * 7 + 100) end end\r")
shown += until(b"142\r\n")
os.kill(p.pid, 2); shown += until(b"interrupted")
shown += until(b"> ")
os.write(m, b"'alive'\r"); shown += until(b"alive\r\n> ")
# Ctrl-C in a half-typed chunk drops it: a fresh prompt, not ">> "
os.write(m, b"for i = 1, 3 do\r"); shown += until(b">> ")
os.kill(p.pid, 2); shown += until(b"> ")
os.write(m, b"'after half a chunk'\r"); shown += until(b"after half a chunk\r\n> ")
# Ctrl-C at an idle prompt: nothing to stop, a fresh prompt
os.kill(p.pid, 2); shown += until(b"> ")
os.write(m, b"'after an idle Ctrl-C'\r"); shown += until(b"after an idle Ctrl-C\r\n> ")
os.write(m, b"\x04")
code = p.wait(timeout=5)
sys.stdout.write(repr(shown) + "\n" + str(code) + "\n")
]==], support.wirelab, timeout = 12}
    assert.are.equal(0, r.code, r.stderr)
    local shown, code = r.stdout:match("^(.*)\n(%-?%d+)\n$")
    assert.are.equal("0", code, r.stdout)
    assert.matches("> 2 + 3\\r\\n5\\r\\n> ", shown, 1, true)
    assert.matches(">> print(i) end\\r\\n7\\r\\n8\\r\\n> ", shown, 1, true)
    assert.matches("\\r\\nedited\\r\\n> ", shown, 1, true)
    assert.matches("interrupted", shown, 1, true)
    assert.matches("\\r\\nalive\\r\\n> ", shown, 1, true)
    assert.matches("\\r\\nafter half a chunk\\r\\n> ", shown, 1, true)
    assert.matches("\\r\\nafter an idle Ctrl-C\\r\\n> ", shown, 1, true)
  end))

  it("on a terminal, history survives the session: the Up arrow finds yesterday's line",
     bounded(20, function()
    local hist = support.tmpdir() .. "/history"
    local r = process.run{"python3", "-c", PTY .. [==[
def session(keys):
    p = start(sys.argv[1], dict(os.environ, WIRELAB_HISTORY=sys.argv[2]))
    shown = until(b"> ")
    for k, marker in keys:
        os.write(m, k); shown += until(marker)
    os.write(m, b"\x04")
    p.wait(timeout=5)
    os.close(m)
    return shown
session([(b"'one' .. 1\r", b"one1\r\n> "), (b"'one' .. 1\r", b"one1\r\n> "),
         (b"'two' .. 2\r", b"two2\r\n> ")])
second = session([(b"\x1b[A\r", b"two2\r\n> "), (b"\x1b[A\x1b[A\r", b"one1\r\n> ")])
sys.stdout.write(repr(second) + "\n")
]==], support.wirelab, hist, timeout = 18}
    assert.are.equal(0, r.code, r.stderr)
    -- the second session recalled both lines, and the repeat was kept once
    assert.matches("two2", r.stdout, 1, true)
    assert.matches("one1", r.stdout, 1, true)
    -- session 1 ran one, one, two (the repeat in a row kept once), session 2
    -- two and one again, the first of which repeats the last line saved
    local saved = support.read(hist)
    local lines = {}
    for l in saved:gmatch("[^\n]+") do
      if not l:find("^_HiStOrY_") then lines[#lines + 1] = (l:gsub("\\040", " ")) end
    end
    assert.are.same({"'one' .. 1", "'two' .. 2", "'one' .. 1"}, lines, saved)
    -- a session from a pipe writes no history
    process.run{support.wirelab, "-i", stdin = "'from a pipe'\n", env = {WIRELAB_HISTORY = hist,
                PATH = os.getenv("PATH")}, timeout = 5}
    assert.are.equal(saved, support.read(hist))
  end))

  it("on a terminal, what background tasks print goes above the half-typed line, kept intact",
     bounded(20, function()
    local r = process.run{"python3", "-c", PTY .. [==[
import urllib.request
p = start(sys.argv[1])
until(b"> ")
# an http.server started at the prompt: its access log goes to stderr
os.write(m, b"hs = http.server; srv = hs.ThreadingHTTPServer({'127.0.0.1', 0}, hs.BaseHTTPRequestHandler)\r")
until(b"> ")
os.write(m, b"srv:start(); print('port=' .. srv.server_address[2])\r")
import re
port = int(re.search(rb"\nport=(\d+)", until(b"\r\n> ")).group(1))
os.write(m, b"wirelab.spawn(function() for i = 1, 3 do wirelab.sleep(0.3); print('tick', i); io.write('no newline'); io.stderr:write('err ', i, '\\n') end end)\r")
until(b"> ")
os.write(m, b"'half' .. ")
until(b"'half' .. ")
try:
    urllib.request.urlopen("http://127.0.0.1:%d/page" % port, timeout=5).read()
except Exception as e:
    pass                         # 501: BaseHTTPRequestHandler has no do_GET
shown = until(b"err 3")
shown += until(b"> 'half' .. ")
os.write(m, b"'typed'\r"); shown += until(b"halftyped\r\n> ")
os.write(m, b"\x04")
code = p.wait(timeout=5)
sys.stdout.write(repr(shown) + "\n" + str(code) + "\n")
]==], support.wirelab, timeout = 18}
    assert.are.equal(0, r.code, r.stderr)
    local shown, code = r.stdout:match("^(.*)\n(%-?%d+)\n$")
    assert.are.equal("0", code, r.stdout)
    -- every line printed meanwhile starts on a line of its own, never after
    -- the typed text, and the prompt with the typed text comes back below
    for _, what in ipairs{"tick\\t1", "tick\\t3", "err 2", "\"GET /page HTTP/1.1\" 501"} do
      assert.is_truthy(shown:find(what, 1, true), what .. " not shown: " .. shown)
    end
    -- (shown is python's repr: escapes are text) a screen line is what
    -- lies between line ends and erasures of the line
    for line in (shown .. "\\r\\n"):gmatch("(.-)\\r\\n") do
      for piece in (line .. "\\x1b[J"):gmatch("(.-)\\x1b%[J") do
        if piece:find("'half' ..", 1, true) then
          assert.is_nil(piece:find("tick") or piece:find("err ") or piece:find("GET"),
                        "output written into the typed line: " .. piece)
        end
      end
    end
    assert.matches("no newline\\r\\n> \\'half\\' .. ", shown, 1, true)
    assert.matches("halftyped\\r\\n> ", shown, 1, true)
  end))

  it("on a terminal: a server and its clients, Tab, status(), Ctrl-C in recv, os.exit",
     bounded(20, function()
    local r = process.run{"python3", "-c", PTY .. [==[
import socket
p = start(sys.argv[1])
shown = until(b"> ")
def say(keys, marker=b"\r\n> "):
    global shown
    os.write(m, keys); got = until(marker); shown += got; return got
say(b"E = socketserver.BaseRequestHandler:extend()\r")
say(b"function E:handle() while true do local d = self.request:recv(100) if d == '' then return end self.request:sendall(d) end end\r")
got = say(b"srv = socketserver.ThreadingTCPServer({'127.0.0.1', 0}, E); srv:start(); port = srv.server_address[2]; print('port=' .. port)\r")
import re
port = int(re.search(rb"\nport=(\d+)", got).group(1))
outside = socket.create_connection(("127.0.0.1", port), timeout=5)
outside.sendall(b"ping")
echoed = outside.recv(4)
say(b"c = socket.create_connection('127.0.0.1', port); c:sendall('hi'); c:recv(2)\r")
tab = say(b"srv:serve_f\t", b"orever(")
# a completed name runs: Tab, then the rest of the line
say(b"\x15c:getpeern\t", b"ame(")
say(b")\r")
# several candidates and nothing to add: Tab lists them under the line
say(b"c:sen\t", b"c:send")
tab += say(b"\t", b"c:sendto(")
say(b"\x15")
say(b"\x15status()\r")
say(b"srv\r")
# Ctrl-C in a blocking recv: the prompt comes back, the connection still works
os.write(m, b"c:recv(10)\r"); time.sleep(0.3)
os.kill(p.pid, 2); shown += until(b"> ")
say(b"c:sendall('again'); c:recv(5)\r")
say(b"os.exit(3)\r", b"XX-never")
code = p.wait(timeout=5)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2); refused = "no"
except ConnectionRefusedError:
    refused = "yes"
sys.stdout.write(repr(shown) + "\n" + repr(echoed) + "\n" + repr(tab) + "\n" + refused + "\n" + str(code) + "\n")
]==], support.wirelab, timeout = 18}
    assert.are.equal(0, r.code, r.stderr)
    local shown, echoed, tab, refused, code = r.stdout:match("^(.*)\n(.-)\n(.-)\n(%a+)\n(%-?%d+)\n$")
    assert.are.equal("b'ping'", echoed, r.stdout)
    assert.matches("srv:serve_f.*orever%(", tab)
    assert.matches("c:sendall%(%s+.*c:sendto%(", tab)
    assert.is_nil(shown:find("\\x07", 1, true), "Tab rang the bell")
    assert.matches("ame()\\r\\n127.0.0.1\\t", shown, 1, true)   -- Tab wrote "ame("
    -- status(): both connections to the server, ESTABLISHED, and the server
    assert.matches("127%.0%.0%.1:%d+%s+127%.0%.0%.1:%d+%s+ESTABLISHED", shown)
    assert.matches("ThreadingTCPServer%s+127%.0%.0%.1:%d+%s+E%s+2", shown)
    assert.matches("<ThreadingTCPServer 127.0.0.1:%d+ E, 2 clients>", shown)
    assert.matches("interrupted", shown, 1, true)
    assert.matches("again", shown, 1, true)
    -- os.exit(3): that status, and the server no longer listens
    assert.are.equal("3", code, r.stdout)
    assert.are.equal("yes", refused)
    assert.is_nil(shown:find("EBADF", 1, true), shown)
  end))

  -- (not under AddressSanitizer, which is the other memory checker)
  local it_valgrind = support.SANITIZED and function() end or it
  it_valgrind("on a terminal, under valgrind: Tab, status(), help(), background output, Ctrl-D, no leak",
     bounded(90, function()
    local valgrind = support.find("valgrind")
    if not valgrind then return pending(support.skip("valgrind is not installed")) end
    local log = support.tmpdir() .. "/valgrind.log"
    local r = process.run{"python3", "-c", PTY .. [==[
p = start([sys.argv[2], "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--error-exitcode=9", "--log-file=" + sys.argv[3], sys.argv[1]],
          dict(os.environ, WIRELAB_HISTORY=sys.argv[3] + ".history"))
until(b"> ", 30)
for keys in [b"E = socketserver.BaseRequestHandler:extend{handle=function(self) self.request:sendall(self.request:recv(10)) end}\r",
             b"srv = socketserver.ThreadingTCPServer({'127.0.0.1', 0}, E); srv:start()\r",
             b"c = socket.create_connection('127.0.0.1', srv.server_address[2]); c:sendall('x'); c:recv(1)\r",
             b"srv:se\t\x15status()\r", b"help(socket.create_connection)\r", b"help()\r",
             b"wirelab.spawn(function() wirelab.sleep(0.5) print('bg') end)\r", b"'ha'"]:
    os.write(m, keys); until(b"> ", 20)
until(b"bg", 20); until(b"> 'ha'", 20)
os.write(m, b"\r"); until(b"> ", 20)
os.write(m, b"\x04")
sys.stdout.write(str(p.wait(timeout=60)) + "\n")
]==], support.wirelab, valgrind, log, timeout = 85}
    assert.are.equal(0, r.code, r.stderr)
    local report = support.read(log)
    assert.are.equal("0\n", r.stdout, report)
    assert.matches("ERROR SUMMARY: 0 errors", report)
    assert.matches("definitely lost: 0 bytes", report)
  end))

  it("without -i and without a terminal, standard input is a script, as lua does",
     bounded(15, function()
    local r = process.run{support.wirelab, stdin = "print('from stdin', 1 + 1)\n", timeout = 5}
    assert.are.equal(0, r.code)
    assert.are.equal("from stdin\t2\n", r.stdout)
  end))
end)
