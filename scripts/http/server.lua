-- http.server: Python's http.server over wirelab sockets and llhttp (API.md
-- section 5). One handler object serves a connection: requests are read
-- with the C parser (http.core), which refuses smuggling and oversized
-- input; each response is built in a buffer and leaves in one write.
local socketserver = require "socketserver"
local socket = require "socket"
local wirelab = require "wirelab"
local core = require "http.core"
local headers_mod = require "http.headers"
local errors = require "wirelab.error"

local type, tostring, pcall, error, select = type, tostring, pcall, error, select
local concat, format = table.concat, string.format

local M = {}
M.DEFAULT_ERROR_MESSAGE = [[<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: %d</p>
        <p>Message: %s.</p>
        <p>Error code explanation: %d - %s.</p>
    </body>
</html>
]]

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                        ['"'] = "&quot;", ["'"] = "&#x27;"}))
end
M.html_escape = html_escape

-- headers: case-insensitive, in arrival order (http.headers)
local new_headers = headers_mod.new
M.Headers = headers_mod.Headers
core.set_headers_class(headers_mod.Headers)
M.new_headers = new_headers

-- ---- servers ----------------------------------------------------------------

local HTTPServer = socketserver.TCPServer:extend()
M.HTTPServer = HTTPServer
HTTPServer.allow_reuse_address = true
HTTPServer.request_queue_size = 128
-- limits (RELIABILITY.md items 6 and 7), each overridable per server
HTTPServer.max_line = 8192
HTTPServer.max_header_bytes = 65536
HTTPServer.max_headers = 100
HTTPServer.max_body = 100 * 1024 * 1024
HTTPServer.max_chunk_ext = 16384
HTTPServer.header_timeout = 30       -- a client must finish its head within this
HTTPServer.keepalive_timeout = 5     -- idle time allowed between requests
HTTPServer.body_timeout = 30         -- longest silence while a body arrives
HTTPServer.max_requests_per_socket = nil

function HTTPServer:server_bind()
  socketserver.TCPServer.server_bind(self)
  self.server_name = self.server_address[1]
  self.server_port = self.server_address[2]
end

M.ThreadingHTTPServer = HTTPServer:extend({daemon_threads = true}):include(socketserver.ThreadingMixIn)

-- ---- the request body, read through the parser ------------------------------

-- Raised through the handler when the client failed mid-body (its 4xx is
-- already sent): the request ends quietly, not as a handler error.
local ABORT = setmetatable({}, {__tostring = function() return "request aborted by the client" end})

local Body = {}
Body.__index = Body

-- fill(h, timeout, phase[, deadline]): reads more bytes into h's buffer;
-- false on EOF, timeout or reset. phase: "idle" (between requests),
-- "head", "body".
local recv                     -- the socket method, found on first use
local function fill(h, timeout, phase, deadline)
  local conn = h.connection
  if deadline then timeout = math.max(0.001, deadline - wirelab.now()) end
  if timeout ~= h._timeout then
    conn:settimeout(timeout)
    h._timeout = timeout
  end
  recv = recv or conn.recv
  local ok, data = pcall(recv, conn, 65536)
  if not ok then
    if errors.is(data, "ETIMEDOUT") and phase ~= "idle" then
      h:_fail(408, "Request Timeout")
    end
    h.close_connection = true
    return false
  end
  if data == "" then
    h.close_connection = true
    h._eof = true
    return false
  end
  local pos = h._pos
  if pos > #h._buf then h._buf = data
  else h._buf = h._buf:sub(pos) .. data end
  h._pos = 1
  return true
end

-- next body bytes of body b, "" once the message has ended
local function body_chunk(b)
  if b.done then return "" end
  local h = b.h
  while true do
    if b.done then return "" end
    local ev, a, c = h._parser:feed(h._buf, h._pos)
    if ev == "body" then
      h._pos = a
      b.received = b.received + #c
      return c
    elseif ev == "end" then
      h._pos = a
      b.done = true
      b.trailers = c
      return ""
    elseif ev == "more" then
      h._pos = a
      if not fill(h, h.server.body_timeout, "body") then
        -- a timeout has had its 408; a body cut short by EOF gets a 400
        if h._eof then h:_fail(400, "Bad Request: incomplete body") end
        b.done, b.failed = true, true
        error(ABORT, 0)
      end
    else                                      -- "error": 413 or 400 mid-body
      b.done, b.failed = true, true
      h:_fail(a, c)
      error(ABORT, 0)
    end
  end
