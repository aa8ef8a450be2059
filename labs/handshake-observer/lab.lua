-- labs/handshake-observer: watch a TCP connection's life. The student's
-- program performs one step (connect, close first, close second, close
-- with unread data, listen and never accept) against the grader, and
-- reports the TCP states its kernel gives, one JSON line each; the grader
-- is the other end, reads its own sockets' states and the kernel's table,
-- and captures the packets on the check's loopback (where it may: root,
-- CAP_NET_RAW) to check the flags: SYN, SYN|ACK, ACK before accept
-- returns, FIN|ACK and who holds TIME_WAIT, RST for unread data, the SYN
-- sent again when the listen queue is full. Without a capture the states
-- are checked alone, and the log says so.
local lab = require "lab"
local wirelab = require "wirelab"
local socket = require "socket"
local process = require "process"
local capture = require "capture"
local cjson = require "cjson"

local format, concat = string.format, table.concat

local STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
                "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

-- ---- the grader's eyes -----------------------------------------------------------

-- the packets of port on the check's loopback, or nil where this grader
-- may not capture (then the check looks at states only, and says so)
local function start_capture(t, port)
  local ok, cap = pcall(capture.start, {interface = "lo", netns = t.ns, port = port})
  if ok then return cap end
  t:log("no packet capture here (" .. (cap.code == "EPERM" and "capturing needs CAP_NET_RAW: grade as root " ..
    "to see the packets" or tostring(cap)) .. "): this check looked at TCP states only")
  return nil
end

