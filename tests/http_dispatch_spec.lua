-- http_dispatch_spec: BaseHTTPRequestHandler is Lua's, as Python's is
-- Python's: a subclass or a mixin that overrides any of its methods
-- (send_header, send_response, end_headers, version_string,
-- date_time_string, log_message, handle_one_request, parse_request) is
-- obeyed by every method that calls it, by ordinary method lookup. Each
-- handler here is written twice, in Lua and in Python's http.server, and
-- the two servers must answer the same raw request with the same bytes.
local hs = require "http.server"
local socket = require "socket"
local process = require "process"

local concat, format = table.concat, string.format

local support = require "support"
local bounded, defer = support.bounded, support.defer

local Base = hs.BaseHTTPRequestHandler

-- What both sides share: a fixed Server and Date (the latter is itself an
-- override, date_time_string), HTTP/1.1, no log on stderr.
local COMMON_LUA = {
  server_version = "Lab/1.0", sys_version = "Test/2", protocol_version = "HTTP/1.1",
}
local PY_PRELUDE = [[
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Common(BaseHTTPRequestHandler):
    server_version = "Lab/1.0"
    sys_version = "Test/2"
    protocol_version = "HTTP/1.1"
    def date_time_string(self, timestamp=None):
        return "Thu, 01 Jan 1970 00:00:00 GMT"
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = ("GET " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
]]
local PY_SERVE = [[
srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sys.stdin.read()
]]

local function common_get(self)
  local body = "GET " .. self.path
  self:send_response(200)
  self:send_header("Content-Type", "text/plain")
  self:send_header("Content-Length", #body)
  self:end_headers()
  self.wfile:write(body)
end

-- lua_server(cls) -> port: cls (made from Common) in a ThreadingHTTPServer
local function lua_server(cls)
  local srv = hs.ThreadingHTTPServer:extend({daemon_threads = false})({"127.0.0.1", 0}, cls)
  srv:start()
  defer(function() srv:shutdown(); srv:server_close() end)
  return srv.server_address[2]
end

local function Common(fields)
  local f = {}
  for k, v in pairs(COMMON_LUA) do f[k] = v end
  for k, v in pairs(fields or {}) do f[k] = v end
  local cls = Base:extend(f)
  function cls:date_time_string() return "Thu, 01 Jan 1970 00:00:00 GMT" end
  function cls:log_message() end
  cls.do_GET = cls.do_GET or common_get
  return cls
end

-- py_server(code) -> port: Python's http.server with Handler defined by
-- code (after the prelude's Common); ends with the test
local function py_server(code)
  if not support.find("python3") then return nil end
  local p = support.spawn{"python3", "-c", PY_PRELUDE .. code .. PY_SERVE, stdin = true}
  local line = p.stdout:read("l")
  if not (line and line:match("^%d+$")) then
    error("python3 did not start: " .. tostring(p.stderr:read("a")))
  end
  return tonumber(line)
end

-- exchange(port, request[, n]) -> the raw bytes of n responses with a
-- Content-Length each (default 1), or of everything until the server
-- closes when n is false
local function exchange(port, request, n)
  local s = socket.create_connection("127.0.0.1", port, 5)
  s:settimeout(5)
  local ok, out = pcall(function()
    s:sendall(request)
    local buf, got, pos = "", 0, 1
    n = n == nil and 1 or n
    while true do
      while n do               -- every whole response received so far
        local head_end = buf:find("\r\n\r\n", pos, true)
        if not head_end then break end
        local len = tonumber(buf:sub(pos, head_end):match("\r\n[Cc]ontent%-[Ll]ength: *(%d+)"))
        assert(len, "a response without Content-Length: " .. buf:sub(pos))
        if #buf < head_end + 3 + len then break end
        got, pos = got + 1, head_end + 4 + len
        if got == n then return buf:sub(1, pos - 1) end
      end
      local d = s:recv(65536)
      if d == "" then
        assert(not n, "the server closed after " .. got .. " responses: " .. buf)
        return buf
      end
      buf = buf .. d
    end
  end)
  s:close()               -- now: the server's task waits on it otherwise
  if not ok then error(out, 0) end
  return out
end

local GET = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"

-- both(lua_cls, py_code, request, n) -> the two answers, asserted equal
local function both(lua_cls, py_code, request, n)
  local lport, pport = lua_server(lua_cls), py_server(py_code)
  if not pport then return support.skip("python3 is not installed") end
  local mine, python = exchange(lport, request or GET, n), exchange(pport, request or GET, n)
  assert.are.equal(python, mine)
  return mine
end

describe("http.server dispatch, as Python's", function()
  it("the plain handler answers byte for byte as Python's", bounded(15, function()
    local r = both(Common(), "Handler = Common\n")
    assert.truthy(r:find("^HTTP/1.1 200 OK\r\nServer: Lab/1.0 Test/2\r\nDate: Thu, 01 Jan 1970"))
  end))

  it("send_header overridden in a subclass sees every header, Server and Date too", bounded(15, function()
    local H = Common()
    function H:send_header(k, v)
      Base.send_header(self, k, v)
      if k == "Date" then Base.send_header(self, "X-After-Date", "1") end
      if k == "Server" then Base.send_header(self, "X-Server-Seen", tostring(v)) end
    end
    local r = both(H, [[
class Handler(Common):
    def send_header(self, k, v):
        super().send_header(k, v)
        if k == "Date": super().send_header("X-After-Date", "1")
        if k == "Server": super().send_header("X-Server-Seen", str(v))
]])
    assert.truthy(r:find("\r\nDate: [^\r]*\r\nX%-After%-Date: 1\r\n"))
    assert.truthy(r:find("\r\nX%-Server%-Seen: Lab/1.0 Test/2\r\n", 1, false))
  end))

  it("send_header overridden by a mixin works the same", bounded(15, function()
    local Stamp = {}
    function Stamp:send_header(k, v)
      Base.send_header(self, k, v)
      if k == "Content-Type" then Base.send_header(self, "X-Stamp", "mixin") end
    end
    local H = Common():include(Stamp)
    local r = both(H, [[
class Stamp:
    def send_header(self, k, v):
        super().send_header(k, v)
        if k == "Content-Type": super().send_header("X-Stamp", "mixin")
class Handler(Stamp, Common):
    pass
]])
    assert.truthy(r:find("\r\nContent%-Type: text/plain\r\nX%-Stamp: mixin\r\n"))
  end))

  it("a mixin overriding several methods at once is obeyed by all of them", bounded(15, function()
    local Trace = {}
    function Trace:version_string() return "Traced/1" end
    function Trace:log_message(fmt, ...) self.last_log = format(fmt, ...) end
    function Trace:end_headers()
      self:send_header("X-Log", self.last_log)
      Base.end_headers(self)
    end
    function Trace:handle_one_request()
      self.served = (self.served or 0) + 1
      Base.handle_one_request(self)
    end
    local H = Common()
    H.log_message = nil                   -- Common's silent one gives way
    H = H:include(Trace)
    local r = both(H, [[
class Trace:
    def version_string(self):
        return "Traced/1"
    def log_message(self, fmt, *args):
        self.last_log = fmt % args
    def end_headers(self):
        self.send_header("X-Log", self.last_log)
        super().end_headers()
    def handle_one_request(self):
        self.served = getattr(self, "served", 0) + 1
        super().handle_one_request()
class Handler(Trace, Common):
    pass
]], GET .. "GET /y HTTP/1.1\r\nHost: a\r\n\r\n", 2)
    assert.truthy(r:find("\r\nServer: Traced/1\r\n", 1, true))
    assert.truthy(r:find('\r\nX%-Log: "GET /y HTTP/1.1" 200 %-\r\n'))
  end))

  it("send_response overridden adds to every response", bounded(15, function()
    local H = Common()
    function H:send_response(code, message)
      Base.send_response(self, code, message)
      self:send_header("X-Code", code)
    end
    local r = both(H, [[
class Handler(Common):
    def send_response(self, code, message=None):
        super().send_response(code, message)
        self.send_header("X-Code", code)
]])
    assert.truthy(r:find("\r\nX%-Code: 200\r\n"))
  end))

  it("send_response replaced, calling send_response_only directly, sends no Server or Date", bounded(15, function()
    local H = Common()
    function H:send_response(code, message)
      self:send_response_only(code, message)
      self:send_header("X-Bare", "yes")
    end
    local r = both(H, [[
class Handler(Common):
    def send_response(self, code, message=None):
        self.send_response_only(code, message)
        self.send_header("X-Bare", "yes")
]])
    assert.falsy(r:find("Server:", 1, true))
    assert.falsy(r:find("Date:", 1, true))
  end))

  it("end_headers overridden may add a last header", bounded(15, function()
    local H = Common()
    function H:end_headers()
      self:send_header("X-End", "last")
      Base.end_headers(self)
    end
    local r = both(H, [[
class Handler(Common):
    def end_headers(self):
        self.send_header("X-End", "last")
        super().end_headers()
]])
    assert.truthy(r:find("\r\nX%-End: last\r\n\r\nGET /x$"))
  end))

  it("version_string overridden is the Server header", bounded(15, function()
    local H = Common()
    function H:version_string() return "Custom/" .. self.command end
    local r = both(H, [[
class Handler(Common):
    def version_string(self):
        return "Custom/" + self.command
]])
    assert.truthy(r:find("\r\nServer: Custom/GET\r\n", 1, true))
  end))

  it("date_time_string overridden is the Date header", bounded(15, function()
    local H = Common()
    function H:date_time_string() return "Fri, 13 Feb 2009 23:31:30 GMT" end
    local r = both(H, [[
class Handler(Common):
    def date_time_string(self, timestamp=None):
        return "Fri, 13 Feb 2009 23:31:30 GMT"
]])
    assert.truthy(r:find("\r\nDate: Fri, 13 Feb 2009 23:31:30 GMT\r\n", 1, true))
  end))

  it("log_message overridden gets log_request's line, as Python's", bounded(15, function()
    local H = Common()
    function H:log_message(fmt, ...) self.logged = format(fmt, ...) end
    function H:do_GET()
      self:send_response(200)
      local body = self.logged
      self:send_header("Content-Length", #body)
      self:end_headers()
      self.wfile:write(body)
    end
    local r = both(H, [[
class Handler(Common):
    def log_message(self, fmt, *args):
        self.logged = fmt % args
    def do_GET(self):
        self.send_response(200)
        body = self.logged.encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
]])
    assert.truthy(r:find('\r\n\r\n"GET /x HTTP/1.1" 200 %-$'))
  end))

  it("handle_one_request overridden runs once per request", bounded(15, function()
    local H = Common()
    function H:handle_one_request()
      self.count = (self.count or 0) + 1
      Base.handle_one_request(self)
    end
    function H:do_GET()
      local body = "request " .. self.count
      self:send_response(200)
      self:send_header("Content-Length", #body)
      self:end_headers()
      self.wfile:write(body)
    end
    local r = both(H, [[
class Handler(Common):
    def handle_one_request(self):
        self.count = getattr(self, "count", 0) + 1
        super().handle_one_request()
    def do_GET(self):
        body = ("request %d" % self.count).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
]], GET .. GET .. GET, 3)
    assert.truthy(r:find("request 3$"))
  end))

  it("parse_request overridden may refuse a request after the head is parsed", bounded(15, function()
    local H = Common()
    function H:parse_request()
      if not Base.parse_request(self) then return false end
      if self.path == "/deny" then
        self:send_error(403, "Denied here")
        return false
      end
      return true
    end
    local py = [[
class Handler(Common):
    def parse_request(self):
        if not super().parse_request():
            return False
        if self.path == "/deny":
            self.send_error(403, "Denied here")
            return False
        return True
]]
    local r = both(H, py, "GET /deny HTTP/1.1\r\nHost: a\r\n\r\n", false)
    assert.truthy(r:find("^HTTP/1.1 403 Denied here\r\n"))
    assert.truthy(r:find("\r\nConnection: close\r\n", 1, true))
    -- and a request it lets through is served
    both(H, py)
  end))

  it("parse_request sees the parsed head: command, path, version, headers", bounded(15, function()
    local H = Common()
    function H:parse_request()
      local ok = Base.parse_request(self)
      self.seen = concat({self.command, self.path, self.request_version,
                          self.headers:get("X-Probe", "none"), tostring(self.close_connection)}, " ")
      return ok
    end
    function H:do_GET()
      local body = self.seen
      self:send_response(200)
      self:send_header("Content-Length", #body)
      self:end_headers()
      self.wfile:write(body)
    end
    local r = both(H, [[
class Handler(Common):
    def parse_request(self):
        ok = super().parse_request()
        self.seen = " ".join([self.command, self.path, self.request_version,
                              self.headers.get("X-Probe", "none"), str(self.close_connection).lower()])
        return ok
    def do_GET(self):
        body = self.seen.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
]], "GET //a/b?c HTTP/1.1\r\nHost: a\r\nX-Probe: yes\r\n\r\n")
    assert.truthy(r:find("\r\n\r\nGET /a/b%?c HTTP/1.1 yes false$"))
  end))

  it("an override on the instance is obeyed too", bounded(15, function()
    local H = Common()
    function H:setup()
      Base.setup(self)
      self.send_header = function(me, k, v)
        Base.send_header(me, k == "Content-Type" and "X-Renamed" or k, v)
      end
    end
    local r = exchange(lua_server(H), GET)
    assert.truthy(r:find("\r\nX%-Renamed: text/plain\r\n"))
    assert.falsy(r:find("Content-Type", 1, true))
  end))

  it("methods and fields assigned to the classes later are obeyed at once, as in Python", bounded(15, function()
    -- the class chain is looked up through flat tables (wirelab.class):
    -- an assignment mid-connection, to the handler's class or to a class
    -- it extends, and taking an override away again, must reach them
    local Mid = Common()
    local H = Mid:extend()
    function H:do_GET()
      if self.path == "/late" then
        Mid.server_version = "Late/1.0"
        function H:send_header(k, v)
          Base.send_header(self, k, v)
          if k == "Date" then Base.send_header(self, "X-Late", "1") end
        end
      elseif self.path == "/back" then
        H.send_header = nil
      end
      common_get(self)
    end
    local req = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    local reqs = req .. req:gsub("/x", "/late") .. req .. req:gsub("/x", "/back")
    local r = both(H, [[
class Mid(Common):
    pass
class Handler(Mid):
    def do_GET(self):
        if self.path == "/late":
            Mid.server_version = "Late/1.0"
            def send_header(me, k, v):
                BaseHTTPRequestHandler.send_header(me, k, v)
                if k == "Date": BaseHTTPRequestHandler.send_header(me, "X-Late", "1")
            Handler.send_header = send_header
        elif self.path == "/back":
            del Handler.send_header
        Common.do_GET(self)
]], reqs, 4)
    local _, lates = r:gsub("\r\nX%-Late: 1\r\n", "")
    assert.are.equal(2, lates)                -- /late and the /x after it
    local _, servers = r:gsub("\r\nServer: Late/1.0 Test/2\r\n", "")
    assert.are.equal(3, servers)
  end))

  it("a handler that never ends its head gets one ended for it", bounded(15, function()
    local H = Common()
    local ended = 0
    function H:end_headers()
      ended = ended + 1
      Base.end_headers(self)
    end
    function H:do_GET()
      self:send_response(200)
      self:send_header("Content-Length", 2)
      self.wfile:write("ok")
    end
    local r = exchange(lua_server(H), GET)
    assert.truthy(r:find("\r\nContent%-Length: 2\r\n\r\nok$"))
    assert.are.equal(1, ended)
  end))
end)

describe("http.server's writer and parser, the protocol objects", function()
  it("the writer refuses header injection whoever calls it", bounded(10, function()
    local H = Common()
    function H:do_GET()
      local ok, err = pcall(self.send_header, self, "X", "a\r\nInjected: 1")
      local body = ok and "sent" or tostring(err):match("header value contains CR, LF or NUL") or tostring(err)
      self:send_response(200)
      self:send_header("Content-Length", #body)
      self:end_headers()
      self.wfile:write(body)
    end
    local r = exchange(lua_server(H), GET)
    assert.falsy(r:find("Injected", 1, true))
    assert.truthy(r:find("header value contains CR, LF or NUL$"))
  end))

  it("the writer is a plain object: status, header, end_headers, finish", bounded(10, function()
    local core = require "http.core"
    assert.has_error(function() core.writer({}) end)
    local a, b = socket.socketpair()
    defer(function() a:close(); b:close() end)
    local w = core.writer(a)
    assert.has_error(function() core.writer_methods.header({}, "X", "1") end)
    w:status("HTTP/1.1", 200)
    assert.is_nil(w:header("Content-Type", "text/plain"))
    assert.is_true(w:header("Connection", "close"))
    assert.is_false(w:header("connection", "Keep-Alive"))
    -- no length: chunked when the caller says both sides speak HTTP/1.1
    assert.is_false(w:end_headers(false, true))
    assert.is_true(w:headers_sent())
    w:write("hello")
    assert.is_false(w:finish())
    assert.is_false(w:headers_sent())     -- ready for the next response
    local got = b:recv(65536)
    assert.are.equal("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
      .. "connection: Keep-Alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", got)
    -- without chunking the body ends with the connection, and says so
    w:status("HTTP/1.0", 200, "Fine")
    assert.is_true(w:end_headers(false, false))
    w:write("x")
    w:finish()
    assert.are.equal("HTTP/1.0 200 Fine\r\nConnection: close\r\n\r\nx", b:recv(65536))
    -- a HEAD response keeps no body
    w:status("HTTP/1.1", 200, nil, true)
    w:header("Content-Length", 3)
    w:end_headers(false, true)
    w:write("abc")
    w:finish()
    assert.are.equal("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", b:recv(65536))
  end))

  it("a body left unread and cut short gets no second response", bounded(15, function()
    local H = Common()
    function H:do_POST() common_get(self) end
    local port = lua_server(H)
    local s = socket.create_connection("127.0.0.1", port, 5)
    defer(function() s:close() end)
    s:settimeout(5)
    s:sendall("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    s:shutdown(socket.SHUT_WR)
    local parts = {}
    while true do
      local d = s:recv(65536)
      if d == "" then break end
      parts[#parts + 1] = d
    end
    local all = concat(parts)
    assert.truthy(all:find("^HTTP/1.1 200 OK\r\n"))
    assert.truthy(all:find("\r\n\r\nGET /p$"), all)   -- and nothing after it
  end))

  it("take_head returns the head it parsed", function()
    local core = require "http.core"
    local p = core.parser("request")
    local buf = "GET /p?q HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\nrest"
    local ev, pos, command, path, version, line, headers, keep_alive, has_body =
      p:take_head(buf, 1)
    assert.are.equal("head", ev)
    assert.are.equal("rest", buf:sub(pos))
    assert.are.same({"GET", "/p?q", "HTTP/1.1", "GET /p?q HTTP/1.1", true, false},
                    {command, path, version, line, keep_alive, has_body})
    assert.are.equal("1", headers:get("x-a"))
  end)
end)
