-- reliability/socket_spec: RELIABILITY.md items 15 (SIGPIPE), 20 (EMFILE)
-- and 24 (UDP flood), against wirelab servers in their own processes,
-- watched from /proc. Loopback only; every loop bounded in count and time.
-- WIRELAB_TEST_VERBOSE=1 prints the numbers measured (CPU, RSS, lateness).
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"

local concat = table.concat

local MiB = 1024 * 1024

local support = require "support"
local SANITIZED, note, defer, bounded = support.SANITIZED, support.note, support.defer, support.bounded
local proc_status, rss_kib = support.proc_status, support.rss_kib

-- start(code[, prefix]) -> process, first line of its stdout; `prefix`
-- goes before the wirelab command (e.g. prlimit and its options)
local function start(code, prefix)
  return support.script(code, {prefix = prefix})
end

-- true while the process has not exited
local function alive(p)
  local ok, err = pcall(p.wait, p, 0.05)
  if not ok and err.code ~= "ETIMEDOUT" then error(err, 0) end
  return not ok
end

local function hwm_kib(pid) return tonumber(proc_status(pid, "VmHWM")) end

-- utime + stime of a process, in seconds
local function cpu_seconds(pid)
  return select(2, support.proc_stat(pid))
end

local function bit_set(hexmask, bit)
  return (tonumber(hexmask, 16) >> bit) & 1 == 1
end
local SIGPIPE_BIT = 12          -- signal 13: mask bit 1 << 12

-- ---------------------------------------------------------------------------
-- item 15: SIGPIPE

-- A server that streams 10 MiB to each client and reports, one line per
-- client, what its write said; then a pipe to a child that closed stdin.
local SIGPIPE_SERVER = [[
local socket = require "socket"
local process = require "process"
local block = ("0123456789abcdef"):rep(]] .. MiB // 16 .. [[)
local srv = socket.create_server("127.0.0.1", 0)
local _, port = srv:getsockname()
print(port)
io.stdout:flush()
local function report(what, ok, err)
  if ok then print(what .. " ok")
  else
    print(("%s error code=%s text=%s"):format(what,
      type(err) == "table" and tostring(err.code) or "-", tostring(err)))
  end
  io.stdout:flush()
end
-- 1: sendall, the client goes away after 64 KiB
local c = srv:accept()
c:settimeout(10)
report("sendall", pcall(function() for _ = 1, 10 do c:sendall(block) end end))
c:close()
-- 2: the same through makefile's buffered writer
c = srv:accept()
c:settimeout(10)
local f = c:makefile("wb")
report("makefile", pcall(function() for _ = 1, 10 do f:write(block) end f:flush() end))
pcall(f.close, f)
c:close()
-- 3: a pipe to a child that has closed its stdin
local p = process.spawn{"sh", "-c", "exec 0<&-; exec sleep 3", stdin = true}
report("pipe", pcall(function() for _ = 1, 10 do p:write(block) end end))
p:kill(9)
p:wait(5)
p:close()
-- 4: a new client gets all 10 MiB
c = srv:accept()
c:settimeout(10)
report("complete", pcall(function() for _ = 1, 10 do c:sendall(block) end end))
c:close()
print("done")
]]

local function assert_broken(line, what)
  assert.is_not_nil(line, "the server died before reporting " .. what)
  local code, text = line:match("^" .. what .. " error code=(%S+) text=(.*)$")
  assert.is_not_nil(code, "a write to a gone peer did not raise: " .. line)
  assert.is_true(code == "EPIPE" or code == "ECONNRESET", "error code " .. code)
  assert.is_true(text:find("EPIPE", 1, true) ~= nil or text:find("ECONNRESET", 1, true) ~= nil,
    "the error text names neither EPIPE nor ECONNRESET: " .. text)
end

