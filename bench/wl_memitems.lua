-- wl_memitems.lua: what an idle connection costs in Lua memory, item by
-- item. Each item is made N times in this one process and measured as the
-- growth of the Lua heap (collectgarbage("count") after full collections,
-- so live objects only; the figures do not depend on the machine's load).
-- The C side (the socket struct with its poll handle, the HTTP parser's
-- and writer's buffers) and the allocator's overhead are not in it: RSS
-- says those, measured from outside with 10,000 connections (bench/README,
-- "Memory"). Connections are real, on loopback: the client ends live in
-- this process too, so their cost (the first row) is taken off every row
-- that has clients.
-- Usage: wirelab bench/wl_memitems.lua [N]   (N default 2000, at most
-- about 4,000: the first row's listener never accepts, and its queue is
-- net.core.somaxconn; needs about 2 N + 100 descriptors)
local wirelab = require "wirelab"
local socket = require "socket"
local socketserver = require "socketserver"
local hs = require "http.server"

local N = tonumber(arg[1] or "2000")

local function settle()
  for _ = 1, 5 do wirelab.sleep(0.02) end
  collectgarbage()
  collectgarbage()
end

-- measure(make, undo) -> Lua bytes per item; make() builds the N items
-- (and whatever they need), undo() lets them all go
local function measure(make, undo)
  settle()
  local lua0 = collectgarbage("count")
  make()
  settle()
  local lua1 = collectgarbage("count")
  undo()
  settle()
  return (lua1 - lua0) * 1024 / N
end

-- N client connections to port, held in a table; each waits until the
-- server side accepted it when `accepted` (a function returning the count)
-- is given
local function connect_all(port, accepted)
  local cs = {}
  for i = 1, N do cs[i] = socket.create_connection("127.0.0.1", port) end
  if accepted then
    local t0 = wirelab.now()
    while accepted() < N and wirelab.now() - t0 < 10 do wirelab.sleep(0.01) end
    assert(accepted() >= N, "the server accepted only " .. accepted())
  end
  return cs
end

local function close_all(cs)
  for _, c in ipairs(cs) do c:close() end
end

-- sends one HTTP request on every client and reads its response
local function request_all(cs)
  for _, c in ipairs(cs) do c:sendall("GET /idle HTTP/1.1\r\nHost: a\r\n\r\n") end
  for _, c in ipairs(cs) do
    local buf = ""
    while not buf:find("hello /idle", 1, true) do buf = buf .. c:recv(65536) end
  end
end

local rows = {}
local function row(name, lua, note)
  rows[#rows + 1] = {name, lua, note or ""}
end

-- the client ends alone: connected to a listener that never accepts
local client_lua
do
  local l = socket.create_server("127.0.0.1", 0, {backlog = N + 64})
  local _, port = l:getsockname()
  local cs
  client_lua = measure(function() cs = connect_all(port) end,
    function() close_all(cs) cs = nil end)
  l:close()
  row("a socket object, connected, no task (its userdata)", client_lua)
end

-- a plain Lua coroutine suspended in a yield: the Lua 5.4 floor
do
  local cos
  local lua = measure(function()
    cos = {}
    for i = 1, N do
      local co = coroutine.create(function() coroutine.yield() end)
      coroutine.resume(co)
      cos[i] = co
    end
  end, function() cos = nil end)
  row("a bare Lua coroutine, suspended (the Lua 5.4 floor)", lua)
end

-- a task parked on a wait queue: coroutine, its stack, the task userdata
do
  local q = require("wirelab.core").waitq()
  local lua = measure(function()
    for _ = 1, N do wirelab.spawn(function() q:wait() end) end
  end, function() q:notify_all() end)
  row("a task parked in a wait (coroutine, stack, task)", lua)
end

-- server side of N connections, each its own task; serve(conn) is what
-- the accept loop spawns
local function server_rows(name, start, kept)
  local live, srv, port = 0, nil, nil
  local cs
  local lua = measure(function()
    srv, port = start(function(d) live = live + d end)
    cs = connect_all(port, function() return live end)
    if kept then request_all(cs) end
  end, function()
    close_all(cs)
    cs = nil
    local t0 = wirelab.now()
    while live > 0 and wirelab.now() - t0 < 10 do wirelab.sleep(0.01) end
    srv()
  end)
  row(name, lua - client_lua, "clients' own cost taken off")
end

-- the raw loop of wl_idle.lua: accept, spawn a task parked in recv
server_rows("raw: a task parked in recv(65536) on an accepted socket", function(count)
  local l = socket.create_server("127.0.0.1", 0, {backlog = 4096})
  local _, port = l:getsockname()
  local acceptor = wirelab.spawn(function()
    while true do
      local conn = l:accept()
      wirelab.spawn(function()
        count(1)
        pcall(conn.recv, conn, 65536)
        conn:close()
        count(-1)
      end)
    end
  end)
  return function() acceptor:cancel() l:close() end, port
end)

-- socketserver servers, run in a task of their own
local function ss_start(Server, Handler)
  return function(count)
    local H = Handler:extend()
    local setup, finish = H.setup, H.finish
    function H:setup() count(1) return setup(self) end
    function H:finish() count(-1) return finish(self) end
    local S = Server:extend({request_queue_size = 4096, daemon_threads = true,
      header_timeout = 60, keepalive_timeout = 60})
    local srv = S({"127.0.0.1", 0}, H)
    local t = wirelab.spawn(srv.serve_forever, srv, 0.5)
    return function() srv:shutdown() srv:server_close() t:join() end, srv.server_address[2]
  end
end

local Recv = socketserver.BaseRequestHandler:extend()
function Recv:handle()
  while self.request:recv(65536) ~= "" do end
end
server_rows("socketserver.ThreadingTCPServer, BaseRequestHandler looping recv",
  ss_start(socketserver.ThreadingTCPServer, Recv))

local Lines = socketserver.StreamRequestHandler:extend()
function Lines:handle()
  for line in self.rfile:lines("L") do self.wfile:write(line) end
end
server_rows("socketserver.ThreadingTCPServer, StreamRequestHandler (rfile:lines, wfile)",
  ss_start(socketserver.ThreadingTCPServer, Lines))

local Hello = hs.BaseHTTPRequestHandler:extend()
function Hello:log_message() end
function Hello:do_GET()
  local body = "hello " .. self.path
  self:send_response(200)
  self:send_header("Content-Type", "text/plain")
  self:send_header("Content-Length", #body)
  self:end_headers()
  self.wfile:write(body)
end
server_rows("http.server.ThreadingHTTPServer, fresh (no request yet)",
  ss_start(hs.ThreadingHTTPServer, Hello))
server_rows("http.server.ThreadingHTTPServer, idle after one keep-alive request",
  ss_start(hs.ThreadingHTTPServer, Hello), true)

print(("%d of each; Lua heap per item, bytes, after a full collection"):format(N))
print("| item | Lua heap, B | |")
print("|---|---:|---|")
for _, r in ipairs(rows) do
  print(("| %s | %d | %s |"):format(r[1], math.floor(r[2] + 0.5), r[3]))
end
os.exit(0)
