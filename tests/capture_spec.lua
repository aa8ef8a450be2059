-- capture: packets on lo seen as segments (docs/capture.md): a whole
-- connection in order with Wireshark's relative numbers, the RST of a
-- close with unread data, IPv6, UDP, a capture inside a network
-- namespace, the port and host filters, the limits, the pcap file as
-- tshark reads it, the ladder, a link's tap, and the error without
-- CAP_NET_RAW. Captures on an interface need root (CI has it).
local wirelab = require "wirelab"
local socket = require "socket"
local process = require "process"
local capture = require "capture"

local support = require "support"
local bounded = support.bounded

local ROOT = process.run{"id", "-u", timeout = 5}.stdout:match("^0%s") ~= nil

local function need_root()
  if not ROOT then pending(support.skip("capturing on lo needs CAP_NET_RAW: run as root")) end
  return ROOT
end

local function flags_of(segs)
  local out = {}
  for i, s in ipairs(segs) do out[i] = s.flags end
  return out
end

-- a server on host, port 0, and what its accepted connection does
local function server(host, family)
  local srv = socket.create_server(host, 0, {family = family})
  support.defer(function() srv:close() end)
  return srv, select(2, srv:getsockname())
end

-- one connection: connect, 5 bytes each way, the client closes first
local function one_connection(host, family)
  local srv, port = server(host, family)
  local cap <close> = capture.start{interface = "lo", port = port}
  local c = socket.create_connection(host, port)
  local a = srv:accept()
  c:sendall("hello")
  assert.are.equal("hello", a:recv(100))
  a:sendall("world")
  assert.are.equal("world", c:recv(100))
  c:close()
  assert.are.equal("", a:recv(100))
  a:close()
  local segs = cap:wait(function(s) return #s >= 10 end, 2)
  assert.is_not_nil(segs, "10 segments within 2 s")
  return cap:stop(), port, cap
end

local function find(segs, pred)
  for i, s in ipairs(segs) do if pred(s) then return s, i end end
  return nil
end

describe("capture", function()
  it("one connection on lo: handshake, data, FIN/ACK in order, relative seq/ack", bounded(10, function()
    if not need_root() then return end
    local segs, port = one_connection("127.0.0.1")
    assert.are.same({"SYN", "SYN|ACK", "ACK", "PSH|ACK", "ACK", "PSH|ACK", "ACK", "FIN|ACK", "FIN|ACK", "ACK"},
      flags_of(segs))
    local syn, synack, ack = segs[1], segs[2], segs[3]
    assert.are.equal(port, syn.dport)
    assert.are.equal(port, synack.sport)
    assert.are.equal("tcp", syn.proto)
    assert.are.equal(0, syn.seq)
    assert.are.equal(0, synack.seq)
    assert.are.equal(1, synack.ack)
    assert.are.equal((syn.raw_seq + 1) % 2^32, synack.raw_ack, "SYN|ACK acks ISN + 1")
    assert.are.equal(1, ack.seq)
    assert.are.equal(1, ack.ack)
    assert.is_true(syn.options.mss > 0, "MSS in the SYN")
    assert.is_true(syn.options.sack_perm)
    assert.is_number(syn.options.wscale)
    assert.is_number(syn.options.ts.val)
    assert.are.equal(5, segs[4].len)
    assert.are.equal(1, segs[4].seq)
    assert.are.equal(6, segs[5].ack, "the server acks the 5 bytes")
    assert.are.equal(6, segs[8].seq, "the client's FIN after its 5 bytes")
    assert.are.equal(7, segs[10].ack, "the last ACK: the server's 5 bytes and its FIN counted")
    -- times in capture order, from the start
    for i = 2, #segs do assert.is_true(segs[i].time >= segs[i - 1].time) end
    assert.is_true(segs[1].time >= 0 and segs[#segs].time < 2)
    -- windows: scaled once both SYNs said their shift
    assert.are.equal(syn.win, syn.win_scaled)
    assert.are.equal(segs[3].win << synack.options.wscale, segs[3].win_scaled)
    assert.are.equal(0, syn.stream)
    assert.are.equal("127.0.0.1:" .. syn.sport, syn.client)
    assert.are.equal("127.0.0.1:" .. port, syn.server)
  end))

  it("close with unread data sends RST, not FIN", bounded(10, function()
    if not need_root() then return end
    local srv, port = server("127.0.0.1")
    local cap <close> = capture.start{interface = "lo", port = port}
    local c = socket.create_connection("127.0.0.1", port)
    local a = srv:accept()
    c:sendall("never read")
    assert.is_not_nil(cap:wait(function(s) return find(s, function(x) return x.len == 10 end) end, 2))
    a:close()                                   -- 10 bytes unread
    local segs = cap:wait(function(s) return find(s, function(x) return x.flags:find("RST") end) end, 2)
    assert.is_not_nil(segs, "a RST within 2 s")
    local rst = find(segs, function(x) return x.flags:find("RST") end)
    assert.are.equal("RST|ACK", rst.flags)
    assert.are.equal(port, rst.sport, "the closing side resets")
    assert.is_nil(find(segs, function(x) return x.sport == port and x.flags:find("FIN") end))
    c:close()
  end))

  it("pcap: tshark reads the same packets, flags, seq, ack, lengths and windows", bounded(20, function()
    if not need_root() then return end
    if not support.find("tshark") then pending(support.skip("tshark is not installed (make test-deps)")) return end
    local segs, _, cap = one_connection("127.0.0.1")
    local dir = support.tmpdir()
    local path = dir .. "/one.pcap"
    assert.are.equal(#segs, cap:write_pcap(path))
    local r = process.run{"tshark", "-r", path, "-T", "fields", "-E", "separator=,", "-e", "tcp.flags",
      "-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.len", "-e", "tcp.window_size", "-e", "tcp.options.mss_val",
      "-e", "frame.time_epoch", timeout = 15}
    assert.are.equal(0, r.code, r.stderr)
    local rows = {}
    for line in r.stdout:gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.are.equal(#segs, #rows, r.stdout)
    for i, line in ipairs(rows) do
      local f = {}
      for v in (line .. ","):gmatch("([^,]*),") do f[#f + 1] = v end
      local s = segs[i]
      assert.are.equal(s.bits, tonumber(f[1]), "flags of packet " .. i)
      assert.are.equal(s.seq, tonumber(f[2]), "seq of packet " .. i)
      if s.flags:find("ACK") then assert.are.equal(s.ack, tonumber(f[3]), "ack of packet " .. i) end
      assert.are.equal(s.len, tonumber(f[4]), "len of packet " .. i)
      assert.are.equal(s.win_scaled, tonumber(f[5]), "window of packet " .. i)
      if s.options.mss then assert.are.equal(s.options.mss, tonumber(f[6])) end
      -- the file's clock is the epoch: within a minute of now
      assert.is_true(math.abs(tonumber(f[7]) - os.time()) < 60, "time of packet " .. i .. ": " .. f[7])
    end
  end))

  it("format: a ladder, client left and server right, in 80 columns", bounded(10, function()
    if not need_root() then return end
    local segs, port = one_connection("127.0.0.1")
    local text = capture.format(segs)
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("tcp stream 0", lines[1])
    assert.matches("client 127%.0%.0%.1:%d+ +server 127%.0%.0%.1:" .. port .. "$", lines[2])
    assert.matches("^ +%d+%.%d+  |%-+ SYN seq=0 win=%d+ len=0 %-+>|$", lines[3])
    assert.matches("MSS=%d+ SACK_PERM", lines[4])
    assert.matches("^ +%d+%.%d+  |<%-+ SYN|ACK seq=0 ack=1 win=%d+ len=0 %-+|$", lines[5])
    assert.truthy(text:find("|%-+ PSH|ACK seq=1 ack=1 win=%d+ len=5 %-+>|"))
    assert.truthy(text:find("|<%-+ FIN|ACK seq=6 ack=7 win=%d+ len=0 %-+|"))
    for _, l in ipairs(lines) do assert.is_true(#l <= 80, "wider than 80 columns: " .. l) end
  end))

  it("marks: a moment of the program's own, drawn among the segments", bounded(10, function()
    if not need_root() then return end
    local srv, port = server("127.0.0.1")
    local cap <close> = capture.start{interface = "lo", port = port}
    local c = socket.create_connection("127.0.0.1", port)
    assert.is_not_nil(cap:wait(3, 2), "the handshake")
    local a = srv:accept()
    local t = cap:mark("accept() returned")
    c:close()
    a:close()
    local segs = cap:wait(function(s) return #s >= 6 end, 2)
    assert.is_not_nil(segs)
    assert.are.equal(1, #segs.marks)
    assert.are.equal(t, segs.marks[1].time)
    for i = 1, 3 do assert.is_true(segs[i].time <= t, "the handshake before accept returned") end
    local text = capture.format(segs)
    local _, at_ack = text:find("ACK seq=1 ack=1", 1, true)
    local at_mark = text:find("=+ accept%(%) returned =+")
    assert.truthy(at_mark, text)
    assert.is_true(at_ack < at_mark, "the mark after the handshake's ACK:\n" .. text)
  end))

  it("IPv6 on ::1", bounded(10, function()
    if not need_root() then return end
    local segs, port = one_connection("::1", socket.AF_INET6)
    assert.are.same({"SYN", "SYN|ACK", "ACK"}, {segs[1].flags, segs[2].flags, segs[3].flags})
    assert.are.equal(6, segs[1].family)
    assert.are.equal("::1", segs[1].src)
    assert.are.equal(port, segs[1].dport)
    assert.are.equal(0, segs[1].seq)
    assert.are.equal(1, segs[2].ack)
    assert.is_true(segs[1].options.mss > 0)
    assert.are.equal("[::1]:" .. port, segs[1].server)
    assert.matches("client %[::1%]:%d+ +server %[::1%]:" .. port, capture.format(segs))
  end))

  it("UDP datagrams, with their lengths", bounded(10, function()
    if not need_root() then return end
    local _, port = support.echo_server{type = socket.SOCK_DGRAM}
    local cap <close> = capture.start{interface = "lo", port = port}
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:sendto("ping!", "127.0.0.1", port)
    assert.are.equal("ping!", (u:recvfrom(100)))
    local segs = cap:wait(2, 2)
    assert.is_not_nil(segs)
    assert.are.equal("udp", segs[1].proto)
    assert.are.equal(5, segs[1].len)
    assert.are.equal(port, segs[1].dport)
    assert.are.equal(port, segs[2].sport)
    assert.is_nil(segs[1].flags)
    assert.truthy(capture.format(segs):find("UDP len=5", 1, true))
  end))

  it("the port filter keeps only that port; the host filter that address", bounded(10, function()
    if not need_root() then return end
    local _, p1 = server("127.0.0.1")
    local _, p2 = server("127.0.0.2")
    local cap <close> = capture.start{interface = "lo", port = p1}
    local by_host <close> = capture.start{interface = "lo", host = "127.0.0.2"}
    local a <close> = socket.create_connection("127.0.0.2", p2)
    local b <close> = socket.create_connection("127.0.0.1", p1)
    local segs = cap:wait(3, 2)
    assert.is_not_nil(segs)
    for _, s in ipairs(segs) do
      assert.is_true(s.sport == p1 or s.dport == p1, "only port " .. p1)
    end
    local hs = by_host:wait(3, 2)
    assert.is_not_nil(hs)
    for _, s in ipairs(hs) do
      assert.is_true(s.src == "127.0.0.2" or s.dst == "127.0.0.2", "only 127.0.0.2")
    end
    assert.are.equal(p2, hs[1].dport)
  end))

  it("max_packets: the packets past it are counted, not kept, and the note says so", bounded(10, function()
    if not need_root() then return end
    local srv, port = server("127.0.0.1")
    local cap <close> = capture.start{interface = "lo", port = port, max_packets = 2}
    local c <close> = socket.create_connection("127.0.0.1", port)
    local a <close> = srv:accept()
    c:sendall("x")
    assert.are.equal("x", a:recv(1))
    local segs = cap:stop()
    assert.are.equal(2, #segs)
    assert.is_true(segs.not_kept >= 2, "not kept: " .. segs.not_kept)
    assert.matches("not kept", segs.note)
    assert.matches("max_packets 2", capture.format(segs))
  end))

  it("wait returns nil when time runs out, and stop is idempotent", bounded(10, function()
    if not need_root() then return end
    local _, port = server("127.0.0.1")
    local cap = capture.start{interface = "lo", port = port}
    local t0 = wirelab.now()
    assert.is_nil(cap:wait(1, 0.2))
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.19 and took < 1, "waited " .. took)
    assert.are.equal(0, #cap:stop())
    assert.are.equal(0, #cap:stop())
  end))

  it("a SYN that gets no answer is sent again, marked as a retransmission", bounded(10, function()
    if not need_root() then return end
    local srv, port = server("127.0.0.1")
    srv:listen(0)                -- room for one connection in the queue (backlog + 1)
    local cap <close> = capture.start{interface = "lo", port = port}
    local held = {}
    for i = 1, 3 do
      local s = socket.socket()
      s:setblocking(false)
      s:connect_ex("127.0.0.1", port)
      held[i] = s
      support.defer(function() s:close() end)
    end
    -- the first SYNs are answered; the last one waits for its retransmission (1 s)
    local segs = cap:wait(function(s) return find(s, function(x) return x.retransmission end) end, 3)
    assert.is_not_nil(segs, "a retransmitted SYN within 3 s:\n" .. capture.format(cap:segments()))
    local again = find(segs, function(x) return x.retransmission end)
    assert.are.equal("SYN", again.flags)
    local first = find(segs, function(x) return x.flags == "SYN" and x.sport == again.sport end)
    assert.are.equal(first.raw_seq, again.raw_seq, "the same SYN")
    assert.is_true(again.time - first.time > 0.9, "after the 1 s initial RTO")
    assert.are.equal("SYN_SENT", held[3]:tcp_info().state)
    assert.truthy(capture.format(segs):find("SYN seq=0 win=%d+ len=0 %(retransmission%)"))
  end))

  it("inside a network namespace: that namespace's lo", bounded(10, function()
    if not need_root() then return end
    local ns <close> = process.netns()
    local srv <close> = ns:create_server("127.0.0.1", 0)
    local port = select(2, srv:getsockname())
    local cap <close> = capture.start{interface = "lo", netns = ns, port = port}
    local outside <close> = capture.start{interface = "lo", port = port}
    local c <close> = ns:create_connection("127.0.0.1", port)
    local a <close> = srv:accept()
    local segs = cap:wait(3, 2)
    assert.is_not_nil(segs)
    assert.are.same({"SYN", "SYN|ACK", "ACK"}, flags_of(segs))
    assert.are.equal(0, #outside:stop(), "the host's lo saw none of it")
  end))

  it("a link's tap: the same segments from the packets it delivers", bounded(10, function()
    if not need_root() then return end
    -- real packets, captured on lo, fed through a fake link's _tap: the
    -- link path of capture.start (netem.link's own test is the real one)
    local segs0, port, cap0 = one_connection("127.0.0.1")
    local fake = {taps = {}}
    function fake:_tap(fn)
      self.taps[#self.taps + 1] = fn
      return function() self.taps = {} end
    end
    local cap <close> = capture.start{link = fake, port = port}
    assert.are.equal(1, #fake.taps)
    local waiter = wirelab.spawn(function() return cap:wait(#segs0, 2) end)
    local t0 = wirelab.now()
    for _, p in ipairs(cap0:packets()) do
      fake.taps[1](t0 + p.time, "a->b", p.data)
    end
    fake.taps[1](t0, "a->b", "not an IP packet")
    local segs = waiter:join()
    assert.is_not_nil(segs)
    assert.are.same(flags_of(segs0), flags_of(segs))
    for i, s in ipairs(segs) do
      assert.are.equal(segs0[i].seq, s.seq)
      assert.are.equal(segs0[i].ack, s.ack)
      assert.are.equal("a->b", s.dir)
    end
    local dir = support.tmpdir()
    assert.are.equal(#segs0, cap:write_pcap(dir .. "/link.pcap"))
    cap:stop()
    assert.are.equal(0, #fake.taps, "stop untaps")
  end))

  it("without CAP_NET_RAW the error says so; in a user namespace its own lo works", bounded(20, function()
    if not need_root() then return end
    if not support.find("setpriv") then pending(support.skip("setpriv (util-linux) is missing")) return end
    local code = [[
      local capture = require "capture"
      local ok, err = pcall(capture.start, {interface = "lo"})
      print(ok, err.code, tostring(err))
    ]]
    local as_nobody = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
    local argv = {table.unpack(as_nobody)}
    for _, a in ipairs{support.wirelab, "-e", code} do argv[#argv + 1] = a end
    argv.timeout = 10
    local r = process.run(argv)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^false\tEPERM\tcapture lo: operation not permitted: .*CAP_NET_RAW", r.stdout)
    -- unshare -rn: the user namespace owns the new network namespace, so
    -- its lo can be captured (once it is up), with no privilege outside
    if not support.find("unshare") then return end
    local inside = [[
      local capture, socket, process = require "capture", require "socket", require "process"
      process.run{"ip", "link", "set", "lo", "up", timeout = 5}
      local srv = socket.create_server("127.0.0.1", 0)
      local port = select(2, srv:getsockname())
      local cap = capture.start{interface = "lo", port = port}
      local c = socket.create_connection("127.0.0.1", port)
      local segs = cap:wait(3, 2)
      print(segs and segs[1].flags, segs and segs[2].flags)
    ]]
    argv = {table.unpack(as_nobody)}
    for _, a in ipairs{"unshare", "-rn", support.wirelab, "-e", inside} do argv[#argv + 1] = a end
    argv.timeout = 10
    r = process.run(argv)
    if r.code ~= 0 and r.stderr:find("unshare") then
      pending(support.skip("user namespaces are not allowed here: " .. r.stderr))
      return
    end
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("SYN\tSYN|ACK\n", r.stdout)
  end))

  it("decoding never raises: every truncation of real packets, and random bytes", bounded(20, function()
    if not need_root() then return end
    local packet = require "capture.packet"
    local segs0, _, cap0 = one_connection("::1", socket.AF_INET6)
    assert.is_true(#segs0 >= 10)
    local datas = {}
    for _, p in ipairs(cap0:packets()) do datas[#datas + 1] = p.data end
    local _, _, cap4 = one_connection("127.0.0.1")
    for _, p in ipairs(cap4:packets()) do datas[#datas + 1] = p.data end
    local tracker, n = packet.tracker(), 0
    for _, d in ipairs(datas) do
      for cut = 0, #d do
        local rec = packet.decode(d:sub(1, cut))
        if rec then tracker:segment(rec, 0); n = n + 1 end
      end
    end
    -- random bytes behind an IPv4 or IPv6 version nibble, from a fixed seed
    local rng = require("lab.rng").new(7, "capture")
    for i = 1, 2000 do
      local d = string.char(i % 2 == 0 and 0x45 or 0x60) .. rng:bytes(rng:random(0, 120))
      local rec = packet.decode(d)
      if rec then tracker:segment(rec, 0); n = n + 1 end
    end
    assert.is_true(n > 1000, "decoded " .. n)
  end))

  it("decodes SACK blocks, unknown options and IPv6 extension headers of a crafted packet", function()
    local packet = require "capture.packet"
    -- TCP options: NOP NOP SACK(2 blocks), kind 30 (len 4), EOL; 32 bytes
    local opts = string.pack(">BBBB I4I4I4I4 BBI2 B xxx", 1, 1, 5, 18, 100, 200, 300, 400, 30, 4, 0, 0)
    local tcp = string.pack(">I2I2I4I4BBI2I2I2", 40000, 80, 1000, 2000, (5 + #opts // 4) << 4, 0x18, 512, 0, 0)
      .. opts .. "data!"
    -- IPv6 with a hop-by-hop header (8 bytes) before TCP
    local hop = string.pack(">BBxxxxxx", 6, 0)
    local src = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    local dst = socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    local ip6 = string.pack(">I4I2BB", 0x60000000, #hop + #tcp, 0, 64) .. src .. dst .. hop .. tcp
    local r = packet.decode(ip6)
    assert.are.equal("tcp", r.proto)
    assert.are.equal("2001:db8::1", r.src)
    assert.are.equal(80, r.dport)
    assert.are.equal(5, r.len)
    assert.are.equal("PSH|ACK", packet.flags(r.bits))
    assert.are.same({{100, 200}, {300, 400}}, r.options.sack)
    assert.are.same({30}, r.options.other)
    assert.is_nil(r.options.mss)
    -- the same TCP segment over IPv4, and the ladder shows its SACK blocks
    local ip4 = string.pack(">BBI2I2I2BBI2", 0x45, 0, 20 + #tcp, 1, 0, 64, 6, 0) .. "\192\0\2\1\192\0\2\2" .. tcp
    local seg = packet.tracker():segment(packet.decode(ip4), 0.5)
    assert.are.equal("192.0.2.1", seg.src)
    assert.are.equal(0, seg.seq, "counted from the first segment seen")
    assert.are.equal(0, seg.ack)
    assert.are.equal("192.0.2.1:40000", seg.client, "the higher port is the client")
    assert.truthy(capture.format({seg}):find("SACK=100-200 SACK=300-400", 1, true))
    assert.are.equal("FIN|SYN|RST|PSH|ACK|URG|ECE|CWR|AE", packet.flags(0x1ff))
  end)

  it("bad arguments are refused with Lua's wording", function()
    assert.has_error(function() capture.start() end, "bad argument #1 to 'start' (table expected, got nil)")
    assert.has_error(function() capture.start{} end,
      "bad argument #1 to 'start' (interface= or link= expected (one of them))")
    assert.has_error(function() capture.start{interface = "lo", port = 70000} end,
      "bad argument #1 to 'start' (port: an integer from 1 to 65535 expected, got 70000)")
    assert.has_error(function() capture.start{interface = "lo", host = "example.org"} end,
      "bad argument #1 to 'start' (host: a numeric IPv4 or IPv6 address expected, got example.org)")
    assert.has_error(function() capture.start{link = {}} end,
      "bad argument #1 to 'start' (link: a netem.link (with _tap) expected)")
    assert.has_error(function() capture.format(nil) end, "bad argument #1 to 'format' (segments expected, got nil)")
  end)

  it("an unknown interface raises ENODEV naming it", bounded(5, function()
    if not need_root() then return end
    local ok, err = pcall(capture.start, {interface = "nosuch0"})
    assert.is_false(ok)
    assert.are.equal("ENODEV", err.code)
    assert.matches("capture nosuch0", tostring(err))
  end))
end)
