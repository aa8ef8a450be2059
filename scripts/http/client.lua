-- http.client: Python's http.client over wirelab sockets (API.md section
-- 5). An HTTPConnection keeps one socket across requests (keep-alive) and
-- reads responses with the C parser (http.core), which frames
-- Content-Length, chunked and close-delimited bodies and refuses malformed
-- or smuggled responses. Nothing with a control byte or a space in the
-- method, target or a header is ever sent (RELIABILITY.md item 11).
local socket = require "socket"
local wirelab = require "wirelab"
local class = require "wirelab.class"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"
local core = require "http.core"
local headers_mod = require "http.headers"
local url_mod = require "http.url"

local type, tostring, pcall, error, setmetatable = type, tostring, pcall, error, setmetatable
local ipairs, pairs, select, math_type = ipairs, pairs, select, math.type
local concat, sort, lower, format = table.concat, table.sort, string.lower, string.format

local M = {}
M.HTTP_PORT = 80
M.MAX_REDIRECTS = 10
M.USER_AGENT = "wirelab/" .. (wirelab.version:match("%d[%d.]*") or "0")
-- limits for a response head; a body has none, as in Python
M.MAX_LINE = 65536
M.MAX_HEADER_BYTES = 262144
M.MAX_HEADERS = 100

local READ_SIZE = 65536
local DRAIN_LIMIT = 1024 * 1024   -- an unread body larger than this is dropped with its connection
local BIG_BODY = 65536            -- above this, head and body leave in two writes, uncopied

-- Methods a client may send twice: a request on a reused connection that
-- the server closed without answering is retried once (RFC 9110 9.2.2).
local IDEMPOTENT = {GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true}
-- Methods whose requests carry a body: without one they say Content-Length: 0.
local EXPECTS_BODY = {POST = true, PUT = true, PATCH = true}
local REDIRECTS = {[301] = true, [302] = true, [303] = true, [307] = true, [308] = true}

-- ---- errors ---------------------------------------------------------------

-- A wirelab error whose message goes on to name the problem:
--   getresponse 127.0.0.1:8000: protocol error: malformed response: ... (EPROTO)
-- new_error(op, code, detail, host, port): the one error object, with detail
local function new_error(op, code, detail, host, port)
  return errors.new(op, code, host, port, detail)
end

-- bytes quoted for an argument error, controls as \xHH
local show = url_mod.show

local argerror = errors.argerror

-- headers: case-insensitive, in arrival order (http.headers)
local new_headers = headers_mod.new
M.Headers = headers_mod.Headers
M.new_headers = new_headers

-- ---- request validation -------------------------------------------------

