-- labs/tcp-under-loss: a bulk sender over a lossy link, and what the
-- kernel's TCP did about it. The sender runs on side b of a netem.link
-- (docs/link.md): two network namespaces joined by a link of 50 ms each
-- way that wirelab drives and drops packets on, so the kernels' TCP
-- really retransmits. The grader receives on side a. The sender reads its
-- payload from stdin, sends it to HOST PORT (its arguments), closes its
-- side, waits for the receiver's answer and close, and prints the bytes
-- sent, its socket's TCP_INFO retransmission count and smoothed RTT.
-- Where this machine cannot make a link, every check is skipped, saying
-- why (t:link).
local lab = require "lab"
local wirelab = require "wirelab"
local socket = require "socket"

local KiB, MiB = 1024, 1024 * 1024
-- Of every transfer: long enough to leave slow start, so goodput at 2%
-- and 10% loss differ by more than one run differs from the next.
local SIZE = 4 * MiB
local DELAY = "50ms"              -- each way: an RTT of 100 ms

-- The link of a check: 50 ms each way, `loss` on the sender's packets
-- only (b to a). Every check's link has the same seed, from the grading
-- seed: each packet draws the same number at 2% and at 10%, so the drops
-- at 2% are among those at 10% until the two runs' traffic parts. That
-- matters: one early loss in slow start leaves a short transfer slow
-- (measured: 1.4 MB/s at 2% against 2.5 MB/s at 10% with independent
-- seeds), and coupled draws keep such luck from inverting the two.
local function new_link(t, loss, delay)
  return t:link{delay = delay or DELAY, b_to_a = {loss = loss}, seed = t.seed % (1 << 31) * 2 + 1}
end

-- The sender's report: "bytes N", "retransmits N", "rtt_ms X", one a line.
local function parse_report(text)
  return {bytes = tonumber(text:match("%f[%w]bytes%s+(%d+)")),
          retransmits = tonumber(text:match("%f[%w]retransmits%s+(%d+)")),
          rtt_ms = tonumber(text:match("%f[%w]rtt_ms%s+([%d.]+)"))}
end

