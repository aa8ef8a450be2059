-- socketserver: Python's socketserver over wirelab tasks (API.md section 4).
-- The concurrency semantics are Python's, because the difference is the
-- lesson: TCPServer and UDPServer handle one request at a time inside
-- serve_forever; the Threading servers give each request a task; the
-- Forking servers a child process.
local wirelab = require "wirelab"
local socket = require "socket"
local class = require "wirelab.class"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"

local type, pcall, xpcall, tostring = type, pcall, xpcall, tostring

local M = {}

-- A request's error travels out through several handlers (the handler's,
-- the server's); it carries its traceback from the first one, once.
local Traced = {__tostring = function(t) return t.traceback end}

-- traceback(e[, level]): the message handler of every request: e and the
-- traceback where it was raised, or e itself when it already has one
local function traceback(e, level)
  if getmetatable(e) == Traced then return e end
  local msg = type(e) == "string" and e or tostring(e)
  return setmetatable({error = e, traceback = debug.traceback(msg, level or 2)}, Traced)
end
M.traceback = traceback

-- ---- servers ------------------------------------------------------------

local BaseServer = class.Object:extend()
M.BaseServer = BaseServer
BaseServer.timeout = nil

-- A plain function handler(request, client_address, server) is accepted too.
local function check_handler(handler)
  if type(handler) ~= "table" and type(handler) ~= "function" then
    error("bad argument #2 to 'server' (handler class or function expected, got " .. type(handler) .. ")", 3)
  end
  return handler
end

-- the servers made, for wirelab.status(): weak, a forgotten server goes
local servers = setmetatable({}, {__mode = "k"})
M._servers = servers

function BaseServer:init(server_address, handler)
  self.server_address = server_address
  self.RequestHandlerClass = check_handler(handler)
  self._handler = handler
  servers[self] = true
  self._is_shut_down = wirelab.event()
  self._is_shut_down:set()
  self._shutdown_request = false
end

local UDPServer          -- below: its get_request is the datagram path's

function BaseServer:server_activate() end
function BaseServer:service_actions() end
function BaseServer:handle_timeout() end
function BaseServer:verify_request(request, client_address) return true end