end

function Body:read(n)
  if n == nil or n == "a" or n == -1 then
    local parts = {self.pending}
    self.pending = ""
    while true do
      local c = body_chunk(self)
      if c == "" then break end
      parts[#parts + 1] = c
    end
    return concat(parts)
  end
  if n == "l" or n == "L" then
    while not self.pending:find("\n", 1, true) do
      local c = body_chunk(self)
      if c == "" then break end
      self.pending = self.pending .. c
    end
    local p = self.pending
    if p == "" then return nil end
    local i = p:find("\n", 1, true) or #p
    self.pending = p:sub(i + 1)
    return n == "L" and p:sub(1, i) or p:sub(1, i):gsub("\r?\n$", "")
  end
  while #self.pending < n do
    local c = body_chunk(self)
    if c == "" then break end
    self.pending = self.pending .. c
  end
  local p = self.pending
  self.pending = p:sub(n + 1)
  return p:sub(1, n)
end

function Body:readline() return self:read("L") or "" end
function Body:lines(fmt) return function() return self:read(fmt or "l") end end
function Body:close() end

-- ---- the response ---------------------------------------------------------
-- is built in C (bindings/http_out.c): the writer core.writer(sock) is the
-- handler's wfile, and send_response_only, send_header and end_headers are
-- C functions that find it at self._w.

-- ---- BaseHTTPRequestHandler ----------------------------------------------

local Base = socketserver.BaseRequestHandler:extend()
M.BaseHTTPRequestHandler = Base
Base.server_version = "BaseHTTP/0.6"
Base.sys_version = "wirelab/" .. (wirelab.version:match("[%d.]+") or "0")
Base.protocol_version = "HTTP/1.1"
Base.error_message_format = M.DEFAULT_ERROR_MESSAGE
Base.error_content_type = "text/html;charset=utf-8"
Base.default_request_version = "HTTP/0.9"

function Base:setup()
  self.connection = self.request
  -- the head and body leave together, but never wait on Nagle either
  pcall(self.connection.setsockopt, self.connection, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  self._w = core.writer(self.connection)
  self.wfile = self._w
  self._buf, self._pos = "", 1
  local srv = self.server
  -- read once per connection: a server's limits are its configuration
  self._header_timeout, self._keepalive_timeout = srv.header_timeout, srv.keepalive_timeout
  self._max_requests = srv.max_requests_per_socket
  self._parser = core.parser("request", {
    max_line = srv.max_line or 8192, max_header_bytes = srv.max_header_bytes or 65536,
    max_headers = srv.max_headers or 100, max_body = srv.max_body or 100 * 1024 * 1024,
    max_chunk_ext = srv.max_chunk_ext or 16384})
end

function Base:finish()
  if not self.connection.closed then pcall(self._w.flush, self._w) end
end

-- A protocol failure: the error response, then the connection closes.
function Base:_fail(status, reason)
  self.close_connection = true
  if self._w:headers_sent() then return end
  if not self.requestline then
    -- the whole first line as received (the parser stops at the bad byte);
    -- log_message escapes its control bytes
    local parsed = self._parser:request_line(self._buf) or ""
    local raw = self._buf:match("^([^\r\n]*)") or ""
    self.requestline = (#raw > #parsed and raw or parsed):sub(1, 8192)
    self.command, self.request_version = nil, nil
  end
  pcall(self.send_error, self, status, reason)
  pcall(self._w.flush, self._w)
end

-- handle(): requests until the connection ends
function Base:handle()
  self.close_connection = true
  self:handle_one_request()
  while not self.close_connection do
    self:handle_one_request()
  end
end

-- "GET" -> "do_GET", made once per method name
local do_names = setmetatable({}, {__index = function(t, m)
  local v = "do_" .. m
  t[m] = v
  return v
end})

-- the message handler of a request: a traceback, except for ABORT
local function handler_traceback(e)
  if e == ABORT then return e end
  return debug.traceback(e, 2)
end

-- the body of every request without one
local NO_BODY = setmetatable({pending = "", received = 0, done = true}, Body)

function Base:handle_one_request()
  self._w:begin()
  self.requestline, self.command, self.path, self.request_version = nil, nil, nil, nil
  self.close_connection = true
  -- wait for the head: an idle connection may wait keepalive_timeout (the
  -- first request header_timeout) and is closed silently; once a byte of
  -- the head has come, the whole head must arrive by the header deadline.
  -- take_head fills in command, path, headers... (bindings/http.c).
  local parser = self._parser
  local idle = self._pos > #self._buf      -- no byte of this request yet
  local deadline
  local ev, a, has_body, expect, clen
  while true do
    if idle then          -- the parser waits at a message start: read first
      local t = self._requests and self._keepalive_timeout or self._header_timeout
      if not fill(self, t, "idle") then return end
      idle = false
    end
    ev, a, has_body, expect, clen = parser:take_head(self, self._buf, self._pos)
    if ev == "head" then break end
    if ev ~= "more" then                      -- "error"
      self:_fail(a or 400, has_body or "Bad Request")
      return
    end
    self._pos = a
    -- the whole head must arrive within header_timeout of its first byte
    deadline = deadline or wirelab.now() + self._header_timeout
    if not fill(self, nil, "head", deadline) then
      if self._eof then self:_fail(400, "Bad Request: incomplete request") end
      return
    end
  end
  self._pos = a
  self._requests = (self._requests or 0) + 1
  self._clen = clen
  local body = NO_BODY
  if has_body then
    body = self._body_obj
    if body == nil then
      body = setmetatable({h = self}, Body)
      self._body_obj = body
    end
    body.pending, body.received, body.done, body.failed, body.trailers = "", 0, false, false, nil
  end
  self._body, self.rfile = body, body
  -- max_requests_per_socket, as Node has it: the last request allowed is
  -- answered with Connection: close, but the connection stays; a request
  -- after it gets 503 and never reaches the handler, and so does each one
  -- pipelined behind that (a body would have to be read: then it closes)
  local maxreq, limit_keep = self._max_requests, false
  if maxreq and self._requests > maxreq then
    self:send_error(503, "Service Unavailable", "Too many requests on this connection")
    self._w:flush()
    self.close_connection = has_body or self._pos > #self._buf
    return
  elseif maxreq and self._requests == maxreq then
    limit_keep = not self.close_connection
    self.close_connection = true
  end

  if expect then
    if not self:handle_expect_100() then self._w:flush(); return end
  end

  local method = self[do_names[self.command]]
  if not method then
    self:send_error(501, ("Unsupported method ('%s')"):format(self.command))
    self._w:flush()
    self.close_connection = true
    return
  end
  local ok, err = xpcall(method, handler_traceback, self)
  if not ok and err == ABORT then
    self.close_connection = true
    return
  end
  if not ok then
    -- Python closes the socket; a 500 first tells the client why
    local w = self._w
    if not w:headers_sent() and not self.connection.closed then
      w:discard()
      pcall(self.send_error, self, 500, "Internal Server Error")
      pcall(w.flush, w)
    end
    self.close_connection = true
    error(err, 0)
  end
  -- after the handler: end a chunked body, flush, and skip an unread body
  local w = self._w
  if w:end_response() then self:end_headers() end
  w:flush()
  local b = self._body
  if not b.done and not self.close_connection then
    -- the handler left some body unread: read past it, or give up on the
    -- connection if it is large
    local limit = 1024 * 1024
    local ok = pcall(function()
      while not b.done and b.received < limit do body_chunk(b) end
    end)
    if not ok or not b.done or b.failed then self.close_connection = true end
  end
  if limit_keep and b.done and not self.connection.closed then self.close_connection = false end
end

function Base:handle_expect_100()
  local srv = self.server
  local cl = self._clen
  if cl and srv.max_body and cl > srv.max_body then
    self:send_error(413, "Content Too Large")
    return false
  end
  self.connection:sendall(self.protocol_version .. " 100 Continue\r\n\r\n")
  return true
end

-- ---- building the response ------------------------------------------------

-- The log clock changes once a second: format it once a second.
local now_s, log_date = -1, nil
local function refresh_dates()
  local t = wirelab.time() // 1
  if t ~= now_s then
    now_s, log_date = t, os.date("%d/%b/%Y %H:%M:%S", t)
  end
end

-- send_response, version_string and the rest of the head: bindings/http_out.c
Base.send_response = core.send_response
-- Python's send_response step by step, which the C one hands over to when
-- a handler overrides send_header (so that it sees Server and Date too)
core.set_send_response_fallback(function(self, code, message)
  self:log_request(code)
  self:send_response_only(code, message)
  self:send_header("Server", self:version_string())
  self:send_header("Date", self:date_time_string())
end)
Base.version_string = core.version_string
Base.send_response_only = core.send_response_only
Base.send_header = core.send_header
Base.end_headers = core.end_headers

function Base:flush_headers() self._w:flush() end

-- send_error(code[, message[, explain]]): Python's HTML error page
function Base:send_error(code, message, explain)
  local reason = core.status_reason(code) or "???"
  message = message or reason
  explain = explain or reason
  self:log_error("code %d, message %s", code, message)
  self:send_response(code, (message:gsub("[\r\n%z]", " ")))
  self:send_header("Connection", "close")
  local body
  if code >= 200 and code ~= 204 and code ~= 205 and code ~= 304 then
    body = format(self.error_message_format, code, html_escape(message), code, html_escape(explain))
    self:send_header("Content-Type", self.error_content_type)
    self:send_header("Content-Length", #body)
  end
  self:end_headers()
  if self.command ~= "HEAD" and body then self.wfile:write(body) end
end

-- ---- logging, as Python's ----------------------------------------------------

function Base:log_request(code, size)
  self:log_message('"%s" %s %s', self.requestline or "", code or "-", size or "-")
end

function Base:log_error(fmt, ...) self:log_message(fmt, ...) end

function Base:log_message(fmt, ...)
  local msg = format(fmt, ...)
  io.stderr:write(format("%s - - [%s] %s\n", self:address_string(), self:log_date_time_string(),
    core.escape_log(msg)))
end

function Base:address_string() return tostring(self.client_address[1]) end

function Base:date_time_string(t)
  return core.httpdate(t)
end

function Base:log_date_time_string()
  refresh_dates()
  return log_date
end

-- SimpleHTTPRequestHandler lives in http.static, loaded on first use
setmetatable(M, {__index = function(t, k)
  if k == "SimpleHTTPRequestHandler" then
    local cls = require("http.static").SimpleHTTPRequestHandler
    rawset(t, k, cls)
    return cls
  end
end})

-- ---- the command line: wirelab -m http.server [port] [-b ADDR] [-d DIR] ------

function M.main(args)
  local port, bind, dir = 8000, nil, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if (a == "-b" or a == "--bind" or a == "-d" or a == "--directory") and args[i + 1] == nil then
      io.stderr:write("wirelab -m http.server: argument ", a, ": expected one argument\n")
      return 2
    end
    if a == "-b" or a == "--bind" then bind, i = args[i + 1], i + 2
    elseif a == "-d" or a == "--directory" then dir, i = args[i + 1], i + 2
    elseif a == "-h" or a == "--help" then
      print("usage: wirelab -m http.server [-h] [-b ADDRESS] [-d DIRECTORY] [port]")
      return 0
    elseif a:match("^%d+$") then
      -- a decimal port, as Python's argparse type=int: not "1.5" nor "0x10"
      port, i = math.tointeger(tonumber(a)), i + 1
      if not port or port > 65535 then
        io.stderr:write("wirelab -m http.server: port out of range 0-65535: '", a, "'\n")
        return 2
      end
    else
      io.stderr:write("wirelab -m http.server: unknown argument '", a, "'\n")
      return 2
    end
  end
  local static = require "http.static"
  local Handler = static.SimpleHTTPRequestHandler:extend({directory = dir})
  local host = bind or ""
  local cls = M.ThreadingHTTPServer
  if host:find(":", 1, true) then cls = cls:extend({address_family = socket.AF_INET6}) end
  local server = cls({host, port}, Handler)
  local h, p = server.server_address[1], server.server_address[2]
  local shown = h
  local url_host = h:find(":", 1, true) and ("[" .. h .. "]") or h
  print(format("Serving HTTP on %s port %d (http://%s:%d/) ...", shown, p, url_host, p))
  io.stdout:flush()
  server:serve_forever()
  return 0
end

return M
