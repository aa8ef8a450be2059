-- prompt_spec: what the prompt shows, piece by piece, on real objects:
-- Tab's candidates (wirelab.complete), help() read from docs/
-- (wirelab.help), wirelab.status() and the state each object prints. The
-- terminal itself is driven in repl_spec.
local wirelab = require "wirelab"
local socket = require "socket"
local socketserver = require "socketserver"
local process = require "process"
local complete = require "wirelab.complete"
local help = require "wirelab.help"

local support = require "support"
local bounded = support.bounded

-- an echo server as a prompt user writes it: a global handler class
-- (in _G, where the prompt's globals are; a spec has an environment of
-- its own)
local function echo_server()
  local EchoHandler = socketserver.BaseRequestHandler:extend()
  rawset(_G, "EchoHandler", EchoHandler)
  function EchoHandler:handle()
    while true do
      local d = self.request:recv(4096)
      if d == "" then return end
      self.request:sendall(d)
    end
  end
  local srv = socketserver.ThreadingTCPServer({"127.0.0.1", 0}, EchoHandler)
  srv:start()
  support.defer(function()
    srv:shutdown()
    srv:server_close()
    rawset(_G, "EchoHandler", nil)
  end)
  return srv, srv.server_address[2]
end

local function has(list, want)
  for _, v in ipairs(list) do if v == want then return true end end
  return false
end

describe("Tab completion", function()
  it("offers globals and keywords; a function's name ends in '('", function()
    local env = {print = print, pairs = pairs, prefix_value = 1}
    local c = complete.candidates("pr", "pr", env)
    assert.are.same({"prefix_value", "print("}, c)
    assert.is_true(has(complete.candidates("whi", "whi", {}), "while"))
    assert.is_true(has(complete.candidates("x = lo", "lo", {}), "local"))
  end)

  it("offers the fields after '.' and only methods after ':', through __index chains",
     bounded(10, function()
    local env = {socket = socket}
    local c = complete.candidates("socket.create_", "socket.create_", env)
    assert.are.same({"socket.create_connection(", "socket.create_server("}, c)
    assert.is_true(has(complete.candidates("socket.AF_", "socket.AF_", env), "socket.AF_INET6"))
    -- a socket is userdata whose methods sit behind its metatable
    local s <close> = socket.socket()
    c = complete.candidates("s:send", "s:send", {s = s})
    assert.is_true(has(c, "s:sendall("), table.concat(c, " "))
    assert.is_true(has(c, "s:sendto("))
    assert.is_false(has(complete.candidates("s:", "s:", {s = s}), "s:family("))
    -- a server: its own class, the mixin, TCPServer, BaseServer
    local srv = echo_server()
    c = complete.candidates("srv:se", "srv:se", {srv = srv})
    for _, m in ipairs{"srv:serve_forever(", "srv:server_close(", "srv:server_bind(", "srv:service_actions("} do
      assert.is_true(has(c, m), m .. " in " .. table.concat(c, " "))
    end
    assert.is_true(has(complete.candidates("srv:proc", "srv:proc", {srv = srv}), "srv:process_request("))
    -- fields of a field, and strings index the string library
    c = complete.candidates("srv.socket:getsockn", "srv.socket:getsockn", {srv = srv})
    assert.are.same({"srv.socket:getsockname("}, c)
    assert.are.same({"string.format("}, complete.candidates("string.form", "string.form", {string = string}))
  end))

  it("offers module names inside require \"...\", closing the quote when one is left", function()
    local c = complete.candidates('local s = require "sock', "sock")
    assert.are.same({"socket", "socketserver"}, c)
    assert.are.same({'socketserver"'}, complete.candidates('require("socketse', "socketse"))
    assert.is_true(has(complete.candidates("require 'http.", "http."), "http.server"))
    -- the C halves are not for users
    assert.is_false(has(complete.candidates('require "socket.c', "socket.c"), "socket.core"))
  end)

  it("calls nothing to find names: no __index function, no __pairs runs", function()
    local calls = 0
    local sneaky = setmetatable({}, {__index = function() calls = calls + 1 end,
                                     __pairs = function() calls = calls + 1 end})
    assert.are.same({}, complete.candidates("t.x", "t.x", {t = sneaky}))
    assert.are.same({}, complete.candidates("t.a.b", "t.a.b", {t = sneaky}))
    assert.are.equal(0, calls)
  end)
end)