-- The smoothed RTT the sender's kernel holds for its connection to port,
-- read with ss on side b every 0.1 s until w.stop: 100 ms of link and a
-- little queueing, but on a loaded grading machine the emulator runs late
-- and a correct sender's RTT grows with it (measured 290 ms under ASan
-- with other work), which must not fail it. w.max stays nil without ss.
-- Closing w (a failed transfer's check ends) cancels the watch.
local Watch = {__close = function(w) if not w.task:done() then w.task:cancel() end end}
local function watch_rtt(link, port)
  local w = setmetatable({}, Watch)
  w.task = wirelab.spawn(function()
    while not w.stop do
      local ok, r = pcall(link.b.run, link.b, {"ss", "-tinH", "dport", "=", ":" .. port, timeout = 2})
      if not (ok and r.code == 0) then return end
      for v in r.stdout:gmatch("%f[%w]rtt:([%d.]+)/") do
        v = tonumber(v)
        if v and v > (w.max or 0) then w.max = v end
      end
      wirelab.sleep(0.1)
    end
  end)
  return w
end

-- transfer(t, {loss=, size=, ipv6=, delay=, rtt=}) -> the run: the submission
-- on side b sends `size` random bytes to the grader on side a; what
-- arrived, how fast, what the link did, and what the sender reported
-- (with rtt, also the RTT its kernel had: run.rtt_ms, see watch_rtt)
local function transfer(t, o)
  local link = new_link(t, o.loss or 0, o.delay)
  local family = o.ipv6 and socket.AF_INET6 or socket.AF_INET
  local host = o.ipv6 and link.a.host6 or link.a.host
  if not host then t:skip("this machine has no IPv6") end
  local srv <close> = link.a:create_server(host, 0, {family = family})
  local port = select(2, srv:getsockname())
  local data = t.rng:bytes(o.size or SIZE)
  t:step(("started the sender on side b of a link with %s each way and %g%% loss on its packets, "
    .. "%d random bytes on its stdin"):format(o.delay or DELAY, (o.loss or 0) * 100, #data))
  local p = t:start_submission{host = host, port = port, netns = link.b.ns, stdin = data, exits = true}
  srv:settimeout(10)
  local ok, c = pcall(srv.accept, srv)
  if not ok then
    t:fail(("the sender did not connect to %s port %d within 10 s (%s)"):format(host, port, tostring(c)))
  end
  c:settimeout(15)
  local rtt <close> = o.rtt and watch_rtt(link, port) or nil
  t:step(("accepted the sender's connection on %s port %d; reading to the end"):format(host, port))
  local parts, n, first, last = {}, 0, nil, nil
  while true do
    local rok, d = pcall(c.recv, c, 65536)
    if not rok then
      c:close()
      t:fail(("after %d of %d bytes, nothing more for 15 s and no end of stream (%s)")
        :format(n, #data, tostring(d)))
    end
    if d == "" then break end
    first = first or wirelab.now()
    last = wirelab.now()
    parts[#parts + 1] = d
    n = n + #d
  end
  local got = table.concat(parts)
  pcall(c.sendall, c, ("OK %d\n"):format(n))
  c:close()
  t:step(("got %d bytes and the end of stream; answered \"OK %d\" and closed"):format(n, n))
  -- its end first: a crash after sending is told as the crash
  local exit = p:wait(10)
  if rtt then                  -- watched to the end: the sender reads its RTT last
    rtt.stop = true
    rtt.task:join()
  end
  t:same_bytes(got, data, "what the receiver got")
  if not exit then t:fail("the sender did not exit within 10 s after the receiver answered and closed") end
  if exit.code ~= 0 or exit.signal then
    t:fail(("the sender ended with %s after the transfer"):format(
      exit.signal and ("signal " .. exit.signal) or ("status " .. tostring(exit.code))), "crashed")
  end
  local stats = link:stats()
  -- the sender's dropped packets that carried data, a SYN or a FIN: each
  -- had to be sent again (a dropped pure ACK is not)
  local data_drops = 0
  for _, e in ipairs(link:events()) do
    if e.dir == "b>a" and e.action == "drop" and e.proto == "TCP"
       and (e.payload > 0 or e.flags:find("[SF]")) then
      data_drops = data_drops + 1
    end
  end
  local run = {secs = last - first, report = parse_report(p:stdout()), stdout = p:stdout(),
               rtt_ms = rtt and rtt.max, drops = stats["b>a"].dropped, data_drops = data_drops, packets = stats["b>a"].packets,
               drops_back = stats["a>b"].dropped}
  run.goodput = n / math.max(run.secs, 1e-3)
  t:log(("%d bytes in %.2f s (%.0f KB/s); the link dropped %d of the %d packets your sender sent; "
    .. "your report: %s%s"):format(n, run.secs, run.goodput / 1000, run.drops, run.packets,
    (run.stdout:gsub("%s+$", ""):gsub("\n", ", ")),
    run.rtt_ms and ("; your kernel's smoothed RTT (ss): up to %.1f ms"):format(run.rtt_ms) or ""))
  return run
end

-- the runs of this submission, for the checks that compare them
local function runs(t)
  t.sub.tcp_under_loss = t.sub.tcp_under_loss or {}
  return t.sub.tcp_under_loss
end

local function need_report(t, run)
  local r = run.report
  if not (r.bytes and r.retransmits and r.rtt_ms) then
    t:fail("the sender's output has no report: expected lines \"bytes N\", \"retransmits N\" and "
      .. "\"rtt_ms X\", got " .. lab.show(run.stdout))
  end
  return r
end

-- Every segment the link dropped had to be sent again, and TCP_INFO's
-- total_retrans counts each retransmitted segment: it is the drops (a few
-- more for spurious ones, one fewer now and then when a retransmission
-- covers two lost segments), never a part of them. A report read while
-- the data is still in flight (right after sendall) has missed the last
-- retransmissions: measured, 30% to 85% of them with 4 MiB.
local function check_retransmits(t, run, loss)
  local r = need_report(t, run)
  if r.bytes ~= SIZE then
    t:fail(("the report says bytes %d; %d were sent"):format(r.bytes, SIZE))
  end
  local low, high = math.floor(0.9 * run.data_drops - 1), 2 * (run.drops + run.drops_back) + 10
  if r.retransmits < low or r.retransmits > high then
    t:fail(("at %g%% loss the link dropped %d segments of your sender's, and every one had to be "
      .. "sent again; your report says retransmits %d (expected about %d, from %d to %d)")
      :format(loss * 100, run.data_drops, r.retransmits, run.data_drops, math.max(low, 0), high))
  end
end

local RETRANS_HINT = "report tcpi_total_retrans (all retransmissions of the connection), read once " ..
  "the receiver has answered and closed: sendall returns when the kernel has your bytes, " ..
  "not when they have arrived, and the retransmissions come after"

return lab.new{
  name = "tcp-under-loss",
  description = "A bulk TCP sender over a lossy link: everything arrives, and TCP_INFO shows what it took.",
  submission = {
    {file = "sender.lua", run = {"{wirelab}", "--sandbox", "sender.lua", "{host}", "{port}"}},
    {file = "sender.py", run = {"python3", "sender.py", "{host}", "{port}"}},
    {file = "Makefile", build = {"make"}, run = {"./sender", "{host}", "{port}"}},
    {file = "sender.c", build = {"cc", "-O2", "-o", "sender", "sender.c"}, run = {"./sender", "{host}", "{port}"}},
    {file = "sender", run = {"./sender", "{host}", "{port}"}},
    limits = {cpu = 20, memory = 256, nproc = 64, nofile = 64, fsize = 16, output = 1},
  },
  timeout = 40,
  checks = {
    {name = "connects", points = 1, timeout = 20,
     description = "connects to the host and port given as its two arguments, across the link",
     hint = "connect to argv[1] (the host: the receiver is on the other side of the link, not on " ..
            "127.0.0.1) at port argv[2] (a number: convert the string)",
     run = function(t)
       local link = new_link(t, 0)
       local srv <close> = link.a:create_server(link.a.host, 0)
       local port = select(2, srv:getsockname())
       t:start_submission{host = link.a.host, port = port, netns = link.b.ns, stdin = "hello\n", exits = true}
       t:step(("started the sender with %s %d"):format(link.a.host, port))
       srv:settimeout(10)
       local ok, c = pcall(srv.accept, srv)
       if not ok then t:fail(("nothing connected to %s port %d within 10 s"):format(link.a.host, port)) end
       c:close()
     end},

    {name = "delivers", points = 2, depends = "connects",
     description = "4 MiB of random bytes from stdin arrive intact over a clean link of 50 ms each way",
     hint = "read all of stdin as bytes (it is binary, not text), send all of it (sendall, or a loop " ..
            "over send's return value), then shutdown(SHUT_WR) so the receiver sees the end",
     run = function(t)
       runs(t)[0] = transfer(t, {loss = 0, rtt = true})
     end},

    {name = "reports", points = 2, depends = "delivers",
     description = "over the clean link it reports the bytes, no retransmission, and an RTT of about 100 ms",
     hint = "print \"bytes N\", \"retransmits N\" (tcp_info's tcpi_total_retrans) and \"rtt_ms X\" " ..
            "(tcpi_rtt is in microseconds: divide by 1000)",
     run = function(t)
       local run = runs(t)[0] or transfer(t, {loss = 0, rtt = true})
       local r = need_report(t, run)
       t:eq(r.bytes, SIZE, "bytes")
       if r.retransmits > 2 then
         t:fail(("on a link that dropped nothing, your report says retransmits %d"):format(r.retransmits))
       end
       -- the kernel's smoothed RTT: 100 ms of link, a little more of
       -- queueing, and what a late emulator added (watch_rtt). Twice the
       -- most ss saw: the samples are 0.1 s apart and the RTT climbs to
       -- the end (measured: reports up to 1.4x the last sample under
       -- load), and the mistake caught here is the unit, 1000x off
       local high = math.max(250, 2 * (run.rtt_ms or 0))
       if r.rtt_ms < 90 or r.rtt_ms > high then
         t:fail(("the link's round trip is 100 ms%s; your report says rtt_ms %s"):format(
           high > 250 and (", and your kernel's smoothed RTT was up to %.0f ms on this loaded machine")
             :format(run.rtt_ms) or "", tostring(r.rtt_ms)))
       end
     end},

    {name = "loss-2", points = 2, depends = "delivers",
     description = "at 2% loss everything arrives, and the reported retransmissions match the link's drops",
     hint = RETRANS_HINT,
     run = function(t)
       local run = transfer(t, {loss = 0.02})
       runs(t)[2] = run
       check_retransmits(t, run, 0.02)
     end},

    {name = "loss-10", points = 3, depends = "delivers",
     description = "at 10% loss everything arrives, and the reported retransmissions match the link's drops",
     hint = RETRANS_HINT,
     run = function(t)
       local run = transfer(t, {loss = 0.1})
       runs(t)[10] = run
       check_retransmits(t, run, 0.1)
     end},

    {name = "ipv6", points = 1, depends = "delivers",
     description = "the same over IPv6: 64 KiB to 2001:db8::1",
     hint = "let the address choose the family: socket.create_connection((host, port)) in Python, " ..
            "getaddrinfo in C; AF_INET alone cannot reach an IPv6 address",
     run = function(t)
       transfer(t, {ipv6 = true, size = 64 * KiB, delay = "10ms"})
     end},

    {name = "retransmits-grow", points = 1, depends = {"reports", "loss-2", "loss-10"},
     description = "the reported retransmissions grow with the loss: 0% <= 2% <= 10%, and more than none at 10%",
     hint = RETRANS_HINT,
     run = function(t)
       local r = runs(t)
       local n0, n2, n10 = r[0].report.retransmits, r[2].report.retransmits, r[10].report.retransmits
       t:log(("retransmits reported: %d at 0%%, %d at 2%%, %d at 10%%"):format(n0, n2, n10))
       if not (n0 <= n2 and n2 <= n10 and n10 > n0) then
         t:fail(("retransmits reported: %d at 0%%, %d at 2%%, %d at 10%% loss: they should grow with "
           .. "the loss"):format(n0, n2, n10))
       end
     end},

    -- Goodput is measured by the receiver (first byte to last). Bounds are
    -- broad and relative: to the same submission at 0%, and to wirelab's
    -- own sender over the same kind of link, never a textbook formula.
    {name = "goodput-falls", points = 2, depends = {"loss-2", "loss-10"},
     description = "goodput falls as the loss grows, and on the clean link it keeps up with a plain sender",
     hint = "send as fast as TCP lets you: big writes (64 KiB or more) in a loop, no sleeping, no " ..
            "waiting for an answer between writes",
     run = function(t)
       local r = runs(t)
       local g0, g2, g10 = r[0].goodput, r[2].goodput, r[10].goodput
       -- the reference: wirelab sends as much over the same link, clean
       local link = new_link(t, 0)
       local srv <close> = link.a:create_server(link.a.host, 0)
       local port = select(2, srv:getsockname())
       local data = t.rng:bytes(SIZE)
       local sender = wirelab.spawn(function()
         local c <close> = link.b:create_connection(link.a.host, port, 10)
         c:sendall(data)
       end)
       srv:settimeout(10)
       local c <close> = srv:accept()
       c:settimeout(15)
       local n, first, last = 0, nil, nil
       while true do
         local d = c:recv(65536)
         if d == "" then break end
         first = first or wirelab.now()
         last = wirelab.now()
         n = n + #d
       end
       sender:join()
       local gref = n / math.max(last - first, 1e-3)
       t:log(("goodput: %.0f KB/s at 0%%, %.0f at 2%%, %.0f at 10%% loss; wirelab's own sender: %.0f KB/s")
         :format(g0 / 1000, g2 / 1000, g10 / 1000, gref / 1000))
       if g0 < 0.3 * gref then
         t:fail(("over the clean link your sender reached %.0f KB/s, less than a third of the %.0f KB/s "
           .. "a plain sender reaches over the same link"):format(g0 / 1000, gref / 1000))
       end
       -- Both lossy runs fall well below the clean one. Between 2% and 10%
       -- the order holds on average, not in every run: one loss early in
       -- slow start leaves a 4 MiB transfer slow (a 2% run measured at
       -- 1.2x below a 10% one, with the same seed), hence the margin.
       if not (g2 < 0.9 * g0 and g10 < 0.9 * g0 and g10 <= 1.35 * g2) then
         t:fail(("goodput should fall as the loss grows; it was %.0f KB/s at 0%%, %.0f at 2%%, %.0f at "
           .. "10%%"):format(g0 / 1000, g2 / 1000, g10 / 1000))
       end
     end},
  },
}