-- serve_forever([poll_interval]): until shutdown(); waits for a client with
-- the socket's readiness, so one slow client never holds up the check.
function BaseServer:serve_forever(poll_interval)
  poll_interval = poll_interval or 0.5
  self._is_shut_down:clear()
  self._serve_task = wirelab.current()
  local ok, err = pcall(function()
    while not self._shutdown_request do
      self._in_select = true
      local wok, ready = pcall(self.socket.wait_readable, self.socket, poll_interval)
      self._in_select = false
      if self._shutdown_request then break end
      -- EINTR without a shutdown: Ctrl-C (Python's KeyboardInterrupt)
      if not wok then error(ready, 0) end
      if ready and not self:_serve_datagrams() then self:_handle_request_noblock() end
      self:service_actions()
    end
  end)
  self._in_select = false
  self._shutdown_request = false
  self._serve_task = nil
  self._is_shut_down:set()
  if not ok then error(err, 0) end
end

-- start(): serve_forever in a background task; returns the task.
function BaseServer:start(poll_interval)
  self._is_shut_down:clear()      -- shutdown() right after start() waits for it
  self._bg = wirelab.spawn(self.serve_forever, self, poll_interval)
  return self._bg
end

-- shutdown(): stop serve_forever (from another task) and wait until it has.
function BaseServer:shutdown()
  self._shutdown_request = true
  if self._serve_task and self._in_select then self._serve_task:interrupt() end
  if self._serve_task == wirelab.current() then return end
  self._is_shut_down:wait()
end

-- handle_request(): one request, waiting at most self.timeout (or the
-- socket's timeout), else handle_timeout().
function BaseServer:handle_request()
  local timeout = self.socket:gettimeout()
  if timeout == nil then timeout = self.timeout
  elseif self.timeout ~= nil then timeout = math.min(timeout, self.timeout) end
  local deadline = timeout and wirelab.now() + timeout
  while true do
    local left = deadline and math.max(0, deadline - wirelab.now())
    if self.socket:wait_readable(left) then
      return self:_handle_request_noblock()
    end
    if deadline and wirelab.now() >= deadline then
      return self:handle_timeout()
    end
  end
end

function BaseServer:_handle_request_noblock()
  local ok, request, client_address = pcall(self.get_request, self)
  if not ok then
    if errors.is(request, "EAGAIN") or errors.is(request, "ETIMEDOUT") then return end
    if errors.is(request, "EINTR") or type(request) == "string" then error(request, 0) end
    -- e.g. EMFILE: the client has been shed; report and go on serving
    io.stderr:write("socketserver: get_request: ", tostring(request), "\n")
    return
  end
  if self:verify_request(request, client_address) then
    local pok, err = xpcall(self.process_request, traceback, self, request, client_address)
    if not pok then
      self:handle_error(request, client_address, tostring(err))
      self:shutdown_request(request)
    end
  else
    self:shutdown_request(request)
  end
end

-- ---- the datagram path ------------------------------------------------------
-- After one readiness wait, serve_forever serves the datagrams already
-- queued, up to DRAIN_MAX, before it calls service_actions and waits
-- again: a wait, a poll(2) and three pcalls per datagram were most of a
-- UDPServer's cost. Each datagram is a request as _handle_request_noblock
-- makes it: verify_request, process_request (finish_request, the handler,
-- shutdown_request, close_request) are each called unless they are the
-- stock ones, which are run inline. They are looked up once per wait,
-- as Python looks _handle_request_noblock up, not per datagram (that was
-- half of what is left): a method set on the server or its class while
-- a burst is being served is called from the next wait, at most
-- DRAIN_MAX datagrams later. get_request must be UDPServer's (the receive
-- that cannot wait is the point) and recvfrom the C one (--trace
-- replaces it, and then every datagram takes the ordinary path).

local DRAIN_MAX = 64
local core = require "socket.core"
local Socket = core.methods
local nowait = core._recvfrom_nowait
-- where a datagram is, for its error
local GET <const> = 1
local VERIFY <const> = 2
local PROCESS <const> = 3

-- drain(self, st): serves queued datagrams, st = {request, client_address,
-- stage} of the one being served; returns when the queue is empty, after
-- DRAIN_MAX, or at a shutdown request
local function drain(self, st)
  local sock, max = self.socket, self.max_packet_size
  local verify, process = self.verify_request, self.process_request
  local shutdown_request = self.shutdown_request
  local stock_verify = verify == BaseServer.verify_request
  -- the stock process_request and finish_request: the handler, then
  -- shutdown_request; UDPServer's shutdown_request and close_request do
  -- nothing for a datagram
  local handler = process == BaseServer.process_request
    and self.finish_request == BaseServer.finish_request and self.RequestHandlerClass
  local quiet = shutdown_request == UDPServer.shutdown_request
    and self.close_request == UDPServer.close_request
  for _ = 1, DRAIN_MAX do
    if self._shutdown_request then return end
    st[3] = GET
    local data, host, port = nowait(sock, max)
    if data == nil then return end
    local request, client_address = {data, sock}, {host, port}
    st[1] = request
    st[2] = client_address
    if stock_verify then
      st[3] = PROCESS
    else
      st[3] = VERIFY
      if not verify(self, request, client_address) then
        shutdown_request(self, request)
        goto next
      end
      st[3] = PROCESS
    end
    if not handler then
      process(self, request, client_address)
    else
      handler(request, client_address, self)
      if not quiet then shutdown_request(self, request) end
    end
    ::next::
  end
end

-- _serve_datagrams() -> true when it served the socket's queue, false
-- when this server takes the ordinary path
function BaseServer:_serve_datagrams()
  if self.get_request ~= UDPServer.get_request or type(self.socket) ~= "userdata"
     or Socket.recvfrom ~= core._recvfrom
     or self._handle_request_noblock ~= BaseServer._handle_request_noblock then
    return false
  end
  -- an error ends the burst: the datagrams behind it wait for the next
  -- wait, which returns at once
  local st = {}
  local ok, err = xpcall(drain, traceback, self, st)
  if ok then return true end
  local request, client_address, stage = st[1], st[2], st[3]
  if stage == PROCESS then           -- as _handle_request_noblock's xpcall
    self:handle_error(request, client_address, tostring(err))
    self:shutdown_request(request)
    return true
  end
  local e = err.error
  if stage == VERIFY or errors.is(e, "EINTR") or type(e) == "string" then error(e, 0) end
  -- e.g. EMFILE: the client has been shed; report and go on serving
  io.stderr:write("socketserver: get_request: ", tostring(e), "\n")
  return true
end

function BaseServer:process_request(request, client_address)
  self:finish_request(request, client_address)
  self:shutdown_request(request)
end

-- a handler class is called to make its instance, a plain function to run
function BaseServer:finish_request(request, client_address)
  self.RequestHandlerClass(request, client_address, self)
end

-- handle_error: print the traceback (Python's format) and keep serving.
function BaseServer:handle_error(request, client_address, err)
  local addr = type(client_address) == "table"
    and ("('%s', %s)"):format(tostring(client_address[1]), tostring(client_address[2])) or tostring(client_address)
  io.stderr:write(("----------------------------------------\n" ..
    "Exception occurred during processing of request from %s\n%s\n" ..
    "----------------------------------------\n"):format(addr, tostring(err)))
end

function BaseServer:server_close() end
function BaseServer:close_request(request) end
function BaseServer:shutdown_request(request) self:close_request(request) end
BaseServer.__close = function(self) self:server_close() end

local function address_text(a)
  local host, port = a[1] or "", a[2] or 0
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  return host .. ":" .. tostring(port)
end

-- info() -> {class, address, handler, clients, closed}: what the server is
-- and does now, for tostring and wirelab.status(). clients counts the
-- connections open on its port in this process (a threading server's
-- tasks, the one a plain server serves), or its children when forking;
-- nil for a datagram server.
function BaseServer:info()
  local sock = rawget(self, "socket")
  local h = self._handler
  local r = {
    class = class.name_of(getmetatable(self)) or "server",
    address = address_text(self.server_address or {}),
    handler = type(h) == "function" and (class.global_name(h) or "function")
              or class.name_of(h) or "handler",
    closed = sock == nil or sock.closed,
  }
  if self.active_children then
    r.clients = 0
    for _ in pairs(self.active_children) do r.clients = r.clients + 1 end
  elseif sock and not r.closed and self.socket_type == socket.SOCK_STREAM then
    local port = self.server_address and self.server_address[2]
    r.clients = 0
    for _, row in ipairs(socket._open()) do
      if row.raddr and row.laddr and row.laddr:match(":(%d+)$") == tostring(port) then
        r.clients = r.clients + 1
      end
    end
  end
  return r
end

function BaseServer:__tostring()
  local i = self:info()
  local clients = i.clients and (", %d client%s"):format(i.clients, i.clients == 1 and "" or "s") or ""
  return ("<%s %s %s%s%s>"):format(i.class, i.address, i.handler, clients,
                                  i.closed and ", closed" or "")
end

-- TCPServer: one request at a time, in the task running serve_forever.
local TCPServer = BaseServer:extend()
M.TCPServer = TCPServer
TCPServer.address_family = socket.AF_INET
TCPServer.socket_type = socket.SOCK_STREAM
TCPServer.request_queue_size = 5
TCPServer.allow_reuse_address = false
TCPServer.allow_reuse_port = false

function TCPServer:init(server_address, handler, bind_and_activate)
  BaseServer.init(self, server_address, handler)
  if type(server_address) ~= "table" then
    error("bad argument #1 to 'server' ({host, port} expected)", 3)
  end
  local host = server_address[1] or ""
  local family = self.address_family
  if family == socket.AF_INET and host:find(":", 1, true) then family = socket.AF_INET6 end
  self.address_family = family
  self.socket = socket.socket(family, self.socket_type)
  if bind_and_activate ~= false then
    local ok, err = pcall(function()
      self:server_bind()
      self:server_activate()
    end)
    if not ok then
      self:server_close()
      error(err, 3)
    end
  end
end

function TCPServer:server_bind()
  if self.allow_reuse_address then
    self.socket:setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  end
  if self.allow_reuse_port then
    self.socket:setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
  end
  self.socket:bind(self.server_address[1] or "", self.server_address[2] or 0)
  local host, port = self.socket:getsockname()
  self.server_address = {host, port}
end

function TCPServer:server_activate() self.socket:listen(self.request_queue_size) end
function TCPServer:server_close() self.socket:close() end
function TCPServer:fileno() return self.socket:fileno() end

function TCPServer:get_request()
  local conn, host, port = self.socket:accept()
  return conn, {host, port}
end

function TCPServer:shutdown_request(request)
  pcall(request.shutdown, request, socket.SHUT_WR)
  self:close_request(request)
end

function TCPServer:close_request(request) request:close() end

-- UDPServer: each datagram is a request {data, socket}.
UDPServer = TCPServer:extend()
M.UDPServer = UDPServer
UDPServer.socket_type = socket.SOCK_DGRAM
UDPServer.max_packet_size = 8192

function UDPServer:server_activate() end

function UDPServer:get_request()
  local data, host, port = self.socket:recvfrom(self.max_packet_size)
  return {data, self.socket}, {host, port}
end

function UDPServer:shutdown_request(request) self:close_request(request) end
function UDPServer:close_request(request) end

-- ---- mixins ---------------------------------------------------------------

-- ThreadingMixIn: every request in its own task (the counterpart of a
-- thread); server_close waits for them, as Python's block_on_close does.
local ThreadingMixIn = {daemon_threads = false, block_on_close = true}
M.ThreadingMixIn = ThreadingMixIn

function ThreadingMixIn:process_request_thread(request, client_address)
  local ok, err = xpcall(self.finish_request, traceback, self, request, client_address)
  if not ok then self:handle_error(request, client_address, tostring(err)) end
  self:shutdown_request(request)
end

-- With the stock process_request_thread and finish_request, the task runs
-- the handler itself: a class handler's instance is made and its setup,
-- handle and finish run from here, not through finish_request, the class's
-- call and init. An idle connection's task is parked under every frame of
-- that chain (each a call frame of 64 bytes and its stack slots, with
-- 10,000 connections held); this way it is four frames shallower. What
-- runs, and what an error reaches (handle_error, after finish), is the same.
local stock_thread, stock_finish      -- set below, once both are defined
local BaseRequestHandler              -- below: the stock init

local function class_handler_thread(self, H, request, client_address)
  local h = setmetatable({}, H)
  h.request, h.client_address, h.server = request, client_address, self
  local ok, err = xpcall(h.setup, traceback, h)
  if ok then
    ok, err = xpcall(h.handle, traceback, h)
    -- finish runs after a failed handle too; its own error wins, as when
    -- init's finish raises
    local fok, ferr = xpcall(h.finish, traceback, h)
    if not fok then ok, err = false, ferr end
  end
  if not ok then self:handle_error(request, client_address, tostring(err)) end
  self:shutdown_request(request)
end

local function function_handler_thread(self, fn, request, client_address)
  local ok, err = xpcall(fn, traceback, request, client_address, self)
  if not ok then self:handle_error(request, client_address, tostring(err)) end
  self:shutdown_request(request)
end

-- the task's function and its first two arguments
local function thread_of(self)
  if self.process_request_thread ~= stock_thread or self.finish_request ~= stock_finish then
    return self.process_request_thread, self
  end
  local H = self.RequestHandlerClass
  if type(H) == "function" then return function_handler_thread, self, H end
  local mt = getmetatable(H)
  if type(H) == "table" and H.init == BaseRequestHandler.init and mt
     and mt.__call == getmetatable(BaseRequestHandler).__call then
    return class_handler_thread, self, H
  end
  return self.process_request_thread, self
end

function ThreadingMixIn:process_request(request, client_address)
  self._threads = self._threads or {}
  local fn, a, b = thread_of(self)
  local t
  if b ~= nil then t = wirelab.spawn(fn, a, b, request, client_address)
  else t = wirelab.spawn(fn, a, request, client_address) end
  self._threads[t] = true
  -- forget finished tasks, so a long-running server does not grow
  local n = 0
  for task in pairs(self._threads) do
    if task:done() then self._threads[task] = nil else n = n + 1 end
    if n > 64 then break end
  end
end

function ThreadingMixIn:server_close()
  self.socket:close()
  if self.block_on_close and not self.daemon_threads and self._threads then
    for task in pairs(self._threads) do pcall(task.join, task) end
  end
  self._threads = nil
end

-- ForkingMixIn: every request in a child process, which serves it and
-- exits; the parent reaps children in service_actions and on close.
local ForkingMixIn = {max_children = 40, block_on_close = true}
M.ForkingMixIn = ForkingMixIn

function ForkingMixIn:collect_children(blocking)
  if not self.active_children then return end
  for pid in pairs(self.active_children) do
    local code, sig = wirelab.waitpid(pid, not blocking)
    if code or sig then self.active_children[pid] = nil end
  end
end

function ForkingMixIn:service_actions() self:collect_children(false) end

function ForkingMixIn:process_request(request, client_address)
  self.active_children = self.active_children or {}
  local n = 0
  for _ in pairs(self.active_children) do n = n + 1 end
  while n >= self.max_children do           -- Python blocks on the oldest too
    wirelab.sleep(0.01)
    self:collect_children(false)
    n = 0
    for _ in pairs(self.active_children) do n = n + 1 end
  end
  local pid = wirelab.fork()
  if pid ~= 0 then
    self.active_children[pid] = true
    self:close_request(request)
    return
  end
  -- the child: serve this request and exit, never returning to the loop
  local status = 0
  if self.socket_type == socket.SOCK_STREAM then self.socket:close() end
  local ok, err = xpcall(self.finish_request, traceback, self, request, client_address)
  if not ok then
    self:handle_error(request, client_address, tostring(err))
    status = 1
  end
  pcall(self.shutdown_request, self, request)
  wirelab._exit(status)
end

function ForkingMixIn:server_close()
  self.socket:close()
  if self.block_on_close then self:collect_children(true) end
end

M.ThreadingTCPServer = TCPServer:extend():include(ThreadingMixIn)
M.ThreadingUDPServer = UDPServer:extend():include(ThreadingMixIn)
M.ForkingTCPServer = TCPServer:extend():include(ForkingMixIn)
M.ForkingUDPServer = UDPServer:extend():include(ForkingMixIn)

-- ---- handlers -------------------------------------------------------------

BaseRequestHandler = class.Object:extend()
M.BaseRequestHandler = BaseRequestHandler
stock_thread, stock_finish = ThreadingMixIn.process_request_thread, BaseServer.finish_request

function BaseRequestHandler:init(request, client_address, server)
  self.request = request
  self.client_address = client_address
  self.server = server
  self:setup()
  local ok, err = xpcall(self.handle, traceback, self)
  self:finish()
  if not ok then error(err, 0) end
end

function BaseRequestHandler:setup() end
function BaseRequestHandler:handle() end
function BaseRequestHandler:finish() end

-- StreamRequestHandler: rfile and wfile over the connection; wfile is
-- unbuffered, as Python's (wbufsize = 0).
local StreamRequestHandler = BaseRequestHandler:extend()
M.StreamRequestHandler = StreamRequestHandler
StreamRequestHandler.timeout = nil
StreamRequestHandler.disable_nagle_algorithm = false

function StreamRequestHandler:setup()
  self.connection = self.request
  if self.timeout ~= nil then self.connection:settimeout(self.timeout) end
  if self.disable_nagle_algorithm then
    self.connection:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  end
  self.rfile = self.connection:makefile("rb")
  self.wfile = self.connection:makefile("wb", {buffering = 0})
end

function StreamRequestHandler:finish()
  if not self.connection.closed then pcall(self.wfile.flush, self.wfile) end
  self.wfile:close()
  self.rfile:close()
end

-- DatagramRequestHandler: rfile holds the datagram, wfile goes back.
local DatagramRequestHandler = BaseRequestHandler:extend()
M.DatagramRequestHandler = DatagramRequestHandler

local Buffer = {}
Buffer.__index = Buffer
function Buffer:write(...)
  local parts, n = self.parts, select("#", ...)
  if n == 1 then                     -- the common call, once per datagram
    local s = ...
    parts[#parts + 1] = type(s) == "string" and s or tostring(s)
    return self
  end
  for i = 1, n do parts[#parts + 1] = tostring((select(i, ...))) end
  return self
end
function Buffer:getvalue()
  local parts = self.parts
  if #parts == 1 then return parts[1] end
  return table.concat(parts)
end
function Buffer:flush() return self end
function Buffer:close() end

function DatagramRequestHandler:setup()
  self.packet, self.socket = self.request[1], self.request[2]
  self.rfile = reader.from_string(self.packet)
  self.wfile = setmetatable({parts = {}}, Buffer)
end

function DatagramRequestHandler:finish()
  local out = self.wfile:getvalue()
  if out ~= "" then self.socket:sendto(out, self.client_address[1], self.client_address[2]) end
end

return class.named(M)
