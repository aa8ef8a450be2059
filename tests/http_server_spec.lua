-- http_server_spec: http.server (API.md section 5) on real loopback sockets,
-- against the peers users meet (curl, Python's http.client) and raw sockets
-- that misbehave on purpose (RELIABILITY items 1-11 and 14-16): framing,
-- keep-alive, limits, timeouts, header injection, resets and half-closes.
local hs = require "http.server"
local core = require "http.core"
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"

local concat, format = table.concat, string.format

local support = require "support"
local bounded, defer = support.bounded, support.defer

-- ---- the handler under test -----------------------------------------------

-- App records what it dispatches (server.calls, server.dispatched) and how
-- many requests each connection carried (server.done, when it ends); its
-- log goes to server.log instead of the spec's stderr.
local App = hs.BaseHTTPRequestHandler:extend()

function App:log_message(fmt, ...)
  local log = self.server.log
  log[#log + 1] = format(fmt, ...)
end

function App:handle()
  self.nreq = 0
  local ok, err = pcall(hs.BaseHTTPRequestHandler.handle, self)
  self.server.done:put(self.nreq)
  if not ok then error(err, 0) end
end

function App:note()
  self.nreq = self.nreq + 1
  local srv = self.server
  srv.calls[#srv.calls + 1] = self.command .. " " .. self.path
  srv.dispatched:put(self.path)
end

function App:reply(body, code, headers)
  self:send_response(code or 200)
  self:send_header("Content-Type", "text/plain")
  for k, v in pairs(headers or {}) do self:send_header(k, v) end
  self:send_header("Content-Length", #body)
  self:end_headers()
  self.wfile:write(body)
end

local BIG = 32 * 1024 * 1024
-- /bigchunks: more than any socket buffer, in pieces around the writer's
-- 64 KiB flush size
local CHUNKS = {100, 70000, 3, 1500000, 65535, 65536, 1, 2000000, 0, 17}

function App:serve_get()
  self:note()
  local p = self.path
  if p == "/nolength" then                -- no Content-Length: chunked or close
    self:send_response(200)
    self:send_header("Content-Type", "text/plain")
    self:end_headers()
    self.wfile:write("hello ")
    self.wfile:write("chunked ")
    self.wfile:write("world")
  elseif p == "/headers" then             -- the request headers, in order
    local lines = {}
    for k, v in self.headers:items() do lines[#lines + 1] = k .. ": " .. v .. "\n" end
    self:reply(concat(lines), 200, {["X-Echo-Path"] = p})
  elseif p == "/inject" then
    self:send_response(200)
    self:send_header("X", "a\r\nInjected: 1")
    self:end_headers()
    self.wfile:write("should never be sent")
  elseif p == "/raise" then
    error("boom from the handler")
  elseif p == "/teapot" then
    self:send_error(418, "Short <b>", "Long explanation")
  elseif p == "/missing" then
    self:send_error(404)
  elseif p == "/big" then
    self:reply(("0123456789abcdef"):rep(BIG // 16))
  elseif p == "/bigchunks" then           -- chunked, pieces big and small
    self:send_response(200)
    self:end_headers()
    for i, n in ipairs(CHUNKS) do self.wfile:write(("%x"):format(i % 16):rep(n)) end
  else
    self:reply(self.command .. " " .. p)
  end
end
App.do_GET = App.serve_get
App.do_HEAD = App.serve_get

function App:do_POST()
  self:note()
  local body = self.rfile:read("a")
  local info = {["X-Req-TE"] = self.headers:get("transfer-encoding", "-"),
                ["X-Req-CL"] = self.headers:get("content-length", "-"),
                ["X-Trailer-Seen"] = self.headers:get("x-trailer", "-")}
  if self.path == "/raw" then
    self:reply(body, 200, info)
  else
    self:reply("POST " .. self.path .. " " .. body, 200, info)
  end
end

-- PATCH answers without reading the request body
function App:do_PATCH()
  self:note()
  self:reply("PATCH " .. self.path)
end

function App:do_PUT()
  self:note()
  self:reply("PUT " .. self.path .. " " .. self.rfile:read("a"))
end

-- ---- servers ----------------------------------------------------------------

-- start([fields[, handler]]) -> server, port: a ThreadingHTTPServer on an
-- ephemeral loopback port, serving in a background task. daemon_threads is
-- off so server_close() waits for every connection's task (Python's
-- block_on_close): no handler outlives the test.
local function start(fields, handler)
  local f = {daemon_threads = false}
  for k, v in pairs(fields or {}) do f[k] = v end
  f.handle_error = function(self, _, _, err)
    self.errors[#self.errors + 1] = tostring(err)
  end
  local cls = hs.ThreadingHTTPServer:extend(f)
  local srv = cls({"127.0.0.1", 0}, handler or App)
  srv.log, srv.calls, srv.errors = {}, {}, {}
  srv.done, srv.dispatched = wirelab.queue(), wirelab.queue()
  srv:start()
  defer(function() srv:shutdown(); srv:server_close() end)
  return srv, srv.server_address[2]
end

local function stop(srv)
  srv:shutdown()
  srv:server_close()
end

-- ---- a client connection that reads responses -----------------------------

local Conn = {}
Conn.__index = Conn

local function connect(port, timeout)
  local s = socket.create_connection("127.0.0.1", port, 5)
  s:settimeout(timeout or 5)
  local c = setmetatable({s = s, p = core.parser("response"), buf = "", pos = 1,
                          last_end = 1, eof = false}, Conn)
  defer(function() s:close() end)
  return c
end

function Conn:send(data) self.s:sendall(data) end
function Conn:close() self.s:close() end

function Conn:_more()
  local ok, d = pcall(self.s.recv, self.s, 65536)
  if not ok then
    self.eof, self.err = true, d
  elseif d == "" then
    self.eof = true
  else
    self.buf = self.buf .. d
  end
end

-- response([is_head]) -> {status=, reason=, headers=, body=, raw=}, or nil
-- and why when the connection ends first. raw is the response's bytes.
function Conn:response(is_head)
  local p = self.p
  p:set_head_response(is_head and true or false)
  local cur
  while true do
    local ev, a, b = p:feed(self.buf, self.pos)
    if ev == "more" then
      self.pos = a
      if self.eof then
        if cur and p:finish() == "end" then     -- a body ended by the close
          cur.body = concat(cur.parts)
          cur.raw = self.buf:sub(cur.start)
          self.last_end = #self.buf + 1
          return cur
        end
        return nil, (cur and "truncated response" or "no response") ..
          (self.err and (" (" .. tostring(self.err) .. ")") or "")
      end
      self:_more()
    elseif ev == "head" then
      cur = {start = self.last_end, status = b.status, reason = b.reason, version = b.version,
             headers = hs.new_headers(b.headers), parts = {}}
      self.pos = a
    elseif ev == "body" then
      cur.parts[#cur.parts + 1] = b
      self.pos = a
    elseif ev == "end" then
      self.pos = a
      cur.body = concat(cur.parts)
      cur.raw = self.buf:sub(cur.start, a - 1)
      self.last_end = a
      return cur
    else
      error(format("malformed response (%s %s): %q", tostring(a), tostring(b),
                   self.buf:sub(self.last_end, self.last_end + 300)), 2)
    end
  end
end

-- must_response: a response, or a failed assertion saying why not
function Conn:must_response(is_head)
  local r, why = self:response(is_head)
  assert(r, why)
  return r
end

-- rest() -> every byte after the last response, up to EOF
function Conn:rest()
  local parts = {self.buf:sub(self.last_end)}
  self.last_end = #self.buf + 1
  while not self.eof do
    local before = #self.buf
    self:_more()
    parts[#parts + 1] = self.buf:sub(before + 1)
  end
  self.last_end = #self.buf + 1
  return concat(parts)
end

-- assert the server closed the connection with nothing more to say
function Conn:assert_closed(allow_reset)
  local rest = self:rest()
  assert.are.equal("", rest, "bytes after the last response")
  if self.err and not (allow_reset and self.err.code == "ECONNRESET") then
    error("connection not closed cleanly: " .. tostring(self.err), 2)
  end
end

-- get(port, path) -> response: one request on a fresh connection
local function get(port, path, extra)
  local c = connect(port)
  c:send("GET " .. path .. " HTTP/1.1\r\nHost: a\r\n" .. (extra or "") .. "Connection: close\r\n\r\n")
  local r = c:must_response()
  c:close()
  return r
end

-- the request a test makes after a refusal: the server still serves
local function assert_serving(port, path)
  path = path or "/ok"
  local r = get(port, path)
  assert.are.equal(200, r.status)
  assert.are.equal("GET " .. path, r.body)
end

local function norm_date(s) return (s:gsub("\r\nDate: [^\r]*", "\r\nDate: -")) end

-- run a python3 program with the port as argv[1]; its stdout
local function python(code, port)
  local r = process.run{"python3", "-c", code, tostring(port), timeout = 10}
  assert.are.equal(0, r.code, "python3 failed: " .. r.stderr)
  return r.stdout
end

local function curl(args)
  local argv = {"curl", "-sS", "--max-time", "10"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.timeout = 12
  local r = process.run(argv)
  assert.are.equal(0, r.code, "curl failed: " .. r.stderr)
  return r
end

-- A strict chunked decoder, independent of the C parser.
local function dechunk(s)
  local out, pos = {}, 1
  while true do
    local size, after = s:match("^(%x+)\r\n()", pos)
    assert(size, "bad chunk size line at byte " .. pos)
    size = tonumber(size, 16)
    if size == 0 then
      assert.are.equal("\r\n", s:sub(after), "bad last chunk")
      return concat(out)
    end
    out[#out + 1] = s:sub(after, after + size - 1)
    assert.are.equal("\r\n", s:sub(after + size, after + size + 1), "chunk not ended by CRLF")
    pos = after + size + 2
  end
end


-- ==========================================================================

describe("http.server with curl", function()
  it("GET returns the body and headers", bounded(15, function()
    local srv, port = start()
    local url = "http://127.0.0.1:" .. port
    local r = curl{"-i", "-H", "X-Test: yes", url .. "/headers"}
    local head, body = r.stdout:match("^(.-\r\n)\r\n(.*)$")
    assert.matches("^HTTP/1.1 200 OK\r\n", head)
    assert.matches("\r\nContent%-Type: text/plain\r\n", head)
    assert.matches("\r\nContent%-Length: " .. #body .. "\r\n", head)
    assert.matches("\r\nX%-Echo%-Path: /headers\r\n", head)
    assert.matches("\r\nServer: BaseHTTP/0%.6 wirelab/", head)
    assert.matches("\r\nDate: %a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT\r\n", head)
    assert.matches("Host: 127%.0%.0%.1:" .. port .. "\n", body)
    assert.matches("User%-Agent: curl/", body)
    assert.matches("X%-Test: yes\n", body)
    assert.are.same({"GET /headers"}, srv.calls)
    stop(srv)
  end))

  it("reuses the connection for two URLs", bounded(15, function()
    local srv, port = start()
    local url = "http://127.0.0.1:" .. port
    local r = curl{"-v", url .. "/one", url .. "/two"}
    assert.are.equal("GET /oneGET /two", r.stdout)
    assert.matches("Re%-using existing connection", r.stderr)
    assert.are.equal(2, srv.done:get(5), "both requests on one connection")
    assert.are.equal(0, srv.done:size())
    stop(srv)
  end))

  it("echoes a 10 MiB POST intact", bounded(15, function()
    local srv, port = start()
    local dir = support.tmpdir()
    local input, output = dir .. "/input", dir .. "/output"
    local f = assert(io.open("/dev/urandom", "rb"))
    local data = f:read(10 * 1024 * 1024)
    f:close()
    local w = assert(io.open(input, "wb"))
    w:write(data)
    w:close()
    local r = curl{"-v", "--data-binary", "@" .. input, "-H", "Content-Type: application/octet-stream",
                   "-o", output, "http://127.0.0.1:" .. port .. "/raw"}
    -- curl asks before sending a large body; the server lets it go on
    assert.matches("< HTTP/1.1 100 Continue", r.stderr, 1, true)
    assert.matches("< HTTP/1.1 200 OK", r.stderr, 1, true)
    local got = support.read(output)
    assert.are.equal(#data, #got)
    assert.is_true(data == got, "the echoed body differs")
    local sums = process.run{"sha256sum", input, output, timeout = 10}
    local a, b = sums.stdout:match("^(%x+)%s+%S+\n(%x+)")
    assert.are.equal(a, b)
    assert.are.same({"POST /raw"}, srv.calls)
    stop(srv)
  end))

  it("frames a large chunked body right for a reader slower than the server", bounded(15, function()
    local srv, port = start()
    local c = connect(port, 10)
    c:send("GET /bigchunks HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    wirelab.sleep(0.3)              -- the server fills the socket and waits
    local want = {}
    for i, n in ipairs(CHUNKS) do want[i] = ("%x"):format(i % 16):rep(n) end
    local r = c:must_response()
    assert.are.equal("chunked", r.headers["transfer-encoding"])
    assert.are.equal(#concat(want), #r.body)
    assert.is_true(concat(want) == r.body, "the body differs")
    assert.are.equal("GET /after", c:must_response().body)
    stop(srv)
  end))

  it("HEAD has the headers but no body", bounded(15, function()
    local srv, port = start()
    local r = curl{"-I", "http://127.0.0.1:" .. port .. "/h"}
    assert.matches("^HTTP/1.1 200 OK\r\n", r.stdout)
    assert.matches("\r\nContent%-Length: 7\r\n", r.stdout)   -- #"HEAD /h"
    assert.matches("\r\n\r\n$", r.stdout)
    -- on the wire: the next response follows the HEAD's head directly
    local c = connect(port)
    c:send("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n")
    local h = c:must_response(true)
    assert.are.equal("7", h.headers["content-length"])
    assert.matches("\r\n\r\n$", h.raw)
    local g = c:must_response()
    assert.matches("^HTTP/1.1 200 OK\r\n", g.raw)
    assert.are.equal("GET /g", g.body)
    c:close()
    stop(srv)
  end))

  it("--http1.0 gets a complete response and the connection closes", bounded(15, function()
    local srv, port = start()
    local url = "http://127.0.0.1:" .. port
    local r = curl{"-v", "-i", "--http1.0", url .. "/nolength", url .. "/cl"}
    assert.is_nil(r.stdout:find("Transfer-Encoding", 1, true))
    local i = r.stdout:find("HTTP/1.1 200 OK\r\n", 2, true)
    assert.is_not_nil(i, "two responses expected")
    local first, second = r.stdout:sub(1, i - 1), r.stdout:sub(i)
    assert.matches("\r\nConnection: close\r\n\r\nhello chunked world$", first)
    assert.matches("\r\nContent%-Length: 7\r\n", second)
    assert.matches("\r\n\r\nGET /cl$", second)
    assert.is_nil(r.stderr:find("Re-using", 1, true))
    -- the server ended each connection after its one request
    assert.are.equal(1, srv.done:get(5))
    assert.are.equal(1, srv.done:get(5))
    stop(srv)
  end))
end)

describe("http.server with Python's http.client", function()
  it("serves several requests on one connection", bounded(15, function()
    local srv, port = start()
    local out = python([[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
ports = set()
for method, path, body in (("GET", "/a", None), ("POST", "/b", b"xyz"), ("GET", "/c", None)):
    c.request(method, path, body=body)
    r = c.getresponse()
    print(r.status, r.read().decode())
    ports.add(c.sock.getsockname()[1])
print(len(ports))
c.close()
]], port)
    assert.are.equal("200 GET /a\n200 POST /b xyz\n200 GET /c\n1\n", out)
    assert.are.equal(3, srv.done:get(5))
    stop(srv)
  end))

  it("reads a chunked request body", bounded(15, function()
    local srv, port = start()
    local out = python([[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("POST", "/chunked", body=iter([b"abc", b"defg", b"h"]),
          headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
r = c.getresponse()
print(r.status, r.getheader("X-Req-TE"), r.read().decode())
c.request("GET", "/after")
r = c.getresponse()
print(r.status, r.read().decode())
c.close()
]], port)
    assert.are.equal("200 chunked POST /chunked abcdefgh\n200 GET /after\n", out)
    stop(srv)
  end))

  it("answers Expect: 100-continue with 100 Continue before the final response", bounded(15, function()
    local srv, port = start()
    local out = python([[
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
          b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
interim = b""
while not interim.endswith(b"\r\n\r\n"):
    d = s.recv(1)
    if not d:
        break
    interim += d
s.sendall(b"hello")
rest = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    rest += d
sys.stdout.buffer.write(interim + b"|" + rest)
]], port)
    local interim, final = out:match("^(.-)|(.*)$")
    assert.are.equal("HTTP/1.1 100 Continue\r\n\r\n", interim)
    assert.matches("^HTTP/1.1 200 OK\r\n", final)
    assert.matches("\r\n\r\nPOST /expect hello$", final)
    assert.are.same({"POST /expect"}, srv.calls)
    stop(srv)
  end))
end)

describe("http.server framing", function()
  local reqs = {
    "GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST /p3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\nContent-Length: 99\r\n\r\n",
    "GET /p4 HTTP/1.1\r\nHost: a\r\n\r\n",
  }

  it("answers four pipelined requests in order, as if sent one by one", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send(concat(reqs))
    local piped = {}
    for i = 1, 4 do piped[i] = c:must_response() end
    c:close()
    assert.are.same({"GET /p1", "POST /p2 hello", "POST /p3 abcdefg", "GET /p4"},
                    {piped[1].body, piped[2].body, piped[3].body, piped[4].body})
    -- a Content-Length in the trailer is neither framing nor a header
    assert.are.equal("chunked", piped[3].headers["x-req-te"])
    assert.are.equal("-", piped[3].headers["x-req-cl"])
    assert.are.equal("-", piped[3].headers["x-trailer-seen"])
    assert.are.equal("5", piped[2].headers["x-req-cl"])
    assert.are.equal(4, srv.done:get(5))

    local c2 = connect(port)
    local single = {}
    for i = 1, 4 do
      c2:send(reqs[i])
      single[i] = c2:must_response()
    end
    c2:close()
    for i = 1, 4 do
      assert.are.equal(norm_date(single[i].raw), norm_date(piped[i].raw), "response " .. i)
    end
    assert.are.equal(4, srv.done:get(5))
    stop(srv)
  end))

  it("answers the same pipeline cut at every byte offset byte for byte the same", bounded(15, function()
    local srv, port = start()
    local stream = concat(reqs)
    local c = connect(port)
    c:send(stream)
    local want = {}
    for i = 1, 4 do want[i] = norm_date(c:must_response().raw) end
    c:close()
    for cut = 1, #stream - 1 do
      local k = connect(port)
      k.s:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
      k:send(stream:sub(1, cut))
      wirelab.sleep(0.001)        -- the server reads the first part alone
      k:send(stream:sub(cut + 1))
      for i = 1, 4 do
        local r = k:must_response()
        if norm_date(r.raw) ~= want[i] then
          error(("cut at byte %d: response %d differs:\n%s"):format(cut, i, r.raw))
        end
      end
      k:close()
    end
    stop(srv)
  end))

  -- A message done gives its parser's and writer's buffers back to blocks
  -- all connections share (bindings/http_buf.c), and a head split across
  -- recvs keeps its own meanwhile: sixteen connections interleaved, heads
  -- cut in two, small and over a block (256 bytes, 8 fields), must each
  -- get their own request's headers back
  it("keeps each connection's requests its own while many interleave", bounded(30, function()
    local srv, port = start()
    local CONNS, REQS = 16, 25
    local done = wirelab.queue()
    for ci = 1, CONNS do
      wirelab.spawn(function()
        local ok, err = pcall(function()
          local c = connect(port)
          for ri = 1, REQS do
            local id = ("%d.%d"):format(ci, ri)
            local fields = {{"Host", "a"}, {"X-Id", id}}
            for k = 1, (ci + ri) % 12 do   -- 0 to 11 more fields, some long
              fields[#fields + 1] = {"X-F" .. k, (id .. ";"):rep(k * (ri % 4) + 1)}
            end
            local head, want = {"GET /headers HTTP/1.1\r\n"}, {}
            for i, f in ipairs(fields) do
              head[i + 1] = f[1] .. ": " .. f[2] .. "\r\n"
              want[i] = f[1] .. ": " .. f[2] .. "\n"
            end
            head = concat(head) .. "\r\n"
            local cut = 1 + (ci * 7 + ri * 13) % (#head - 1)
            c:send(head:sub(1, cut))
            wirelab.sleep(0)              -- the others run with this head half read
            c:send(head:sub(cut + 1))
            local r = c:must_response()
            assert(r.body == concat(want), ("request %s got another's headers:\n%s"):format(id, r.body))
          end
          c:close()
        end)
        done:put(ok or tostring(err))
      end)
    end
    for _ = 1, CONNS do assert.is_true(done:get(20)) end
    assert.are.same({}, srv.errors)
    stop(srv)
  end))

  it("does not dispatch a request pipelined after Connection: close", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("GET /c1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" ..
           "GET /c2 HTTP/1.1\r\nHost: a\r\n\r\n")
    local r = c:must_response()
    assert.are.equal("GET /c1", r.body)
    assert.are.equal("close", r.headers["connection"])
    c:assert_closed()
    assert.are.equal(1, srv.done:get(5))
    assert.are.same({"GET /c1"}, srv.calls)
    stop(srv)
  end))

  it("frames a body without Content-Length: chunked for HTTP/1.1, close for HTTP/1.0", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("GET /nolength HTTP/1.1\r\nHost: a\r\n\r\n")
    local r = c:must_response()
    assert.are.equal("chunked", r.headers["transfer-encoding"])
    assert.is_nil(r.headers["content-length"])
    assert.is_nil(r.headers["connection"])
    local body = r.raw:match("\r\n\r\n(.*)$")
    assert.are.equal("hello chunked world", dechunk(body))
    -- the connection goes on: the chunked body ended where it said
    c:send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("GET /next", c:must_response().body)
    c:close()

    local c10 = connect(port)
    c10:send("GET /nolength HTTP/1.0\r\n\r\n")
    local raw = c10:rest()
    assert.is_nil(c10.err)
    local head, body10 = raw:match("^(.-\r\n)\r\n(.*)$")
    assert.matches("^HTTP/1.1 200 OK\r\n", head)
    assert.is_nil(head:find("Transfer-Encoding", 1, true))
    assert.is_nil(head:find("Content-Length", 1, true))
    assert.matches("\r\nConnection: close\r\n", head)
    assert.are.equal("hello chunked world", body10)
    stop(srv)
  end))

  it("keeps serving a client that half-closes after its request", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("GET /half HTTP/1.1\r\nHost: a\r\n\r\n")
    c.s:shutdown(socket.SHUT_WR)
    local r = c:must_response()
    assert.are.equal("GET /half", r.body)
    c:assert_closed()
    local c2 = connect(port)
    c2:send("POST /half2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz")
    c2.s:shutdown(socket.SHUT_WR)
    assert.are.equal("POST /half2 xyz", c2:must_response().body)
    c2:assert_closed()
    stop(srv)
  end))
end)

describe("http.server handlers", function()
  it("dispatches do_<METHOD> and answers 501 without one", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    assert.are.equal("PUT /x abc", c:must_response().body)
    c:send("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    local r = c:must_response()
    assert.are.equal(501, r.status)
    assert.are.equal("close", r.headers["connection"])
    assert.matches("<p>Error code: 501</p>", r.body, 1, true)
    assert.matches("Unsupported method", r.body, 1, true)
    assert.matches("DELETE", r.body, 1, true)
    c:assert_closed()
    -- a method the parser does not know never reaches the handler
    local c2 = connect(port)
    c2:send("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal(501, c2:must_response().status)
    c2:assert_closed()
    assert.are.same({"PUT /x"}, srv.calls)
    assert_serving(port)
    stop(srv)
  end))

  it("skips a request body the handler leaves unread", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nGET /x" ..
           "PATCH /q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "6\r\nGET /y\r\n0\r\n\r\nGET /z HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("PATCH /p", c:must_response().body)
    assert.are.equal("PATCH /q", c:must_response().body)
    assert.are.equal("GET /z", c:must_response().body)
    c:close()
    assert.are.equal(3, srv.done:get(5))
    assert.are.same({"PATCH /p", "PATCH /q", "GET /z"}, srv.calls)
    stop(srv)
  end))

  it("send_error builds Python's error page", bounded(15, function()
    local srv, port = start()
    local r = get(port, "/teapot")
    assert.are.equal(418, r.status)
    assert.are.equal("Short <b>", r.reason)
    assert.are.equal("text/html;charset=utf-8", r.headers["content-type"])
    assert.are.equal(tostring(#r.body), r.headers["content-length"])
    assert.are.equal("close", r.headers["connection"])
    assert.matches("<p>Error code: 418</p>", r.body, 1, true)
    assert.matches("<p>Message: Short &lt;b&gt;.</p>", r.body, 1, true)
    assert.matches("<p>Error code explanation: 418 - Long explanation.</p>", r.body, 1, true)
    local m = get(port, "/missing")
    assert.are.equal(404, m.status)
    assert.are.equal("Not Found", m.reason)
    assert.matches("<p>Error code: 404</p>", m.body, 1, true)
    assert.matches("<p>Message: Not Found.</p>", m.body, 1, true)
    assert.matches("code 418, message Short <b>", concat(srv.log, "\n"), 1, true)
    stop(srv)
  end))

  it("refuses a header value with CR/LF: an error, and the client never sees it", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("GET /inject HTTP/1.1\r\nHost: a\r\n\r\n")
    local raw = c:rest()
    assert.is_nil(raw:find("Injected", 1, true), "the injected header reached the client")
    assert.is_nil(raw:find("should never be sent", 1, true))
    local _, status_lines = raw:gsub("HTTP/1%.1 %d%d%d ", "")
    assert.are.equal(1, status_lines, "one response expected, got:\n" .. raw)
    assert.matches("^HTTP/1.1 500 Internal Server Error\r\n", raw)
    assert.are.equal(1, srv.done:get(5))
    assert.are.equal(1, #srv.errors)
    assert.matches("send_header", srv.errors[1], 1, true)
    assert_serving(port)
    stop(srv)
  end))

  it("answers 500 when a handler raises and keeps serving", bounded(15, function()
    local srv, port = start()
    local keep = connect(port)                 -- another client, kept alive
    keep:send("GET /k1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("GET /k1", keep:must_response().body)
    local c = connect(port)
    c:send("GET /raise HTTP/1.1\r\nHost: a\r\n\r\n")
    local r = c:must_response()
    assert.are.equal(500, r.status)
    assert.are.equal("close", r.headers["connection"])
    c:assert_closed()
    assert.are.equal(1, srv.done:get(5))
    assert.matches("boom from the handler", srv.errors[1], 1, true)
    keep:send("GET /k2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("GET /k2", keep:must_response().body)
    keep:close()
    assert_serving(port)
    stop(srv)
  end))

  it("after max_requests_per_socket says Connection: close and answers later requests 503 " ..
     "(Node's semantics)", bounded(15, function()
    local srv, port = start{max_requests_per_socket = 2}
    -- the 503s after a response that says Connection: close, to EOF: each
    -- parsed afresh, as a response parser ignores what follows such a one
    local function assert_503s(conn, n)
      local raw, pos = conn:rest(), 1
      for i = 1, n do
        local p, r = core.parser("response"), {parts = {}}
        repeat
          local ev, a, b = p:feed(raw, pos)
          assert(ev ~= "error" and ev ~= "more", ("response %d of %d: %q"):format(i, n, raw))
          if ev == "head" then r.status, r.headers = b.status, hs.new_headers(b.headers) end
          if ev == "body" then r.parts[#r.parts + 1] = b end
          pos = a
        until ev == "end"
        assert.are.equal(503, r.status)
        assert.are.equal("close", r.headers["connection"])
        assert.matches("Too many requests on this connection", concat(r.parts), 1, true)
      end
      assert.are.equal(#raw + 1, pos, "bytes after the 503s")
      assert.is_nil(conn.err)
    end
    -- pipelined: the two after the limit are both refused, then the close
    local c = connect(port)
    c:send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
    local r1 = c:must_response()
    assert.are.equal("GET /1", r1.body)
    assert.is_nil(r1.headers["connection"])
    c:send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n" ..
           "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n")
    local r2 = c:must_response()
    assert.are.equal("GET /2", r2.body)
    assert.are.equal("close", r2.headers["connection"])
    assert_503s(c, 2)
    -- one by one: a client that ignores the Connection: close gets a 503
    local c2 = connect(port)
    for i = 1, 2 do
      c2:send("GET /s" .. i .. " HTTP/1.1\r\nHost: a\r\n\r\n")
      assert.are.equal("GET /s" .. i, c2:must_response().body)
    end
    c2:send("GET /s3 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_503s(c2, 1)
    -- a client that honours it just closes
    local c3 = connect(port)
    c3:send("GET /t1 HTTP/1.1\r\nHost: a\r\n\r\nGET /t2 HTTP/1.1\r\nHost: a\r\n\r\n")
    c3:must_response()
    assert.are.equal("close", c3:must_response().headers["connection"])
    c3:close()
    assert.are.same({"GET /1", "GET /2", "GET /s1", "GET /s2", "GET /t1", "GET /t2"}, srv.calls)
    -- a Connection: close from the client still ends it: nothing after is answered
    local c4 = connect(port)
    c4:send("GET /u1 HTTP/1.1\r\nHost: a\r\n\r\nGET /u2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" ..
            "GET /u3 HTTP/1.1\r\nHost: a\r\n\r\n")
    c4:must_response()
    c4:must_response()
    c4:assert_closed()
    assert_serving(port)
    stop(srv)
  end))
end)

describe("http.server response methods, with Python's semantics", function()
  -- Resp: a handler whose paths exercise the response methods one by one
  local Resp = App:extend()
  function Resp:do_GET()
    self:note()
    local p = self.path
    if p == "/204" or p == "/304" then      -- no body, whatever is written
      self:send_response(tonumber(p:sub(2)))
      self:end_headers()
      self.wfile:write("must not be sent")
    elseif p == "/early" then               -- 103 Early Hints, then the answer
      self:send_response_only(103)
      self:send_header("Link", "</s.css>; rel=preload")
      self:end_headers()
      wirelab.sleep(0.3)
      self:reply("final")
    elseif p == "/pieces" then               -- numbers and several strings
      self:send_response(200)
      self:send_header("Content-Length", 8)
      self:end_headers()
      self.wfile:write("a", 1, "bc"):write(2.5)
      self.wfile:write("x")
    elseif p == "/badwrite" then
      self:send_response(200)
      self:end_headers()
      self.wfile:write({})
    else
      self:reply("GET " .. p)
    end
  end

  it("204 and 304 carry no body and keep the connection", bounded(15, function()
    local srv, port = start(nil, Resp)
    local c = connect(port)
    c:send("GET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\n" ..
           "GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    for _, code in ipairs{204, 304} do
      local r = c:must_response()
      assert.are.equal(code, r.status)
      assert.is_nil(r.headers["transfer-encoding"])
      assert.is_nil(r.headers["connection"])
      assert.is_nil(r.raw:find("must not be sent", 1, true))
      assert.matches("\r\n\r\n$", r.raw)
    end
    assert.are.equal("GET /after", c:must_response().body)
    c:close()
    stop(srv)
  end))

  it("sends an interim 103 at once, before the final response", bounded(15, function()
    local srv, port = start(nil, Resp)
    local c = connect(port)
    local t0 = wirelab.now()
    c:send("GET /early HTTP/1.1\r\nHost: a\r\n\r\n")
    local first = c.s:recv(65536)
    assert.is_true(wirelab.now() - t0 < 0.25, "the 103 waited for the final response")
    assert.are.equal("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", first)
    c.buf = ""
    local r = c:must_response()
    assert.are.equal(200, r.status)
    assert.are.equal("final", r.body)
    stop(srv)
  end))

  it("wfile:write takes numbers and several strings, returns the file, refuses a table",
     bounded(15, function()
    local srv, port = start(nil, Resp)
    local c = connect(port)
    c:send("GET /pieces HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("a1bc2.5x", c:must_response().body)
    c:send("GET /badwrite HTTP/1.1\r\nHost: a\r\n\r\n")
    c:rest()
    assert.are.equal(1, #srv.errors)
    assert.matches("bad argument #1 to 'write' (string expected, got table)", srv.errors[1], 1, true)
    stop(srv)
  end))

  it("calls overridden send_header, version_string and log_request, as Python does",
     bounded(15, function()
    local Custom = Resp:extend()
    local seen, logged = {}, {}
    function Custom:send_header(k, v)
      seen[#seen + 1] = k
      return Resp.send_header(self, k, v)
    end
    function Custom:version_string() return "Custom/1.0" end
    function Custom:log_request(code) logged[#logged + 1] = code end
    local srv, port = start(nil, Custom)
    local r = get(port, "/x")
    assert.are.equal("GET /x", r.body)
    assert.are.equal("Custom/1.0", r.headers["server"])
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers["date"])
    -- Python's send_response sends Server and Date through send_header
    assert.are.same({"Server", "Date", "Content-Type", "Content-Length"}, seen)
    assert.are.same({200}, logged)
    stop(srv)
  end))
end)

describe("http.server access log", function()
  it("writes Python's format to stderr, control bytes as \\xHH", bounded(15, function()
    local code = [[
local hs = require "http.server"
local H = hs.BaseHTTPRequestHandler:extend()
function H:do_GET()
  if self.path == "/logme" then self:log_message("%s", "ctl\27[31m\1 end") end
  self:send_response(200)
  self:send_header("Content-Length", 2)
  self:end_headers()
  self.wfile:write("ok")
end
local srv = hs.HTTPServer({"127.0.0.1", 0}, H)
print(srv.server_address[2])
io.stdout:flush()
for _ = 1, 6 do srv:handle_request() end
srv:server_close()
]]
    local p = support.spawn{support.wirelab, "-e", code}
    local port = math.tointeger(tonumber(p.stdout:read("l")))
    assert.is_not_nil(port)
    local function exchange(req)
      local c = connect(port)
      c:send(req)
      local r = c:must_response()
      c:close()
      return r
    end
    assert.are.equal(200, exchange("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").status)
    assert.are.equal(200, exchange("GET /logme HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").status)
    assert.are.equal(400, exchange("GET /\27[31m HTTP/1.1\r\nHost: a\r\n\r\n").status)
    assert.are.equal(501, exchange("DELETE /d HTTP/1.1\r\nHost: a\r\n\r\n").status)
    -- a head too large, arriving over many reads: the log shows its request
    -- line, as Python's, not the header bytes the buffer holds by then
    assert.are.equal(431, exchange("GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " ..
      ("v"):rep(70000) .. "\r\n\r\n").status)
    assert.are.equal(431, exchange("GET /many HTTP/1.1\r\nHost: a\r\n" ..
      ("X-A: b\r\n"):rep(101) .. "\r\n").status)
    local status = p:wait(5)
    assert.are.equal(0, status)
    local err = p.stderr:read("a")
    local lines = {}
    for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local stamp = "^127%.0%.0%.1 %- %- %[%d%d/%u%l%l/%d%d%d%d %d%d:%d%d:%d%d%] "
    assert.matches(stamp .. '"GET / HTTP/1%.1" 200 %-$', lines[1])
    assert.matches(stamp .. "ctl\\x1b%[31m\\x01 end$", lines[2])
    assert.matches(stamp .. '"GET /logme HTTP/1%.1" 200 %-$', lines[3])
    assert.is_nil(err:find("[\0-\9\11-\31\127]"), "raw control bytes in the log")
    -- the refused request line is logged, its ESC escaped
    assert.matches('"GET /\\x1b[31m HTTP/1.1" 400 -', err, 1, true)
    assert.matches("code 501, message Unsupported method", err, 1, true)
    assert.matches('"DELETE /d HTTP/1.1" 501 -', err, 1, true)
    assert.matches('"GET /big HTTP/1.1" 431 -', err, 1, true)
    assert.matches('"GET /many HTTP/1.1" 431 -', err, 1, true)
    assert.is_nil(err:find("vvvv", 1, true), "header bytes logged as the request line")
  end))
end)

describe("http.server limits and refusals", function()
  local AFTER = "GET /after HTTP/1.1\r\nHost: a\r\n\r\n"

  -- sends `bytes` (a request that must be refused, then AFTER in the same
  -- write), expects `status` + close, no handler call, then normal service
  local function refused(bytes, status, fields, allow_reset)
    local srv, port = start(fields)
    local c = connect(port)
    c:send(bytes .. AFTER)
    local r = c:must_response()
    assert.are.equal(status, r.status)
    assert.are.equal("close", r.headers["connection"])
    assert.matches("<p>Error code: " .. status .. "</p>", r.body, 1, true)
    c:assert_closed(allow_reset)
    assert.are.same({}, srv.calls)
    assert_serving(port)
    assert.are.same({"GET /ok"}, srv.calls)
    stop(srv)
  end

  local function line(n)       -- a request line of exactly n bytes
    return "GET /" .. ("a"):rep(n - 14) .. " HTTP/1.1"
  end

  it("414 for a request line over 8 KiB", bounded(15, function()
    refused(line(8193) .. "\r\nHost: a\r\n\r\n", 414)
  end))

  it("accepts a request line of exactly 8 KiB", bounded(15, function()
    local _, port = start()
    local c = connect(port)
    c:send(line(8192) .. "\r\nHost: a\r\n\r\n")
    assert.are.equal(200, c:must_response().status)
    c:close()
  end))

  it("431 for a header section over 64 KiB", bounded(15, function()
    -- the server stops reading at the limit; unread bytes may turn its
    -- close into a reset, but only after the 431 has arrived
    refused("GET / HTTP/1.1\r\nHost: a\r\nX: " .. ("v"):rep(70000) .. "\r\n\r\n", 431, nil, true)
  end))

  it("431 for more than 100 header fields", bounded(15, function()
    local t = {"GET / HTTP/1.1\r\nHost: a\r\n"}
    for i = 2, 101 do t[#t + 1] = "X-" .. i .. ": v\r\n" end
    refused(concat(t) .. "\r\n", 431)
  end))

  it("413 for a Content-Length over max_body, before the body is sent", bounded(15, function()
    local srv, port = start{max_body = 1000}
    local c = connect(port)
    c:send("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
    local r = c:must_response()        -- no body byte has left the client
    assert.are.equal(413, r.status)
    assert.are.equal("close", r.headers["connection"])
    c:assert_closed()
    -- with Expect: 100-continue, 413 instead of 100
    local c2 = connect(port)
    c2:send("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    assert.are.equal(413, c2:must_response().status)
    c2:assert_closed()
    assert.are.same({}, srv.calls)
    local c3 = connect(port)
    c3:send("POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" .. ("z"):rep(1000))
    assert.are.equal("POST /small " .. ("z"):rep(1000), c3:must_response().body)
    c3:close()
    assert_serving(port)
    stop(srv)
  end))

  it("413 + close when a chunked body passes max_body, and nothing after", bounded(15, function()
    local srv, port = start{max_body = 1000}
    local c = connect(port)
    c:send("POST /chunky HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "200\r\n" .. ("x"):rep(512) .. "\r\n300\r\n" .. ("y"):rep(768) .. "\r\n0\r\n\r\n" .. AFTER)
    local r = c:must_response()
    assert.are.equal(413, r.status)
    assert.are.equal("close", r.headers["connection"])
    c:assert_closed()
    assert.are.same({"POST /chunky"}, srv.calls)
    assert_serving(port)
    stop(srv)
  end))

  local H = "POST / HTTP/1.1\r\nHost: a\r\n"
  local bad = {
    {"a malformed request line", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"},
    {"garbage instead of a request line", "HELLO\r\n\r\n"},
    {"Content-Length with Transfer-Encoding",
     H .. "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
    {"Transfer-Encoding with Content-Length",
     H .. "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
    {"two different Content-Length", H .. "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"},
    {"a header name with a space", "GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n"},
    {"a bare CR", "GET / HTTP/1.1\r\nHost: a\r\n\rGET /smug HTTP/1.1\r\n\r\n"},
    {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n"},
    {"two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
  }
  for _, case in ipairs(bad) do
    it("400 + close for " .. case[1] .. ", no handler call", bounded(15, function()
      refused(case[2], 400)
    end))
  end

  it("serves HTTP/1.0 without Host and a bare-LF request", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("GET /ten HTTP/1.0\r\n\r\n")
    assert.are.equal("GET /ten", c:must_response().body)
    c:assert_closed()
    local c2 = connect(port)
    c2:send("GET /lf HTTP/1.1\nHost: a\n\n")
    local r = c2:must_response()
    assert.are.equal(200, r.status)
    assert.are.equal("GET /lf", r.body)
    c2:close()
    assert.are.same({"GET /ten", "GET /lf"}, srv.calls)
    stop(srv)
  end))
end)

describe("http.server default limits", function()
  it("are the documented ones (README, RELIABILITY item 6), on both servers", bounded(5, function()
    local MiB = 1024 * 1024
    for _, cls in ipairs{hs.HTTPServer, hs.ThreadingHTTPServer} do
      assert.are.equal(8 * 1024, cls.max_line)             -- then 414
      assert.are.equal(64 * 1024, cls.max_header_bytes)    -- then 431
      assert.are.equal(100, cls.max_headers)               -- then 431
      assert.are.equal(100 * MiB, cls.max_body)            -- then 413
      assert.are.equal(16 * 1024, cls.max_chunk_ext)       -- then 400
      assert.are.equal(30, cls.header_timeout)             -- then 408
      assert.are.equal(5, cls.keepalive_timeout)           -- then a silent close
      assert.are.equal(30, cls.body_timeout)               -- then 408
      assert.is_nil(cls.max_requests_per_socket)           -- off
    end
  end))

  -- The 414 and 431 limits are exercised at their defaults under "limits
  -- and refusals"; max_body's is too big to send, but its Content-Length
  -- is judged before any body byte.
  it("refuse a Content-Length over 100 MiB at once, and take one of exactly 100 MiB", bounded(15, function()
    local srv, port = start()
    local c = connect(port)
    c:send("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 104857601\r\n\r\n")
    local r = c:must_response()
    assert.are.equal(413, r.status)
    assert.are.equal("close", r.headers["connection"])
    c:assert_closed()
    -- at the limit it is dispatched (PATCH answers without reading the body)
    local c2 = connect(port)
    c2:send("PATCH /fits HTTP/1.1\r\nHost: a\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n")
    local r2 = c2:must_response()
    assert.are.equal(200, r2.status)
    assert.are.equal("PATCH /fits", r2.body)
    c2:assert_closed()
    assert.are.same({"PATCH /fits"}, srv.calls)
    stop(srv)
  end))

  it("accept exactly 100 header fields and a header section of exactly 64 KiB", bounded(15, function()
    local _, port = start()
    local fields = {"GET /hundred HTTP/1.1\r\nHost: a\r\n"}
    for i = 2, 100 do fields[#fields + 1] = "X-" .. i .. ": v\r\n" end
    local c = connect(port)
    c:send(concat(fields) .. "\r\n")
    assert.are.equal("GET /hundred", c:must_response().body)
    -- the section after the request line: "Host: a\r\nX: ...\r\n\r\n"
    local filler = 65536 - #"Host: a\r\nX: \r\n\r\n"
    c:send("GET /full HTTP/1.1\r\nHost: a\r\nX: " .. ("v"):rep(filler) .. "\r\n\r\n")
    assert.are.equal("GET /full", c:must_response().body)
    c:close()
  end))
end)

describe("http.server timeouts", function()
  -- RELIABILITY item 7: 1 header byte per second against a 2 s header
  -- timeout; every other client is served within 100 ms throughout
  it("408 + close for a head trickling past header_timeout; others served meanwhile", bounded(15, function()
    local srv, port = start{header_timeout = 2}
    local slow = connect(port)
    local t0 = wirelab.now()
    local trickle = wirelab.spawn(function()
      local req = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
      for i = 1, #req do
        if not pcall(slow.send, slow, req:sub(i, i)) then return end
        wirelab.sleep(1)
      end
    end)
    defer(function() trickle:cancel() end)
    local reader = wirelab.spawn(function()
      local r, why = slow:response()
      return r, why, wirelab.now() - t0
    end)
    local worst, n = 0, 0
    while not reader:done() and wirelab.now() - t0 < 5 do
      local t = wirelab.now()
      assert_serving(port, "/fast")
      worst = math.max(worst, wirelab.now() - t)
      n = n + 1
      wirelab.sleep(0.1)
    end
    local r, why, took = reader:join()
    assert(r, why)
    assert.are.equal(408, r.status)
    assert.are.equal("close", r.headers["connection"])
    slow:assert_closed()
    assert.is_true(took >= 1.9 and took < 3, "408 after " .. took .. " s")
    assert.is_true(n >= 10, "only " .. n .. " requests served meanwhile")
    assert.is_true(worst < 0.1, "a concurrent request took " .. worst .. " s")
    trickle:cancel()
    for _, call in ipairs(srv.calls) do assert.are.equal("GET /fast", call) end
    stop(srv)
  end))

  it("closes an idle keep-alive connection silently after keepalive_timeout", bounded(15, function()
    local srv, port = start{keepalive_timeout = 0.5}
    local c = connect(port)
    c:send("GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.are.equal("GET /idle", c:must_response().body)
    local t0 = wirelab.now()
    c:assert_closed()                         -- no 408, nothing at all
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.4 and took < 2, "closed after " .. took .. " s")
    assert.are.equal(1, srv.done:get(5))
    stop(srv)
  end))

  it("408 + close for a body trickling slower than body_timeout, and nothing after", bounded(15, function()
    local srv, port = start{body_timeout = 0.5}
    local c = connect(port)
    local t0 = wirelab.now()
    c:send("POST /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
    local trickle = wirelab.spawn(function()
      for _ = 1, 8 do
        wirelab.sleep(1)
        if not pcall(c.send, c, "c") then return end
      end
    end)
    defer(function() trickle:cancel() end)
    local r = c:must_response()
    local took = wirelab.now() - t0
    assert.are.equal(408, r.status)
    assert.are.equal("close", r.headers["connection"])
    assert.is_true(took >= 0.4 and took < 2, "408 after " .. took .. " s")
    c:assert_closed()
    trickle:cancel()
    assert_serving(port)
    stop(srv)
  end))
end)

describe("http.server connection faults", function()
  local function reset(c)
    c.s:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
    c:close()
  end

  it("goes on serving after a client resets mid-request", bounded(15, function()
    local srv, port = start()
    local base = wirelab.handles()
    -- mid-head
    local c1 = connect(port)
    c1:send("GET / HTTP/1.1\r\nHo")
    reset(c1)
    assert.are.equal(0, srv.done:get(5))
    -- mid-body, while the handler reads it
    local c2 = connect(port)
    c2:send("POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" .. ("x"):rep(1000))
    assert.are.equal("/body", srv.dispatched:get(5))
    reset(c2)
    assert.are.equal(1, srv.done:get(5))
    assert.are.equal(base, wirelab.handles(), "the server kept a reset connection")
    assert_serving(port)
    stop(srv)
  end))

  it("goes on serving after a client resets mid-response", bounded(15, function()
    local srv, port = start()
    local base = wirelab.handles()
    local c = connect(port)
    c:send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    local got = 0
    while got < 65536 do got = got + #c.s:recv(65536) end
    reset(c)
    assert.are.equal(1, srv.done:get(5))
    assert.are.equal(base, wirelab.handles(), "the server kept a reset connection")
    assert.are.equal(1, #srv.errors, "the handler saw no error")
    local e = srv.errors[1]
    assert.is_true(e:find("ECONNRESET", 1, true) ~= nil or e:find("EPIPE", 1, true) ~= nil, e)
    assert_serving(port)
    stop(srv)
  end))
end)
