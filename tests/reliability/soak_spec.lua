-- reliability/soak_spec: RELIABILITY.md item 23, short: mixed valid,
-- pipelined, garbage and RST traffic against a wirelab HTTP server and a
-- wirelab echo server (each in its own process, watched from /proc) for
-- WIRELAB_SOAK_SECS seconds (15 by default; `make soak` runs it for an
-- hour). Every valid exchange must be answered exactly, garbage refused,
-- resets survived; the servers' RSS and fd counts stay flat (RSS within 5 %
-- between the first and last third, after a warm-up; fds back to their
-- baseline), and neither crashes or reports an error other than the resets.
-- WIRELAB_TEST_VERBOSE=1 prints what was sent and measured.
local socket = require "socket"
local wirelab = require "wirelab"
local core = require "http.core"
local support = require "support"

local concat = table.concat
local SECS = tonumber(os.getenv("WIRELAB_SOAK_SECS")) or 15
local WARMUP = math.max(2, SECS * 0.2)
local SAMPLE = math.min(0.5, SECS / 30)

-- what a handler error was: its code, for the log line both servers write
local REPORT = [[
local function report(err)
  local s = tostring(err)
  io.stderr:write("handler error: ", s:match("%((E[%u_]+)%)") or s:match("^[^\n]*"), "\n")
end
]]

