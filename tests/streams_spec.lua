-- streams: the one reader (docs/streams.md), the same cases against every
-- kind of stream a user reads: a socket's makefile (binary and text),
-- socketserver's rfile (stream and datagram), a process's stdout,
-- http.server's request body and http.client's response. Each stream
-- delivers its bytes in pieces of changing size (1, 2, 3, 5... bytes), so
-- lines and reads cross the boundaries between arrivals.
local wirelab = require "wirelab"
local socket = require "socket"
local socketserver = require "socketserver"
local process = require "process"
local hs = require "http.server"
local client = require "http.client"

local support = require "support"
local bounded = support.bounded

-- payload cut in pieces of 1, 2, 3, 5, 8... bytes, up to 4 KiB, again
local function pieces(payload)
  local out, i, a, b = {}, 1, 1, 2
  while i <= #payload do
    out[#out + 1] = payload:sub(i, i + a - 1)
    i = i + a
    a, b = b, a + b
    if a > 4096 then a, b = 1, 2 end
  end
  return out
end

-- ---- the kinds of stream -------------------------------------------------
-- Each: with(payload, case) runs case(reader) where that stream is read
-- and returns what the case returned. max: the largest payload it carries.

local function serve_pieces(payload)
  local srv = socket.create_server("127.0.0.1", 0)
  local _, port = srv:getsockname()
  local t = wirelab.spawn(function()
    local c <close> = srv:accept()
    c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _, p in ipairs(pieces(payload)) do c:sendall(p) end
  end)
  return port, function() t:join(); srv:close() end
end

local function makefile_kind(mode)
  return function(payload, case)
    local port, done = serve_pieces(payload)
    local c <close> = socket.create_connection("127.0.0.1", port)
    local f = c:makefile(mode)
    local res = table.pack(case(f))
    f:close()
    done()
    return res
  end
end

-- a connection that sends payload in pieces, then half-closes
-- (the handler may close before it all arrives: that is its business)
local function send_pieces(port, payload)
  local c <close> = socket.create_connection("127.0.0.1", port)
  c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  pcall(function()
    for _, p in ipairs(pieces(payload)) do c:sendall(p) end
    c:shutdown(socket.SHUT_WR)
    c:recv(1)
  end)
end

local function socketserver_kind(payload, case)
  local results = wirelab.queue()
  local H = socketserver.StreamRequestHandler:extend()
  function H:handle() results:put(table.pack(case(self.rfile))) end
  local srv = socketserver.TCPServer({"127.0.0.1", 0}, H)
  srv:start()
  send_pieces(srv.server_address[2], payload)
  local res = results:get(10)
  srv:shutdown()
  srv:server_close()
  return res
end

local function datagram_kind(payload, case)
  local results = wirelab.queue()
  local H = socketserver.DatagramRequestHandler:extend()
  function H:handle() results:put(table.pack(case(self.rfile))) end
  local srv = socketserver.UDPServer({"127.0.0.1", 0}, H)
  srv:start()
  local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  c:sendto(payload, "127.0.0.1", srv.server_address[2])
  local res = results:get(10)
  srv:shutdown()
  srv:server_close()
  return res
end

local function process_kind(payload, case)
  local p <close> = process.spawn{"cat", stdin = true}
  local feeder = wirelab.spawn(function()
    for _, piece in ipairs(pieces(payload)) do p:write(piece) end
    p:close_stdin()
  end)
  local res = table.pack(case(p.stdout))
  feeder:join()
  p:wait(5)
  return res
end

local function http_server_kind(payload, case)
  local results = wirelab.queue()
  local H = hs.BaseHTTPRequestHandler:extend()
  function H:do_POST()
    results:put(table.pack(case(self.rfile)))
    self:send_response(204)
    self:end_headers()
  end
  function H:log_message() end
  local srv = hs.HTTPServer({"127.0.0.1", 0}, H)
  srv:start()
  local c <close> = socket.create_connection("127.0.0.1", srv.server_address[2])
  c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  c:sendall("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
  for _, p in ipairs(pieces(payload)) do c:sendall(("%x\r\n%s\r\n"):format(#p, p)) end
  c:sendall("0\r\n\r\n")
  local res = results:get(10)
  srv:shutdown()
  srv:server_close()
  return res
end

local function http_client_kind(payload, case)
  local srv <close> = socket.create_server("127.0.0.1", 0)
  local _, port = srv:getsockname()
  local t = wirelab.spawn(function()
    local c <close> = srv:accept()
    c:setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    local head = ""
    while not head:find("\r\n\r\n", 1, true) do head = head .. c:recv(4096) end
    c:sendall("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _, p in ipairs(pieces(payload)) do c:sendall(("%x\r\n%s\r\n"):format(#p, p)) end
    c:sendall("0\r\n\r\n")
  end)
  local conn = client.HTTPConnection("127.0.0.1", port)
  conn:request("GET", "/")
  local r = conn:getresponse()
  local res = table.pack(case(r))
  conn:close()
  t:join()
  return res
end

local KINDS = {
  {name = "makefile('rb')", with = makefile_kind("rb")},
  {name = "makefile('r') (text)", with = makefile_kind("r"), text = true},
  {name = "socketserver rfile", with = socketserver_kind},
  {name = "datagram rfile", with = datagram_kind, max = 60000},
  {name = "process stdout", with = process_kind},
  {name = "http.server rfile", with = http_server_kind},
  {name = "http.client response", with = http_client_kind},
}

-- ---- the cases -----------------------------------------------------------
-- want: the values the case returns; want_text: where a text stream differs.

local function code_of(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return "no error" end
  return type(err) == "table" and err.code or tostring(err)
end

local BIG = ("x"):rep(1024 * 1024 + 100)       -- past the default max_line

local CASES = {
  {"read(n): n bytes, fewer at the end, then ''", "abcdef",
   function(r) return r:read(4), r:read(4), r:read(4), r:read("a") end,
   {"abcd", "ef", "", ""}},
  {"read('l') strips \\n and \\r\\n; nil at the end", "one\ntwo\r\nthree",
   function(r) return r:read("l"), r:read("l"), r:read("l"), r:read("l") end,
   {"one", "two", "three", nil}},
  {"read('L') keeps the end of line as received", "one\ntwo\r\n",
   function(r) return r:read("L"), r:read("L"), r:read("L") end,
   {"one\n", "two\r\n", nil}, want_text = {"one\n", "two\n", nil}},
  {"readline() is Python's: with its newline, '' at the end", "x\r\ny",
   function(r) return r:readline(), r:readline(), r:readline(), r:readline() end,
   {"x\r\n", "y", "", ""}, want_text = {"x\n", "y", "", ""}},
  {"readline(limit) returns at most limit bytes", "abcdef\n",
   function(r) return r:readline(4), r:readline(), r:readline(0) end,
   {"abcd", "ef\n", ""}},
  {"read('a') after readline() keeps what readline buffered", "line1\nline2\nline3\n",
   function(r) return r:readline(), r:read("a") end,
   {"line1\n", "line2\nline3\n"}},
  {"read() reads everything, as Python's", "a\nb\nc",
   function(r) return r:read(), r:read() end,
   {"a\nb\nc", ""}},
  {"lines() ends at the end of input", "a\nb\n\nc",
   function(r)
     local got = {}
     for l in r:lines() do got[#got + 1] = l end
     return table.concat(got, "|"), #got
   end,
   {"a|b||c", 4}},
  {"lines('L') keeps the newlines", "a\nb",
   function(r)
     local got = {}
     for l in r:lines("L") do got[#got + 1] = l end
     return table.concat(got, "|")
   end,
   {"a\n|b"}},
  {"an empty stream", "",
   function(r) return r:read("l"), r:readline(), r:read(5), r:read("a"), r:read(0) end,
   {nil, "", "", "", ""}},
  {"read1(n) returns what has come, at most n, then '' at the end", "hello",
   function(r)
     local parts = {}
     while true do
       local d = r:read1(2)
       if d == "" then break end
       assert(#d <= 2, "read1 returned more than asked")
       parts[#parts + 1] = d
     end
     return table.concat(parts)
   end,
   {"hello"}},
  {"after close(): EBADF", "data",
   function(r)
     r:close()
     return code_of(r.read, r, 1), code_of(r.readline, r)
   end,
   {"EBADF", "EBADF"}},
  {"bad format: Lua's argument error", "data",
   function(r)
     local ok, err = pcall(r.read, r, "x")
     return ok, (tostring(err):match("bad argument #1 to 'read'") ~= nil)
   end,
   {false, true}},
  {"a line past max_line raises EMSGSIZE naming the limit; its bytes stay", BIG .. "\nend\n",
   function(r)
     local ok, err = pcall(r.read, r, "l")
     local rest = r:read(10)
     return ok, err.code, (err.message:match("1048576 bytes %(max_line%)") ~= nil), rest
   end,
   {false, "EMSGSIZE", true, "xxxxxxxxxx"}, big = true},
}

describe("streams: one reader, the same answers from every stream", function()
  for _, kind in ipairs(KINDS) do
    describe(kind.name, function()
      for _, c in ipairs(CASES) do
        local title, payload, case, want = c[1], c[2], c[3], c[4]
        if kind.text and c.want_text then want = c.want_text end
        if not (kind.max and #payload > kind.max) then
          it(title, bounded(20, function()
            local got = kind.with(payload, case)
            for i = 1, math.max(#want, got.n) do
              assert.are.equal(want[i], got[i], ("value %d"):format(i))
            end
          end))
        end
      end
    end)
  end

  it("makefile's text mode turns CRLF into LF in read(n) too, even split across arrivals",
    bounded(10, function()
      local got = makefile_kind("r")("a\r\nb\r\n\r\nc\r", function(r) return r:read("a") end)
      assert.are.equal("a\nb\n\nc\r", got[1])
    end))

  it("a timeout in mid-line loses nothing: the next read gets the bytes", bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local go = wirelab.event()
    local t = wirelab.spawn(function()
      local c <close> = srv:accept()
      c:sendall("partial ")
      go:wait(5)
      c:sendall("line\n")
    end)
    local c <close> = socket.create_connection("127.0.0.1", port)
    c:settimeout(0.1)
    local f = c:makefile("rb")
    local ok, err = pcall(f.read, f, "l")
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
    go:set()
    c:settimeout(5)
    assert.are.equal("partial line", f:read("l"))
    t:join()
  end))

  it("makefile{max_line=} sets the limit", bounded(10, function()
    local port, done = serve_pieces(("y"):rep(100) .. "\n")
    local c <close> = socket.create_connection("127.0.0.1", port)
    local f = c:makefile("rb", {max_line = 64})
    local ok, err = pcall(f.readline, f)
    assert.is_false(ok)
    assert.are.equal("EMSGSIZE", err.code)
    assert.matches("64 bytes (max_line)", err.message, 1, true)
    assert.are.equal(("y"):rep(100) .. "\n", f:read("a"))
    done()
  end))

  it("a line arriving a byte at a time costs linear time", bounded(20, function()
    local n = 200000
    local p <close> = process.spawn{"python3", "-c",
      ("import sys,os\nfor _ in range(%d): os.write(1, b'z')\nos.write(1, b'\\n')"):format(n)}
    local line = p.stdout:read("l")
    assert.are.equal(n, #line)
    p:wait(5)
  end))

  it("the prompt's piped input: CRLF lines, a last line without newline", bounded(10, function()
    local p <close> = process.spawn{support.wirelab, "-i", stdin = "x = 40\r\nprint(x + 2)\r\nprint('end')"}
    assert.are.equal("42\nend\n", p.stdout:read("a"))
    assert.are.equal(0, (p:wait(5)))
  end))
end)