describe("help()", function()
  it("lists the modules, a line each, from docs/README.md", function()
    local text = help.text()
    for _, m in ipairs{"wirelab", "socket", "socketserver", "http.server", "http.client", "process", "lab"} do
      assert.matches("\n  " .. m:gsub("%.", "%%.") .. "%s+%S", text)
    end
    assert.matches("status%(%)", text)
  end)

  it("shows a module's entries, a function's, an object's kind's, and a name's", bounded(10, function()
    local t = help.text(socket)
    assert.matches("socket%.create_connection%(host, port", t)
    assert.matches("s:sendall%(data", t)
    t = help.text(socket.create_connection)
    assert.matches("^socket%.create_connection%(host, port", t)
    assert.matches("\n    %S", t)                      -- its one-line summary
    local s <close> = socket.socket()
    assert.matches("^s:sendall%(", help.text(s.sendall))
    assert.matches("s:recv%(bufsize", help.text(s))
    assert.matches("^s:sendall%(", help.text("sendall"))
    assert.matches("server:serve_forever", help.text(socketserver.ThreadingTCPServer.serve_forever))
    assert.matches("task:join", help.text(wirelab.current()))
    assert.matches("Lua's own", help.text(print))
    local proxy <close> = require("netem").udp_proxy{target = {"127.0.0.1", 9}}
    assert.matches("proxy:events%(", help.text(proxy))
    assert.matches("nothing in the reference", help.text("no_such_thing_here"))
  end))

  it("finds every entry of the reference by its name: help and docs never disagree", function()
    local fs = require "wirelab.fs"
    local count = 0
    for _, e in ipairs(fs.listdir(support.DIR .. "/../docs")) do
      local name = type(e) == "table" and e.name or e
      if name:match("%.md$") then
        local text = support.read(support.DIR .. "/../docs/" .. name)
        local fenced = false
        for line in text:gmatch("[^\n]*") do
          if line:match("^```") then fenced = not fenced end
          local sig = not fenced and line:match("^###%s+(.-)%s*$")
          if sig then
            local callee = sig:match("^([%w_.:]+)")
            local shown = help.text(callee)
            assert.is_truthy(shown:find(sig, 1, true), name .. ": help(\"" .. callee .. "\") lacks " .. sig)
            count = count + 1
          end
        end
      end
    end
    assert.is_true(count > 200, "only " .. count .. " entries")
  end)
end)

describe("the state objects print", function()
  it("sockets: protocol, addresses and TCP state, as ss shows them", bounded(10, function()
    local l <close> = socket.create_server("127.0.0.1", 0)
    local port = select(2, l:getsockname())
    assert.are.equal(("<tcp 127.0.0.1:%d LISTEN>"):format(port), tostring(l))
    local c <close> = socket.create_connection("127.0.0.1", port)
    local a <close> = l:accept()
    local cport = select(2, c:getsockname())
    assert.are.equal(("<tcp 127.0.0.1:%d -> 127.0.0.1:%d ESTABLISHED>"):format(port, cport), tostring(a))
    c:close()
    assert.are.equal("<socket closed>", tostring(c))
    support.wait_until("CLOSE_WAIT", function() return tostring(a):find("CLOSE_WAIT") end, 2)
    local u <close> = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u:bind("::1", 0)
    assert.matches("^<udp6 %[::1%]:%d+>$", tostring(u))
  end))

  it("servers: class, address, handler and clients; tasks: what they wait in", bounded(10, function()
    local srv, port = echo_server()
    assert.are.equal(("<ThreadingTCPServer 127.0.0.1:%d EchoHandler, 0 clients>"):format(port), tostring(srv))
    local c1 <close> = socket.create_connection("127.0.0.1", port)
    local c2 <close> = socket.create_connection("127.0.0.1", port)
    c1:sendall("x"); c1:recv(1)
    c2:sendall("y"); c2:recv(1)
    assert.are.equal(("<ThreadingTCPServer 127.0.0.1:%d EchoHandler, 2 clients>"):format(port), tostring(srv))
    local a, b = socket.socketpair()
    local t = wirelab.spawn(function() return a:recv(10) end)
    wirelab.sleep(0.01)
    assert.matches("^<task %d+ waiting in recv>$", tostring(t))
    local state, id, where = t:state()
    assert.are.same({"waiting", "recv"}, {state, where})
    assert.is_true(math.type(id) == "integer")
    b:send("z")
    assert.are.equal("z", t:join())
    assert.matches("^<task %d+ done>$", tostring(t))
    a:close(); b:close()
  end))

  it("processes: pid, command and how they ended", bounded(10, function()
    local p = process.spawn{"sleep", "5"}
    assert.are.equal(("<process %d sleep 5 running>"):format(p.pid), tostring(p))
    p:kill()
    p:wait(5)
    assert.matches("^<process %d+ sleep 5 killed by signal 15 %(SIGTERM%)>$", tostring(p))
    p:close()
  end))
end)