local HTTP_SERVER = REPORT .. [[
local hs = require "http.server"
local BIG = ("0123456789abcdef"):rep(16384)        -- 256 KiB
local H = hs.BaseHTTPRequestHandler:extend()
function H:log_message() end
function H:reply(body)
  self:send_response(200)
  self:send_header("Content-Length", #body)
  self:end_headers()
  self.wfile:write(body)
end
function H:do_GET() self:reply(self.path == "/big" and BIG or "hello " .. self.path) end
function H:do_POST() self:reply("posted " .. self.path .. " " .. self.rfile:read("a")) end
local S = hs.ThreadingHTTPServer:extend({request_queue_size = 128,
  header_timeout = 2, body_timeout = 2, keepalive_timeout = 2})
function S:handle_error(request, address, err) report(err) end
local srv = S({"127.0.0.1", 0}, H)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]

local ECHO_SERVER = REPORT .. [[
local socketserver = require "socketserver"
local Echo = socketserver.StreamRequestHandler:extend()
function Echo:handle()
  for line in self.rfile:lines("L") do self.wfile:write(line) end
end
local S = socketserver.ThreadingTCPServer:extend({request_queue_size = 128, daemon_threads = true})
function S:handle_error(request, address, err) report(err) end
local srv = S({"127.0.0.1", 0}, Echo)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]

local function start(code)
  local p, line = support.script(code)
  local port = math.tointeger(tonumber(line))
  if not port then error("the server did not start: " .. line) end
  return p, port
end

local function connect(port)
  local c = socket.create_connection("127.0.0.1", port, 5)
  c:settimeout(5)
  support.defer(function() c:close() end)
  return c
end

local function reset(c)
  c:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
  c:close()
end

-- everything until EOF (or a reset, which ends it too)
local function drain(c)
  local parts = {}
  while true do
    local ok, d = pcall(c.recv, c, 65536)
    if not ok or d == "" then break end
    parts[#parts + 1] = d
  end
  return concat(parts)
end

local function bytes(n, printable)
  local t = {}
  for i = 1, n do t[i] = string.char(printable and math.random(32, 126) or math.random(0, 255)) end
  return concat(t)
end

-- responses(c, n) -> the first n responses read from c (fewer at EOF)
local function responses(c, n)
  local p, buf, pos, out, cur = core.parser("response"), "", 1, {}, nil
  while #out < n do
    local ev, a, b = p:feed(buf, pos)
    if ev == "more" then
      local d = c:recv(65536)
      if d == "" then break end
      buf, pos = buf:sub(a) .. d, 1
    elseif ev == "head" then
      cur, pos = {status = b.status, parts = {}}, a
    elseif ev == "body" then
      cur.parts[#cur.parts + 1], pos = b, a
    elseif ev == "end" then
      cur.body, pos = concat(cur.parts), a
      out[#out + 1] = cur
    else
      error(("malformed response (%s): %q"):format(tostring(b), buf:sub(pos, pos + 200)))
    end
  end
  return out
end

-- ---- the kinds of traffic: each returns nil, or what went wrong ----------

local HTTP = {}

function HTTP.valid(port)
  local c = connect(port)
  for i = 1, 3 do
    c:sendall(("GET /v%d HTTP/1.1\r\nHost: a\r\n\r\n"):format(i))
    local r = responses(c, 1)[1]
    if not r or r.status ~= 200 or r.body ~= "hello /v" .. i then
      return "keep-alive GET " .. i .. ": " .. (r and r.status .. " " .. r.body or "no response")
    end
  end
  c:close()
end

function HTTP.pipelined(port)
  local c = connect(port)
  local body = bytes(math.random(0, 3000), true)
  c:sendall("GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n" ..
            "POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body ..
            "POST /p3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
            "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: t\r\n\r\n" ..
            "GET /p4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
  local want = {"hello /p1", "posted /p2 " .. body, "posted /p3 abcdefg", "hello /p4"}
  local got = responses(c, 4)
  for i = 1, 4 do
    if not got[i] or got[i].status ~= 200 or got[i].body ~= want[i] then
      return "pipelined response " .. i .. ": " .. (got[i] and got[i].status or "missing")
    end
  end
  if drain(c) ~= "" then return "bytes after Connection: close" end
  c:close()
end

function HTTP.garbage(port)
  local c = connect(port)
  c:sendall(bytes(math.random(1, 2000)) .. "\r\n\r\n")
  c:shutdown(socket.SHUT_WR)
  local raw = drain(c)
  c:close()
  -- refused (4xx/5xx) or just closed; never served
  if raw ~= "" and not raw:find("^HTTP/1%.1 [45]%d%d ") then
    return "garbage answered: " .. ("%q"):format(raw:sub(1, 60))
  end
end

function HTTP.reset(port)
  local c = connect(port)
  local how = math.random(3)
  if how == 1 then                       -- mid-head
    c:sendall("GET /r HTTP/1.1\r\nHo")
  elseif how == 2 then                   -- mid-body
    c:sendall("POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" .. bytes(1000, true))
  else                                   -- mid-response
    c:sendall("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    c:recv(4096)
  end
  reset(c)
end

local ECHO = {}

function ECHO.valid(port)
  local c = connect(port)
  local lines = {}
  for i = 1, math.random(1, 20) do lines[i] = bytes(math.random(0, 2000), true) .. "\n" end
  local data = concat(lines)
  local writer = wirelab.spawn(function() c:sendall(data) end)
  local got = {}
  local n = 0
  while n < #data do
    local d = c:recv(65536)
    if d == "" then break end
    got[#got + 1], n = d, n + #d
  end
  writer:join()
  c:close()
  if concat(got) ~= data then return ("echo of %d bytes came back as %d"):format(#data, n) end
end

function ECHO.garbage(port)
  local c = connect(port)
  local data = bytes(math.random(1, 4000)) .. "\n"
  local writer = wirelab.spawn(function() c:sendall(data); c:shutdown(socket.SHUT_WR) end)
  local back = drain(c)
  writer:join()
  c:close()
  if back ~= data then return ("binary echo of %d bytes came back as %d"):format(#data, #back) end
end

function ECHO.reset(port)
  local c = connect(port)
  c:sendall(bytes(math.random(1, 5000), true) .. "\n" .. bytes(100, true))
  reset(c)
end

-- ---- the soak -----------------------------------------------------------------

-- workers(kinds, port, n, deadline) -> tasks: n tasks cycling through the
-- kinds until the deadline; each returns its counts and problems
local function workers(kinds, port, n, deadline)
  local names = {}
  for name in pairs(kinds) do names[#names + 1] = name end
  table.sort(names)
  local tasks = {}
  for w = 1, n do
    tasks[w] = wirelab.spawn(function()
      local counts, problems, i = {}, {}, w
      while wirelab.now() < deadline do
        local name = names[i % #names + 1]
        i = i + 1
        local ok, why = pcall(kinds[name], port)
        if not ok then why = "raised " .. tostring(why) end
        if why and #problems < 5 then problems[#problems + 1] = name .. ": " .. why end
        counts[name] = (counts[name] or 0) + 1
      end
      return counts, problems
    end)
  end
  return tasks
end

describe("reliability: a soak of mixed traffic (item 23)", function()
  it(("HTTP and echo servers take %g s of valid, pipelined, garbage and reset traffic, " ..
      "answer it all, and stay flat in RSS and fds"):format(SECS), support.bounded(SECS + 60, function()
    math.randomseed(23)
    local servers = {}
    for _, s in ipairs{{"http", HTTP_SERVER, HTTP}, {"echo", ECHO_SERVER, ECHO}} do
      local p, port = start(s[2])
      servers[#servers + 1] = {name = s[1], p = p, port = port, kinds = s[3], rss = {}}
    end
    assert.is_nil(HTTP.valid(servers[1].port))
    assert.is_nil(ECHO.valid(servers[2].port))
    for _, s in ipairs(servers) do s.base_fds = support.nfds(s.p.pid) end

    local t0 = wirelab.now()
    local deadline = t0 + SECS
    local tasks = {}
    for _, s in ipairs(servers) do
      s.tasks = workers(s.kinds, s.port, 3, deadline)
    end
    -- the servers watched meanwhile
    local max_fds = {}
    while wirelab.now() < deadline do
      wirelab.sleep(SAMPLE)
      for i, s in ipairs(servers) do
        assert.is_false((pcall(s.p.wait, s.p, 0)), s.name .. " server died during the soak")
        s.rss[#s.rss + 1] = {wirelab.now() - t0, support.rss_kib(s.p.pid)}
        max_fds[i] = math.max(max_fds[i] or 0, support.nfds(s.p.pid))
      end
    end
    for i, s in ipairs(servers) do
      local counts, problems = {}, {}
      for _, t in ipairs(s.tasks) do
        local c, p = t:join(20)
        for k, v in pairs(c) do counts[k] = (counts[k] or 0) + v end
        for _, x in ipairs(p) do problems[#problems + 1] = x end
      end
      local list = {}
      for k, v in pairs(counts) do list[#list + 1] = k .. " " .. v end
      table.sort(list)
      -- RSS: the peak of the last third against the peak of the first
      -- third after the warm-up (the GC's sawtooth is in both)
      local first, last = 0, 0
      local third = (SECS - WARMUP) / 3
      for _, x in ipairs(s.rss) do
        if x[1] >= WARMUP and x[1] < WARMUP + third then first = math.max(first, x[2]) end
        if x[1] >= SECS - third then last = math.max(last, x[2]) end
      end
      support.note("soak %s: %s; RSS peak %d KiB -> %d KiB (%+.1f %%); fds %d at rest, %d at most",
                   s.name, concat(list, ", "), first, last, (last - first) * 100 / first, s.base_fds, max_fds[i])
      assert.are.equal(0, #problems, s.name .. ": " .. concat(problems, "; "))
      for name in pairs(s.kinds) do
        assert.is_true((counts[name] or 0) >= 3, s.name .. " " .. name .. " traffic ran only " ..
          (counts[name] or 0) .. " times")
      end
      if not support.SANITIZED then
        assert.is_true(last <= first * 1.05, ("%s server RSS grew from %d KiB to %d KiB (%+.1f %%)"):format(
          s.name, first, last, (last - first) * 100 / first))
      end
      -- the clients are gone: so are their fds
      local n
      support.wait_until(s.name .. " server's fds are back to " .. s.base_fds, function()
        n = support.nfds(s.p.pid)
        return n == s.base_fds
      end, 5)
      -- it still serves, and has reported nothing but the resets
      assert.is_nil(s.kinds.valid(s.port))
      s.p:kill(15)
      assert.are.equal(143, (s.p:wait(5)), s.name .. " server did not end on SIGTERM")
      local log = s.p.stderr:read("a")
      local other = log:gsub("handler error: E[%u_]+\n", function(l)
        return (l:find("ECONNRESET", 1, true) or l:find("EPIPE", 1, true)) and "" or l
      end)
      assert.are.equal("", other:sub(1, 2000), s.name .. " server reported more than resets")
    end
  end))
end)