-- connects, reads `keep` bytes of the stream, then closes with unread data
-- in its buffer (the kernel answers the next segment with a reset)
local function read_then_close(port, keep)
  local c = socket.create_connection("127.0.0.1", port, 5)
  defer(function() c:close() end)
  c:settimeout(5)
  local got = 0
  while got < keep do
    local d = c:recv(65536)
    assert.is_true(#d > 0, "the stream ended early")
    got = got + #d
  end
  c:close()
end

-- ---------------------------------------------------------------------------
-- item 20: EMFILE

local PRLIMIT = support.find("prlimit")

local NOFILE = 64
local CLIENTS = 200

-- an echo server, socketserver style, as a student writes it
local EMFILE_SERVER = support.echo_script(512)

-- exchange(c, line) -> "served" (echoed) | "closed" (EOF or reset) |
-- "hang" (nothing within 2 s) | "error ..." (anything else)
local function exchange(c, line)
  c:settimeout(2)
  local function classify(err)
    local code = type(err) == "table" and err.code
    if code == "ECONNRESET" or code == "EPIPE" then return "closed" end
    if code == "ETIMEDOUT" then return "hang" end
    return "error " .. tostring(err)
  end
  local ok, err = pcall(c.sendall, c, line)
  if not ok then return classify(err) end
  local got = ""
  while #got < #line do
    local ok2, d = pcall(c.recv, c, 4096)
    if not ok2 then return classify(d) end
    if d == "" then return "closed" end
    got = got .. d
  end
  return got == line and "served" or "error garbled echo"
end

-- runs fn(i) for i = 1..n in parallel tasks; returns their results
local function parallel(n, fn)
  local tasks, out = {}, {}
  for i = 1, n do tasks[i] = wirelab.spawn(fn, i) end
  for i = 1, n do
    local ok, r = pcall(tasks[i].join, tasks[i])
    out[i] = ok and r or ("error " .. tostring(r))
  end
  return out
end

-- the first few entries of a list of problems, and how many there were
local function summary(list)
  local shown = {}
  for i = 1, math.min(#list, 5) do shown[i] = list[i] end
  return ("%d: %s%s"):format(#list, concat(shown, "; "), #list > 5 and "; ..." or "")
end

-- a new connection and one line: what it sees
local function newcomer(port, tag)
  local ok, c = pcall(socket.create_connection, "127.0.0.1", port, 2)
  if not ok then
    return (type(c) == "table" and c.code == "ETIMEDOUT") and "hang" or "error " .. tostring(c)
  end
  local r = exchange(c, tag .. "\n")
  c:close()
  return r
end

-- ---------------------------------------------------------------------------
-- item 24: UDP flood

local DATAGRAMS = 100000
local DGRAM_SIZE = 64

-- A UDP echo server, written with the socket module ("socket") or with
-- socketserver.UDPServer ("socketserver"), that spends WORK seconds of CPU
-- on each datagram (0: a bare echo), with a 10 ms timer recording its
-- lateness, and a TCP control port: "reset", "stats", "quit".
local UDP_SERVER = [[
local socket = require "socket"
local wirelab = require "wirelab"
local FLAVOR, SIZE, WORK = "@FLAVOR@", @SIZE@, @WORK@
local now = wirelab.now
local st = {count = 0, bad = 0, last = 0, maxlate = 0, ticks = 0}
local function account(d)
  local seq = tonumber(d:match("^(%d+) "))
  if #d ~= SIZE or not seq or seq <= st.last then st.bad = st.bad + 1 else st.last = seq end
  st.count = st.count + 1
  if WORK > 0 then                     -- parsing, a lookup...: CPU, no waiting
    local t = now()
    while now() - t < WORK do end
  end
end
local u
if FLAVOR == "socket" then
  u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  u:bind("127.0.0.1", 0)
  wirelab.spawn(function()
    while true do
      local d, host, port = u:recvfrom(2048)
      account(d)
      u:sendto(d, host, port)
    end
  end)
else
  local socketserver = require "socketserver"
  local H = socketserver.DatagramRequestHandler:extend()
  function H:handle()
    local d = self.rfile:read("a")
    account(d)
    self.wfile:write(d)
  end
  local srv = socketserver.UDPServer({"127.0.0.1", 0}, H)
  u = srv.socket
  srv:start()
end
wirelab.spawn(function()
  while true do
    local t = wirelab.now()
    wirelab.sleep(0.01)
    local late = wirelab.now() - t - 0.01
    if late > st.maxlate then st.maxlate = late end
    st.ticks = st.ticks + 1
  end
end)
local ctl = socket.create_server("127.0.0.1", 0)
local _, uport = u:getsockname()
local _, cport = ctl:getsockname()
print(uport .. " " .. cport)
io.stdout:flush()
while true do
  local c = ctl:accept()
  c:settimeout(5)
  local cmd = c:recv(100)
  if cmd:find("reset", 1, true) then st.maxlate, st.ticks = 0, 0 end
  c:sendall(("count=%d bad=%d last=%d maxlate=%.6f ticks=%d\n"):format(
    st.count, st.bad, st.last, st.maxlate, st.ticks))
  c:close()
  if cmd:find("quit", 1, true) then break end
end
]]

local function control(port, cmd)
  local c <close> = socket.create_connection("127.0.0.1", port, 5)
  c:settimeout(10)
  c:sendall(cmd .. "\n")
  local parts = {}
  while true do
    local d = c:recv(4096)
    if d == "" then break end
    parts[#parts + 1] = d
  end
  local line = concat(parts)
  local st = {}
  for k, v in line:gmatch("(%w+)=(%S+)") do st[k] = tonumber(v) end
  assert.is_not_nil(st.count, "no stats from the server: " .. line)
  return st
end

-- the kernel's drop counter of the UDP socket bound to 127.0.0.1:port
local function udp_drops(port)
  local f = io.open("/proc/net/udp")
  if not f then return nil end
  local want = ("0100007F:%04X"):format(port)
  for line in f:lines() do
    local fields = {}
    for w in line:gmatch("%S+") do fields[#fields + 1] = w end
    if fields[2] == want then
      f:close()
      return tonumber(fields[#fields])
    end
  end
  f:close()
  return nil
end

-- packets dropped by the kernel before any socket (all CPUs' backlogs)
local function softnet_drops()
  local f = io.open("/proc/net/softnet_stat")
  if not f then return 0 end
  local n = 0
  for line in f:lines() do
    local dropped = line:match("^%x+%s+(%x+)")
    if dropped then n = n + tonumber(dropped, 16) end
  end
  f:close()
  return n
end

local function udp_flood(flavor, work)
  return bounded(15, function()
    local code = UDP_SERVER:gsub("@FLAVOR@", flavor):gsub("@SIZE@", tostring(DGRAM_SIZE))
                           :gsub("@WORK@", tostring(work))
    local p, line = start(code)
    local uport, cport = line:match("^(%d+) (%d+)$")
    uport, cport = math.tointeger(tonumber(uport)), math.tointeger(tonumber(cport))
    assert.is_not_nil(cport, "bad first line from the server: " .. line)
    control(cport, "reset")             -- the server's loop is running
    local base = rss_kib(p.pid)
    local drops0 = udp_drops(uport) or 0

    local s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    defer(function() s:close() end)
    s:settimeout(5)
    -- made beforehand, so the flood is nothing but sendto calls
    local pad = ("u"):rep(DGRAM_SIZE - 9)
    local dgrams = {}
    for i = 1, DATAGRAMS do dgrams[i] = ("%08d %s"):format(i, pad) end
    local softnet0 = softnet_drops()
    local t0 = wirelab.now()
    for i = 1, DATAGRAMS do s:sendto(dgrams[i], "127.0.0.1", uport) end
    local flood_s = wirelab.now() - t0
    s:close()

    -- the queue drains: the count stops moving (at most 5 s)
    local st, prev = control(cport, "stats"), -1
    for _ = 1, 50 do
      if st.count == prev then break end
      prev = st.count
      wirelab.sleep(0.1)
      st = control(cport, "stats")
    end
    local peak = hwm_kib(p.pid)
    local drops = (udp_drops(uport) or drops0) - drops0
    local softnet = softnet_drops() - softnet0
    dgrams = nil
    note("UDP flood (%s server, %.1f ms per datagram): %d datagrams sent in %.3f s; received %d, kernel drops %d; " ..
         "softnet drops %d; timer max lateness %.1f ms over %d ticks; RSS %d KiB -> peak %d KiB (+%d KiB)",
         flavor, work * 1000, DATAGRAMS, flood_s, st.count, drops, softnet, st.maxlate * 1000, st.ticks,
         base, peak, peak - base)

    -- it ends cleanly when told to
    control(cport, "quit")
    local status, sig = p:wait(5)
    local err = p.stderr:read("a")
    assert.are.equal(0, status, "the server did not exit cleanly: " .. err)
    assert.is_nil(sig)
    assert.are.equal("", err, "the server wrote to stderr")

    -- counted: something arrived, nothing twice, intact and in order
    assert.is_true(st.count > 0, "the server received nothing")
    assert.is_true(st.count <= DATAGRAMS, "more datagrams counted than sent: " .. st.count)
    assert.are.equal(0, st.bad, "datagrams damaged, repeated or reordered")
    -- what the server did not count, the kernel dropped at its socket
    -- (exactly, unless the loopback backlog dropped some on the way)
    if softnet == 0 then
      assert.are.equal(DATAGRAMS, st.count + drops,
        ("received %d + dropped at the socket %d ~= sent %d"):format(st.count, drops, DATAGRAMS))
    else
      assert.is_true(st.count + drops <= DATAGRAMS,
        ("received %d + dropped %d > sent %d"):format(st.count, drops, DATAGRAMS))
    end
    if not SANITIZED then
      assert.is_true(peak - base < 16 * 1024,
        ("server RSS grew %d KiB during the flood"):format(peak - base))
    end
    -- responsive: the 10 ms timer kept ticking through the flood
    local limit = SANITIZED and 0.1 or 0.05
    assert.is_true(st.maxlate < limit, ("the server's 10 ms timer fired %.0f ms late during a " ..
      "%.0f ms flood (event loop starved)"):format(st.maxlate * 1000, flood_s * 1000))
  end)
end

-- ---------------------------------------------------------------------------

describe("reliability: sockets under faults and exhaustion", function()
  it("item 15: a server whose client hangs up mid-stream gets EPIPE/ECONNRESET as a Lua error, " ..
     "survives, and serves the next client", bounded(15, function()
    local p, line = start(SIGPIPE_SERVER)
    local port = math.tointeger(tonumber(line))
    assert.is_not_nil(port, "bad first line from the server: " .. line)
    -- 1: sendall to a client that reads 64 KiB of 10 MiB and hangs up
    read_then_close(port, 65536)
    assert_broken(p.stdout:read("l"), "sendall")
    assert.is_true(alive(p), "the server died after its client hung up")
    -- 2: the same through makefile
    read_then_close(port, 65536)
    assert_broken(p.stdout:read("l"), "makefile")
    assert.is_true(alive(p), "the server died after its client hung up")
    -- 3: a pipe to a child that closed its stdin
    assert_broken(p.stdout:read("l"), "pipe")
    assert.is_true(alive(p), "the server died writing to a closed pipe")
    -- 4: a new client is served in full
    local c = socket.create_connection("127.0.0.1", port, 5)
    defer(function() c:close() end)
    c:settimeout(10)
    local parts = {}
    while true do
      local d = c:recv(1 << 20)
      if d == "" then break end
      parts[#parts + 1] = d
    end
    c:close()
    local body = concat(parts)
    assert.are.equal(10 * MiB, #body)
    assert.is_true(body == ("0123456789abcdef"):rep(10 * MiB // 16), "the stream's content differs")
    assert.are.equal("complete ok", p.stdout:read("l"))
    assert.are.equal("done", p.stdout:read("l"))
    local status, sig = p:wait(5)
    assert.are.equal(0, status)
    assert.is_nil(sig)
  end))

  it("item 15: a program started with the process module has SIGPIPE at SIG_DFL " ..
     "though wirelab survives it", bounded(10, function()
    -- wirelab itself: SIGPIPE caught and dropped (or the writes above
    -- would kill it); caught, not ignored, so that exec resets it
    assert.is_true(bit_set(proc_status("self", "SigCgt"), SIGPIPE_BIT),
      "wirelab does not catch SIGPIPE")
    -- io.popen and os.execute (libc, not libuv) start programs with it too
    local dir = support.tmpdir()
    for _, how in ipairs{"popen", "execute"} do
      local out = dir .. "/" .. how
      local cmd = "grep SigIgn /proc/self/status > " .. out
      if how == "popen" then
        local f = assert(io.popen(cmd))
        f:read("a")
        f:close()
      else
        os.execute(cmd)
      end
      local line = support.read(out)
      local mask = line:match("SigIgn:%s*(%x+)")
      assert.is_not_nil(mask, line)
      assert.is_false(bit_set(mask, SIGPIPE_BIT), "SIGPIPE ignored in a child of " ..
        (how == "popen" and "io.popen" or "os.execute") ..
        ": SigIgn " .. mask)
    end
    local r = process.run{"sh", "-c", "grep -E '^Sig(Ign|Blk):' /proc/self/status", timeout = 5}
    assert.are.equal(0, r.code, r.stderr)
    local ign = r.stdout:match("SigIgn:%s*(%x+)")
    local blk = r.stdout:match("SigBlk:%s*(%x+)")
    assert.is_true(ign ~= nil and blk ~= nil, r.stdout)
    assert.is_false(bit_set(ign, SIGPIPE_BIT), "SIGPIPE ignored in the child: SigIgn " .. ign)
    assert.is_false(bit_set(blk, SIGPIPE_BIT), "SIGPIPE blocked in the child: SigBlk " .. blk)
    -- and it shows: `yes` writing into a closed pipe dies of SIGPIPE
    -- (status 141) instead of reporting "Broken pipe" and exiting 1
    r = process.run{"sh", "-c", "(yes; echo \"yes-status=$?\" >&2) | head -n 1 >/dev/null",
                    timeout = 5}
    assert.are.equal(0, r.code)
    assert.matches("yes%-status=141", r.stderr)
    assert.is_nil(r.stderr:find("Broken pipe", 1, true), r.stderr)
    -- the same from a wirelab that is itself a spawned program
    r = process.run{support.wirelab, "-e",
      "local r = require('process').run{'sh', '-c', 'grep SigIgn /proc/self/status', timeout = 5} " ..
      "io.write(r.stdout)", timeout = 10}
    assert.are.equal(0, r.code, r.stderr)
    ign = r.stdout:match("SigIgn:%s*(%x+)")
    assert.is_not_nil(ign, r.stdout)
    assert.is_false(bit_set(ign, SIGPIPE_BIT), "SIGPIPE ignored in a grandchild: SigIgn " .. ign)
  end))

  if not PRLIMIT then
    pending(support.skip("item 20 (EMFILE): prlimit (util-linux) is not installed"))
  else
    it("item 20: out of fds (prlimit --nofile=64), a server sheds excess clients at once, " ..
       "keeps serving its own, stays idle (< 10 % CPU over 10 s), and accepts again when fds free up",
       bounded(40, function()
      local p, line = start(EMFILE_SERVER, {PRLIMIT, "--nofile=" .. NOFILE .. ":" .. NOFILE})
      local port = math.tointeger(tonumber(line))
      assert.is_not_nil(port, "bad first line from the server: " .. line)
      -- the limit is on the server itself (prlimit execs it)
      local lim = process.run{"sh", "-c", "grep 'Max open files' /proc/" .. p.pid .. "/limits", timeout = 5}
      assert.matches("Max open files%s+" .. NOFILE .. "%s+" .. NOFILE, lim.stdout)
      assert.are.equal("served", newcomer(port, "hello"))

      -- 200 clients connect and say a line each: the first ones are served,
      -- the rest find no fd and must see a close at once, not wait forever
      local clients = {}
      defer(function() for _, c in ipairs(clients) do c:close() end end)
      local connect_fail = {}
      for i = 1, CLIENTS do
        local ok, c = pcall(socket.create_connection, "127.0.0.1", port, 2)
        if ok then clients[#clients + 1] = c
        else connect_fail[#connect_fail + 1] = tostring(c) end
      end
      assert.are.equal(0, #connect_fail, "connects failed: " .. summary(connect_fail))
      local t0, c0 = wirelab.now(), cpu_seconds(p.pid)
      local first = parallel(CLIENTS, function(i) return exchange(clients[i], "client " .. i .. "\n") end)
      local took = wirelab.now() - t0
      local cpu_first = (cpu_seconds(p.pid) - c0) / took
      local served, closed, other = {}, 0, {}
      for i, r in ipairs(first) do
        if r == "served" then served[#served + 1] = clients[i]
        elseif r == "closed" then closed = closed + 1
        else other[#other + 1] = i .. ": " .. r end
      end
      note("EMFILE: %d clients: %d served, %d closed by the server, %d other, in %.3f s",
           CLIENTS, #served, closed, #other, took)
      assert.are.equal(0, #other, ("clients neither served nor closed (server CPU meanwhile " ..
        "%.0f%% of a core): %s"):format(cpu_first * 100, summary(other)))
      assert.is_true(#served >= 20 and #served < NOFILE, #served .. " clients served")
      assert.are.equal(CLIENTS - #served, closed)

      -- 10 s at the limit: the held clients are still served, newcomers are
      -- shed at once, and the server does not spin on its listening socket
      local cpu0, w0 = cpu_seconds(p.pid), wirelab.now()
      local rounds, bad = 0, {}
      while wirelab.now() - w0 < 10 and rounds < 100 do
        rounds = rounds + 1
        local res = parallel(#served, function(i) return exchange(served[i], "again " .. i .. "\n") end)
        for i, r in ipairs(res) do
          if r ~= "served" then bad[#bad + 1] = ("round %d held client %d: %s"):format(rounds, i, r) end
        end
        local r = newcomer(port, "late " .. rounds)
        if r == "closed" then closed = closed + 1
        else bad[#bad + 1] = ("round %d newcomer: %s"):format(rounds, r) end
        wirelab.sleep(0.2)
      end
      local cpu = (cpu_seconds(p.pid) - cpu0) / (wirelab.now() - w0)
      note("EMFILE: %d rounds at the fd limit, server CPU %.1f%% of one core", rounds, cpu * 100)
      assert.are.equal(0, #bad, "at the fd limit: " .. summary(bad))
      assert.is_true(alive(p), "the server died at the fd limit")
      if not SANITIZED then
        assert.is_true(cpu < 0.10, ("server CPU %.1f%% of a core over %.1f s at the fd limit"):format(
          cpu * 100, wirelab.now() - w0))
      end

      -- the held clients go: new clients are accepted again
      for _, c in ipairs(clients) do c:close() end
      local r, tries, t1 = nil, 0, wirelab.now()
      repeat
        tries = tries + 1
        r = newcomer(port, "back " .. tries)
        if r == "closed" then closed = closed + 1 end
        if r ~= "served" then wirelab.sleep(0.1) end
      until r == "served" or wirelab.now() - t1 > 5
      note("EMFILE: served again %.3f s after the release (%d tries)", wirelab.now() - t1, tries)
      assert.are.equal("served", r, "no client accepted after the fds were released")
      local again = parallel(20, function(i) return newcomer(port, "after " .. i) end)
      for i, x in ipairs(again) do assert.are.equal("served", x, "client " .. i .. " after the release") end
      assert.is_true(alive(p), "the server died")
      p:kill(9)
      p:wait(5)
      -- every client it shed, and no other, it reported from accept
      local log = p.stderr:read("a")
      local shed = select(2, log:gsub("accept [^\n]*%(EMFILE%)", ""))
      note("EMFILE: the server logged %d EMFILE errors from accept", shed)
      assert.are.equal(closed, shed, ("%d clients shed, %d EMFILE errors logged:\n%s"):format(
        closed, shed, log:sub(1, 2000)))
    end))
  end

  -- A bare echo loop is starved only while the flood outpaces it, which a
  -- busy machine can hide; one that works 0.5 ms per datagram never keeps
  -- up, and a full receive queue (256 datagrams of 64 bytes by default) is
  -- then 128 ms of work: a loop that never yields misses its timer for sure.
  it("item 24: a UDP echo server on the socket module stays responsive through " ..
     DATAGRAMS .. " datagrams, counts them, bounded memory, exits cleanly", udp_flood("socket", 0))

  it("item 24: the same with socketserver.UDPServer", udp_flood("socketserver", 0))

  it("item 24: a UDP server on the socket module that works 0.5 ms per datagram " ..
     "keeps its timers running through the flood", udp_flood("socket", 0.0005))

  it("item 24: the same with socketserver.UDPServer", udp_flood("socketserver", 0.0005))
end)
