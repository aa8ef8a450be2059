-- socketserver_spec: Python's socketserver semantics on real sockets.
local socketserver = require "socketserver"
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"

local support = require "support"
local bounded = support.bounded

local Echo = socketserver.StreamRequestHandler:extend()
function Echo:handle()
  for line in self.rfile:lines("L") do self.wfile:write(line) end
end

-- A handler that holds each client until it sends "go\n".
local Hold = socketserver.StreamRequestHandler:extend()
function Hold:handle()
  if self.server.holding then self.server.holding:set() end
  local line = self.rfile:readline()
  self.wfile:write("done " .. line)
end

-- second_waits(cls) -> true when a server of class cls makes a second
-- client wait while it holds the first (one request at a time)
local function second_waits(cls)
  local server = cls({"127.0.0.1", 0}, Hold)
  local port = server.server_address[2]
  server.holding = wirelab.event()
  server:start()
  local first = socket.create_connection("127.0.0.1", port, 5)
  assert.is_true(server.holding:wait(5))  -- its handler waits for its line
  -- the second client's whole exchange, bounded to 0.5 s
  local second = socket.create_connection("127.0.0.1", port, 5)
  second:settimeout(0.5)
  second:sendall("two\n")
  local ok, reply = pcall(second.recv, second, 100)
  first:sendall("one\n")
  assert.are.equal("done one\n", first:recv(100))
  if not ok then                            -- it waited: now it is served
    second:settimeout(5)
    reply = second:recv(100)
  end
  assert.are.equal("done two\n", reply)
  first:close()
  second:close()
  server:shutdown()
  server:server_close()
  return not ok
end

local function talk(port, line)
  local c <close> = socket.create_connection("127.0.0.1", port, 5)
  c:sendall(line)
  local f = c:makefile("r")
  return f:readline()
end