describe("wirelab.status()", function()
  it("returns what is open now: the connection just made, its server, tasks, children",
     bounded(10, function()
    local srv, port = echo_server()
    local c <close> = socket.create_connection("127.0.0.1", port)
    c:sendall("hello")
    assert.are.equal("hello", c:recv(5))
    local p = process.spawn{"sleep", "5"}
    support.defer(function() p:kill(); p:wait(5); p:close() end)
    local r = wirelab.status()
    local cport = select(2, c:getsockname())
    local mine
    for _, row in ipairs(r.sockets) do
      if row.laddr == "127.0.0.1:" .. cport then mine = row end
    end
    assert.is_table(mine, "the client socket is listed")
    assert.are.same({"tcp", "127.0.0.1:" .. port, "ESTABLISHED", 5, 5, c:fileno()},
                    {mine.proto, mine.raddr, mine.state, mine.bytes_out, mine.bytes_in, mine.fd})
    assert.are.equal(0, mine.send_q)
    local server
    for _, row in ipairs(r.servers) do if row.server == srv then server = row end end
    assert.are.same({"ThreadingTCPServer", "EchoHandler", 1, "127.0.0.1:" .. port},
                    {server.class, server.handler, server.clients, server.address})
    local waiting = {}
    for _, t in ipairs(r.tasks) do waiting[t.waiting or "?"] = true end
    assert.is_true(waiting.wait_readable, "serve_forever waits for a client")
    assert.is_true(waiting.recv, "the handler waits in recv")
    local child
    for _, row in ipairs(r.processes) do if row.pid == p.pid then child = row end end
    assert.are.same({"running", "sleep 5"}, {child.state, child.command})
    -- and as text, for the prompt's status()
    local text = require("wirelab.status").text(r)
    assert.matches("127%.0%.0%.1:" .. cport .. "%s+127%.0%.0%.1:" .. port .. "%s+ESTABLISHED", text)
  end))

  it("gives each socket's queues as s:queues() does: a listener's are the connections not yet accepted",
     bounded(10, function()
    local l <close> = socket.create_server("127.0.0.1", 0)
    local port = select(2, l:getsockname())
    local a <close> = socket.create_connection("127.0.0.1", port)
    local b <close> = socket.create_connection("127.0.0.1", port)
    a:sendall("12345")
    support.wait_until("two connections wait for accept", function() return (l:queues()) == 2 end)
    local rows = {}
    for _, row in ipairs(wirelab.status().sockets) do rows[row.fd] = row end
    assert.are.same({"LISTEN", 2, 0}, {rows[l:fileno()].state, rows[l:fileno()].recv_q, rows[l:fileno()].send_q})
    assert.are.equal(0, rows[a:fileno()].recv_q, "nothing was sent to a")
    local s <close> = l:accept()
    support.wait_until("5 bytes are queued", function() return (s:queues()) == 5 end)
    for _, row in ipairs(wirelab.status().sockets) do rows[row.fd] = row end
    assert.are.same({5, 0}, {rows[s:fileno()].recv_q, rows[s:fileno()].send_q})
    assert.are.same({1, 0}, {rows[l:fileno()].recv_q, rows[l:fileno()].send_q})
  end))
end)
