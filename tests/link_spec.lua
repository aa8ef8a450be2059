-- link_spec: netem.link (docs/link.md), real kernel TCP and UDP between two
-- namespaces over the TUN devices wirelab drives: connect over IPv4 and
-- IPv6, a bulk transfer that survives 10% loss with the retransmissions
-- tcp_info counts, a delay the handshake and the RTT show, a seed that
-- reproduces drops, duplicates, reordering, jitter, a rate and its queue,
-- live changes, taps, programs on the far side, that close() leaves no fd,
-- handle or namespace, and the error where the machine does not allow it.
local wirelab = require "wirelab"
local socket = require "socket"
local process = require "process"
local netem_link = require "netem.link"

local support = require "support"
local bounded = support.bounded

local MiB = 1024 * 1024

local function need_link()
  local ok, why = netem_link.link_available()
  if not ok then pending(support.skip("netem.link unavailable here: " .. tostring(why))) end
  return ok
end

-- a link closed when the test ends
local function new_link(opts)
  local l = netem_link.link(opts)
  support.defer(function() l:close() end)
  return l
end

-- bulk(l, data[, family]) -> received, seconds, the sender's tcp_info:
-- side a sends data to a server on side b, which reads to the end
local function bulk(l, data, family)
  family = family or socket.AF_INET
  local host = family == socket.AF_INET6 and l.b.host6 or l.b.host
  local srv <close> = l.b:create_server(host, 0, {family = family})
  local port = select(2, srv:getsockname())
  local parts = {}
  local reader = wirelab.spawn(function()
    local c <close> = srv:accept()
    c:settimeout(20)
    while true do
      local d = c:recv(65536)
      if d == "" then break end
      parts[#parts + 1] = d
    end
  end)
  local c <close> = l.a:create_connection(host, port, 10)
  c:settimeout(20)
  local t0 = wirelab.now()
  c:sendall(data)
  c:shutdown(socket.SHUT_WR)
  reader:join()
  return table.concat(parts), wirelab.now() - t0, c:tcp_info()
end

-- udp(l, n[, gap]) -> the numbers side b received, in order: n small
-- datagrams from side a, `gap` seconds apart (small, so that the
-- receiver's buffer never overflows and every loss is the link's)
local function udp(l, n, gap)
  local u <close> = l.b:socket(socket.AF_INET, socket.SOCK_DGRAM)
  u:bind(l.b.host, 0)
  local port = select(2, u:getsockname())
  local got = {}
  local c <close> = l.a:socket(socket.AF_INET, socket.SOCK_DGRAM)
  local reader = wirelab.spawn(function()
    u:settimeout(0.5)
    while true do
      local ok, d = pcall(u.recv, u, 100)
      if not ok then return end
      got[#got + 1] = tonumber(d)
    end
  end)
  for i = 1, n do
    c:sendto(tostring(i), l.b.host, port)
    if gap then wirelab.sleep(gap) end
  end
  reader:join()
  return got
end

local function dropped_seqs(l, dir)
  local out = {}
  for _, e in ipairs(l:events()) do
    if e.dir == dir and e.action == "drop" then out[#out + 1] = e.seq end
  end
  return out
end

describe("netem.link", function()
  it("TCP connects over IPv4 and IPv6, and the log shows the handshake", bounded(20, function()
    if not need_link() then return end
    local l = new_link()
    assert.are.equal("192.0.2.1", l.a.host)
    assert.are.equal("192.0.2.2", l.b.host)
    for _, fam in ipairs{socket.AF_INET, socket.AF_INET6} do
      local host = fam == socket.AF_INET6 and l.b.host6 or l.b.host
      assert.is_string(host)
      local srv <close> = l.b:create_server(host, 0, {family = fam})
      local port = select(2, srv:getsockname())
      local t = wirelab.spawn(function()
        local conn <close> = srv:accept()
        local peer = conn:getpeername()
        conn:sendall("from b to " .. peer)
      end)
      local c <close> = l.a:create_connection(host, port, 5)
      local want = "from b to " .. (fam == socket.AF_INET6 and l.a.host6 or l.a.host)
      assert.are.equal(want, c:recv(100))
      t:join()
    end
    local ev = l:events()
    assert.matches("^TCP 192%.0%.2%.1:%d+ > 192%.0%.2%.2:%d+ %[S%] seq=%d+ ack=0 len=0$", ev[1].summary)
    assert.are.equal("a>b", ev[1].dir)
    assert.are.equal("b>a", ev[2].dir)
    assert.are.equal("S.", ev[2].flags)
    local v6 = 0
    for _, e in ipairs(ev) do
      if e.summary:find("[2001:db8::1]", 1, true) then v6 = v6 + 1 end
      assert.are.equal("pass", e.action)
    end
    assert.is_true(v6 >= 3, "the IPv6 handshake is in the log")
    -- a side's socket is in its namespace: the host has no such address
    local h <close> = socket.socket()
    assert.is_true(h:connect_ex(l.b.host, 9) ~= 0)
  end))

  it("4 MiB under 10% loss arrive byte-exact, with retransmissions; 0% has none",
     bounded(60, function()
    if not need_link() then return end
    local data = string.rep("0123456789abcdef", MiB // 4)    -- 4 MiB
    local clean = new_link()
    local got, _, ti = bulk(clean, data)
    assert.are.equal(#data, #got)
    assert.is_true(got == data, "the bytes over a clean link")
    assert.is_true(ti.total_retrans <= 2, "retransmissions on a clean link: " .. ti.total_retrans)
    local lossy = new_link{loss = 0.1, seed = 3}
    local got2, secs, ti2 = bulk(lossy, data)
    assert.are.equal(#data, #got2)
    assert.is_true(got2 == data, "the bytes over a lossy link")
    local st = lossy:stats()
    support.note("10%% loss: %.2f s, total_retrans %d, dropped %d a>b %d b>a", secs,
      ti2.total_retrans, st["a>b"].dropped, st["b>a"].dropped)
    assert.is_true(st["a>b"].dropped > 0)
    assert.is_true(ti2.total_retrans > 0, "tcp_info shows no retransmission")
    -- every data segment the link dropped was sent again
    assert.is_true(ti2.total_retrans >= st["a>b"].dropped // 2,
      ("total_retrans %d for %d drops"):format(ti2.total_retrans, st["a>b"].dropped))
    -- about a tenth of what came in was dropped
    local frac = st["a>b"].dropped / st["a>b"].packets
    assert.is_true(frac > 0.06 and frac < 0.14, "dropped fraction " .. frac)
  end))

  it("50 ms each way: the handshake and tcp_info's RTT are 100 ms", bounded(30, function()
    if not need_link() then return end
    local l = new_link{delay = "50ms"}
    local srv <close> = l.b:create_server(l.b.host, 0)
    local port = select(2, srv:getsockname())
    local t = wirelab.spawn(function()
      local conn <close> = srv:accept()
      conn:sendall(conn:recv(10))
    end)
    local t0 = wirelab.now()
    local c <close> = l.a:create_connection(l.b.host, port, 5)
    local connect = wirelab.now() - t0
    c:sendall("ping")
    assert.are.equal("ping", c:recv(10))
    local rtt = c:tcp_info().rtt
    t:join()
    support.note("connect %.1f ms, rtt %.1f ms", connect * 1000, rtt * 1000)
    assert.is_true(connect >= 0.099 and connect < 0.130, "connect took " .. connect)
    assert.is_true(rtt >= 0.099 and rtt < 0.130, "tcp_info rtt " .. rtt)
    for _, e in ipairs(l:events()) do
      assert.is_true(math.abs(e.delay - 0.05) < 1e-6, "a packet's delay in the log: " .. e.delay)
    end
  end))

  it("a seed reproduces the drops; another seed drops others", bounded(40, function()
    if not need_link() then return end
    local runs = {}
    for i, seed in ipairs{7, 7, 8} do
      local l = new_link{loss = 0.3, seed = seed}
      local got = udp(l, 200, 0.0005)
      local drops = dropped_seqs(l, "a>b")
      assert.are.equal(200, #got + #drops, "every datagram arrived or was dropped")
      assert.are.equal(#drops, l:stats()["a>b"].dropped)
      runs[i] = table.concat(drops, ",")
      l:close()
    end
    assert.are.equal(runs[1], runs[2], "the same seed, the same drops")
    assert.are_not.equal(runs[1], runs[3], "another seed, other drops")
  end))

  it("duplicate, reorder and jitter, as the stats and the log count them", bounded(40, function()
    if not need_link() then return end
    local l = new_link{duplicate = 1}
    local got = udp(l, 50, 0.001)
    assert.are.equal(100, #got, "each datagram twice")
    assert.are.equal(50, l:stats()["a>b"].duplicated)
    assert.are.equal(100, l:stats()["a>b"].delivered)

    l = new_link{reorder = 0.3, reorder_gap = "10ms", seed = 5}
    got = udp(l, 100, 0.001)
    assert.are.equal(100, #got)
    local late = 0
    for i = 2, #got do if got[i] < got[i - 1] then late = late + 1 end end
    local st = l:stats()["a>b"]
    assert.is_true(st.reordered > 10 and st.reordered < 50, "reordered " .. st.reordered)
    assert.is_true(late > 0, "no datagram arrived out of order")
    local marked = 0
    for _, e in ipairs(l:events()) do if e.action == "reorder" then marked = marked + 1 end end
    assert.are.equal(st.reordered, marked)

    -- jitter varies the delay but never the order
    l = new_link{delay = "20ms", jitter = "10ms"}
    got = udp(l, 100, 0.002)
    assert.are.equal(100, #got)
    for i = 1, 100 do assert.are.equal(i, got[i], "jitter reordered datagrams") end
    local lo, hi = 1, 0
    for _, e in ipairs(l:events()) do
      lo, hi = math.min(lo, e.delay), math.max(hi, e.delay)
    end
    assert.is_true(lo >= 0.010 - 1e-6 and hi <= 0.030 + 1e-6, ("delays %g..%g"):format(lo, hi))
    assert.is_true(hi - lo > 0.005, "the delay did not vary")
  end))

  it("a rate caps goodput; a burst beyond the queue overflows", bounded(40, function()
    if not need_link() then return end
    local l = new_link{rate = "20mbit"}
    local data = string.rep("r", 2 * MiB)
    local got, secs = bulk(l, data)
    assert.are.equal(#data, #got)
    local goodput = #got / secs
    support.note("20 Mbit/s link: goodput %.2f MB/s", goodput / 1e6)
    assert.is_true(goodput < 2.5e6 * 1.05, "faster than the link: " .. goodput)
    assert.is_true(goodput > 2.5e6 * 0.6, "far below the link: " .. goodput)

    l = new_link{rate = "1mbit", queue = 10}
    local c <close> = l.a:socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i = 1, 50 do c:sendto(string.rep("q", 1000), l.b.host, 9) end
    wirelab.sleep(0.05)
    local st = l:stats()["a>b"]
    assert.are.equal(50, st.packets)
    assert.are.equal(10, st.queue_max)
    assert.is_true(st.overflow >= 35, "overflow " .. st.overflow)
    local overflowed = 0
    for _, e in ipairs(l:events()) do if e.action == "overflow" then overflowed = overflowed + 1 end end
    assert.are.equal(st.overflow, overflowed)
  end))

  it("set changes the conditions while the link runs, one direction or both", bounded(30, function()
    if not need_link() then return end
    local l = new_link()
    local got = udp(l, 20)
    assert.are.equal(20, #got)
    l:set{loss = 1}
    got = udp(l, 20)
    assert.are.equal(0, #got)
    l:set{loss = 0, a_to_b = {delay = "30ms"}}
    local n = #l:events()
    got = udp(l, 5, 0.001)
    assert.are.equal(5, #got)
    for i = n + 1, #l:events() do
      assert.is_true(math.abs(l:events()[i].delay - 0.03) < 1e-6)
    end
    assert.has_error(function() l:set{seed = 3} end,
      "bad argument #1 to 'set' (seed is fixed when the link is made)")
  end))

  it("a tap gets every delivered packet, after the impairment; untap stops it", bounded(30, function()
    if not need_link() then return end
    local l = new_link{b_to_a = {loss = 1}}
    local seen = {}
    local untap = l:_tap(function(t, dir, pkt) seen[#seen + 1] = {t, dir, pkt} end)
    local got = udp(l, 10, 0.001)
    assert.are.equal(10, #got)
    wirelab.sleep(0.02)
    assert.are.equal(10, #seen)
    for i, s in ipairs(seen) do
      assert.are.equal("a>b", s[2])
      assert.are.equal(0x45, s[3]:byte(1), "an IPv4 packet")
      assert.are.equal(tostring(got[i]), s[3]:sub(29))   -- after IP (20) and UDP (8) headers
      assert.is_true(math.abs(s[1] - wirelab.now()) < 5)
    end
    untap()
    udp(l, 5)
    wirelab.sleep(0.02)
    assert.are.equal(10, #seen, "a packet after untap")
    assert.are.equal(0, l:stats().tap_lost)
  end))

  it("a program on side b, reached from side a", bounded(30, function()
    if not need_link() then return end
    local l = new_link{delay = "5ms"}
    local p = l.b:spawn{"python3", "-c", ([[
import socket
s = socket.socket(); s.bind(("%s", 0)); s.listen()
print(s.getsockname()[1], flush=True)
c, addr = s.accept(); c.sendall(("hello " + addr[0]).encode()); c.close()
]]):format(l.b.host)}
    support.defer(function() support.stop(p) end)
    local port = tonumber(p.stdout:read("l"))
    if not port then error("the program printed no port: " .. p.stderr:read("a")) end
    local c <close> = l.a:create_connection(l.b.host, port, 5)
    assert.are.equal("hello " .. l.a.host, c:recv(100))
    assert.are.equal(0, (p:wait(5)))
    p:close()
  end))

  it("close removes the namespaces: fds and handles as before, EBADF after", bounded(30, function()
    if not need_link() then return end
    collectgarbage()
    local fds, handles = support.nfds(support.PID), wirelab.handles()
    local l = netem_link.link{delay = "10ms"}
    l:_tap(function() end)
    udp(l, 5)
    -- packets still in flight when it closes
    local c = l.a:socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:sendto("late", l.b.host, 9)
    c:close()
    l:close()
    l:close()
    assert.are.equal(handles, wirelab.handles(), "handles left open")
    -- the TUN devices are unregistered on the thread pool: tens of ms, but
    -- the kernel's unregistering waits for RCU, seconds on a loaded machine
    collectgarbage()
    support.wait_until("the link's fds are closed", function() return support.nfds(support.PID) == fds end, 10)
    for _, m in ipairs{"stats", "events", "set"} do
      local ok, err = pcall(l[m], l, {})
      assert.is_false(ok)
      assert.are.equal("EBADF", err.code, m)
    end
    local ok, err = pcall(l.a.socket, l.a)
    assert.is_false(ok)
    assert.are.equal("EBADF", err.code)
  end))

  it("argument errors name the option", function()
    local cases = {
      [{loss = 2}] = "loss: a probability from 0 to 1",
      [{delay = "fast"}] = "delay: seconds",
      [{rate = "10 parsecs"}] = "rate: bytes per second",
      [{queue = -1}] = "queue: a number of packets",
      [{seed = 1.5}] = "seed: an integer",
      [{speed = 1}] = "unknown option 'speed'",
      [{a_to_b = {lost = 1}}] = "unknown option 'a_to_b.lost'",
    }
    for opts, msg in pairs(cases) do
      local ok, err = pcall(netem_link.link, opts)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'link' (" .. msg, tostring(err), 1, true)
    end
  end)

  -- Run as nobody, the namespace is refused; as nobody in a user
  -- namespace, the namespace is allowed and the TUN device is refused
  -- where /dev/net/tun is not open to everyone (as here, mode 0600).
  it("where it is not allowed, the error names what is missing", bounded(30, function()
    local setpriv, unshare = support.find("setpriv"), support.find("unshare")
    if not (setpriv and unshare) then pending(support.skip("no setpriv(1) or unshare(1)")); return end
    local id = process.run{"id", "-u", timeout = 5}
    if id.stdout:match("%d+") ~= "0" then pending(support.skip("needs root, to become nobody")); return end
    local code = [[
local ok, err = pcall(require("netem.link").link)
if ok then print("made") else print(err.unavailable, tostring(err)) end]]
    local as_nobody = {setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
    local argv = {table.unpack(as_nobody)}
    for _, a in ipairs{support.wirelab, "-e", code} do argv[#argv + 1] = a end
    argv.timeout = 10
    local r = process.run(argv)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^netns\tlink: operation not permitted: netem.link needs network namespaces", r.stdout)
    assert.matches("unshare -r", r.stdout, 1, true)

    argv = {table.unpack(as_nobody)}
    for _, a in ipairs{unshare, "-r", support.wirelab, "-e", code} do argv[#argv + 1] = a end
    argv.timeout = 10
    r = process.run(argv)
    assert.are.equal(0, r.code, r.stderr)
    if r.stdout:match("^made") then
      support.note("nobody under unshare -r may open /dev/net/tun here")
    else
      assert.matches("^tun\tlink: [^\n]*/dev/net/tun", r.stdout)
    end
  end))

  -- Most distributions make /dev/net/tun mode 0666; this machine's is
  -- 0600. A private mount namespace lends the child such a device, so
  -- the unprivileged path is tested without changing the machine.
  it("as nobody under unshare -r, with /dev/net/tun open to all, a link works", bounded(30, function()
    local setpriv, unshare = support.find("setpriv"), support.find("unshare")
    if not (setpriv and unshare) then pending(support.skip("no setpriv(1) or unshare(1)")); return end
    local id = process.run{"id", "-u", timeout = 5}
    if id.stdout:match("%d+") ~= "0" then pending(support.skip("needs root, to lend the device")); return end
    if not require("wirelab.fs").stat("/dev/net/tun") then pending(support.skip("no /dev/net/tun")); return end
    local dir = support.tmpdir()
    local r = process.run{unshare, "-m", "sh", "-c", [[
mount --make-rprivate / && mknod "$1/tun" c 10 200 && chmod 666 "$1/tun" &&
mount --bind "$1/tun" /dev/net/tun &&
exec "$2" --reuid=65534 --regid=65534 --clear-groups "$3" -r "$4" -e "$5"]], "sh", dir, setpriv, unshare,
      support.wirelab, [[
local l = require("netem.link").link{delay = "2ms"}
local srv = l.b:create_server(l.b.host6, 0, {family = require("socket").AF_INET6})
local c = l.a:create_connection(l.b.host6, select(2, srv:getsockname()), 5)
local conn = srv:accept()
c:sendall("over IPv6 as nobody")
local other = 0
for _, e in ipairs(l:events()) do if e.proto ~= "TCP" then other = other + 1 end end
print(conn:recv(100), #l:events() >= 4, other)
l:close()]], timeout = 20}
    assert.are.equal(0, r.code, r.stderr)
    -- only the connection's packets: no IPv6 chatter on the link
    assert.are.equal("over IPv6 as nobody\ttrue\t0", r.stdout:match("^(.-)%s*$"))
  end))

  it("works under unshare -r, without root of the machine", bounded(30, function()
    local unshare = support.find("unshare")
    if not unshare then pending(support.skip("no unshare(1)")); return end
    local r = process.run{unshare, "-r", support.wirelab, "-e", [[
local wirelab = require "wirelab"
local l = require("netem.link").link{delay = "5ms", loss = 0.05}
local srv = l.b:create_server(l.b.host, 0)
local port = select(2, srv:getsockname())
wirelab.spawn(function() local c = srv:accept(); c:sendall(string.rep("u", 200000)); c:close() end)
local c = l.a:create_connection(l.b.host, port, 5)
local n = 0
while true do local d = c:recv(65536); if d == "" then break end; n = n + #d end
print(n, l:stats()["b>a"].dropped > 0)
l:close()]], timeout = 20}
    if r.code ~= 0 and r.stderr:find("unshare: ", 1, true) then
      pending(support.skip("no user namespaces here: " .. r.stderr))
      return
    end
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("200000\ttrue", r.stdout:match("^(.-)%s*$"))
  end))

  it("a capture on the link sees the real handshake, retransmissions under loss, and tshark reads it",
     bounded(30, function()
    if not need_link() then return end
    local capture = require "capture"
    local l = new_link{delay = "5ms", a_to_b = {loss = 0.1}, seed = 4}
    local srv <close> = l.b:create_server(l.b.host, 0)
    local port = select(2, srv:getsockname())
    local cap = capture.start{link = l, port = port}
    local data = ("x"):rep(256 * 1024)
    local reader = wirelab.spawn(function()
      local conn <close> = srv:accept()
      local got = {}
      while true do
        local d = conn:recv(65536)
        if d == "" then break end
        got[#got + 1] = d
      end
      return table.concat(got)
    end)
    local c = l.a:create_connection(l.b.host, port, 5)
    c:sendall(data)
    local retrans = c:tcp_info().total_retrans
    c:close()
    assert.are.equal(#data, #reader:join(10))
    local segs = cap:stop()
    -- the handshake as the kernels made it, through wirelab's own emulator
    local flags = {}
    for i = 1, 3 do flags[i] = segs[i].flags end
    assert.are.same({"SYN", "SYN|ACK", "ACK"}, flags)
    assert.are.equal(0, segs[1].seq)
    assert.is_truthy(segs[1].options.mss, "the SYN carries an MSS")
    local marked = 0
    for _, s in ipairs(segs) do if s.retransmission then marked = marked + 1 end end
    assert.is_true(retrans > 0, "10% loss: the sender retransmitted")
    assert.is_true(marked > 0, "the capture shows retransmissions")
    local tshark = support.find("tshark")
    if not tshark then return pending(support.skip("tshark is not installed")) end
    local path = support.tmpdir() .. "/link.pcap"
    local n = cap:write_pcap(path)
    local r = process.run{tshark, "-r", path, "-T", "fields", "-e", "tcp.flags.syn", timeout = 20}
    assert.are.equal(0, r.code, r.stderr)
    local count = 0
    for _ in r.stdout:gmatch("[^\n]+") do count = count + 1 end
    assert.are.equal(n, count)
  end))
end)
