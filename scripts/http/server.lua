-- http.server: Python's http.server over wirelab sockets and llhttp (API.md
-- section 5). One handler object serves a connection: requests are read
-- with the C parser (http.core), which refuses smuggling and oversized
-- input; each response is built in a buffer and leaves in one write.
local socketserver = require "socketserver"
local socket = require "socket"
local wirelab = require "wirelab"
local core = require "http.core"
local headers_mod = require "http.headers"
local url = require "http.url"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"

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

-- html_escape(s[, quote]): Python's html.escape; quote (default true)
-- escapes quotes too
local ESCAPES = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#x27;"}
local function html_escape(s, quote)
  return (tostring(s):gsub(quote == false and "[&<>]" or "[&<>\"']", ESCAPES))
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
-- limits (RELIABILITY.md items 6 and 7), each overridable per server:
-- max_line (414), max_header_bytes and max_headers (431), max_body (413),
-- max_chunk_ext (400); their defaults are the parser's, written down in
-- bindings/http.c only
for name, default in pairs(core.default_limits) do HTTPServer[name] = default end
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

-- A body is read 16 KiB at a time (nginx's client_body_buffer_size), a
-- head 64 KiB: a streamed body then churns small strings, not 64 KiB ones
-- of varying size (a loaded machine's recv returns less than asked), whose
-- freed blocks the allocator could not reuse: refusing a chunked 8 MiB body
-- past max_body on a loaded machine, RSS grew 744-760 KiB in 6 runs,
-- against 604-980 reading 64 KiB, and 780-1100 with the incremental
-- collector (RELIABILITY item 6: < 1 MiB)
local BODY_READ = 16384

-- fill(h, timeout, phase[, deadline[, size]]): reads up to size bytes
-- (64 KiB) into h's buffer; false on EOF. phase: "idle" (between
-- requests), "head", "body". A timeout or a reset raises the socket's
-- error, unprotected (a pcall per read costs): it ends the connection,
-- and handle() knows it from h._reading, the phase it was raised in (see
-- read_failed).
local recv                     -- the socket method, found on first use
local function fill(h, timeout, phase, deadline, size)
  local conn = h.connection
  if deadline then timeout = math.max(0.001, deadline - wirelab.now()) end
  if timeout ~= h._timeout then
    conn:settimeout(timeout)
    h._timeout = timeout
  end
  recv = recv or conn.recv
  h._reading = phase
  local data = recv(conn, size or 65536)
  h._reading = false
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
      -- a buffer fed whole is let go now, not at the next fill: a body
      -- streams through in 64 KiB strings, and one a collection finds still
      -- held is kept (generationally: promoted) longer than it lives
      if a > #h._buf then h._buf, h._pos = "", 1 else h._pos = a end
      b.received = b.received + #c
      return c
    elseif ev == "end" then
      h._pos = a
      b.done = true
      b.trailers = c
      return ""
    elseif ev == "more" then
      h._pos = a
      if not fill(h, h.server.body_timeout, "body", nil, BODY_READ) then
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

-- ---- BaseHTTPRequestHandler ----------------------------------------------
-- Lua owns the handler, as Python's http.server owns it in Python: every
-- method below calls the others by name (self:send_header(...)), so a
-- subclass or a mixin that overrides one is obeyed everywhere. C provides
-- two protocol objects with plain methods (bindings/http.c, http_out.c):
-- the request parser, whose take_head returns the head it parsed, and the
-- response writer, which builds the head and body in one buffer and sends
-- them in one write. Their methods are kept in locals: no lookup per call.

local P = core.parser_methods
local take_head, request_line = P.take_head, P.request_line
local W = core.writer_methods
local w_status, w_header, w_end_headers, w_finish = W.status, W.header, W.end_headers, W.finish
local w_flush, w_discard, w_headers_sent = W.flush, W.discard, W.headers_sent
local byte = string.byte

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
  -- _w is the writer the head goes to; wfile is the body's, the same
  -- object unless a handler replaces it
  self._w = core.writer(self.connection)
  self.wfile = self._w
  self._buf, self._pos = "", 1
  local srv = self.server
  -- read once per connection: a server's limits are its configuration
  self._header_timeout, self._keepalive_timeout = srv.header_timeout, srv.keepalive_timeout
  -- false, not nil: a field the instance lacks is looked up along the
  -- whole class chain, on every request
  self._max_requests = srv.max_requests_per_socket or false
  self._limit_keep = false
  self._requests = 0
  self._keep_alive, self._expect, self._clen = false, false, false
  self._reading, self._skipping = false, false
  -- a limit the server lacks (not an HTTPServer) is the parser's default
  self._parser = core.parser("request", {
    max_line = srv.max_line, max_header_bytes = srv.max_header_bytes,
    max_headers = srv.max_headers, max_body = srv.max_body, max_chunk_ext = srv.max_chunk_ext})
end

function Base:finish()
  if not self.connection.closed then pcall(w_flush, self._w) end
end

-- A protocol failure: the error response, then the connection closes.
function Base:_fail(status, reason)
  self.close_connection = true
  if self._skipping or w_headers_sent(self._w) then return end
  pcall(self.send_error, self, status, reason)
  pcall(w_flush, self._w)
end

-- A request refused before its head was whole: the log shows the first
-- line as received, the parser's copy once it ended; a line the parser
-- stopped inside (at a bad byte) runs on in the buffer while the buffer
-- still starts with it. log_message escapes control bytes.
local function fail_head(self, status, reason)
  local parsed, done = request_line(self._parser)
  local raw = not done and self._buf:match("^([^\r\n]*)") or ""
  if #raw > #parsed and raw:sub(1, #parsed) == parsed then parsed = raw end
  self.requestline = parsed:sub(1, 8192)
  self.command, self.request_version = nil, nil
  self:_fail(status, reason)
end

-- "GET" -> "do_GET", made once per method name
local do_names = setmetatable({}, {__index = function(t, m)
  local v = "do_" .. m
  t[m] = v
  return v
end})

-- Whether err is the connection's own read failing (fill): a timeout gets
-- its 408 unless the connection was idle; a reset ends it quietly.
local function read_failed(self, err)
  local phase = self._reading
  self._reading = false
  if type(err) == "table" and rawget(err, "traceback") then err = rawget(err, "error") end
  if not (phase and errors.is(err) and err.op == "recv") then return false end
  if phase ~= "idle" and errors.is(err, "ETIMEDOUT") then self:_fail(408, "Request Timeout") end
  return true
end

-- The handler raised: ABORT ends the connection quietly (its 4xx is
-- sent), and so does a failed read; anything else gets a 500 and goes on
-- up to handle_error.
local function handler_failed(self, err)
  self.close_connection = true
  if err == ABORT or read_failed(self, err) then return end
  -- Python closes the socket; a 500 first tells the client why
  local w = self._w
  if not w_headers_sent(w) and not self.connection.closed then
    w_discard(w)
    pcall(self.send_error, self, 500, "Internal Server Error")
    pcall(w_flush, w)
  end
  error(err, 0)
end

local function serve(self)
  self:handle_one_request()
  while not self.close_connection do
    self:handle_one_request()
  end
end

-- handle(): requests until the connection ends, as Python's. One
-- protected call for the whole connection: a handler error closes it.
-- Its message handler adds a traceback, but not to ABORT or to the
-- connection's own failed read, which end it quietly.
function Base:handle()
  self.close_connection = true
  local ok, err = xpcall(serve, function(e)
    if e == ABORT or (self._reading and errors.is(e) and e.op == "recv") then return e end
    return socketserver.traceback(e, 3)
  end, self)
  if not ok then return handler_failed(self, err) end
end

-- Waits for the next head: an idle connection may wait keepalive_timeout
-- (the first request header_timeout) and is closed silently; once a byte of
-- the head has come, the whole head must arrive by the header deadline.
-- On a head, sets the request's fields as the parser returned them and
-- returns has_body; nil when the connection is done.
local function read_head(self)
  local parser = self._parser
  local idle = self._pos > #self._buf      -- no byte of this request yet
  local deadline
  while true do
    if idle then          -- the parser waits at a message start: read first
      local t = self._requests > 0 and self._keepalive_timeout or self._header_timeout
      if not fill(self, t, "idle") then return nil end
      idle = false
    end
    local ev, a, command, path, version, line, headers, keep_alive, has_body, expect, clen =
      take_head(parser, self._buf, self._pos)
    if ev == "head" then
      self._pos = a
      self.command, self.path, self.request_version, self.requestline = command, path, version, line
      self.headers = headers
      self._keep_alive, self._expect, self._clen = keep_alive, expect, clen
      return has_body
    end
    if ev ~= "more" then                      -- "error", status, reason
      fail_head(self, a or 400, command or "Bad Request")
      return nil
    end
    self._pos = a
    -- the whole head must arrive within header_timeout of its first byte
    deadline = deadline or wirelab.now() + self._header_timeout
    if not fill(self, nil, "head", deadline) then
      if self._eof then fail_head(self, 400, "Bad Request: incomplete request") end
      return nil
    end
  end
end

-- parse_request() -> ok: makes the head the parser returned (the fields
-- command, path, request_version, requestline, headers) the request, as
-- Python's: a path starting "//" loses its extra slashes, close_connection
-- comes from the version and Connection, and Expect: 100-continue is
-- answered (handle_expect_100). False when the request is not to be
-- served; whoever said false has sent the response.
function Base:parse_request()
  local path = self.path
  if byte(path, 2) == 47 and byte(path, 1) == 47 then  -- Python 3.11+: "//host/x"
    self.path = "/" .. path:gsub("^/+", "")          -- must never be a Location to a host
  end
  self.close_connection = not self._keep_alive or self.protocol_version == "HTTP/1.0"
  if self._expect and not self:handle_expect_100() then return false end
  return true
end

-- The request's rfile: the one reader (wirelab.reader) over body_chunk,
-- made once per connection and reset for a request with a body, or after
-- a handler used it (handle_one_request skips the call otherwise: most
-- requests have no body, and nobody reads it).
local function request_body(self, has_body)
  local body, rfile = self._body, self._rfile
  if body == nil then
    body = {h = self}
    rfile = reader.new(body_chunk, body)
    self._body, self._rfile = body, rfile
  else
    reader.reset(rfile, body)
  end
  body.received, body.done, body.failed, body.trailers = 0, not has_body, false, nil
  return rfile
end

-- max_requests_per_socket, as Node has it: the last request allowed is
-- answered with Connection: close, but the connection stays; a request
-- after it gets 503 and never reaches the handler, and so does each one
-- pipelined behind that (a body would have to be read: then it closes).
-- True when this request was refused.
local function refuse_over_limit(self, has_body)
  local maxreq = self._max_requests
  self._limit_keep = false
  if self._requests > maxreq then
    self:send_error(503, "Service Unavailable", "Too many requests on this connection")
    w_finish(self._w)
    self.close_connection = has_body or self._pos > #self._buf
    return true
  elseif self._requests == maxreq then
    self._limit_keep = not self.close_connection
    self.close_connection = true
  end
  return false
end

-- No do_<command>: a 501, and the connection closes.
local function no_method(self)
  self:send_error(501, ("Unsupported method ('%s')"):format(self.command))
  w_finish(self._w)
  self.close_connection = true
end

-- After the handler, a body it left unread is read past, up to this;
-- beyond it the connection is given up instead.
local UNREAD_LIMIT = 1024 * 1024

local function skip_unread_body(self, b)
  self._skipping = true                   -- the response is out: no 4xx now
  local ok = pcall(function()
    while not b.done and b.received < UNREAD_LIMIT do body_chunk(b) end
  end)
  self._skipping, self._reading = false, false
  if not ok or not b.done or b.failed then self.close_connection = true end
end

-- handle_one_request(): reads a request, parse_request(), then do_<command>
-- and the response goes out.
function Base:handle_one_request()
  self.close_connection = true
  local has_body = read_head(self)
  if has_body == nil then return end
  self._requests = self._requests + 1
  -- the hot path makes no call it can avoid: an unused reader stays as is
  local rfile = self._rfile
  if has_body or not rfile or rfile.used or not self._body.done then
    rfile = request_body(self, has_body)
  end
  self.rfile = rfile
  if not self:parse_request() then
    w_finish(self._w)
    return
  end
  if self._max_requests and refuse_over_limit(self, has_body) then return end
  local method = self[do_names[self.command]]
  if not method then return no_method(self) end
  method(self)
  -- after the handler: a head it never ended is ended, then all goes out
  local w = self._w
  if w_finish(w) then
    self:end_headers()
    w_finish(w)
  end
  local b = self._body
  if not b.done and not self.close_connection then skip_unread_body(self, b) end
  if self._limit_keep and b.done and not self.connection.closed then self.close_connection = false end
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
-- Python's methods, each calling the others by name; the writer (self._w)
-- takes plain values.

-- send_response(code[, message]): log, status line, Server and Date
function Base:send_response(code, message)
  self:log_request(code)
  self:send_response_only(code, message)
  self:send_header("Server", self:version_string())
  self:send_header("Date", self:date_time_string())
end

function Base:send_response_only(code, message)
  if self.request_version ~= "HTTP/0.9" then
    w_status(self._w, self.protocol_version, code, message, self.command == "HEAD")
  end
end

-- send_header(keyword, value): the writer refuses a bad name or a value
-- with CR, LF or NUL; it says when the field was Connection: close or
-- keep-alive
function Base:send_header(keyword, value)
  if self.request_version ~= "HTTP/0.9" then
    local close = w_header(self._w, keyword, value)
    if close ~= nil then self.close_connection = close end
  end
end

-- end_headers(): a body without Content-Length goes chunked to an HTTP/1.1
-- client, else ends with the connection (the writer decides, and says)
function Base:end_headers()
  if self.request_version ~= "HTTP/0.9" then
    self.close_connection = w_end_headers(self._w, self.close_connection,
      self.request_version == "HTTP/1.1" and self.protocol_version == "HTTP/1.1")
  end
end

function Base:flush_headers() w_flush(self._w) end

-- version_string(): made again only when one of its parts changes
local vs_server, vs_sys, vs_text
function Base:version_string()
  local server_version, sys_version = self.server_version, self.sys_version
  if server_version ~= vs_server or sys_version ~= vs_sys or not vs_text then
    vs_text = tostring(server_version) .. " " .. tostring(sys_version)
    vs_server, vs_sys = server_version, sys_version
  end
  return vs_text
end

local httpdate = core.httpdate
function Base:date_time_string(t)
  return httpdate(t)
end

-- The explanation an error page gives for each status: the wording
-- Python's http.server sends, so that pages compare byte for byte.
M.explanations = {
  [100] = "Request received, please continue",
  [101] = "Switching to new protocol; obey Upgrade header",
  [102] = "",
  [103] = "",
  [200] = "Request fulfilled, document follows",
  [201] = "Document created, URL follows",
  [202] = "Request accepted, processing continues off-line",
  [203] = "Request fulfilled from cache",
  [204] = "Request fulfilled, nothing follows",
  [205] = "Clear input form for further input",
  [206] = "Partial content follows",
  [207] = "",
  [208] = "",
  [226] = "",
  [300] = "Object has several resources -- see URI list",
  [301] = "Object moved permanently -- see URI list",
  [302] = "Object moved temporarily -- see URI list",
  [303] = "Object moved -- see Method and URL list",
  [304] = "Document has not changed since given time",
  [305] = "You must use proxy specified in Location to access this resource",
  [307] = "Object moved temporarily -- see URI list",
  [308] = "Object moved permanently -- see URI list",
  [400] = "Bad request syntax or unsupported method",
  [401] = "No permission -- see authorization schemes",
  [402] = "No payment -- see charging schemes",
  [403] = "Request forbidden -- authorization will not help",
  [404] = "Nothing matches the given URI",
  [405] = "Specified method is invalid for this resource",
  [406] = "URI not available in preferred format",
  [407] = "You must authenticate with this proxy before proceeding",
  [408] = "Request timed out; try again later",
  [409] = "Request conflict",
  [410] = "URI no longer exists and has been permanently removed",
  [411] = "Client must specify Content-Length",
  [412] = "Precondition in headers is false",
  [413] = "Entity is too large",
  [414] = "URI is too long",
  [415] = "Entity body in unsupported format",
  [416] = "Cannot satisfy request range",
  [417] = "Expect condition could not be satisfied",
  [418] = "Server refuses to brew coffee because it is a teapot.",
  [421] = "Server is not able to produce a response",
  [422] = "",
  [423] = "",
  [424] = "",
  [425] = "",
  [426] = "",
  [428] = "The origin server requires the request to be conditional",
  [429] = "The user has sent too many requests in a given amount of time (\"rate limiting\")",
  [431] = "The server is unwilling to process the request because its header fields are too large",
  [451] = "The server is denying access to the resource as a consequence of a legal demand",
  [500] = "Server got itself in trouble",
  [501] = "Server does not support this operation",
  [502] = "Invalid responses from another server/proxy",
  [503] = "The server cannot process the request due to a high load",
  [504] = "The gateway server did not receive a timely response",
  [505] = "Cannot fulfill request",
  [506] = "",
  [507] = "",
  [508] = "",
  [510] = "",
  [511] = "The client needs to authenticate to gain network access",
}

-- send_error(code[, message[, explain]]): Python's HTML error page
-- send_error(code[, message[, explain]]): Python's HTML error page
function Base:send_error(code, message, explain)
  local reason = core.status_reason(code)
  message = message or reason or "???"
  explain = explain or (reason and M.explanations[code]) or "???"
  self:log_error("code %d, message %s", code, message)
  self:send_response(code, (message:gsub("[\r\n%z]", " ")))
  self:send_header("Connection", "close")
  local body
  if code >= 200 and code ~= 204 and code ~= 205 and code ~= 304 then
    body = format(self.error_message_format, code, html_escape(message, false), code,
      html_escape(explain, false))
    self:send_header("Content-Type", self.error_content_type)
    self:send_header("Content-Length", #body)
  end
  self:end_headers()
  if self.command ~= "HEAD" and body then self.wfile:write(body) end
end

-- ---- logging, as Python's ----------------------------------------------------

-- The log clock changes once a second: format it once a second.
local now_s, log_date = -1, nil
local function refresh_dates()
  local t = wirelab.time() // 1
  if t ~= now_s then
    now_s, log_date = t, os.date("%d/%b/%Y %H:%M:%S", t)
  end
end

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

local USAGE = [[
usage: wirelab -m http.server [-h] [-b ADDRESS] [-d DIRECTORY] [-p VERSION] [port]

positional arguments:
  port                  bind to this port (default: 8000)

options:
  -h, --help            show this help message and exit
  -b ADDRESS, --bind ADDRESS
                        bind to this address (default: all interfaces)
  -d DIRECTORY, --directory DIRECTORY
                        serve this directory (default: current directory)
  -p VERSION, --protocol VERSION
                        conform to this HTTP version (default: HTTP/1.0)]]

-- Python's options: -b, -d, -p take a value, as "-b ADDR" or "--bind=ADDR"
local VALUE_OPTS = {["-b"] = "bind", ["--bind"] = "bind", ["-d"] = "dir", ["--directory"] = "dir",
                    ["-p"] = "protocol", ["--protocol"] = "protocol"}

local function parse_args(args)
  local o = {port = 8000, protocol = "HTTP/1.0"}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-%a+)=(.*)$")
    if not (name and VALUE_OPTS[name]) then name, value = a, nil end
    local key = VALUE_OPTS[name]
    if key then
      if value == nil then
        value = args[i + 1]
        if value == nil then return nil, "argument " .. a .. ": expected one argument" end
        i = i + 1
      end
      o[key] = value
      i = i + 1
    elseif a == "-h" or a == "--help" then
      o.help = true
      i = i + 1
    elseif a:match("^%d+$") then
      -- a decimal port, as Python's argparse type=int: not "1.5" nor "0x10"
      o.port, i = math.tointeger(tonumber(a)), i + 1
      if not o.port or o.port > 65535 then return nil, "port out of range 0-65535: '" .. a .. "'" end
    else
      return nil, "unknown argument '" .. a .. "'"
    end
  end
  if not o.protocol:match("^HTTP/%d+%.%d+$") then
    return nil, "argument -p/--protocol: HTTP/major.minor expected, got '" .. o.protocol .. "'"
  end
  return o
end

-- interrupted(err): the error Ctrl-C raises in the task that catches it
local function interrupted(err)
  return errors.is(err, "EINTR") or (type(err) == "string" and err:find("interrupted", 1, true) ~= nil)
end

function M.main(args)
  local o, msg = parse_args(args)
  if not o then
    io.stderr:write("wirelab -m http.server: ", msg, "\n")
    return 2
  end
  if o.help then
    print(USAGE)
    return 0
  end
  local static = require "http.static"
  local Handler = static.SimpleHTTPRequestHandler:extend({directory = o.dir, protocol_version = o.protocol})
  local host = o.bind or ""
  local cls = M.ThreadingHTTPServer
  if host:find(":", 1, true) then cls = cls:extend({address_family = socket.AF_INET6}) end
  local server = cls({host, o.port}, Handler)
  local h, p = server.server_address[1], server.server_address[2]
  -- Ctrl-C ends serving as Python's KeyboardInterrupt does: a message, 0.
  -- Caught from before the banner, which tells a user it may be pressed.
  local rl = require "wirelab.readline"
  local ok, err = pcall(function()
    rl.catch_sigint(true)
    print(format("Serving HTTP on %s port %d (http://%s/) ...", h, p, url.authority(h, p)))
    io.stdout:flush()
    server:serve_forever()
  end)
  rl.catch_sigint(false)
  server:server_close()
  if not ok then
    if not interrupted(err) then error(err, 0) end
    print("\nKeyboard interrupt received, exiting.")
  end
  return 0
end

return require("wirelab.class").named(M)  -- classes know their names
