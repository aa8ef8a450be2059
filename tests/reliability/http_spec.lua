-- reliability/http_spec: RELIABILITY.md items 6 (memory while a huge body
-- is refused), 9 (pipeline flood) and 17 (slow reader), against a wirelab
-- HTTP server in its own process, whose memory and fds are read from /proc.
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"

local concat = table.concat

local MiB = 1024 * 1024

local support = require "support"
local SANITIZED, defer, bounded = support.SANITIZED, support.defer, support.bounded
local rss_kib, nfds = support.rss_kib, support.nfds

-- RSS growth bounds hold for the plain build only (support.SANITIZED)
local function assert_grew_less(kib, limit_kib, what)
  if SANITIZED then return end
  support.note("server RSS grew %d KiB %s (limit %d KiB)", kib, what, limit_kib)
  assert.is_true(kib < limit_kib, ("server RSS grew %d KiB %s"):format(kib, what))
end

-- block(i): the i-th MiB of /stream, different for every block
local function block(i)
  local head = ("block %05d\n"):format(i)
  local pat = ("%s%s"):format(head, ("abcdefghijklmnopqrstuvwxyz0123456789"):rep(64))
  return (pat:rep(MiB // #pat + 1)):sub(1, MiB)
end

local SERVER = [[
local hs = require "http.server"
local BLOCKS = @BLOCKS@
local function block(i)
  local head = ("block %05d\n"):format(i)
  local pat = ("%s%s"):format(head, ("abcdefghijklmnopqrstuvwxyz0123456789"):rep(64))
  return (pat:rep(]] .. MiB .. [[ // #pat + 1)):sub(1, ]] .. MiB .. [[)
end
local H = hs.BaseHTTPRequestHandler:extend()
function H:log_message() end
function H:do_GET()
  if self.path == "/stream" then       -- 1 MiB writes, as copyfile makes them
    self:send_response(200)
    self:send_header("Content-Length", BLOCKS * ]] .. MiB .. [[)
    self:end_headers()
    for i = 1, BLOCKS do self.wfile:write(block(i)) end
    return
  end
  self:send_response(200)
  self:send_header("Content-Length", 2)
  self:end_headers()
  self.wfile:write("ok")
end
function H:do_POST()                   -- reads the body in pieces, keeps none
  local n = 0
  while true do
    local piece = self.rfile:read(65536)
    if piece == "" then break end
    n = n + #piece
  end
  self:send_response(200)
  self:send_header("Content-Length", #tostring(n))
  self:end_headers()
  self.wfile:write(tostring(n))
end
local S = hs.ThreadingHTTPServer:extend({max_body = 8 * ]] .. MiB .. [[, request_queue_size = 64})
local srv = S({"127.0.0.1", 0}, H)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]

-- start(blocks) -> process, port: the server above, /stream of `blocks` MiB
local function start(blocks)
  local p, line = support.script((SERVER:gsub("@BLOCKS@", tostring(blocks or 1))))
  local port = math.tointeger(tonumber(line))
  if not port then error("the server did not start: " .. line) end
  return p, port
end

-- get(port, path) -> status, body: a short request on a new connection
local function get(port, path, timeout)
  local c <close> = socket.create_connection("127.0.0.1", port, timeout or 5)
  c:settimeout(timeout or 5)
  c:sendall("GET " .. path .. " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
  local parts = {}
  while true do
    local d = c:recv(65536)
    if d == "" then break end
    parts[#parts + 1] = d
  end
  c:close()
  local raw = concat(parts)
  return tonumber(raw:match("^HTTP/1%.1 (%d+)")), raw:match("\r\n\r\n(.*)$")
end

-- serves within `limit` seconds, while whatever else goes on
local function assert_prompt(port, limit)
  local t0 = wirelab.now()
  local status, body = get(port, "/", 5)
  local dt = wirelab.now() - t0
  assert.are.equal(200, status)
  assert.are.equal("ok", body)
  assert.is_true(dt < limit, ("a request took %.3f s during the test"):format(dt))
end

describe("reliability: an HTTP server under hostile clients", function()
  it("item 17: a slow reader of 50 MiB costs the server no more memory, and gets every byte",
     bounded(60, function()
      local p, port = start(50)
      assert_prompt(port, 1)
      local base = rss_kib(p.pid)
      local c = socket.create_connection("127.0.0.1", port, 5)
      defer(function() c:close() end)
      c:settimeout(10)
      c:sendall("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
      -- the slow phase: 1 KiB per 10 ms for 2 s, the server's memory watched
      local parts, peak = {}, base
      local t_end = wirelab.now() + 2
      local n = 0
      while wirelab.now() < t_end do
        parts[#parts + 1] = c:recv(1024)
        n = n + 1
        if n % 10 == 0 then peak = math.max(peak, rss_kib(p.pid)) end
        wirelab.sleep(0.01)
      end
      assert_prompt(port, 1)               -- everyone else is still served
      -- then the rest, as fast as it comes
      local want_len = 50 * MiB
      local raw = concat(parts)
      local head_end = raw:find("\r\n\r\n", 1, true)
      assert.is_not_nil(head_end, "no response head in the first bytes")
      parts = {raw}
      local got = #raw - head_end - 3
      while got < want_len do
        local d = c:recv(1 << 20)
        assert.is_true(#d > 0, "the response ended early")
        parts[#parts + 1] = d
        got = got + #d
      end
      c:close()
      raw = concat(parts)
      local body = raw:sub(head_end + 4)
      assert.are.equal(want_len, #body)
      for i = 1, 50 do
        if body:sub((i - 1) * MiB + 1, i * MiB) ~= block(i) then
          error("MiB " .. i .. " of the body differs")
        end
      end
      -- a 1 MiB block in the handler and at most one unsent rest: 8 MiB
      -- leaves room for the allocator, not for buffering the response
      assert_grew_less(peak - base, 8 * 1024, "while the reader was slow")
  end))

  it("item 9: a flood of pipelined requests that are never read leaves memory bounded",
     bounded(60, function()
      local p, port = start(1)
      assert_prompt(port, 1)
      local base_rss, base_fds = rss_kib(p.pid), nfds(p.pid)
      local c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      defer(function() c:close() end)
      -- a small receive buffer: the responses back up into the server soon
      c:setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
      c:settimeout(5)
      c:connect("127.0.0.1", port)
      local req = ("GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"):rep(50000)
      local sender = wirelab.spawn(function()
        -- may block for good once the server stops reading: that is the point
        pcall(c.sendall, c, req)
      end)
      local peak = base_rss
      for _ = 1, 20 do
        wirelab.sleep(0.1)
        peak = math.max(peak, rss_kib(p.pid))
      end
      assert_prompt(port, 1)
      assert_grew_less(peak - base_rss, 8 * 1024, "under the flood")
      -- the flooder goes away: its connection and memory are let go
      c:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
      c:close()
      sender:cancel()
      local fds
      for _ = 1, 40 do
        fds = nfds(p.pid)
        if fds <= base_fds then break end
        wirelab.sleep(0.05)
      end
      assert.are.equal(base_fds, fds, "the flooder's connection was not closed")
      assert_prompt(port, 1)
  end))

  it("item 6: a Content-Length of 1 GiB is refused before its body, a chunked one past max_body",
     bounded(60, function()
      local p, port = start(1)
      assert_prompt(port, 1)
      local base = rss_kib(p.pid)
      -- Content-Length: 413 at once, the body never read
      local c = socket.create_connection("127.0.0.1", port, 5)
      defer(function() c:close() end)
      c:settimeout(5)
      c:sendall("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: " .. 1024 * MiB .. "\r\n\r\n")
      c:sendall(("x"):rep(65536))
      local head = c:recv(65536)
      assert.matches("^HTTP/1%.1 413 ", head)
      c:close()
      -- chunked: read in pieces up to max_body (8 MiB here), then 413 and close
      c = socket.create_connection("127.0.0.1", port, 5)
      local c2 = c
      defer(function() c2:close() end)
      c:settimeout(5)
      c:sendall("POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
      local chunk = ("%x\r\n%s\r\n"):format(65536, ("y"):rep(65536))
      local peak, sent = base, 0
      local ok, send_err = pcall(function()
        for i = 1, 1024 do                 -- up to 64 MiB, far past the limit
          c:sendall(chunk)
          sent = sent + 65536
          if i % 16 == 0 then peak = math.max(peak, rss_kib(p.pid)) end
        end
      end)
      -- the server answers 413 and closes while the body still comes: the
      -- sending fails, but the 413 came first and waits in the receive
      -- buffer (a reset without it would be a refusal nobody can read)
      assert.is_false(ok, "the whole 64 MiB oversized body was taken")
      assert.is_true(send_err.code == "EPIPE" or send_err.code == "ECONNRESET", tostring(send_err))
      local rok, answer = pcall(c.recv, c, 65536)
      c:close()
      assert.is_true(rok, "no 413 before the close: " .. tostring(answer))
      assert.matches("^HTTP/1%.1 413 ", answer)
      assert.matches("\r\nConnection: close\r\n", answer)
      assert.is_true(sent >= 8 * MiB, ("refused after %d bytes, below max_body"):format(sent))
      assert_grew_less(peak - base, 1024, "while refusing the body")
      assert_prompt(port, 1)
  end))
end)
