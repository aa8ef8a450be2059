-- http_client_spec: http.client against real servers -- python3 -m
-- http.server, wirelab's own http.server, and raw wirelab sockets playing
-- broken servers -- plus what it must refuse to send (RELIABILITY item 11).
local client = require "http.client"
local hs = require "http.server"
local socket = require "socket"
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local process = require "process"

local HTTPConnection = client.HTTPConnection

local support = require "support"
local bounded = support.bounded

-- pcall that expects a wirelab error with `code`; returns it.
local function fails_with(code, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "no error, expected " .. code)
  assert.is_true(errors.is(err), "not a wirelab error: " .. tostring(err))
  assert.are.equal(code, err.code, tostring(err))
  return err
end

-- pcall that expects a plain Lua error (an argument refused); returns it.
local function refused(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "accepted")
  assert.are.equal("string", type(err), "not an argument error: " .. tostring(err))
  return err
end

local function local_port(conn)
  local _, port = conn.sock:getsockname()
  return port
end

-- 256 000 bytes holding every byte value
local BINARY = (function()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t):rep(1000)
end)()

describe("http.client against python3 -m http.server", function()
  local dir
  local remove_dir
  setup(function()
    dir, remove_dir = support.tmpdir()
    support.write(dir .. "/hello.txt", "hello world\n")
    support.write(dir .. "/data.bin", BINARY)
    assert.are.equal(0, process.run{"mkdir", dir .. "/sub", timeout = 5}.code)
    support.write(dir .. "/sub/index.html", "<h1>sub index</h1>\n")
  end)
  teardown(function() if remove_dir then remove_dir() end end)

  -- Python serving `dir` with keep-alive (HTTP/1.1) for the length of fn.
  local function with_python(fn)
    local p = process.spawn{"python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                            "--directory", dir, "--protocol", "HTTP/1.1", stderr = false}
    local ok, err = pcall(function()
      local line = p.stdout:read("l") or ""
      local port = math.tointeger(tonumber(line:match("^Serving HTTP on 127%.0%.0%.1 port (%d+)")))
      assert(port, "python3 -m http.server did not start: " .. line)
      fn(port)
    end)
    p:kill()
    p:wait(5)
    p:close()
    if not ok then error(err, 0) end
  end

  it("GETs a file: status, reason, version, headers and body", bounded(10, function()
    with_python(function(port)
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("GET", "/hello.txt")
      local r = conn:getresponse()
      assert.are.equal(200, r.status)
      assert.are.equal("OK", r.reason)
      assert.are.equal("HTTP/1.1", r.version)
      assert.are.equal("text/plain", r.headers["content-type"])
      assert.are.equal("text/plain", r.headers["Content-Type"])
      assert.are.equal("12", r:getheader("CONTENT-LENGTH"))
      assert.are.equal("none", r:getheader("X-Missing", "none"))
      assert.is_nil(r:getheader("X-Missing"))
      assert.matches("^SimpleHTTP", r.headers:get("server"))
      assert.is_false(r:isclosed())
      assert.are.equal("hello world\n", r:read())
      assert.are.equal("", r:read())
      assert.is_true(r:isclosed())

      -- a binary body read in pieces: exact sizes, exact bytes
      conn:request("GET", "/data.bin")
      r = conn:getresponse()
      assert.are.equal(#BINARY, r.length)
      local parts = {}
      while true do
        local piece = r:read(9999)
        if piece == "" then break end
        assert.is_true(#piece == 9999 or #parts == #BINARY // 9999)
        parts[#parts + 1] = piece
      end
      assert.is_true(table.concat(parts) == BINARY)

      local res = client.get(("http://127.0.0.1:%d/data.bin"):format(port), {timeout = 5})
      assert.are.equal(200, res.status)
      assert.are.equal("application/octet-stream", res.headers["content-type"])
      assert.is_true(res.body == BINARY)
    end)
  end))

  it("HEAD gives the headers without a body and keeps the connection", bounded(10, function()
    with_python(function(port)
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("HEAD", "/data.bin")
      local r = conn:getresponse()
      assert.are.equal(200, r.status)
      assert.are.equal(tostring(#BINARY), r:getheader("content-length"))
      assert.is_true(r:isclosed())            -- nothing to read
      assert.are.equal("", r:read())
      local lport = local_port(conn)
      conn:request("GET", "/hello.txt")
      r = conn:getresponse()
      assert.are.equal("hello world\n", r:read())
      assert.are.equal(lport, local_port(conn))
      local res = client.request("HEAD", ("http://127.0.0.1:%d/hello.txt"):format(port))
      assert.are.equal(200, res.status)
      assert.are.equal("", res.body)
      assert.are.equal("12", res.headers["content-length"])
    end)
  end))

  it("404 for a missing file, then a new connection after Connection: close", bounded(10, function()
    with_python(function(port)
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("GET", "/missing.txt")
      local r = conn:getresponse()
      assert.are.equal(404, r.status)
      assert.are.equal("File not found", r.reason)
      assert.are.equal("close", r.headers.connection)
      assert.is_true(r.will_close)
      assert.matches("Error code: 404", r:read())
      assert.is_nil(conn.sock)                -- closed with the response
      conn:request("GET", "/hello.txt")
      assert.are.equal("hello world\n", conn:getresponse():read())
      local res = client.get(("http://127.0.0.1:%d/nope/"):format(port))
      assert.are.equal(404, res.status)
    end)
  end))

  it("keeps one connection across requests (the same local port)", bounded(10, function()
    with_python(function(port)
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("GET", "/hello.txt")
      local r = conn:getresponse()
      local lport = local_port(conn)
      assert.are.equal("hello world\n", r:read())
      conn:request("GET", "/sub/index.html")
      assert.are.equal("<h1>sub index</h1>\n", conn:getresponse():read())
      assert.are.equal(lport, local_port(conn))
      -- a response left unread is read past before the next request
      conn:request("GET", "/data.bin")
      local unread = conn:getresponse()
      assert.are.equal(5, #unread:read(5))
      conn:request("GET", "/hello.txt")
      assert.are.equal("hello world\n", conn:getresponse():read())
      assert.are.equal(lport, local_port(conn))
      -- and a request whose response was never asked for
      conn:request("GET", "/sub/index.html")
      conn:request("GET", "/hello.txt")
      assert.are.equal("hello world\n", conn:getresponse():read())
      assert.are.equal(lport, local_port(conn))
    end)
  end))

  it("returns a directory redirect as is, follows it with follow_redirects", bounded(10, function()
    with_python(function(port)
      local url = ("http://127.0.0.1:%d/sub"):format(port)
      local res = client.get(url)
      assert.are.equal(301, res.status)
      assert.are.equal("/sub/", res.headers.location)
      assert.are.equal(url, res.url)
      res = client.get(url, {follow_redirects = true})
      assert.are.equal(200, res.status)
      assert.are.equal("<h1>sub index</h1>\n", res.body)
      assert.are.equal(url .. "/", res.url)
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("GET", "/sub")
      local r = conn:getresponse()
      assert.are.equal(301, r.status)
      assert.are.equal("Moved Permanently", r.reason)
    end)
  end))
end)

-- ---- against wirelab's http.server -----------------------------------------

-- A ThreadingHTTPServer whose handler has `methods`; server_close waits
-- for the connection tasks, so no handle outlives the test. Counts the
-- connections accepted and the connections closed (closed:wait()).
local function serve(methods, fields, host)
  local Handler = hs.BaseHTTPRequestHandler:extend(methods)
  Handler.log_message = function() end
  local stats = {accepts = 0, closes = 0, closed = wirelab.event()}
  local Server = hs.ThreadingHTTPServer:extend(fields or {})
  Server.daemon_threads = false
  function Server:get_request()
    local conn, addr = hs.ThreadingHTTPServer.get_request(self)
    stats.accepts = stats.accepts + 1
    return conn, addr
  end
  function Server:shutdown_request(request)
    hs.ThreadingHTTPServer.shutdown_request(self, request)
    stats.closes = stats.closes + 1
    stats.closed:set()
  end
  local srv = Server({host or "127.0.0.1", 0}, Handler)
  srv:start()
  stats.port = srv.server_address[2]
  stats.stop = function()
    srv:shutdown()
    srv:server_close()
  end
  return stats
end

local function reply(h, status, body, headers)
  h:send_response(status)
  for k, v in pairs(headers or {}) do h:send_header(k, v) end
  h:send_header("Content-Length", #body)
  h:end_headers()
  h.wfile:write(body)
end

describe("http.client against wirelab http.server", function()

  it("reads a chunked response, in pieces across chunk boundaries", bounded(10, function()
    local pieces = {"alpha", "", "beta-", ("x"):rep(100000), "end"}
    local s = serve({do_GET = function(h)
      h:send_response(200)
      h:send_header("Content-Type", "text/plain")
      h:end_headers()                       -- no length: the server chunks
      for _, p in ipairs(pieces) do
        h.wfile:write(p)
        h.wfile:flush()
      end
    end})
    local conn <close> = HTTPConnection("127.0.0.1", s.port, {timeout = 5})
    conn:request("GET", "/chunked")
    local r = conn:getresponse()
    assert.are.equal(200, r.status)
    assert.are.equal("chunked", r.headers["transfer-encoding"])
    assert.is_true(r.chunked)
    assert.is_nil(r.length)
    assert.are.equal("alp", r:read(3))
    assert.are.equal("habeta-xx", r:read(9))
    local rest = r:read()
    assert.are.equal(("x"):rep(99998) .. "end", rest)
    assert.is_true(r:isclosed())
    -- the connection carries on after a chunked body
    local lport = local_port(conn)
    conn:request("GET", "/again")
    assert.are.equal(table.concat(pieces), conn:getresponse():read())
    assert.are.equal(lport, local_port(conn))
    conn:close()
    assert.are.equal(1, s.accepts)
    s.stop()
  end))

  it("reads a close-delimited HTTP/1.0 response to the end", bounded(10, function()
    local body = ("0123456789"):rep(30000)
    local s = serve({protocol_version = "HTTP/1.0", do_GET = function(h)
      h:send_response(200)
      h:send_header("Content-Type", "text/plain")
      h:end_headers()                       -- no length: the close ends the body
      h.wfile:write(body:sub(1, 1000))
      h.wfile:flush()
      h.wfile:write(body:sub(1001))
    end})
    local conn <close> = HTTPConnection("127.0.0.1", s.port, {timeout = 5})
    conn:request("GET", "/")
    local r = conn:getresponse()
    assert.are.equal("HTTP/1.0", r.version)
    assert.is_nil(r.length)
    assert.is_false(r.chunked)
    assert.is_true(r.will_close)
    assert.are.equal(body:sub(1, 10), r:read(10))
    assert.is_true(r:read() == body:sub(11))
    assert.is_nil(conn.sock)
    local res = client.get(("http://127.0.0.1:%d/"):format(s.port), {timeout = 5})
    assert.is_true(res.body == body)
    assert.are.equal(2, s.accepts)
    s.stop()
  end))

  it("POSTs 1 MiB and reads the echo", bounded(10, function()
    local s = serve({do_POST = function(h)
      local got = h.rfile:read()
      reply(h, 200, got, {["X-Got"] = #got, ["X-Type"] = h.headers["content-type"]})
    end})
    local data = {}
    for i = 1, 4096 do data[i] = BINARY:sub(i % 200 + 1, i % 200 + 256) end
    data = table.concat(data)
    assert.are.equal(1024 * 1024, #data)
    local conn <close> = HTTPConnection("127.0.0.1", s.port, {timeout = 5})
    conn:request("POST", "/echo", data, {["Content-Type"] = "application/octet-stream"})
    local r = conn:getresponse()
    assert.are.equal(200, r.status)
    assert.are.equal(tostring(#data), r.headers["x-got"])
    assert.are.equal("application/octet-stream", r.headers["x-type"])
    assert.is_true(r:read() == data)
    local res = client.post(("http://127.0.0.1:%d/echo"):format(s.port), data, {timeout = 5})
    assert.is_true(res.body == data)
    -- a body from a function goes chunked
    local n = 0
    conn:request("POST", "/echo", function()
      n = n + 1
      if n <= 4 then return data:sub((n - 1) * 262144 + 1, n * 262144) end
    end)
    r = conn:getresponse()
    assert.is_true(r:read() == data)
    conn:close()
    s.stop()
  end))

  it("reconnects when the server closed the idle keep-alive connection", bounded(10, function()
    local s = serve({
      do_GET = function(h) reply(h, 200, "get " .. h.path) end,
      do_POST = function(h) reply(h, 200, "post " .. h.rfile:read()) end,
    }, {keepalive_timeout = 0.2})
    local conn <close> = HTTPConnection("127.0.0.1", s.port, {timeout = 5})
    conn:request("GET", "/one")
    assert.are.equal("get /one", conn:getresponse():read())
    local first = local_port(conn)
    assert.is_true(s.closed:wait(5))        -- the server dropped it after 0.2 s
    s.closed:clear()
    conn:request("GET", "/two")
    assert.are.equal("get /two", conn:getresponse():read())
    assert.are_not.equal(first, local_port(conn))
    assert.are.equal(2, s.accepts)
    -- a POST too: the closed connection is noticed before anything is sent
    assert.is_true(s.closed:wait(5))
    conn:request("POST", "/three", "body")
    assert.are.equal("post body", conn:getresponse():read())
    assert.are.equal(3, s.accepts)
    conn:close()
    s.stop()
  end))

  it("counts one accept for several requests; close() on a response costs the connection",
     bounded(10, function()
    local s = serve({do_GET = function(h)
      reply(h, 200, h.path == "/big" and ("b"):rep(200000) or "small")
    end})
    local conn <close> = HTTPConnection("127.0.0.1", s.port, {timeout = 5})
    for _ = 1, 5 do
      conn:request("GET", "/small")
      assert.are.equal("small", conn:getresponse():read())
    end
    conn:request("GET", "/big")
    conn:getresponse()                      -- never read: drained by the next request
    conn:request("GET", "/small")
    assert.are.equal("small", conn:getresponse():read())
    assert.are.equal(1, s.accepts)
    conn:request("GET", "/big")
    local r = conn:getresponse()
    assert.are.equal("bbbb", r:read(4))
    r:close()
    assert.is_nil(conn.sock)
    fails_with("EBADF", r.read, r)
    conn:request("GET", "/small")
    assert.are.equal("small", conn:getresponse():read())
    assert.are.equal(2, s.accepts)
    conn:close()
    s.stop()
  end))

  it("follows redirects only when asked: 303 turns into GET, 307 keeps the method",
     bounded(10, function()
    local function route(h)
      local n = tonumber(h.path:match("^/r/(%d+)$"))
      if n and n > 0 then
        h:send_response(302)
        h:send_header("Location", n % 2 == 0 and ("/r/" .. n - 1) or (tostring(n - 1)))
        h:send_header("Content-Length", 0)
        h:end_headers()
      elseif h.path == "/see-other" or h.path == "/temporary" then
        local body = h.rfile:read()
        h:send_response(h.path == "/see-other" and 303 or 307)
        h:send_header("Location", "http://127.0.0.1:" .. h.server.server_address[2] .. "/method")
        h:send_header("Content-Length", #body)
        h:end_headers()
        h.wfile:write(body)
      elseif h.path == "/to-https" then
        h:send_response(301)
        h:send_header("Location", "https://127.0.0.1/secure")
        h:send_header("Content-Length", 0)
        h:end_headers()
      else
        reply(h, 200, h.command .. " " .. h.path .. " [" .. h.rfile:read() .. "] "
          .. tostring(h.headers["content-length"]))
      end
    end
    local s = serve({do_GET = route, do_POST = route})
    local url = "http://127.0.0.1:" .. s.port
    -- ten redirects, absolute and relative Locations
    local res = client.get(url .. "/r/10", {follow_redirects = true})
    assert.are.equal(200, res.status)
    assert.are.equal("GET /r/0 [] nil", res.body)
    assert.are.equal(url .. "/r/0", res.url)
    local err = fails_with("ELOOP", client.get, url .. "/r/11", {follow_redirects = true})
    assert.matches("too many redirects", tostring(err))
    res = client.get(url .. "/r/11")
    assert.are.equal(302, res.status)
    assert.are.equal("10", res.headers.location)
    res = client.post(url .. "/see-other", "payload", {follow_redirects = true})
    assert.are.equal("GET /method [] nil", res.body)
    res = client.post(url .. "/temporary", "payload", {follow_redirects = true})
    assert.are.equal("POST /method [payload] 7", res.body)
    res = client.post(url .. "/see-other", "payload")
    assert.are.equal(303, res.status)
    assert.are.equal("payload", res.body)
    err = fails_with("EPROTONOSUPPORT", client.get, url .. "/to-https", {follow_redirects = true})
    assert.matches("https is not supported", tostring(err))
    s.stop()
  end))

  it("speaks to [::1] with a bracketed Host header", bounded(10, function()
    local probe = socket.socket(socket.AF_INET6)
    local ok = pcall(probe.bind, probe, "::1", 0)
    probe:close()
    if not ok then pending(support.skip("no IPv6 loopback here")) end
    local s = serve({do_GET = function(h) reply(h, 200, h.headers.host) end}, nil, "::1")
    local res = client.get(("http://[::1]:%d/v6"):format(s.port), {timeout = 5})
    assert.are.equal(("[::1]:%d"):format(s.port), res.body)
    local conn <close> = HTTPConnection("[::1]:" .. s.port)
    conn:request("GET", "/")
    assert.are.equal(("[::1]:%d"):format(s.port), conn:getresponse():read())
    conn:close()
    s.stop()
  end))
end)

-- ---- raw sockets playing broken servers ---------------------------------------

-- Reads a request head (no body) from a raw connection.
local function read_head(c)
  local buf = ""
  while not buf:find("\r\n\r\n", 1, true) do
    local d = c:recv(65536)
    if d == "" then return buf end
    buf = buf .. d
  end
  return buf
end

-- A listening socket whose accepted connections go, in order, to the
-- functions given, each in turn; done() waits for them (re-raising their
-- failures) and closes the listener.
local function raw_server(...)
  local handlers = {...}
  local srv = socket.create_server("127.0.0.1", 0)
  local _, port = srv:getsockname()
  local task = wirelab.spawn(function()
    for _, h in ipairs(handlers) do
      local c = srv:accept()
      c:settimeout(5)
      local ok, err = pcall(h, c)
      c:close()
      if not ok then error(err, 0) end
    end
  end)
  return port, function()
    local ok, err = pcall(task.join, task, 5)
    if not task:done() then task:cancel() end
    srv:close()
    if not ok then error(err, 0) end
  end
end

-- One connection: read the request, send `answer`, close.
local function answering(answer)
  return function(c)
    read_head(c)
    c:sendall(answer)
  end
end

describe("http.client against broken servers", function()

  it("sends Host, Accept-Encoding, User-Agent and Content-Length unless given", bounded(10, function()
    local seen = {}
    local function record(c)
      local head = read_head(c)
      local n = tonumber(head:match("\r\nContent%-Length: (%d+)\r\n") or 0)
      local body = head:sub(head:find("\r\n\r\n", 1, true) + 4)
      while #body < n do body = body .. c:recv(65536) end
      seen[#seen + 1] = head:sub(1, head:find("\r\n\r\n", 1, true) + 3) .. body
      c:sendall("HTTP/1.1 204 No Content\r\n\r\n")
    end
    local port, done = raw_server(function(c) for _ = 1, 4 do record(c) end end)
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn:request("GET", "/path?q=1")
    assert.are.equal(204, conn:getresponse().status)
    conn:request("POST", "/form", "a=b&c", {{"X-First", "1"}, {"x-second", 2}})
    assert.are.equal(204, conn:getresponse().status)
    conn:request("PUT", "/x", nil, {Host = "example.test", ["User-Agent"] = "lab/1",
                                    ["Accept-Encoding"] = "gzip"})
    assert.are.equal(204, conn:getresponse().status)
    -- Python's step by step API
    conn:putrequest("GET", "/low")
    conn:putheader("X-Multi", "a", 2)
    assert.matches("bad argument #1 to 'putheader'", refused(conn.putheader, conn, "X Y", "a"))
    conn:endheaders()
    assert.are.equal(204, conn:getresponse().status)
    conn:close()
    done()
    local ua = "User-Agent: " .. client.USER_AGENT .. "\r\n"
    assert.matches("^wirelab/%d", client.USER_AGENT)
    assert.are.equal("GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\n"
      .. "Accept-Encoding: identity\r\n" .. ua .. "\r\n", seen[1])
    assert.are.equal("POST /form HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\n"
      .. "Accept-Encoding: identity\r\n" .. ua .. "Content-Length: 5\r\n"
      .. "X-First: 1\r\nx-second: 2\r\n\r\na=b&c", seen[2])
    assert.are.equal("PUT /x HTTP/1.1\r\nContent-Length: 0\r\nAccept-Encoding: gzip\r\n"
      .. "Host: example.test\r\nUser-Agent: lab/1\r\n\r\n", seen[3])
    assert.are.equal("GET /low HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\n"
      .. "Accept-Encoding: identity\r\nX-Multi: a, 2\r\n\r\n", seen[4])
  end))

  it("raises EPROTO naming the problem for a malformed response", bounded(10, function()
    local cases = {
      {"HTTP/1.1 abc OK\r\n\r\n", "malformed response"},
      {"SSH-2.0-OpenSSH_9.6\r\n", "malformed response"},
      {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed response"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "malformed response"},
      {"HTTP/1.1 200 OK\r\nX: a\r\n\rY: b\r\n\r\n", "malformed response"},
      {"HTTP/1.1 200 OK\r\nContent-Le", "cut short"},
    }
    for _, case in ipairs(cases) do
      local port, done = raw_server(answering(case[1]))
      local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
      conn:request("GET", "/")
      local err = fails_with("EPROTO", conn.getresponse, conn)
      assert.are.equal("getresponse", err.op)
      assert.matches(case[2], err.detail, 1, true)
      assert.matches("^getresponse 127%.0%.0%.1:" .. port .. ": protocol error: .*" .. case[2],
                     tostring(err))
      assert.is_nil(conn.sock)
      conn:close()
      done()
    end
    -- a malformed chunk inside the body is found by read()
    local port, done = raw_server(answering(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"))
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn:request("GET", "/")
    local r = conn:getresponse()
    local err = fails_with("EPROTO", r.read, r)
    assert.matches("malformed response body", err.detail, 1, true)
    conn:close()
    done()
  end))

  it("raises ECONNRESET for a reset mid-headers and mid-body", bounded(10, function()
    local function resetting(answer)
      return function(c)
        read_head(c)
        c:sendall(answer)
        c:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
      end                                     -- raw_server closes: RST
    end
    local port, done = raw_server(resetting("HTTP/1.1 200 OK\r\nContent-Ty"))
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 2})
    conn:request("GET", "/")
    fails_with("ECONNRESET", conn.getresponse, conn)
    assert.is_nil(conn.sock)
    done()
    port, done = raw_server(resetting("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"))
    local conn2 <close> = HTTPConnection("127.0.0.1", port, {timeout = 2})
    conn2:request("GET", "/")
    local r = conn2:getresponse()
    assert.are.equal(200, r.status)
    assert.are.equal("ECONNRESET", fails_with("ECONNRESET", r.read, r).code)
    assert.is_nil(conn2.sock)
    done()
  end))

  it("raises for a body cut short, with the bytes that came", bounded(10, function()
    local port, done = raw_server(answering("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"))
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn:request("GET", "/")
    local r = conn:getresponse()
    assert.are.equal(100, r.length)
    local err = fails_with("EPROTO", r.read, r)
    assert.are.equal(10, err.partial)
    assert.matches("response cut short: got 10 of 100 body bytes", err.detail, 1, true)
    assert.is_nil(conn.sock)
    done()
    port, done = raw_server(answering(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"))
    local conn2 <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn2:request("GET", "/")
    r = conn2:getresponse()
    assert.are.equal("hello", r:read(5))
    err = fails_with("EPROTO", r.read, r)
    assert.matches("cut short", err.detail, 1, true)
    done()
    port, done = raw_server(answering("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"))
    err = fails_with("EPROTO", client.get, "http://127.0.0.1:" .. port .. "/")
    assert.matches("got 2 of 5", tostring(err), 1, true)
    done()
  end))

  it("raises ECONNRESET when the server closes without answering", bounded(10, function()
    local port, done = raw_server(function(c) read_head(c) end)
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn:request("GET", "/")
    local err = fails_with("ECONNRESET", conn.getresponse, conn)
    assert.matches("remote end closed connection without response", tostring(err), 1, true)
    done()
  end))

  it("times out a server that never answers, within the bound", bounded(10, function()
    local release = wirelab.event()
    local function silent(c)
      read_head(c)
      release:wait(5)
    end
    local port, done = raw_server(silent, silent)
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 0.3})
    conn:request("GET", "/")
    local t0 = wirelab.now()
    local err = fails_with("ETIMEDOUT", conn.getresponse, conn)
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
    assert.matches("timed out", tostring(err))
    t0 = wirelab.now()
    fails_with("ETIMEDOUT", client.get, "http://127.0.0.1:" .. port .. "/", {timeout = 0.3})
    took = wirelab.now() - t0
    assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
    release:set()
    done()
  end))

  it("retries an idempotent request once when a reused connection closes unanswered",
     bounded(10, function()
    local seen = {}
    local port, done = raw_server(function(c)
      seen[#seen + 1] = read_head(c):match("^[^\r]*")
      c:sendall("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      seen[#seen + 1] = read_head(c):match("^[^\r]*")
    end, function(c)                         -- closed without a word: retried here
      seen[#seen + 1] = "new " .. read_head(c):match("^[^\r]*")
      c:sendall("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
    end)
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn:request("GET", "/1")
    assert.are.equal("ok", conn:getresponse():read())
    conn:request("GET", "/2")
    assert.are.equal("again", conn:getresponse():read())
    conn:close()
    done()
    assert.are.same({"GET /1 HTTP/1.1", "GET /2 HTTP/1.1", "new GET /2 HTTP/1.1"}, seen)

    -- a POST may have been acted on: never sent twice
    seen = {}
    port, done = raw_server(function(c)
      seen[#seen + 1] = read_head(c):match("^[^\r]*")
      c:sendall("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      seen[#seen + 1] = read_head(c):match("^[^\r]*")
    end, function(c)
      seen[#seen + 1] = "new " .. read_head(c):match("^[^\r]*")
      c:sendall("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    end)
    local conn2 <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    conn2:request("GET", "/1")
    assert.are.equal("ok", conn2:getresponse():read())
    conn2:request("POST", "/2", "x")
    fails_with("ECONNRESET", conn2.getresponse, conn2)
    conn2:request("GET", "/3")
    assert.are.equal(200, conn2:getresponse().status)
    conn2:close()
    done()
    assert.are.same({"GET /1 HTTP/1.1", "POST /2 HTTP/1.1", "new GET /3 HTTP/1.1"}, seen)
  end))

  it("raises ECONNREFUSED for a port nobody listens on", bounded(10, function()
    local s <close> = socket.socket()
    s:bind("127.0.0.1", 0)                   -- bound, never listening: refused
    local _, port = s:getsockname()
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    local err = fails_with("ECONNREFUSED", conn.request, conn, "GET", "/")
    assert.are.equal("connect", err.op)
    assert.is_nil(conn.sock)
    err = fails_with("ECONNREFUSED", client.get, "http://127.0.0.1:" .. port .. "/x")
    assert.matches("connection refused", tostring(err))
  end))

  it("refuses header injection and bad methods and URLs, sending nothing", bounded(10, function()
    local first
    local port, done = raw_server(function(c)
      first = read_head(c)
      c:sendall("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    end)
    local conn <close> = HTTPConnection("127.0.0.1", port, {timeout = 5})
    local bad = {
      {"GET /", "/"}, {"G\r\nET", "/"}, {"", "/"}, {"GET\0", "/"},
      {"GET", "/a b"}, {"GET", "/a\r\nX-Injected: 1"}, {"GET", "/a\0"}, {"GET", ""},
      {"GET", "/a\127"}, {"GET", "/\tx"},
      {"GET", "/", nil, {["X Y"] = "a"}}, {"GET", "/", nil, {["X:Y"] = "a"}},
      {"GET", "/", nil, {["X\r\nY"] = "a"}}, {"GET", "/", nil, {[""] = "a"}},
      {"GET", "/", nil, {["X-A"] = "a\r\nSet-Cookie: evil=1"}},
      {"GET", "/", nil, {["X-A"] = "a\nb"}}, {"GET", "/", nil, {["X-A"] = "a\rb"}},
      {"GET", "/", nil, {["X-A"] = "a\0b"}}, {"GET", "/", nil, {{"X-A", "a\r\n b"}}},
      {"GET", "/", nil, {{"X-A"}}}, {"GET", "/", nil, {"X-A: b"}},
      {"GET", "/", {}}, {"GET", "/", nil, "X-A: b"},
    }
    for i, b in ipairs(bad) do
      local ok, err = pcall(conn.request, conn, b[1], b[2], b[3], b[4])
      assert.is_false(ok, "case " .. i .. " accepted")
      assert.are.equal("string", type(err), "case " .. i)
      assert.matches("bad argument #%d to 'request'", err, nil, false)
      assert.is_nil(err:find("\r", 1, true) or err:find("\n", 1, true), "case " .. i)
    end
    assert.is_nil(conn.sock)                  -- not even connected
    refused(HTTPConnection, "127.0.0.1\r\nX: y", port)
    refused(HTTPConnection, "127.0.0.1 ", port)
    refused(client.get, ("http://127.0.0.1:%d/a b"):format(port))
    refused(client.get, ("http://127.0.0.1:%d/"):format(port), {headers = {["X-A"] = "1\r\n2"}})
    refused(client.request, "GET /x", ("http://127.0.0.1:%d/"):format(port))
    refused(conn.putheader, conn, "X-A", "b")   -- no request started
    -- the first bytes the server sees are those of the first good request
    conn:request("GET", "/ok", nil, {["X-A"] = "tab\tand 8-bit \200 are fine"})
    assert.are.equal("ok", conn:getresponse():read())
    conn:close()
    done()
    assert.matches("^GET /ok HTTP/1.1\r\n", first)
    assert.matches("\r\nX%-A: tab\tand 8%-bit \200 are fine\r\n", first)
  end))

  it("parses URLs: refuses https and malformed ones, resolves Locations", bounded(10, function()
    local err = fails_with("EPROTONOSUPPORT", client.get, "https://127.0.0.1/")
    assert.matches("https is not supported", tostring(err))
    fails_with("EPROTONOSUPPORT", client.get, "ftp://127.0.0.1/")
    assert.matches("absolute http:// URL expected", refused(client.get, "127.0.0.1/x"))
    assert.matches("invalid port", refused(client.get, "http://127.0.0.1:99999/"))
    assert.matches("invalid port", refused(client.get, "http://127.0.0.1:x/"))
    assert.matches("no host", refused(client.get, "http:///x"))
    refused(client.get, 42)
    refused(client.get, "http://127.0.0.1/", {timeout = "soon"})
    local u = client.parse_url("http://user:p%40ss@[::1]:8080/a/b?c=d#frag")
    assert.are.same({scheme = "http", host = "::1", port = 8080, target = "/a/b?c=d",
                     userinfo = "user:p@ss"}, u)
    u = client.parse_url("HTTP://example.test?x")
    assert.are.same({scheme = "http", host = "example.test", port = 80, target = "/?x"}, u)
    local join = client.urljoin
    local b = "http://h:1/a/b/c?q"
    assert.are.equal("http://h:1/d", join(b, "/d"))
    assert.are.equal("http://h:1/a/b/d", join(b, "d"))
    assert.are.equal("http://h:1/a/d", join(b, "../d"))
    assert.are.equal("http://h:1/", join(b, "../../../.."))
    assert.are.equal("http://h:1/a/b/c?r", join(b, "?r"))
    assert.are.equal("http://other/x", join(b, "//other/x"))
    assert.are.equal("http://x.test/y", join(b, "http://x.test/y"))
    assert.are.equal("http://h:1/a%20b", join(b, "/a b"))
  end))
end)