-- headers: a map {name = value} or a list {{name, value}...}, or both in one
-- table; a value may be a list, sent as one line per element. Returns a
-- list of {name, value}, every name and value checked.
local function header_list(headers, fname, argn, level)
  local out = {}
  if headers == nil then return out end
  if type(headers) ~= "table" then
    argerror(argn, fname, "table of headers expected, got " .. type(headers), level + 1)
  end
  local function add(name, value)
    if type(name) ~= "string" or not core.valid_header_name(name) then
      argerror(argn, fname, "invalid header name " .. show(name), level + 2)
    end
    if value == nil then argerror(argn, fname, "header " .. name .. ": value expected", level + 2) end
    local values = type(value) == "table" and value or {value}
    for _, v in ipairs(values) do
      if type(v) == "number" then v = tostring(v) end
      if type(v) ~= "string" then
        argerror(argn, fname, "header " .. name .. ": string value expected, got " .. type(v), level + 2)
      end
      if not core.valid_header_value(v) then
        argerror(argn, fname, "header " .. name .. ": value contains CR, LF or another control byte "
          .. show(v), level + 2)
      end
      out[#out + 1] = {name, v}
    end
  end
  local n = #headers
  for i = 1, n do
    local kv = headers[i]
    if type(kv) ~= "table" then
      argerror(argn, fname, "header #" .. i .. ": {name, value} expected, got " .. type(kv), level + 1)
    end
    add(kv[1], kv[2])
  end
  local names = {}
  for k in pairs(headers) do
    if math_type(k) ~= "integer" or k < 1 or k > n then
      if type(k) ~= "string" then argerror(argn, fname, "invalid header name " .. show(k), level + 1) end
      names[#names + 1] = k
    end
  end
  sort(names)                       -- the same request bytes on every run
  for _, k in ipairs(names) do add(k, headers[k]) end
  return out
end

local function has_header(list, name)
  for _, kv in ipairs(list) do
    if lower(kv[1]) == name then return true end
  end
  return false
end

local function check_method(method, fname, level)
  if type(method) ~= "string" then argerror(1, fname, "string expected, got " .. type(method), level + 1) end
  if not core.valid_method(method) then
    argerror(1, fname, "invalid method " .. show(method) .. ": a token without spaces or control bytes expected",
      level + 1)
  end
end

local function check_target(url, fname, argn, level)
  if type(url) ~= "string" then argerror(argn, fname, "string expected, got " .. type(url), level + 1) end
  if not core.valid_target(url) then
    argerror(argn, fname, "invalid URL " .. show(url) .. ": spaces and control bytes must be percent-encoded",
      level + 1)
  end
end

-- ---- HTTPConnection ---------------------------------------------------------

local HTTPConnection = class.Object:extend()
M.HTTPConnection = HTTPConnection
HTTPConnection.default_port = M.HTTP_PORT
HTTPConnection.auto_open = true

-- HTTPConnection(host[, port[, {timeout=} | timeout]]); host may be
-- "name:port" or "[v6]:port" when port is nil, as in Python.
function HTTPConnection:init(host, port, opts)
  if type(host) ~= "string" then argerror(1, "HTTPConnection", "string expected, got " .. type(host), 3) end
  if port == nil then
    local h, p = host:match("^%[(.*)%]:(%d+)$")
    if not h then h, p = host:match("^([^:]*):(%d+)$") end
    if h then host, port = h, math.tointeger(tonumber(p)) end
  end
  host = host:match("^%[(.*)%]$") or host
  if host == "" or host:find("[\0-\32\127/]") then
    argerror(1, "HTTPConnection", "invalid host " .. show(host), 3)
  end
  if port == nil then port = self.default_port end
  if math_type(port) ~= "integer" or port < 1 or port > 65535 then
    argerror(2, "HTTPConnection", "port 1-65535 expected", 3)
  end
  if type(opts) == "number" then opts = {timeout = opts} end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(3, "HTTPConnection", "table of options or timeout expected, got " .. type(opts), 3)
  end
  opts = opts or {}
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(3, "HTTPConnection", "timeout: non-negative number of seconds or nil expected", 3)
  end
  self.host, self.port, self.timeout = host, port, timeout
  self.sock = nil
  self._limits = {max_line = opts.max_line or M.MAX_LINE,
                  max_header_bytes = opts.max_header_bytes or M.MAX_HEADER_BYTES,
                  max_headers = opts.max_headers or M.MAX_HEADERS,
                  max_body = opts.max_body or math.maxinteger}
  self._parser = core.parser("response", self._limits)
  self._buf, self._pos, self._rx = "", 1, 0
  self._out = nil        -- the request being built by putrequest/putheader
  self._pending = nil    -- a request sent, getresponse not called yet
  self._response = nil   -- the response whose body is being read
end

-- The Host header: brackets for IPv6, the port unless it is the default.
function HTTPConnection:_host_header()
  return url_mod.authority(self.host, self.port ~= self.default_port and self.port or nil)
end

function HTTPConnection:connect()
  if self.sock then return end
  local sock = socket.create_connection(self.host, self.port, self.timeout)
  -- requests leave in one write; never wait on Nagle for the next one
  pcall(sock.setsockopt, sock, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  self.sock = sock
  self._buf, self._pos = "", 1
end

-- Drops the socket; a response still reading from it can read no more.
function HTTPConnection:_drop()
  local r = self._response
  if r then
    r._broken = true
    self._response = nil
  end
  if self.sock then
    self.sock:close()
    self.sock = nil
  end
  self._buf, self._pos = "", 1
end

function HTTPConnection:close()
  self._pending, self._out = nil, nil
  self:_drop()
end
HTTPConnection.__close = HTTPConnection.close

-- Can the idle socket carry another request? Not if the server has closed
-- or reset it (its FIN moved the socket out of ESTABLISHED), nor if bytes
-- nobody asked for are waiting.
function HTTPConnection:_reusable()
  if self._pos <= #self._buf then return false end
  local ok, state = pcall(self.sock.tcp_info, self.sock, "state")   -- one field: no table
  if ok and type(state) == "string" and state ~= "ESTABLISHED" then return false end
  return true
end

-- Reads more bytes into the buffer; false at EOF. Socket errors (reset,
-- timeout) raise as they are.
function HTTPConnection:_fill()
  local data = self.sock:recv(READ_SIZE)
  if data == "" then return false end
  if self._pos > #self._buf then self._buf = data
  else self._buf = self._buf:sub(self._pos) .. data end
  self._pos = 1
  self._rx = self._rx + #data
  return true
end

-- A request or response still in the way of the next request: read what
-- is left, or give the connection up.
function HTTPConnection:_settle()
  if self._busy then
    -- a task was cancelled (or timed out) halfway through sending a request
    -- or reading a head: what the socket holds now is anyone's guess
    self._busy, self._pending = nil, nil
    self:_drop()
  end
  if self._pending then
    local ok, r = pcall(self.getresponse, self)
    if not ok then self:_drop() else r:_drain() end
  end
  if self._response then self._response:_drain() end
  self._out = nil
end

local function send_parts(sock, parts)
  for _, p in ipairs(parts) do
    if type(p) == "function" then p(sock) elseif #p > 0 then sock:sendall(p) end
  end
end

local function conn_lost(err)
  return errors.is(err, "ECONNRESET") or errors.is(err, "EPIPE") or errors.is(err, "ECONNABORTED")
end

-- Sends a whole request (a list of strings, or functions for streamed
-- bodies), reconnecting first if the idle connection was closed by the
-- server, and once more if a reused one fails while sending.
function HTTPConnection:_send(req)
  local reused = false
  if self.sock then
    if self:_reusable() then reused = true else self:_drop() end
  end
  if not self.sock then
    if not self.auto_open then errors.raise("request", "ENOTCONN", self.host, self.port) end
    self:connect()
  end
  self._rx = 0
  self._busy = true
  local ok, err = pcall(send_parts, self.sock, req.parts)
  if not ok then
    self:_drop()
    if not (reused and req.retryable and conn_lost(err)) then error(err, 0) end
    self:connect()
    reused = false
    ok, err = pcall(send_parts, self.sock, req.parts)
    if not ok then self:_drop(); error(err, 0) end
  end
  self._busy = nil
  self._pending = {req = req, reused = reused}
end

-- ---- building requests: putrequest, putheader, endheaders, send --------

-- putrequest(method, url[, skip_host[, skip_accept_encoding]])
function HTTPConnection:putrequest(method, url, skip_host, skip_accept_encoding)
  check_method(method, "putrequest", 2)
  check_target(url, "putrequest", 2, 2)
  self:_settle()
  self._out = {method = method, lines = {method .. " " .. url .. " HTTP/1.1\r\n"}, names = {}}
  if not skip_host then self:_put("Host", self:_host_header()) end
  if not skip_accept_encoding then self:_put("Accept-Encoding", "identity") end
end

function HTTPConnection:_put(name, value)
  local out = self._out
  out.lines[#out.lines + 1] = name .. ": " .. value .. "\r\n"
  out.names[lower(name)] = true
end

-- putheader(name, value...): one line, several values joined by ", "
function HTTPConnection:putheader(name, ...)
  if not self._out then error("putheader: no request started (call putrequest first)", 2) end
  local values = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "number" then v = tostring(v) end
    values[i] = v
  end
  local list = header_list({{name, #values == 1 and values[1] or concat(values, ", ")}}, "putheader", 1, 2)
  self:_put(list[1][1], list[1][2])
end

-- A body for the wire: a string, or a function returning the next piece
-- (nil at the end), sent chunked unless a Content-Length was given.
local function body_parts(body, chunked)
  if body == nil or body == "" then return {} end
  if type(body) == "string" then return {body} end
  return {function(sock)
    while true do
      local piece = body()
      if piece == nil then break end
      if type(piece) ~= "string" then error("request body function returned a " .. type(piece), 0) end
      if #piece > 0 then
        if chunked then sock:sendall(format("%x\r\n", #piece) .. piece .. "\r\n")
        else sock:sendall(piece) end
      end
    end
    if chunked then sock:sendall("0\r\n\r\n") end
  end}
end

local function check_body(body, fname, argn, level)
  if type(body) == "number" then body = tostring(body) end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    argerror(argn, fname, "string, function or nil body expected, got " .. type(body), level + 1)
  end
  return body
end

-- endheaders([body]): the request goes out (head and body)
function HTTPConnection:endheaders(body)
  local out = self._out
  if not out then error("endheaders: no request started (call putrequest first)", 2) end
  body = check_body(body, "endheaders", 1, 2)
  local chunked = type(body) == "function" and not out.names["content-length"]
  if chunked and not out.names["transfer-encoding"] then self:_put("Transfer-Encoding", "chunked") end
  self._out = nil
  out.lines[#out.lines + 1] = "\r\n"
  local head = concat(out.lines)
  local parts = body_parts(body, chunked)
  if #parts == 1 and type(parts[1]) == "string" and #parts[1] <= BIG_BODY then
    parts = {head .. parts[1]}
  else
    table.insert(parts, 1, head)
  end
  self:_send({method = out.method, parts = parts,
              retryable = IDEMPOTENT[out.method] and type(body) ~= "function"})
end

-- send(data): more request bytes after endheaders
function HTTPConnection:send(data)
  if type(data) ~= "string" then argerror(1, "send", "string expected, got " .. type(data), 2) end
  if not self.sock then errors.raise("send", "ENOTCONN", self.host, self.port) end
  if self._pending then self._pending.req.retryable = false end
  self.sock:sendall(data)
end

-- request(method, url[, body[, headers]]): checks everything before a
-- byte leaves, then sends the request. Host, Accept-Encoding: identity,
-- User-Agent and Content-Length are added unless given.
function HTTPConnection:request(method, url, body, headers)
  check_method(method, "request", 2)
  check_target(url, "request", 2, 2)
  body = check_body(body, "request", 3, 2)
  local list = header_list(headers, "request", 4, 2)
  local given = {}
  for _, kv in ipairs(list) do given[lower(kv[1])] = true end
  self:putrequest(method, url, given.host, given["accept-encoding"])
  if not given["user-agent"] then self:_put("User-Agent", M.USER_AGENT) end
  if not given["content-length"] and not given["transfer-encoding"] then
    if type(body) == "string" then
      if #body > 0 or EXPECTS_BODY[method] then self:_put("Content-Length", tostring(#body)) end
    elseif body == nil and EXPECTS_BODY[method] then
      self:_put("Content-Length", "0")
    end
  end
  for _, kv in ipairs(list) do self:_put(kv[1], kv[2]) end
  self:endheaders(body)
end

-- ---- responses ----------------------------------------------------------

local HTTPResponse = class.Object:extend()
M.HTTPResponse = HTTPResponse

-- Reads the next response head; interim 1xx responses (but 101) are skipped.
function HTTPConnection:_read_head(method)
  local p = self._parser
  p:reset()
  if method == "HEAD" then p:set_head_response(true) end
  while true do
    local ev, a, b = p:feed(self._buf, self._pos)
    if ev == "head" then
      self._pos = a
      if b.status >= 200 or b.status == 101 then return b end
    elseif ev == "end" then                   -- the end of a 1xx response
      self._pos = a
    elseif ev == "more" then
      self._pos = a
      if not self:_fill() then
        if self._rx == 0 then
          -- Python's RemoteDisconnected is a ConnectionResetError too
          error(new_error("getresponse", "ECONNRESET", "remote end closed connection without response",
            self.host, self.port), 0)
        end
        error(new_error("getresponse", "EPROTO", "response cut short: connection closed in the "
          .. "response head", self.host, self.port), 0)
      end
    elseif ev == "error" then
      error(new_error("getresponse", "EPROTO", "malformed response: " .. tostring(b), self.host, self.port), 0)
    else
      error(new_error("getresponse", "EPROTO", "malformed response: body before the head",
        self.host, self.port), 0)
    end
  end
end

-- The reader's source: the piece read with the head, then the body.
local function body_source(r)   -- (HTTPResponse:_next, below)
  local c = r._first
  if c then r._first = nil; return c end
  return r:_next()
end

-- getresponse() -> the response to the request sent last
function HTTPConnection:getresponse()
  local pend = self._pending
  if not pend then
    error("getresponse: no request sent (call request first, and getresponse once per request)", 2)
  end
  self._pending = nil
  local method = pend.req.method
  self._busy = true
  local ok, head = pcall(self._read_head, self, method)
  if not ok and pend.reused and pend.req.retryable and self._rx == 0 and conn_lost(head) then
    -- the server closed the reused connection as our request arrived
    self:_drop()
    ok, head = pcall(function()
      self:connect()
      self._rx = 0
      send_parts(self.sock, pend.req.parts)
      return self:_read_head(method)
    end)
  end
  self._busy = nil
  if not ok then
    self:_drop()
    error(head, 0)
  end
  local r = setmetatable({}, HTTPResponse)
  r._conn, r._sock = self, self.sock
  r.status, r.reason, r.version = head.status, head.reason, head.version
  r.headers = new_headers(head.headers)
  r.msg = r.headers
  r.method = method
  r.chunked = head.chunked
  r.length = head.content_length
  r.will_close = not head.keep_alive or head.status == 101
  r.closed = false
  r._received, r._done = 0, false
  r._rd = reader.new(body_source, r)
  self._response = r
  local s = head.status
  if s == 101 then
    r:_complete()                   -- what follows is another protocol
  elseif method == "HEAD" or s == 204 or s == 304 or head.content_length == 0 then
    -- the parser ends these without another byte: free the connection now
    r._first = r:_next()
  end
  return r
end

-- The connection is free once the body has been read to its end.
function HTTPResponse:_complete()
  self._done, self.closed = true, true
  local conn = self._conn
  if conn._response == self then conn._response = nil end
  if self.will_close and conn.sock == self._sock then conn:_drop() end
end

function HTTPResponse:_error(code, detail)
  local conn = self._conn
  local err = new_error("read", code, detail, conn.host, conn.port)
  if conn.sock == self._sock then conn:_drop() end
  self._broken = true
  return err
end

-- The next piece of the body, nil at its end.
function HTTPResponse:_next()
  if self._done then return nil end
  if self._broken then errors.raise("read", "EBADF", self._conn.host, self._conn.port) end
  local conn = self._conn
  local p = conn._parser
  while true do
    local ev, a, b = p:feed(conn._buf, conn._pos)
    if ev == "body" then
      conn._pos = a
      self._received = self._received + #b
      return b
    elseif ev == "end" then
      conn._pos = a
      if b then self.trailers = new_headers(b) end
      self:_complete()
      return nil
    elseif ev == "more" then
      conn._pos = a
      local ok, more = pcall(conn._fill, conn)
      if not ok then
        if conn.sock == self._sock then conn:_drop() end
        self._broken = true
        error(more, 0)
      end
      if not more then
        local fev, _, reason = p:finish()
        if fev == "end" then               -- a body delimited by the close
          self:_complete()
          return nil
        end
        local what = self.length and format("got %d of %d body bytes", self._received, self.length)
          or format("got %d body bytes", self._received)
        local err = self:_error("EPROTO", "response cut short: " .. what
          .. (reason and (" (" .. reason .. ")") or ""))
        err.partial = self._received
        error(err, 0)
      end
    elseif ev == "error" then
      error(self:_error("EPROTO", "malformed response body: " .. tostring(b)), 0)
    else
      error(self:_error("EPROTO", "malformed response: a second head inside the body"), 0)
    end
  end
end

-- read, readline, lines, read1, peek: the one reader (wirelab.reader)
-- over the body, so a response reads as every other stream does.
for _, name in ipairs{"read", "readline", "lines", "read1", "peek", "buffered"} do
  local method = reader.Reader[name]
  HTTPResponse[name] = function(self, ...) return method(self._rd, ...) end
end

function HTTPResponse:getheader(name, default)
  if type(name) ~= "string" then argerror(1, "getheader", "string expected, got " .. type(name), 2) end
  return self.headers:get(name, default)
end

-- getheaders() -> {{name, value}...} as received
function HTTPResponse:getheaders()
  return self.headers:list()
end

function HTTPResponse:isclosed() return self.closed end

-- Reads and discards the rest of the body so the connection can carry the
-- next request; a large or close-delimited rest costs less as a new
-- connection. Never raises.
function HTTPResponse:_drain()
  if self._done or self._broken then return end
  local conn = self._conn
  if self.will_close or self._received > DRAIN_LIMIT
     or (self.length and self.length - self._received > DRAIN_LIMIT) then
    if conn.sock == self._sock then conn:_drop() end
    self._broken = true
    return
  end
  local ok = pcall(function()
    while not self._done and self._received <= DRAIN_LIMIT do self:_next() end
  end)
  if (not ok or not self._done) and conn.sock == self._sock then conn:_drop() end
end

-- close(): done with the response; unread body bytes cost the connection.
-- Reads after close raise EBADF, as on every closed stream.
function HTTPResponse:close()
  self._rd:close()
  if self.closed then return end
  self.closed = true
  if not self._done then
    local conn = self._conn
    if conn._response == self then conn._response = nil end
    if conn.sock == self._sock then conn:_drop() end
    self._broken = true
  end
end
HTTPResponse.__close = HTTPResponse.close

-- ---- URLs: http/url.lua ------------------------------------------------------

local function parse_url(url) return url_mod.parse(url, M.HTTP_PORT) end
M.parse_url = parse_url
local resolve = url_mod.join
M.urljoin = resolve

-- ---- module shortcuts -----------------------------------------------------

-- headers minus the names in `drop`
local function without(headers, drop)
  local kept = {}
  for _, kv in ipairs(headers) do
    if not drop[lower(kv[1])] then kept[#kept + 1] = kv end
  end
  return kept
end
local BODY_HEADERS = {["content-length"] = true, ["content-type"] = true, ["transfer-encoding"] = true}
local HOST_HEADERS = {authorization = true, cookie = true, host = true}

-- fetch: request, get and post; fname and the argument numbers name what
-- the user called. Reached by tail calls, so level 2 is the user's code.
local function fetch(fname, method, url, opts, nurl, nopts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(nopts, fname, "table of options expected, got " .. type(opts), 2)
  end
  opts = opts or {}
  local u, msg, code = parse_url(url)
  if not u then
    if code then error(new_error(fname, code, msg), 2) end
    argerror(nurl, fname, msg, 2)
  end
  local body = check_body(opts.body, fname, nopts, 2)
  local headers = header_list(opts.headers, fname, nopts, 2)
  local timeout, max = opts.timeout, opts.max_redirects or M.MAX_REDIRECTS
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(nopts, fname, "timeout: non-negative number of seconds or nil expected", 2)
  end
  if math_type(max) ~= "integer" or max < 0 then
    argerror(nopts, fname, "max_redirects: non-negative integer expected", 2)
  end
  local conns = {}                  -- one per host and port, kept across redirects
  local ok, res = pcall(function()
    for redirects = 0, math.huge do
      local key = u.host .. " " .. u.port
      local conn = conns[key] or HTTPConnection(u.host, u.port, {timeout = timeout})
      conns[key] = conn
      local hdrs = headers
      if u.userinfo and not has_header(headers, "authorization") then
        hdrs = {{"Authorization", "Basic " .. url_mod.base64(u.userinfo)}, table.unpack(headers)}
      end
      conn:request(method, u.target, body, hdrs)
      local r = conn:getresponse()
      local location = r.headers:get("location")
      if not (opts.follow_redirects and REDIRECTS[r.status] and location) then
        local data = r:read()
        return {status = r.status, reason = r.reason, headers = r.headers, body = data,
                version = r.version, url = url, trailers = r.trailers}
      end
      if redirects >= max then
        error(new_error(fname, "ELOOP", format("too many redirects (more than %d), the last to %s",
          max, show(location)), u.host, u.port), 0)
      end
      r:_drain()
      local nexturl = resolve(url, location)
      local nu, m, c = parse_url(nexturl)
      if not nu then
        error(new_error(fname, c or "EPROTO", "redirect to " .. show(nexturl) .. ": " .. m, u.host, u.port), 0)
      end
      -- 303 turns into GET; so do 301 and 302 after a POST, as browsers do
      if (r.status == 303 and method ~= "HEAD")
         or ((r.status == 301 or r.status == 302) and method == "POST") then
        method, body, headers = "GET", nil, without(headers, BODY_HEADERS)
      end
      -- credentials and the Host header stay with the host they were for
      if nu.host ~= u.host or nu.port ~= u.port then headers = without(headers, HOST_HEADERS) end
      url, u = nexturl, nu
    end
  end)
  for _, c in pairs(conns) do c:close() end
  if not ok then error(res, 0) end
  return res
end

-- request(method, url[, {headers=, body=, timeout=, follow_redirects=,
-- max_redirects=}]) -> {status=, reason=, headers=, body=, version=, url=,
-- trailers=}; redirects are followed only with follow_redirects
function M.request(method, url, opts)
  check_method(method, "request", 2)
  return fetch("request", method, url, opts, 2, 3)
end

function M.get(url, opts)
  return fetch("get", "GET", url, opts, 1, 2)
end

-- post(url, body[, opts])
function M.post(url, body, opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(3, "post", "table of options expected, got " .. type(opts), 2)
  end
  body = check_body(body, "post", 2, 2)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.body = body
  return fetch("post", "POST", url, o, 1, 3)
end

-- Python's http.client.responses: status -> reason phrase
M.responses = setmetatable({}, {__index = function(_, code)
  if math_type(code) == "integer" then return core.status_reason(code) end
end})

return require("wirelab.class").named(M)  -- classes know their names