-- the kernel's TCP table where the submission runs: {local_port, remote_port, state}
-- for every connection, sockets or not (TIME_WAIT has none)
local function tcp_table(t)
  local text
  if t.ns then
    local r = process.run{"cat", "/proc/net/tcp", "/proc/net/tcp6", sandbox = {netns = t.ns, scratch = false},
                          timeout = 5}
    text = r.stdout
  else
    local parts = {}
    for _, path in ipairs{"/proc/net/tcp", "/proc/net/tcp6"} do
      local f = io.open(path)
      if f then parts[#parts + 1] = f:read("a"); f:close() end
    end
    text = concat(parts)
  end
  local rows = {}
  for l, r, st in text:gmatch("%x+:%s+%x+:(%x+)%s+%x+:(%x+)%s+(%x%x)") do
    rows[#rows + 1] = {local_port = tonumber(l, 16), remote_port = tonumber(r, 16),
                       state = STATES[tonumber(st, 16)] or st}
  end
  return rows
end

local function kernel_state(t, local_port, remote_port)
  for _, row in ipairs(tcp_table(t)) do
    if row.local_port == local_port and row.remote_port == remote_port then return row.state end
  end
  return nil
end

-- until the kernel's table shows the connection in state (2 s at most)
local function await_state(t, local_port, remote_port, state)
  local deadline = wirelab.now() + 2
  local got = kernel_state(t, local_port, remote_port)
  while got ~= state and wirelab.now() < deadline do
    wirelab.sleep(0.02)
    got = kernel_state(t, local_port, remote_port)
  end
  return got
end

local function listen(t, port, backlog)
  if t.ns then return t.ns:create_server("127.0.0.1", port, {backlog = backlog or 8}) end
  return socket.create_server("127.0.0.1", port, {backlog = backlog or 8})
end

-- ---- what the program reports ------------------------------------------------------

local function int(v) return type(v) == "number" and math.tointeger(v) or v end

-- the first line `{"event": event, ...}` the program printed, waiting up
-- to timeout s for it; a missing line fails the check, naming the step
local function expect(t, p, event, timeout, why)
  local deadline = wirelab.now() + (timeout or 5)
  while true do
    local out = p:stdout()
    for line in out:gmatch("[^\n]+") do
      local ok, v = pcall(cjson.decode, line)
      if ok and type(v) == "table" and v.event == event then
        for k, x in pairs(v) do v[k] = int(x) end
        return v
      end
    end
    if not p:alive() or wirelab.now() >= deadline then
      local printed = out == "" and "nothing" or lab.show(out)
      t:fail(format("expected a line {\"event\": \"%s\", ...} on stdout%s; your program printed %s",
        event, why and (" " .. why) or "", printed), p:alive() and "timed out" or nil)
    end
    wirelab.sleep(0.01)
  end
end

-- a length of time for the log, in the unit that reads
local function span(secs)
  if secs >= 0.001 then return format("%.0f ms", secs * 1e3) end
  return format("%.0f µs", secs * 1e6)
end

-- the port the program reported as its own, against the one the grader
-- saw its connection come from (named, not numbered: ephemeral ports
-- differ from one grading to the next)
local function check_port(t, reported, actual, server_port)
  if reported == actual then return end
  local what = reported == server_port and "the server's port ({port})" or lab.show(reported)
  t:fail("the local_port you reported is " .. what .. ", not your socket's own port (the port your " ..
    "connection came from, which getsockname gives)")
end

-- ---- what the capture shows ---------------------------------------------------------

local function find(segs, pred, from)
  for i = from or 1, #segs do
    if pred(segs[i]) then return segs[i], i end
  end
  return nil
end

-- the flags between two ends, in order: "SYN > / SYN|ACK < / ..."
local function sequence(segs, client_port)
  local out = {}
  for _, s in ipairs(segs) do
    if s.proto == "tcp" and (s.sport == client_port or s.dport == client_port) then
      out[#out + 1] = (s.sport == client_port and "client " or "server ") .. s.flags
    end
  end
  return concat(out, ", ")
end

-- until the segments matching each of preds appear in that order (2 s);
-- -> the segments found, or nil and what was seen
local function await_order(cap, preds)
  local found
  local segs = cap:wait(function(segs)
    found = {}
    local at = 1
    for i, pred in ipairs(preds) do
      local s, j = find(segs, pred, at)
      if not s then return false end
      found[i], at = s, j + 1
    end
    return true
  end, 2)
  if segs then return found end
  return nil
end

local function from_port(port, flags)
  return function(s) return s.sport == port and s.flags == flags end
end

-- a teardown, first closing first: its FIN, the other's FIN (the ACK of
-- the first FIN alone before it, or riding on it: delayed ACKs decide),
-- and the ACK of the second FIN. -> the three segments, or nil
local function await_teardown(cap, first, second)
  return await_order(cap, {
    function(s) return s.sport == first and s.flags:find("FIN", 1, true) end,
    function(s) return s.sport == second and s.flags:find("FIN", 1, true) end,
    function(s) return s.sport == first and s.flags == "ACK" end})
end

-- the ladder for feedback, its ports named so the same grading reads the same
local function picture(segs, names)
  local text = capture.format(segs)
  for port, name in pairs(names) do
    text = text:gsub("(:)" .. port .. "%f[%D]", "%1" .. name)
  end
  return text
end

return lab.new{
  name = "handshake-observer",
  description = "Watch a TCP connection's life: handshake, FIN and TIME_WAIT, RST, a full listen queue.",
  submission = {
    {file = "observer.lua", run = {"{wirelab}", "--sandbox", "observer.lua", "{port}"}},
    {file = "observer.py", run = {"python3", "observer.py", "{port}"}},
    {file = "Makefile", build = {"make"}, run = {"./observer", "{port}"}},
    {file = "observer.c", build = {"cc", "-O2", "-o", "observer", "observer.c"}, run = {"./observer", "{port}"}},
    {file = "observer", run = {"./observer", "{port}"}},
    limits = {cpu = 10, memory = 256, nproc = 32, nofile = 64, fsize = 1, output = 1},
  },
  timeout = 15,
  checks = {
    {name = "handshake", points = 3,
     description = "connect returns once SYN, SYN|ACK, ACK have passed, before the server's accept",
     hint = "connect() returns once the kernel has done the three-way handshake (the server has not " ..
            "called accept yet): report your socket's own port (getsockname) and its state from TCP_INFO",
     run = function(t)
       local port = t:port()
       local srv <close> = listen(t, port)
       local cap <close> = start_capture(t, port)
       local p = t:start_submission{port = port, "handshake", exits = true}
       t:step("the grader listens on {port} and does not accept; your program connects")
       local r = expect(t, p, "connected", 5, "once connect returned")
       srv:settimeout(5)
       local a <close> = srv:accept()
       local accepted = cap and cap:mark("accept() returned")
       t:step("your program reported connected; then the grader's accept returned")
       local _, peer = a:getpeername()
       check_port(t, r.local_port, peer, port)
       t:eq(r.state, "ESTABLISHED", "your socket's state once connect returned")
       t:eq(a:tcp_info().state, "ESTABLISHED", "the server's accepted socket")
       if cap then
         local hs = await_order(cap, {from_port(peer, "SYN"), from_port(port, "SYN|ACK"), from_port(peer, "ACK")})
         local segs = cap:segments()
         if not hs then
           t:fail("the capture did not show SYN, SYN|ACK, ACK between your port and {port}; it showed: " ..
             sequence(segs, peer) .. "\n" .. picture(segs, {[peer] = "{client}"}))
         end
         for i, s in ipairs(hs) do
           if s.time > accepted then
             t:fail(format("segment %d of the handshake (%s) came after accept returned", i, s.flags))
           end
         end
         t:truthy(hs[1].options.mss, "the SYN carries an MSS option")
         t:eq(hs[2].ack, 1, "the SYN|ACK's relative ack (ISN + 1)")
         t:log(format("the capture: SYN, SYN|ACK, ACK in %s, all before accept returned; MSS %d",
           span(hs[3].time - hs[1].time), hs[1].options.mss))
       end
       a:close()
     end},

    {name = "active-close", points = 3,
     description = "the side that closes first goes FIN_WAIT2 then TIME_WAIT; the other CLOSE_WAIT then LAST_ACK",
     hint = "here your program closes first: close() sends a FIN; the socket is gone but the kernel keeps the " ..
            "connection, FIN_WAIT2 until the server's FIN, then TIME_WAIT: read its state from /proc/net/tcp " ..
            "(the row with your port and the server's), not from the closed socket",
     run = function(t)
       local port = t:port()
       local srv <close> = listen(t, port)
       local cap <close> = start_capture(t, port)
       local p = t:start_submission{port = port, "active-close", exits = true}
       local r1 = expect(t, p, "connected", 5, "once connect returned")
       srv:settimeout(5)
       local a <close> = srv:accept()
       local _, me = a:getpeername()
       check_port(t, r1.local_port, me, port)
       t:step("your program connected; the grader accepted and waits for your close")
       local r2 = expect(t, p, "closed", 3, "after your program closed its socket (it closes first here)")
       a:settimeout(2)
       t:eq(a:recv(1), "", "what the server read after your close (your FIN: the end of the stream)")
       t:eq(a:tcp_info().state, "CLOSE_WAIT", "the server's socket after your FIN")
       local truth = kernel_state(t, me, port)
       t:step("your program closed; the server read the end of the stream: CLOSE_WAIT")
       t:eq(truth, "FIN_WAIT2", "your end's state in the kernel's table after your close")
       t:eq(r2.state, truth, "the state you reported after closing")
       a:close()
       t:step("the server closed too (its FIN)")
       local r3 = expect(t, p, "peer-closed", 3, "once the server had closed too")
       truth = await_state(t, me, port, "TIME_WAIT")
       t:eq(truth, "TIME_WAIT", "your end's state in the kernel's table after both FINs")
       t:eq(r3.state, "TIME_WAIT", "the state you reported after the server closed")
       if cap then
         local fins = await_teardown(cap, me, port)
         if not fins then
           local segs = cap:segments()
           t:fail("the capture did not show a FIN|ACK from each side, yours first, and the last ACK; it showed: " ..
             sequence(segs, me) .. "\n" .. picture(segs, {[me] = "{client}"}))
         end
         t:log(format("the capture: your FIN|ACK, the server's FIN|ACK %s later (CLOSE_WAIT until then), " ..
           "your ACK %s after it (the server's LAST_ACK); your end holds TIME_WAIT",
           span(fins[2].time - fins[1].time), span(fins[3].time - fins[2].time)))
       end
     end},

    {name = "passive-close", points = 3,
     description = "the side whose peer closes first reads the end, sits in CLOSE_WAIT, and closes",
     hint = "recv returning an empty string means the peer has closed: your socket is then in CLOSE_WAIT " ..
            "(TCP_INFO says so) and stays there until you close it",
     run = function(t)
       local port = t:port()
       local cap <close> = start_capture(t, port)
       local p = t:start_submission{port = port, "passive-close", exits = true}
       expect(t, p, "listening", 5, "once your program listened")
       local c = t:connect(port)
       local _, mine = c:getsockname()
       local data = t.rng:bytes(t.rng:random(1000, 5000))
       c:sendall(data)
       c:close()
       t:step(format("the grader connected, sent %d bytes and closed first", #data))
       local r = expect(t, p, "peer-closed", 3, "after recv returned the end of the stream")
       t:eq(r.received, #data, "the bytes you reported receiving before the end")
       t:eq(r.state, "CLOSE_WAIT", "your socket's state once recv returned the end")
       local truth = await_state(t, mine, port, "TIME_WAIT")
       if truth ~= "TIME_WAIT" then
         t:fail(format("2 s after you reported CLOSE_WAIT, the grader's end was still %s: your program never " ..
           "closed its socket, so your end stays in CLOSE_WAIT", tostring(truth)))
       end
       expect(t, p, "closed", 2, "after your program closed its socket")
       if cap then
         local fins = await_teardown(cap, mine, port)
         if not fins then
           local segs = cap:segments()
           t:fail("the capture did not show the grader's FIN|ACK, then yours, then the last ACK; it showed: " ..
             sequence(segs, mine) .. "\n" .. picture(segs, {[mine] = "{client}"}))
         end
         t:log(format("the capture: the grader's FIN|ACK, yours %s later (CLOSE_WAIT until then), the " ..
           "last ACK %s after it (your LAST_ACK); the grader, which closed first, holds TIME_WAIT",
           span(fins[2].time - fins[1].time), span(fins[3].time - fins[2].time)))
       end
     end},

    {name = "reset", points = 2,
     description = "closing a socket with unread data sends RST, not FIN",
     hint = "leave the bytes unread (peek with MSG_PEEK to count them) and close: the kernel then discards " ..
            "them and resets the connection instead of ending it with a FIN",
     run = function(t)
       local port = t:port()
       local cap <close> = start_capture(t, port)
       local p = t:start_submission{port = port, "reset", exits = true}
       expect(t, p, "listening", 5, "once your program listened")
       local c = t:connect(port)
       local data = t.rng:bytes(t.rng:random(1000, 4000))
       c:sendall(data)
       t:step(format("the grader connected and sent %d bytes", #data))
       local r = expect(t, p, "unread", 3, "with the count of bytes waiting, before closing")
       t:eq(r.bytes, #data, "the unread bytes you reported")
       c:settimeout(2)
       local ok, got = pcall(c.recv, c, 100)
       t:step("your program closed; the grader read from its socket")
       if ok then
         t:fail(format("the grader read %s from its socket after your close: an ordinary end (FIN), not a " ..
           "reset; were the bytes read before close?", got == "" and "the end of the stream" or lab.show(got)))
       end
       t:eq(got.code, "ECONNRESET", "what the grader's recv raised after your close")
       expect(t, p, "closed", 2, "after your program closed")
       if cap then
         local segs = cap:wait(function(s) return find(s, function(x) return x.sport == port and
           x.flags:find("RST", 1, true) end) end, 2)
         t:truthy(segs, "the capture shows a RST from your side")
         local fin = find(segs, function(x) return x.sport == port and x.flags:find("FIN", 1, true) end)
         if fin then t:fail("the capture shows a FIN from your side before the RST") end
         local rst = find(segs, function(x) return x.sport == port and x.flags:find("RST", 1, true) end)
         t:log(format("the capture: %s from your side, no FIN; %d bytes discarded", rst.flags, #data))
       end
     end},

    {name = "backlog", points = 3,
     description = "listen(1) never accepted: 2 connections complete, later ones stay SYN_SENT and resend the SYN",
     hint = "listen with a backlog of 1 and never call accept: the kernel completes as many handshakes as " ..
            "the queue holds (backlog + 1 on Linux) and drops the SYNs after that, which the clients resend",
     run = function(t)
       local port = t:port()
       local cap <close> = start_capture(t, port)
       local p = t:start_submission{port = port, "backlog"}
       expect(t, p, "listening", 5, "once your program listened")
       local socks = {}                       -- closed below, before any failure
       for i = 1, 4 do
         local s = t:socket()
         s:setblocking(false)
         s:connect_ex("127.0.0.1", port)
         socks[i] = s
       end
       t:step("the grader started 4 connections at once")
       local retransmitted
       if cap then
         local segs = cap:wait(function(segs)
           return find(segs, function(x) return x.flags == "SYN" and x.retransmission end) ~= nil
         end, 3)
         retransmitted = segs and find(segs, function(x) return x.flags == "SYN" and x.retransmission end)
       else
         wirelab.sleep(1.5)                   -- time is the subject: the first SYN resent after 1 s
       end
       local states, est, sent = {}, 0, 0
       for i, s in ipairs(socks) do
         states[i] = s:tcp_info().state
         if states[i] == "ESTABLISHED" then est = est + 1 elseif states[i] == "SYN_SENT" then sent = sent + 1 end
       end
       for _, s in ipairs(socks) do s:close() end
       t:step("the 4 connections' states: " .. concat(states, ", "))
       if est + sent < #socks then
         t:fail("some connections were refused or reset: your program must keep its listening socket open " ..
           "(and never accept) until it is stopped")
       end
       if sent == 0 then
         t:fail(format("all %d connections completed: your program accepted them, or listened with a backlog " ..
           "larger than 1", est))
       end
       t:eq(est, 2, "connections completed with listen(1) and no accept (the queue holds backlog + 1)")
       if cap then
         if not retransmitted then
           t:fail("the capture showed no SYN sent again within 3 s for the connections left in SYN_SENT")
         end
         local first = find(cap:segments(), function(x) return x.flags == "SYN" and x.sport == retransmitted.sport end)
         t:log(format("the capture: a SYN sent again %.1f s after the first (the same ISN): the full queue " ..
           "dropped it", retransmitted.time - first.time))
       end
       t:log(format("%d connections completed (in your accept queue), %d stayed in SYN_SENT", est, sent))
     end},
  },
}
