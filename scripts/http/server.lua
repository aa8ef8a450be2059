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
local concat, lower, format = table.concat, string.lower, string.format

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

-- next body bytes, "" once the message has ended
local function body_chunk(h)
  local b = h._body
  while true do
    if b.done then return "" end
    local ev, a, c = h._parser:feed(h._buf, h._pos)
    if ev == "body" then
      h._pos = a
      b.received = b.received + #c
      return c
    elseif ev == "end" then
      h._pos = a
      h._idle = true
      b.done = true
      b.trailers = c
      return ""
    elseif ev == "more" then
      h._pos = a
      if not h:_fill(h.server.body_timeout, "body") then
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
  local h = self.h
  if n == nil or n == "a" or n == -1 then
    local parts = {self.pending}
    self.pending = ""
    while true do
      local c = body_chunk(h)
      if c == "" then break end
      parts[#parts + 1] = c
    end
    return concat(parts)
  end
  if n == "l" or n == "L" then
    while not self.pending:find("\n", 1, true) do
      local c = body_chunk(h)
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
    local c = body_chunk(h)
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

-- ---- the response, built in a buffer ------------------------------------

local Writer = {}
Writer.__index = Writer

function Writer:write(s1, ...)
  local h = self.h
  -- the common case: one string, a plain (not chunked) body
  if type(s1) == "string" and select("#", ...) == 0 and not h._chunked then
    if not h._no_body then
      local out = h._out
      out[#out + 1] = s1
      h._outlen = h._outlen + #s1
      h._sent_bytes = h._sent_bytes + #s1
      if h._outlen >= 65536 then self:flush() end
    end
    return self
  end
  return self:_write_many(s1, ...)
end

function Writer:_write_many(...)
  local h = self.h
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if type(s) ~= "string" then
      if type(s) == "number" then s = tostring(s)
      else error("bad argument #" .. i .. " to 'write' (string expected, got " .. type(s) .. ")", 2) end
    end
    if not h._no_body then
      if h._chunked and #s > 0 then
        h._out[#h._out + 1] = format("%x\r\n", #s)
        h._out[#h._out + 1] = s
        h._out[#h._out + 1] = "\r\n"
      else
        h._out[#h._out + 1] = s
      end
      h._outlen = h._outlen + #s
      h._sent_bytes = h._sent_bytes + #s
    end
  end
  if h._outlen >= 65536 then self:flush() end
  return self
end

-- sends what is buffered: the head, if not yet sent, goes in the same
-- write as the first body bytes
function Writer:flush()
  local h = self.h
  local out, data = h._out, h._head_out
  local n = #out
  if n > 0 then
    local body = n == 1 and out[1] or concat(out)
    for i = n, 1, -1 do out[i] = nil end
    data = data and data .. body or body
  end
  if data then
    h._head_out = nil
    h._outlen = 0
    h.connection:sendall(data)
  end
  return self
end

function Writer:close() end

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
  self.wfile = setmetatable({h = self}, Writer)
  self._out, self._outlen, self._hb = {}, 0, {}
  self._buf, self._pos, self._idle = "", 1, true
  local srv = self.server
  self._parser = core.parser("request", {
    max_line = srv.max_line or 8192, max_header_bytes = srv.max_header_bytes or 65536,
    max_headers = srv.max_headers or 100, max_body = srv.max_body or 100 * 1024 * 1024,
    max_chunk_ext = srv.max_chunk_ext or 16384})
end

function Base:finish()
  if not self.connection.closed then pcall(self.wfile.flush, self.wfile) end
end

-- Reads more bytes into the buffer; false on EOF, timeout or reset.
-- phase: "idle" (between requests), "head", "body".
function Base:_fill(timeout, phase, deadline)
  local conn = self.connection
  if deadline then timeout = math.max(0.001, deadline - wirelab.now()) end
  if timeout ~= self._timeout then
    conn:settimeout(timeout)
    self._timeout = timeout
  end
  local ok, data = pcall(conn.recv, conn, 65536)
  if not ok then
    if errors.is(data, "ETIMEDOUT") and phase ~= "idle" then
      self:_fail(408, "Request Timeout")
    end
    self.close_connection = true
    return false
  end
  if data == "" then
    self.close_connection = true
    self._eof = true
    return false
  end
  if self._pos > #self._buf then self._buf = data
  else self._buf = self._buf:sub(self._pos) .. data end
  self._pos = 1
  return true
end

-- A protocol failure: the error response, then the connection closes.
function Base:_fail(status, reason)
  self.close_connection = true
  if self._headers_sent then return end
  if not self.requestline then
    -- the whole first line as received (the parser stops at the bad byte);
    -- log_message escapes its control bytes
    local parsed = self._parser:request_line(self._buf) or ""
    local raw = self._buf:match("^([^\r\n]*)") or ""
    self.requestline = (#raw > #parsed and raw or parsed):sub(1, 8192)
    self.command, self.request_version = nil, nil
  end
  pcall(self.send_error, self, status, reason)
  pcall(self.wfile.flush, self.wfile)
end

-- handle(): requests until the connection ends
function Base:handle()
  self.close_connection = true
  self:handle_one_request()
  while not self.close_connection do
    self:handle_one_request()
  end
end

function Base:_reset_request()
  self._outlen, self._sent_bytes = 0, 0
  self._headers_sent, self._head_buffer, self._head_out = false, nil, nil
  self._chunked, self._no_body, self._has_length = false, false, false
  self._status = nil
  self.requestline, self.command, self.path, self.request_version = nil, nil, nil, nil
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

function Base:handle_one_request()
  local srv = self.server
  self:_reset_request()
  self.close_connection = true
  -- wait for the head: an idle connection may wait keepalive_timeout (the
  -- first request header_timeout) and is closed silently; once a byte of
  -- the head has come, the whole head must arrive by the header deadline
  local head
  local deadline = self._pos <= #self._buf and wirelab.now() + srv.header_timeout or nil
  local parser = self._parser
  while true do
    local ev, a, b
    if self._idle and self._pos > #self._buf then
      ev, a = "more", self._pos       -- between messages with nothing left: no call
    else
      ev, a, b = parser:feed(self._buf, self._pos)
    end
    if ev == "head" then
      self._pos = a
      self._idle = false
      head = b
      break
    elseif ev == "more" then
      self._pos = a
      if deadline == nil then
        local t = self._requests and srv.keepalive_timeout or srv.header_timeout
        if not self:_fill(t, "idle") then return end
        deadline = wirelab.now() + srv.header_timeout
      elseif not self:_fill(nil, "head", deadline) then
        if self._eof then self:_fail(400, "Bad Request: incomplete request") end
        return
      end
    elseif ev == "end" then                  -- the end of a bodiless request
      self._pos = a
      self._idle = true
    else                                      -- "error"
      self:_fail(a or 400, b or "Bad Request")
      return
    end
  end
  self._requests = (self._requests or 0) + 1

  self.command = head.method
  self.path = head.target
  -- Python 3.11+: "//host/x" must never turn into a Location to another host
  if self.path:sub(1, 2) == "//" then self.path = "/" .. self.path:gsub("^/+", "") end
  self.request_version = head.version
  self.requestline = head.method .. " " .. head.target .. " " .. head.version
  self.raw_requestline = self.requestline .. "\r\n"
  self.headers = new_headers(head.headers)
  self._head = head
  local body = self._body
  if body == nil then
    body = setmetatable({h = self}, Body)
    self._body = body
  end
  body.pending, body.received, body.done, body.failed, body.trailers = "", 0, false, false, nil
  self.rfile = body
  if not head.chunked and not head.content_length then self._body.done = true end
  -- the parser drives keep-alive (version and Connection header)
  self.close_connection = not head.keep_alive or self.protocol_version == "HTTP/1.0"
  local maxreq = srv.max_requests_per_socket
  if maxreq and self._requests > maxreq then
    self.close_connection = true
    self:send_error(503, "Service Unavailable", "Too many requests on this connection")
    self.wfile:flush()
    return
  elseif maxreq and self._requests == maxreq then
    self.close_connection = true
  end

  if head.expect_continue and head.major == 1 and head.minor >= 1 then
    if not self:handle_expect_100() then self.wfile:flush(); return end
  end

  local method = self[do_names[self.command]]
  if not method then
    self:send_error(501, ("Unsupported method ('%s')"):format(self.command))
    self.wfile:flush()
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
    if not self._headers_sent and not self.connection.closed then
      for i = #self._out, 1, -1 do self._out[i] = nil end
      self._outlen = 0
      self._head_buffer, self._head_out, self._chunked, self._no_body = nil, nil, false, false
      local hb = self._hb
      for i = #hb, 1, -1 do hb[i] = nil end
      pcall(self.send_error, self, 500, "Internal Server Error")
      pcall(self.wfile.flush, self.wfile)
    end
    self.close_connection = true
    error(err, 0)
  end
  self:_end_response()
end

-- After the handler: end a chunked body, flush, and skip an unread body.
function Base:_end_response()
  if self._chunked then
    self._out[#self._out + 1] = "0\r\n\r\n"
    self._chunked = false
  end
  if self._head_buffer then self:end_headers() end
  self.wfile:flush()
  local b = self._body
  if not b.done and not self.close_connection then
    -- the handler left some body unread: read past it, or give up on the
    -- connection if it is large
    local limit = 1024 * 1024
    local ok = pcall(function()
      while not b.done and b.received < limit do body_chunk(self) end
    end)
    if not ok or not b.done or b.failed then self.close_connection = true end
  end
end

function Base:handle_expect_100()
  local srv = self.server
  local cl = self._head.content_length
  if cl and srv.max_body and cl > srv.max_body then
    self:send_error(413, "Content Too Large")
    return false
  end
  self.connection:sendall(self.protocol_version .. " 100 Continue\r\n\r\n")
  return true
end

-- ---- building the response ------------------------------------------------

-- Both clocks change once a second: format them once a second.
local now_s, http_date, log_date = -1, nil, nil
local function refresh_dates()
  local t = wirelab.time() // 1
  if t ~= now_s then
    now_s, http_date, log_date = t, core.httpdate(t), os.date("%d/%b/%Y %H:%M:%S", t)
  end
end

-- "Server: ...\r\nDate: ...\r\n", made once a second per version string
local server_date = {}
local server_date_at = -1

function Base:send_response(code, message)
  self:log_request(code)
  self:send_response_only(code, message)
  local hb = self._head_buffer
  if hb then    -- our own headers: nothing to validate
    local version = self:version_string()
    refresh_dates()
    if server_date_at ~= now_s then server_date, server_date_at = {}, now_s end
    local line = server_date[version]
    if not line then
      line = "Server: " .. version .. "\r\nDate: " .. self:date_time_string() .. "\r\n"
      server_date[version] = line
    end
    hb[#hb + 1] = line
  end
end

-- "HTTP/1.1 200 OK\r\n" for each protocol and code, with the default reason
local status_lines = setmetatable({}, {__index = function(t, proto)
  local lines = setmetatable({}, {__index = function(l, code)
    local v = proto .. " " .. code .. " " .. (core.status_reason(code) or "") .. "\r\n"
    l[code] = v
    return v
  end})
  t[proto] = lines
  return lines
end})

function Base:send_response_only(code, message)
  if math.type(code) ~= "integer" or code < 100 or code > 999 then
    error("bad argument #1 to 'send_response' (status code 100-999 expected)", 2)
  end
  local line
  if message == nil then
    line = status_lines[self.protocol_version][code]
  elseif not core.valid_header_value(message) then
    error("bad argument #2 to 'send_response' (CR, LF or NUL in the reason phrase)", 2)
  end
  self._status = code
  if self.request_version ~= "HTTP/0.9" then
    local hb = self._hb
    self._head_buffer = hb
    hb[#hb + 1] = line or (self.protocol_version .. " " .. code .. " " .. message .. "\r\n")
  end
  local no_body = code < 200 or code == 204 or code == 304 or self.command == "HEAD"
  self._no_body_status = no_body
  self._no_body = false
  if code >= 200 then self._has_length = false end
end

-- Header names already checked, each with what it means for framing
-- (false, or its lowercase name when it is one the server must track).
-- Names come from handler code, so the cache stays small; it is bounded
-- anyway.
local known_names, n_known = {}, 0
local TRACKED = {connection = true, ["content-length"] = true, ["transfer-encoding"] = true}

local function header_kind(keyword)
  local kind = known_names[keyword]
  if kind ~= nil then return kind end
  if type(keyword) ~= "string" or not core.valid_header_name(keyword) then return nil end
  local k = lower(keyword)
  kind = TRACKED[k] and k or false
  if n_known >= 1024 then known_names, n_known = {}, 0 end
  known_names[keyword], n_known = kind, n_known + 1
  return kind
end

-- send_header(name, value): raises (sending nothing) on CR/LF in the value
-- or a malformed name -- header injection (RELIABILITY.md item 11)
function Base:send_header(keyword, value)
  local k = header_kind(keyword)
  if k == nil then
    error("bad argument #1 to 'send_header' (invalid header name " .. format("%q", tostring(keyword)) .. ")", 2)
  end
  if type(value) ~= "number" then      -- a number cannot carry CR or LF
    value = tostring(value)
    if not core.valid_header_value(value) then
      error("bad argument #2 to 'send_header' (header value contains CR, LF or NUL)", 2)
    end
  end
  if self.request_version ~= "HTTP/0.9" then
    local hb = self._hb
    self._head_buffer = hb
    hb[#hb + 1] = keyword .. ": " .. value .. "\r\n"
  end
  if not k then return end
  if k == "connection" then
    local v = lower(tostring(value))
    if v == "close" then self.close_connection = true
    elseif v == "keep-alive" then self.close_connection = false end
    self._conn_header = true
  elseif k == "content-length" then
    self._has_length = true
  elseif k == "transfer-encoding" then
    self._has_length = true          -- the handler frames the body itself
  end
end

function Base:end_headers()
  local hb = self._head_buffer
  if not hb then return end
  local status = self._status or 200
  if status >= 200 then
    if not self._has_length and not self._no_body_status then
      if self.request_version == "HTTP/1.1" and self.protocol_version == "HTTP/1.1" then
        hb[#hb + 1] = "Transfer-Encoding: chunked\r\n"
        self._chunked = true
      else
        self.close_connection = true  -- the body ends with the connection
      end
    end
    if self.close_connection and not self._conn_header then
      hb[#hb + 1] = "Connection: close\r\n"
    end
    self._no_body = self._no_body_status
  end
  hb[#hb + 1] = "\r\n"
  local head = concat(hb)
  for i = #hb, 1, -1 do hb[i] = nil end
  self._head_out = self._head_out and self._head_out .. head or head
  self._head_buffer = nil
  self._conn_header = nil
  if status >= 200 then self._headers_sent = true end
  if status < 200 then self.wfile:flush() end
end

function Base:flush_headers() self.wfile:flush() end

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
function Base:version_string() return self.server_version .. " " .. self.sys_version end

function Base:date_time_string(t)
  if t then return core.httpdate(t) end
  refresh_dates()
  return http_date
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