describe("socketserver", function()
  it("echoes lines with a StreamRequestHandler and reports the bound port", bounded(10, function()
    local server = socketserver.TCPServer({"127.0.0.1", 0}, Echo)
    local port = server.server_address[2]
    assert.is_true(port > 0)
    server:start()
    assert.are.equal("hello\n", talk(port, "hello\n"))
    assert.are.equal("second\n", talk(port, "second\n"))
    server:shutdown()
    server:server_close()
  end))

  it("TCPServer serves one client at a time; ThreadingTCPServer does not", bounded(15, function()
    assert.is_true(second_waits(socketserver.TCPServer), "TCPServer served two clients at once")
    assert.is_false(second_waits(socketserver.ThreadingTCPServer), "ThreadingTCPServer made a client wait")
  end))

  it("handle_error prints the traceback and the server keeps serving", bounded(10, function()
    local Boom = socketserver.StreamRequestHandler:extend()
    function Boom:handle()
      local line = self.rfile:readline()
      if line == "boom\n" then error("handler exploded") end
      self.wfile:write("ok " .. line)
    end
    local server = socketserver.ThreadingTCPServer({"127.0.0.1", 0}, Boom)
    local seen = {}
    function server:handle_error(request, client_address, err)
      seen[#seen + 1] = tostring(err)
    end
    server:start()
    local port = server.server_address[2]
    assert.are.equal("", talk(port, "boom\n"))     -- the connection just closes
    assert.are.equal("ok fine\n", talk(port, "fine\n"))
    assert.are.equal(1, #seen)
    assert.is_truthy(seen[1]:find("handler exploded", 1, true))
    assert.is_truthy(seen[1]:find("stack traceback", 1, true))
    server:shutdown()
    server:server_close()
  end))

  it("a Threading server runs setup, handle and finish in order, finish after a failed handle too; " ..
     "errors in any of them reach handle_error, finish's winning; overrides of process_request_thread " ..
     "and finish_request are called", bounded(15, function()
    local steps, seen = {}, {}
    local H = socketserver.BaseRequestHandler:extend()
    function H:setup()
      self.line = self.request:recv(100)
      steps[#steps + 1] = "setup " .. self.line
      if self.line == "setup-fails" then error("in setup") end
    end
    function H:handle()
      steps[#steps + 1] = "handle"
      if self.line == "handle-fails" or self.line == "both-fail" then error("in handle") end
      self.request:sendall("ok")
    end
    function H:finish()
      steps[#steps + 1] = "finish"
      if self.line == "both-fail" then error("in finish") end
    end
    local server = socketserver.ThreadingTCPServer({"127.0.0.1", 0}, H)
    function server:handle_error(request, client_address, err)
      seen[#seen + 1] = tostring(err):match("in %a+")
    end
    server:start()
    local port = server.server_address[2]
    local function ask(line)
      steps = {}
      local c <close> = socket.create_connection("127.0.0.1", port, 5)
      c:sendall(line)
      local reply = c:recv(100)
      c:recv(100)                      -- the server closes it: every step has run
      return reply, table.concat(steps, ", ")
    end
    assert.are.same({"ok", "setup fine, handle, finish"}, {ask("fine")})
    assert.are.same({"", "setup setup-fails"}, {ask("setup-fails")})
    assert.are.same({"", "setup handle-fails, handle, finish"}, {ask("handle-fails")})
    assert.are.same({"", "setup both-fail, handle, finish"}, {ask("both-fail")})
    assert.are.same({"in setup", "in handle", "in finish"}, seen)
    -- overridden, each is called as before
    local calls = {}
    function server:finish_request(request, client_address)
      calls[#calls + 1] = "finish_request"
      socketserver.BaseServer.finish_request(self, request, client_address)
    end
    assert.are.same({"ok", "setup fine, handle, finish"}, {ask("fine")})
    server.finish_request = nil
    function server:process_request_thread(request, client_address)
      calls[#calls + 1] = "process_request_thread"
      socketserver.ThreadingMixIn.process_request_thread(self, request, client_address)
    end
    assert.are.same({"ok", "setup fine, handle, finish"}, {ask("fine")})
    assert.are.same({"finish_request", "process_request_thread"}, calls)
    server:shutdown()
    server:server_close()
  end))

  it("the default handle_error writes Python's banner to stderr", bounded(15, function()
    local r = process.run{support.wirelab, "-e", [[
      local ss = require "socketserver"
      local socket = require "socket"
      local S = ss.TCPServer({"127.0.0.1", 0}, function() error("bad handler") end)
      S:start()
      local c = socket.create_connection("127.0.0.1", S.server_address[2])
      c:recv(1)
      S:shutdown()
      print("served on")
    ]], timeout = 10}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("served on\n", r.stdout)
    assert.is_truthy(r.stderr:find("Exception occurred during processing of request from ('127.0.0.1'", 1, true), r.stderr)
    assert.is_truthy(r.stderr:find("bad handler", 1, true))
  end))

  -- Python prints the banner and one traceback; the error passes several
  -- handlers on its way out, each of which must not add its own
  for _, case in ipairs{
    {"socketserver.TCPServer", [[
      local S = require("socketserver").TCPServer({"127.0.0.1", 0}, function() error("bad handler") end)]]},
    {"http.server.HTTPServer", [[
      local hs = require "http.server"
      local H = hs.BaseHTTPRequestHandler:extend()
      function H:do_GET() error("bad handler") end
      function H:log_message() end
      local S = hs.HTTPServer({"127.0.0.1", 0}, H)]]},
    {"socketserver.ThreadingTCPServer", [[
      local S = require("socketserver").ThreadingTCPServer({"127.0.0.1", 0}, function() error("bad handler") end)]]},
  } do
    it("a handler error prints one banner and one traceback: " .. case[1], bounded(15, function()
      local r = process.run{os.getenv("WIRELAB") or arg[-1] or "./wirelab", "-e", case[2] .. [[
        local socket = require "socket"
        S:start()
        local c = socket.create_connection("127.0.0.1", S.server_address[2])
        c:sendall("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        while c:recv(4096) ~= "" do end
        S:shutdown()
        S:server_close()
      ]], timeout = 10}
      assert.are.equal(0, r.code, r.stderr)
      local _, banners = r.stderr:gsub("Exception occurred during processing", "")
      local _, traces = r.stderr:gsub("stack traceback:", "")
      local _, messages = r.stderr:gsub("bad handler", "")
      assert.are.same({1, 1, 1}, {banners, traces, messages}, r.stderr)
    end))
  end

  it("shutdown() from another task stops serve_forever promptly and waits for it", bounded(10, function()
    local server = socketserver.TCPServer({"127.0.0.1", 0}, Echo)
    local returned = false
    local runner = wirelab.spawn(function()
      server:serve_forever(10)                  -- a long poll interval: shutdown must not wait for it
      returned = true
    end)
    wirelab.sleep(0.02)
    local t0 = wirelab.now()
    server:shutdown()
    assert.is_true(returned)
    assert.is_true(wirelab.now() - t0 < 0.5)
    runner:join()
    server:server_close()
  end))

  it("starts and shuts down 20 servers from other tasks without leaks", bounded(20, function()
    local servers = {}
    for i = 1, 20 do
      servers[i] = socketserver.ThreadingTCPServer({"127.0.0.1", 0}, Echo)
      servers[i]:start()
    end
    local stoppers = {}
    for i = 1, 20 do
      stoppers[i] = wirelab.spawn(function() servers[i]:shutdown(); servers[i]:server_close() end)
    end
    for i = 1, 20 do
      stoppers[i]:join()
      assert.are.equal(-1, servers[i].socket:fileno())
    end
  end))

  it("handle_request honours timeout", bounded(10, function()
    local server = socketserver.TCPServer({"127.0.0.1", 0}, Echo)
    server.timeout = 0.2
    local timed_out = false
    function server:handle_timeout() timed_out = true end
    local t0 = wirelab.now()
    server:handle_request()
    local took = wirelab.now() - t0
    assert.is_true(timed_out)
    assert.is_true(took >= 0.18 and took < 2, "took " .. took)
    -- and it serves one request when one comes
    local port = server.server_address[2]
    local client = wirelab.spawn(talk, port, "once\n")
    server:handle_request()
    assert.are.equal("once\n", client:join())
    server:server_close()
  end))

  it("server_close releases the port so a new server binds it at once", bounded(10, function()
    local a = socketserver.TCPServer({"127.0.0.1", 0}, Echo)
    local port = a.server_address[2]
    a:start()
    assert.are.equal("x\n", talk(port, "x\n"))
    a:shutdown()
    a:server_close()
    local cls = socketserver.TCPServer:extend({allow_reuse_address = true})
    local b = cls({"127.0.0.1", port}, Echo)
    assert.are.equal(port, b.server_address[2])
    b:server_close()
  end))

  it("a bind failure raises EADDRINUSE and leaks nothing", bounded(5, function()
    local a = socketserver.TCPServer({"127.0.0.1", 0}, Echo)
    local ok, err = pcall(socketserver.TCPServer, {"127.0.0.1", a.server_address[2]}, Echo)
    assert.is_false(ok)
    assert.are.equal("EADDRINUSE", err.code)
    a:server_close()
  end))

  it("UDPServer with a DatagramRequestHandler answers each datagram", bounded(10, function()
    local Upper = socketserver.DatagramRequestHandler:extend()
    function Upper:handle() self.wfile:write(self.rfile:read("a"):upper()) end
    local server = socketserver.UDPServer({"127.0.0.1", 0}, Upper)
    server:start()
    local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:settimeout(2)
    for _, word in ipairs({"one", "two", "three"}) do
      c:sendto(word, "127.0.0.1", server.server_address[2])
      assert.are.equal(word:upper(), c:recv(100))
    end
    server:shutdown()
    server:server_close()
  end))

  it("a plain function handler gets request, client_address and server", bounded(10, function()
    local got
    local server = socketserver.ThreadingUDPServer({"127.0.0.1", 0}, function(request, addr, srv)
      got = {request[1], addr[1], srv}
      request[2]:sendto("ack", addr[1], addr[2])
    end)
    server:start()
    local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:settimeout(2)
    c:sendto("ping", "127.0.0.1", server.server_address[2])
    assert.are.equal("ack", c:recv(10))
    assert.are.equal("ping", got[1])
    assert.are.equal("127.0.0.1", got[2])
    assert.are.equal(server, got[3])
    server:shutdown()
    server:server_close()
  end))

  it("ForkingTCPServer handles each request in a child process that is reaped", bounded(20, function()
    local Pid = socketserver.StreamRequestHandler:extend()
    function Pid:handle()
      self.rfile:readline()
      local f <close> = io.open("/proc/self/stat")
      self.wfile:write(tostring(f:read("n")) .. "\n")
    end
    local server = socketserver.ForkingTCPServer({"127.0.0.1", 0}, Pid)
    server:start(0.05)
    local port = server.server_address[2]
    local me <close> = io.open("/proc/self/stat")
    local mypid = me:read("n")
    local pids = {}
    for i = 1, 3 do
      local line = talk(port, "who\n")
      pids[i] = tonumber(line)
      assert.is_truthy(pids[i])
      assert.are_not.equal(mypid, pids[i])
    end
    assert.are_not.equal(pids[1], pids[2])
    server:shutdown()
    server:server_close()                      -- waits for the children
    for _, pid in ipairs(pids) do
      local f = io.open("/proc/" .. pid .. "/stat")
      if f then
        local state = f:read("a"):match("%) (%a)")
        f:close()
        assert.are_not.equal("Z", state, "child " .. pid .. " is a zombie")
      end
    end
  end))

  it("serves 100 concurrent clients with handler errors thrown in", bounded(30, function()
    local Flaky = socketserver.StreamRequestHandler:extend()
    function Flaky:handle()
      for line in self.rfile:lines("L") do
        if line:find("^fail") then error("planned failure") end
        self.wfile:write(line)
      end
    end
    -- Python's default backlog of 5 overflows with 100 simultaneous
    -- connects and the kernel then drops handshakes for seconds (Python's
    -- socketserver does exactly the same): size it for the load.
    local Server = socketserver.ThreadingTCPServer:extend({request_queue_size = 128})
    local server = Server({"127.0.0.1", 0}, Flaky)
    local errors_seen = 0
    function server:handle_error() errors_seen = errors_seen + 1 end
    server:start()
    local port = server.server_address[2]
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = wirelab.spawn(function()
        local c <close> = socket.create_connection("127.0.0.1", port, 10)
        local f = c:makefile("rw")
        if i % 10 == 0 then
          f:write("fail now\n"):flush()
          return f:readline() == ""             -- closed by the server
        end
        for k = 1, 5 do
          f:write(("client %d line %d\n"):format(i, k)):flush()
          if f:readline() ~= ("client %d line %d\n"):format(i, k) then return false end
        end
        return true
      end)
    end
    for i = 1, 100 do assert.is_true(tasks[i]:join(), "client " .. i) end
    assert.are.equal(10, errors_seen)
    server:shutdown()
    server:server_close()
  end))

  -- the pid a process has, from /proc; and whether it is a zombie
  local function own_pid()
    local f <close> = io.open("/proc/self/stat")
    return f:read("n")
  end
  local function assert_reaped(pids)
    for _, pid in ipairs(pids) do
      local f = io.open("/proc/" .. pid .. "/stat")
      if f then
        local state = f:read("a"):match("%) (%a)")
        f:close()
        assert.are_not.equal("Z", state, "child " .. pid .. " is a zombie")
      end
    end
  end

  it("ForkingUDPServer answers each datagram from a child process that is reaped", bounded(20, function()
    local Pid = socketserver.DatagramRequestHandler:extend()
    function Pid:handle() self.wfile:write(self.rfile:read("a") .. " " .. own_pid()) end
    local server = socketserver.ForkingUDPServer({"127.0.0.1", 0}, Pid)
    server:start(0.05)
    local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:settimeout(5)
    local pids, seen = {}, {}
    for i = 1, 3 do
      c:sendto("datagram " .. i, "127.0.0.1", server.server_address[2])
      local word, pid = c:recv(100):match("^(datagram %d) (%d+)$")
      assert.are.equal("datagram " .. i, word)
      pid = tonumber(pid)
      assert.are_not.equal(own_pid(), pid)
      assert.is_nil(seen[pid], "two datagrams served by child " .. tostring(pid))
      seen[pid], pids[i] = true, pid
    end
    server:shutdown()
    server:server_close()                      -- waits for the children
    assert_reaped(pids)
  end))

  it("the mixins compose as in Python: TCPServer:extend(ThreadingMixIn) and friends", bounded(20, function()
    local ss = socketserver
    local ThreadedTCP = ss.TCPServer:extend(ss.ThreadingMixIn)
    local ThreadedUDP = ss.UDPServer:extend(ss.ThreadingMixIn)
    local ForkedTCP = ss.TCPServer:extend(ss.ForkingMixIn)
    -- three classes of their own; the mixins are left as they were
    assert.are_not.equal(ThreadedTCP, ThreadedUDP)
    assert.are_not.equal(ss.ThreadingMixIn, ThreadedTCP)
    assert.is_nil(getmetatable(ss.ThreadingMixIn))
    assert.is_nil(rawget(ss.ThreadingMixIn, "super"))
    assert.are.equal(ss.TCPServer, ThreadedTCP.super)
    assert.are.equal(ss.UDPServer, ThreadedUDP.super)
    assert.are.equal(socket.SOCK_STREAM, ThreadedTCP.socket_type)
    assert.are.equal(socket.SOCK_DGRAM, ThreadedUDP.socket_type)
    -- the mixin's process_request is the one used, as it comes first in Python's MRO
    assert.are.equal(ss.ThreadingMixIn.process_request, ThreadedTCP.process_request)
    assert.are.equal(ss.ForkingMixIn.process_request, ForkedTCP.process_request)
    -- and they behave: threads for TCP (no client waits for another) ...
    assert.is_false(second_waits(ThreadedTCP), "TCPServer:extend(ThreadingMixIn) made a client wait")
    assert.is_true(second_waits(ss.TCPServer), "the plain TCPServer changed too")
    -- ... and for UDP (a slow datagram does not hold up a quick one)
    local Slow = ss.DatagramRequestHandler:extend()
    function Slow:handle()
      local d = self.rfile:read("a")
      if d == "slow" then wirelab.sleep(0.5) end
      self.wfile:write(d)
    end
    local udp = ThreadedUDP({"127.0.0.1", 0}, Slow)
    udp:start()
    local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:settimeout(5)
    c:sendto("slow", "127.0.0.1", udp.server_address[2])
    c:sendto("quick", "127.0.0.1", udp.server_address[2])
    assert.are.equal("quick", c:recv(100))
    assert.are.equal("slow", c:recv(100))
    udp:shutdown()
    udp:server_close()
    -- ... and a child process per request for ForkingMixIn
    local Pid = ss.StreamRequestHandler:extend()
    function Pid:handle()
      self.rfile:readline()
      self.wfile:write(own_pid() .. "\n")
    end
    local forked = ForkedTCP({"127.0.0.1", 0}, Pid)
    forked:start(0.05)
    local pid = tonumber(talk(forked.server_address[2], "who\n"))
    assert.is_truthy(pid)
    assert.are_not.equal(own_pid(), pid)
    forked:shutdown()
    forked:server_close()
    assert_reaped({pid})
  end))
end)

-- A UDPServer serves every datagram already queued after one wait: the
-- methods Python calls per request must still be called per datagram, and
-- shutdown, service_actions and errors must behave as with one at a time.
describe("socketserver: UDPServer under a burst of datagrams", function()
  local function udp_client()
    local c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:bind("127.0.0.1", 0)
    c:settimeout(2)
    support.defer(function() c:close() end)
    return c
  end

  local function echo(request, addr) request[2]:sendto(request[1], addr[1], addr[2]) end

  -- replies(c, n) -> the set of the next n replies on c
  local function replies(c, n)
    local got = {}
    for _ = 1, n do got[c:recv(100)] = true end
    return got
  end

  it("calls an overridden verify_request, process_request and shutdown_request for every datagram", bounded(10, function()
    local calls = {verify = 0, process = 0, shutdown = 0}
    local Server = socketserver.UDPServer:extend()
    function Server:verify_request(request, addr)
      calls.verify = calls.verify + 1
      assert.are.equal(self.socket, request[2])
      return request[1]:sub(1, 2) ~= "no"
    end
    function Server:process_request(request, addr)
      calls.process = calls.process + 1
      socketserver.UDPServer.process_request(self, request, addr)
    end
    function Server:shutdown_request(request)
      calls.shutdown = calls.shutdown + 1
    end
    local server = Server({"127.0.0.1", 0}, echo)
    local c = udp_client()
    -- a burst: all 100 are queued before the server's task runs
    for i = 1, 100 do
      c:sendto((i % 10 == 0 and "no " or "yes ") .. i, "127.0.0.1", server.server_address[2])
    end
    server:start()
    local got = replies(c, 90)
    for i = 1, 100 do
      assert.are.equal(i % 10 ~= 0, got["yes " .. i] or false)
    end
    c:settimeout(0.2)                  -- and nothing for the ten refused
    assert.is_false(pcall(c.recv, c, 100))
    assert.are.same({verify = 100, process = 90, shutdown = 100}, calls)
    server:shutdown()
    server:server_close()
  end))

  it("sees a method set on the server or its class while it serves", bounded(10, function()
    local Server = socketserver.UDPServer:extend()
    local server = Server({"127.0.0.1", 0}, echo)
    server:start()
    local c = udp_client()
    local port = server.server_address[2]
    c:sendto("one", "127.0.0.1", port)
    assert.are.equal("one", c:recv(100))
    local refused = {}
    server.verify_request = function(_, request) refused[#refused + 1] = request[1] end
    c:sendto("two", "127.0.0.1", port)
    c:settimeout(0.3)
    assert.is_false(pcall(c.recv, c, 100))
    assert.are.same({"two"}, refused)
    server.verify_request = nil      -- the class's again
    function Server:finish_request(request, addr)
      request[2]:sendto("finished " .. request[1], addr[1], addr[2])
    end
    c:settimeout(2)
    c:sendto("three", "127.0.0.1", port)
    assert.are.equal("finished three", c:recv(100))
    server:shutdown()
    server:server_close()
  end))

  it("reports a handler's error and goes on with the datagrams behind it", bounded(10, function()
    local errs, shut = {}, 0
    local Server = socketserver.UDPServer:extend()
    function Server:handle_error(request, addr, err)
      errs[#errs + 1] = {request[1], addr[1], addr[2], err}
    end
    function Server:shutdown_request(request) shut = shut + 1 end
    local server = Server({"127.0.0.1", 0}, function(request, addr)
      if request[1] == "boom" then error("handler failed on boom") end
      echo(request, addr)
    end)
    local c = udp_client()
    local port = server.server_address[2]
    for _, d in ipairs({"a", "boom", "b", "boom", "c"}) do c:sendto(d, "127.0.0.1", port) end
    server:start()
    assert.are.same({a = true, b = true, c = true}, replies(c, 3))
    assert.are.equal(2, #errs)
    local host, cport = c:getsockname()
    assert.are.same({"boom", host, cport}, {errs[1][1], errs[1][2], errs[1][3]})
    assert.matches("handler failed on boom", errs[1][4], 1, true)
    assert.matches("traceback", errs[1][4], 1, true)
    assert.are.equal(5, shut)          -- after an error too, as Python's
    server:shutdown()
    server:server_close()
  end))

  it("stops at shutdown() at once, and calls service_actions, while datagrams keep coming", bounded(15, function()
    local served, actions = 0, 0
    local Server = socketserver.UDPServer:extend()
    function Server:service_actions() actions = actions + 1 end
    -- a handler with some work, so that the flood from another process
    -- keeps the queue from ever running dry
    local server = Server({"127.0.0.1", 0}, function(request)
      served = served + 1
      local n = 0
      for i = 1, 5000 do n = n + #request[1] + i end
    end)
    local task = server:start()
    local flood = support.script(([[
      local socket = require "socket"
      local c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      print("flooding") io.stdout:flush()
      local deadline = require("wirelab").now() + 10
      while require("wirelab").now() < deadline do
        for _ = 1, 100 do pcall(c.sendto, c, "x", "127.0.0.1", %d) end
      end]]):format(server.server_address[2]))
    support.wait_until("the server serving the flood", function() return served > 2000 end, 5)
    local a0 = actions
    support.wait_until("service_actions during the flood", function() return actions > a0 + 10 end, 5)
    local t0 = wirelab.now()
    server:shutdown()
    local took = wirelab.now() - t0
    assert.is_true(task:done())
    assert.is_true(took < 0.2, ("shutdown took %.3f s"):format(took))
    support.stop(flood)
    server:server_close()
  end))

  it("raises a verify_request error out of serve_forever, as Python does", bounded(10, function()
    local Server = socketserver.UDPServer:extend()
    function Server:verify_request() error("verify exploded") end
    local server = Server({"127.0.0.1", 0}, echo)
    local task = server:start()
    local c = udp_client()
    c:sendto("x", "127.0.0.1", server.server_address[2])
    local ok, err = pcall(task.join, task, 5)
    assert.is_false(ok)
    assert.matches("verify exploded", tostring(err), 1, true)
    server:server_close()
  end))

  it("takes every datagram through an overridden get_request or a replaced recvfrom", bounded(10, function()
    local gets = 0
    local Server = socketserver.UDPServer:extend()
    function Server:get_request()
      gets = gets + 1
      return socketserver.UDPServer.get_request(self)
    end
    local server = Server({"127.0.0.1", 0}, echo)
    local c = udp_client()
    for i = 1, 20 do c:sendto("g" .. i, "127.0.0.1", server.server_address[2]) end
    server:start()
    local distinct = 0
    for _ in pairs(replies(c, 20)) do distinct = distinct + 1 end
    assert.are.equal(20, distinct)
    assert.are.equal(20, gets)
    server:shutdown()
    server:server_close()
    -- recvfrom replaced on every socket (what --trace does): the plain
    -- server calls it for each datagram
    local Socket, recvfrom, seen = socket.Socket, socket.Socket.recvfrom, 0
    Socket.recvfrom = function(...) seen = seen + 1 return recvfrom(...) end
    support.defer(function() Socket.recvfrom = recvfrom end)
    local plain = socketserver.UDPServer({"127.0.0.1", 0}, echo)
    for i = 1, 20 do c:sendto("r" .. i, "127.0.0.1", plain.server_address[2]) end
    plain:start()
    replies(c, 20)
    Socket.recvfrom = recvfrom
    assert.is_true(seen >= 20, "recvfrom seen " .. seen .. " times")
    plain:shutdown()
    plain:server_close()
  end))
end)
