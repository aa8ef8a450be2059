-- netem_spec: the impairment proxies (docs/netem.md) on real loopback
-- sockets, with wirelab and python3 clients: seeded loss that repeats
-- exactly, duplication, reordering, corruption, delay and rate as a
-- client sees them; TCP re-chunking, pause, reset_after and half-close;
-- the event log and events_file agreeing with the stats.
local netem = require "netem"
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"
local rng = require "lab.rng"

local support = require "support"
local bounded = support.bounded

local HOST = "127.0.0.1"

local function udp_socket()
  local s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  support.defer(function() s:close() end)
  return s
end

local function proxy(kind, opts)
  local p = netem[kind](opts)
  support.defer(function() p:close() end)
  return p
end

-- n bytes that show any lost, repeated or shifted block: a random 64 KiB
-- block, rotated differently in each copy
local function payload(n, seed)
  local block = rng.new(seed or 1):bytes(math.min(n, 65536))
  local parts, k = {}, 0
  while k * #block < n do
    local r = (k * 7919) % #block
    parts[#parts + 1] = block:sub(r + 1) .. block:sub(1, r)
    k = k + 1
  end
  return table.concat(parts):sub(1, n)
end

-- recv_all(s) -> everything s receives until EOF
local function recv_all(s)
  local parts = {}
  while true do
    local d = s:recv(65536)
    if d == "" then return table.concat(parts) end
    parts[#parts + 1] = d
  end
end

-- collect(s) -> done: a task receives datagrams on s as they come (left
-- unread, a few hundred would overflow the socket's buffer); done(idle)
-- waits until none has come for idle seconds and returns them all
local function collect(s)
  local got, last = {}, wirelab.now()
  local t = wirelab.spawn(function()
    while true do
      local ok, d = pcall(s.recv, s, 65535)
      if not ok then return end
      got[#got + 1] = d
      last = wirelab.now()
    end
  end)
  support.defer(function() t:cancel() end)
  return function(idle)
    support.wait_until("the replies have stopped", function() return wirelab.now() - last >= idle end, 15)
    t:cancel()
    return got
  end
end

-- send n numbered datagrams ("1", "2"...) through p, fifty at a time,
-- each fifty only once the proxy has taken the last ones in: a flood
-- would overflow the kernel's buffers, and the kernel's drops are not
-- the proxy's
local function send_paced(c, p, n, extra)
  local host, port = p.address[1], p.address[2]
  local st = p.stats.to_server
  local start = st.received
  for i = 1, n do
    c:sendto(tostring(i) .. (extra or ""), host, port)
    if i % 50 == 0 or i == n then
      support.wait_until("the proxy has received datagram " .. i, function()
        return st.received - start == i
      end, 10)
    end
  end
end

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

-- python3 runs code; returns its stdout
local function python(code, ...)
  local r = process.run{"python3", "-c", code:format(...), timeout = 30}
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

describe("netem.udp_proxy", function()
  -- one run: N datagrams to a counting sink through 30% loss; the sink
  -- misses exactly the datagrams the event log says were dropped
  local N = 10000
  local function lossy_run(seed)
    local sink = udp_socket()
    sink:bind(HOST, 0)
    local p = proxy("udp_proxy", {target = {sink:getsockname()}, loss = {to_server = 0.3}, seed = seed})
    local got, n = {}, 0
    local reader = wirelab.spawn(function()
      while true do
        local ok, d = pcall(sink.recv, sink, 100)
        if not ok then return end
        got[tonumber(d)] = true
        n = n + 1
      end
    end)
    local c = udp_socket()
    send_paced(c, p, N)
    local st = p.stats.to_server
    support.wait_until("the sink has every datagram that passed", function()
      return n == st.received - st.dropped
    end)
    sink:close()
    reader:join(5)
    local dropped, missing = {}, {}
    for _, e in ipairs(p:events{what = "drop"}) do dropped[#dropped + 1] = e.seq end
    for i = 1, N do if not got[i] then missing[#missing + 1] = i end end
    assert.are.same(missing, dropped)
    assert.are.equal(#dropped, st.dropped)
    assert.are.equal(N - #dropped, st.sent)
    assert.are.equal(0, p.stats.to_client.received)
    p:close()
    return dropped
  end

  it("a seeded 30% loss drops 30% +- 2% of 10,000 datagrams, the same ones every run of that seed",
     bounded(60, function()
    local a = lossy_run(42)
    local rate = #a / N
    support.note("seed 42 dropped %d of %d (%.4f)", #a, N, rate)
    assert.is_true(rate > 0.28 and rate < 0.32, "loss rate " .. rate)
    local b = lossy_run(42)
    assert.are.same(a, b)
    local c = lossy_run(43)
    assert.are_not.same(a, c)
    local rate_c = #c / N
    assert.is_true(rate_c > 0.28 and rate_c < 0.32, "loss rate with seed 43: " .. rate_c)
  end))

  it("a rule delays or drops the datagrams a check names, and shifts no seeded draw",
     bounded(30, function()
    -- a pinger's view: request 2 dropped, the reply to request 4 late by 0.4 s
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local asked = {}
    local p = proxy("udp_proxy", {target = {host, port}, rule = function(dir, seq, data, client)
      asked[#asked + 1] = dir .. " " .. seq .. " " .. data
      if dir == "to_server" and seq == 2 then return "drop" end
      if dir == "to_client" and data == "4" then return 0.4 end
    end})
    local c = udp_socket()
    c:settimeout(1)
    local rtt = {}
    for i = 1, 5 do
      local t0 = wirelab.now()
      c:sendto(tostring(i), p.address[1], p.address[2])
      local ok, d = pcall(c.recv, c, 100)
      if ok then rtt[tonumber(d)] = wirelab.now() - t0 end
    end
    assert.is_nil(rtt[2], "request 2 was dropped")
    assert.is_true(rtt[4] >= 0.35, "reply 4 came after " .. tostring(rtt[4]))
    for _, i in ipairs{1, 3, 5} do assert.is_true(rtt[i] < 0.3, i .. ": " .. rtt[i]) end
    assert.are.equal("to_server 2 2", asked[3])      -- asked with its number and bytes
    assert.are.equal(1, p.stats.to_server.dropped)
    assert.are.equal(1, #p:events{what = "drop", dir = "to_server"})
    -- with seeded loss: a rule dropping datagram 7 leaves the others' fate as it was
    local function dropped(rule)
      local sink = udp_socket()
      sink:bind(HOST, 0)
      local q = netem.udp_proxy{target = {sink:getsockname()}, loss = 0.3, seed = 9, rule = rule}
      local s = udp_socket()
      send_paced(s, q, 100)
      local list = {}
      for _, e in ipairs(q:events{what = "drop"}) do list[#list + 1] = e.seq end
      q:close()
      sink:close()
      return list
    end
    local plain = dropped(nil)
    local ruled = dropped(function(dir, seq) if seq == 7 then return "drop" end end)
    local expect = {}
    for _, s in ipairs(plain) do if s ~= 7 then expect[#expect + 1] = s end end
    local got = {}
    for _, s in ipairs(ruled) do if s ~= 7 then got[#got + 1] = s end end
    assert.are.same(expect, got)
    local has7 = false
    for _, s in ipairs(ruled) do has7 = has7 or s == 7 end
    assert.is_true(has7, "the rule dropped 7")
    -- a rule that raises is asked no more, and the proxy goes on forwarding
    local calls = 0
    local bad = proxy("udp_proxy", {target = {host, port}, rule = function()
      calls = calls + 1
      error("a bug in the check's rule")
    end})
    for i = 1, 3 do
      c:sendto("again" .. i, bad.address[1], bad.address[2])
      assert.are.equal("again" .. i, c:recv(100))
    end
    assert.are.equal(1, calls)
    assert.has_error(function() netem.udp_proxy{target = {host, port}, rule = 5} end)
  end))

  it("a client sees the duplicates the proxy made, and no other", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, duplicate = {to_client = 0.3}, seed = 5})
    local c = udp_socket()
    local done = collect(c)
    send_paced(c, p, 200)
    local seen, dups = {}, 0
    for _, d in ipairs(done(0.3)) do
      if seen[d] then dups = dups + 1 end
      seen[d] = true
    end
    for i = 1, 200 do assert.is_true(seen[tostring(i)], "reply " .. i .. " never came") end
    assert.is_true(dups > 30 and dups < 90, "duplicates: " .. dups)
    assert.are.equal(dups, p.stats.to_client.duplicated)
    assert.are.equal(dups, #p:events{what = "dup", dir = "to_client"})
    assert.are.equal(200 + dups, p.stats.to_client.sent)
    assert.are.equal(0, p.stats.to_server.duplicated)
  end))

  it("a client sees exactly the reorderings the proxy counts", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, reorder = {to_client = 0.2},
                                  reorder_distance = 2, reorder_hold = 0.2, seed = 9})
    local c = udp_socket()
    local done = collect(c)
    send_paced(c, p, 300)
    local got = done(0.5)
    assert.are.equal(300, #got, "every reply comes once")
    local top, late, seen = 0, 0, {}
    for _, d in ipairs(got) do
      local i = tonumber(d)
      assert.is_nil(seen[i], "reply " .. i .. " twice")
      seen[i] = true
      if i < top then late = late + 1 else top = i end
    end
    assert.is_true(late > 20, "out of order: " .. late)
    assert.are.equal(late, p.stats.to_client.reordered)
    assert.are.equal(late, #p:events{what = "reorder", dir = "to_client"})
    assert.are.equal(0, p.stats.to_server.reordered)
  end))

  it("a corrupted datagram differs in the one bit the event log names", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, corrupt = {to_server = 0.5}, seed = 3})
    local c = udp_socket()
    c:settimeout(5)
    c:connect(p.address[1], p.address[2])
    local r = rng.new(11)
    local flipped = {}
    for i = 1, 100 do
      local sent = r:bytes(32)
      c:send(sent)
      local back = c:recv(100)
      assert.are.equal(#sent, #back)
      local diff = {}
      for j = 1, #sent do
        local x = sent:byte(j) ~ back:byte(j)
        for b = 0, 7 do
          if x & (1 << b) ~= 0 then diff[#diff + 1] = (j - 1) * 8 + b end
        end
      end
      assert.is_true(#diff <= 1, "more than one bit flipped in datagram " .. i)
      if #diff == 1 then flipped[i] = diff[1] end
    end
    local logged, n = {}, 0
    for _, e in ipairs(p:events{what = "corrupt"}) do logged[e.seq] = e.bit; n = n + 1 end
    assert.are.same(logged, flipped)
    assert.is_true(n > 30 and n < 70, "corrupted: " .. n)
    assert.are.equal(n, p.stats.to_server.corrupted)
  end))

  it("delay and jitter show in the round trips a client measures", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, delay = {to_server = 0.1}})
    local c = udp_socket()
    c:settimeout(5)
    c:connect(p.address[1], p.address[2])
    for i = 1, 5 do
      local t0 = wirelab.now()
      c:send("ping " .. i)
      assert.are.equal("ping " .. i, c:recv(100))
      local rtt = wirelab.now() - t0
      assert.is_true(rtt >= 0.099 and rtt < 0.3, "rtt " .. rtt)
    end
    assert.are.equal(5, p.stats.to_server.delayed)
    p:close()

    local pj = proxy("udp_proxy", {target = {host, port}, delay = 0.03, jitter = 0.02, seed = 1})
    local cj = udp_socket()
    cj:settimeout(5)
    cj:connect(pj.address[1], pj.address[2])
    local lo, hi = math.huge, 0
    for i = 1, 20 do
      local t0 = wirelab.now()
      cj:send("j" .. i)
      assert.are.equal("j" .. i, cj:recv(100))
      local rtt = wirelab.now() - t0
      lo, hi = math.min(lo, rtt), math.max(hi, rtt)
    end
    support.note("jittered rtt %.4f .. %.4f", lo, hi)
    -- each way 0.01 to 0.05 s: round trips from 0.02 to 0.1 s
    assert.is_true(lo >= 0.019 and hi < 0.2, ("rtt %.4f .. %.4f"):format(lo, hi))
    assert.is_true(hi - lo > 0.01, "jitter makes round trips differ")
    for _, e in ipairs(pj:events{what = "pass"}) do
      assert.is_true(e.delay >= 0.01 - 1e-9 and e.delay <= 0.05 + 1e-9, "delay " .. e.delay)
    end
  end))

  it("a rate limit spaces datagrams out, and a full queue drops them", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, rate = {to_client = 50000}})
    local c = udp_socket()
    c:settimeout(5)
    local block = ("r"):rep(1000)
    for _ = 1, 10 do c:sendto(block, p.address[1], p.address[2]) end
    local t0 = wirelab.now()
    assert.are.equal(block, c:recv(2000))
    for _ = 2, 10 do assert.are.equal(block, c:recv(2000)) end
    local spread = wirelab.now() - t0
    -- nine more after the first, 1000 bytes each at 50,000 bytes/s
    assert.is_true(spread >= 0.16 and spread < 1, "10 datagrams came within " .. spread .. " s")
    p:close()

    local q = proxy("udp_proxy", {target = {host, port}, rate = {to_client = 10000}, queue = 3000})
    local done = collect(c)
    for _ = 1, 10 do c:sendto(block, q.address[1], q.address[2]) end
    local got = done(0.8)
    local st = q.stats.to_client
    assert.are.equal(10, st.received)
    assert.is_true(st.dropped >= 5 and st.dropped <= 7, "dropped " .. st.dropped)
    assert.are.equal(10 - st.dropped, #got)
    assert.are.equal(st.dropped, #q:events{what = "drop", reason = "queue"})
  end))

  it("several clients each get their own replies", bounded(20, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}})
    local tasks = {}
    for k = 1, 3 do
      tasks[k] = wirelab.spawn(function()
        local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c:settimeout(5)
        for i = 1, 20 do
          local msg = ("client %d message %d"):format(k, i)
          c:sendto(msg, p.address[1], p.address[2])
          assert.are.equal(msg, (c:recvfrom(100)))
        end
      end)
    end
    wirelab.join_all(tasks, 10)
    assert.are.equal(3, p.stats.clients)
    assert.are.equal(60, p.stats.to_server.sent)
    assert.are.equal(60, p.stats.to_client.sent)
    assert.are.equal(3, #p:events{what = "client"})
  end))

  it("a Python client loses exactly the datagrams the proxy dropped", bounded(30, function()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, loss = 0.2, seed = 2024})
    local out = python([==[
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1, 301):
    s.sendto(b"%%d" %% i, ("%s", %d))
    if i %% 20 == 0:
        time.sleep(0.01)
s.settimeout(0.5)
got = set()
try:
    while True:
        got.add(int(s.recv(100)))
except socket.timeout:
    pass
print(len(got))
print(" ".join(str(i) for i in range(1, 301) if i not in got))
]==], p.address[1], p.address[2])
    local n, missing = out:match("^(%d+)\n([%d ]*)\n$")
    local lost = {}
    for i in missing:gmatch("%d+") do lost[#lost + 1] = tonumber(i) end
    -- lost on the way there, or the reply lost on the way back: the
    -- replies are numbered in the order the requests reached the server
    local expect = {}
    for _, e in ipairs(p:events{what = "drop", dir = "to_server"}) do expect[#expect + 1] = e.seq end
    local up = {}
    for i = 1, 300 do up[i] = true end
    for _, s in ipairs(expect) do up[s] = nil end
    local order = {}
    for i = 1, 300 do if up[i] then order[#order + 1] = i end end
    for _, e in ipairs(p:events{what = "drop", dir = "to_client"}) do expect[#expect + 1] = order[e.seq] end
    table.sort(expect)
    assert.are.same(expect, lost)
    assert.are.equal(300 - p.stats.to_server.dropped - p.stats.to_client.dropped, tonumber(n))
  end))

  it("events() and events_file agree with the stats", bounded(20, function()
    local dir = support.tmpdir()
    local path = dir .. "/events.jsonl"
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local p = proxy("udp_proxy", {target = {host, port}, loss = 0.1, duplicate = 0.1, corrupt = 0.1,
                                  reorder = 0.1, reorder_hold = 0.1, delay = 0.002, seed = 77,
                                  events_file = path})
    local c = udp_socket()
    local done = collect(c)
    send_paced(c, p, 300)
    done(0.3)
    p:close()
    local all = p:events()
    local counts = {}
    for _, e in ipairs(all) do
      local k = (e.dir or "-") .. " " .. e.what
      counts[k] = (counts[k] or 0) + 1
    end
    for _, d in ipairs({"to_server", "to_client"}) do
      local st = p.stats[d]
      assert.are.equal(st.received, (counts[d .. " pass"] or 0) + (counts[d .. " drop"] or 0))
      assert.are.equal(st.dropped, counts[d .. " drop"] or 0)
      assert.are.equal(st.duplicated, counts[d .. " dup"] or 0)
      assert.are.equal(st.corrupted, counts[d .. " corrupt"] or 0)
      assert.are.equal(st.reordered, counts[d .. " reorder"] or 0)
      assert.are.equal(st.sent, st.received - st.dropped + st.duplicated)
      assert.is_true(st.dropped > 0 and st.duplicated > 0 and st.corrupted > 0, d)
    end
    -- the file holds the same events, one JSON object a line
    local out = python([==[
import json, collections
c = collections.Counter()
n = 0
for line in open("%s"):
    e = json.loads(line)
    n += 1
    c[(e.get("dir", "-"), e["what"])] += 1
print(n)
for (d, w), k in sorted(c.items()):
    print(d, w, k)
]==], path)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(#all, tonumber(lines[1]))
    local from_file = {}
    for i = 2, #lines do
      local d, w, k = lines[i]:match("^(%S+) (%S+) (%d+)$")
      from_file[d .. " " .. w] = tonumber(k)
    end
    assert.are.same(counts, from_file)
  end))

  it("close is idempotent, ends everything, and is the proxy's __close", bounded(10, function()
    local before = wirelab.handles()
    local host, port = support.echo_server{type = socket.SOCK_DGRAM}
    local kept
    do
      local p <close> = netem.udp_proxy{target = {host, port}, delay = 0.5}
      kept = p
      local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      c:sendto("left in the delay queue", p.address[1], p.address[2])
      support.wait_until("the proxy has it", function() return p.stats.to_server.received == 1 end)
      assert.is_true(wirelab.handles() > before)
    end
    assert.is_true(kept.closed)
    kept:close()
    assert.matches("closed", tostring(kept))
    wirelab.sleep(0.6)          -- the delayed datagram's time: nothing fires after close
    assert.are.equal(0, kept.stats.to_server.sent)
  end))

  it("refuses what it does not understand", bounded(5, function()
    local function err(opts)
      local ok, e = pcall(netem.udp_proxy, opts)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.matches("bad argument #1 to 'udp_proxy' %(unknown option 'losss'%)",
                   err{target = {HOST, 9}, losss = 0.3})
    assert.matches("'loss' must be a probability", err{target = {HOST, 9}, loss = 2})
    assert.matches("'loss' per direction takes to_server and to_client, not 'up'",
                   err{target = {HOST, 9}, loss = {up = 0.1, to_client = 0}})
    assert.matches("'delay.to_client' must be seconds", err{target = {HOST, 9}, delay = {to_client = -1}})
    assert.matches("'target' must be {host, port}", err{})
    -- an events_file that cannot be written is an I/O error, and leaves no socket open
    local ok, e = pcall(netem.udp_proxy, {target = {HOST, 9}, events_file = "/nonexistent/dir/events"})
    assert.is_false(ok)
    assert.are.equal("ENOENT", e.code)
    ok, e = pcall(netem.tcp_proxy, {target = {HOST, 9}, events_file = "/nonexistent/dir/events"})
    assert.is_false(ok)
    assert.are.equal("ENOENT", e.code)
  end))
end)

describe("netem.tcp_proxy", function()
  it("1 MiB echoes intact through 1-byte pieces", bounded(60, function()
    local host, port = support.echo_server()
    local p = proxy("tcp_proxy", {target = {host, port}, chunk = {1, 1}})
    local data = payload(1024 * 1024)
    local c <close> = socket.create_connection(p.address[1], p.address[2], 30)
    local w = wirelab.spawn(function() c:sendall(data); c:shutdown(socket.SHUT_WR) end)
    local back = recv_all(c)
    w:join()
    assert.is_true(back == data, "the echo differs")
    assert.are.equal(#data, p.stats.to_server.writes)
    assert.are.equal(#data, p.stats.to_client.writes)
    assert.are.equal(#data, p.stats.to_client.bytes_sent)
  end))

  it("a naive 'one recv = one message' reader sees many pieces", bounded(30, function()
    local server = support.spawn{"python3", "-u", "-c", [==[
import socket
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept()
n = got = 0
while got < 200:
    d = c.recv(65536)
    if not d: break
    n += 1
    got += len(d)
print(n, got, flush=True)
]==]}
    local port = tonumber(server.stdout:read("l"))
    local p = proxy("tcp_proxy", {target = {HOST, port}, chunk = {1, 4, gap = 0.002}, seed = 1})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    c:sendall(("m"):rep(200))           -- one message, one sendall
    local n, got = server.stdout:read("l"):match("^(%d+) (%d+)$")
    assert.are.equal(200, tonumber(got))
    support.note("200 bytes came in %s recvs", n)
    assert.is_true(tonumber(n) >= 20, "200 bytes came in only " .. n .. " recvs")
    server:wait(5)
  end))

  it("pause stops reading, so the client's sendall blocks; resume lets it finish intact",
     bounded(30, function()
    local srv <close> = socket.create_server(HOST, 0)
    local received
    local server = wirelab.spawn(function()
      local conn <close> = srv:accept()
      received = recv_all(conn)
    end)
    local p = proxy("tcp_proxy", {target = {srv:getsockname()}})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    support.wait_until("the proxy connected through", function() return p.stats.open == 1 end)
    p:pause("to_server")
    assert.matches("^<netem.tcp_proxy 127.0.0.1:%d+ %-> 127.0.0.1:%d+, 1 open, to_server paused>$", tostring(p))
    local data = payload(8 * 1024 * 1024, 2)
    local sent = false
    local w = wirelab.spawn(function() c:sendall(data); sent = true end)
    assert.is_false((pcall(w.join, w, 0.5)), "sendall of 8 MiB finished while paused")
    assert.is_false(sent)
    local held = p.stats.to_server.bytes_received
    assert.is_true(held < #data, "the proxy read everything while paused")
    wirelab.sleep(0.1)
    assert.are.equal(held, p.stats.to_server.bytes_received, "the proxy read while paused")
    p:resume("to_server")
    w:join(20)
    c:shutdown(socket.SHUT_WR)
    server:join(20)
    assert.are.equal(#data, #received)
    assert.is_true(received == data, "the bytes differ")
    assert.are.equal(1, #p:events{what = "pause", dir = "to_server"})
    assert.are.equal(1, #p:events{what = "resume", dir = "to_server"})
  end))

  it("reset_after resets both sides after exactly N bytes", bounded(20, function()
    local srv <close> = socket.create_server(HOST, 0)
    local server_err
    local server = wirelab.spawn(function()
      local conn <close> = srv:accept()
      local ok, e = pcall(function()
        for _ = 1, 64 do conn:sendall(("s"):rep(65536)) end
      end)
      server_err = not ok and e
    end)
    local p = proxy("tcp_proxy", {target = {srv:getsockname()}, reset_after = {to_client = 100000}})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    local total = 0
    local ok, e = pcall(function()
      while true do
        local d = c:recv(65536)
        if d == "" then break end
        total = total + #d
      end
    end)
    assert.is_false(ok, "the client saw an end of file, not a reset")
    assert.are.equal("ECONNRESET", e.code)
    assert.are.equal(100000, total)
    server:join(5)
    assert.truthy(server_err, "the server's sendall went on")
    assert.truthy(server_err.code == "ECONNRESET" or server_err.code == "EPIPE", tostring(server_err))
    assert.are.equal(1, p.stats.resets)
    assert.are.equal(1, #p:events{what = "reset", reason = "reset_after"})

    -- a plain number counts both directions: here only the client writes
    local p2 = proxy("tcp_proxy", {target = {support.echo_server()}, reset_after = 5000})
    local c2 <close> = socket.create_connection(p2.address[1], p2.address[2], 5)
    c2:sendall(("x"):rep(4000))
    local total2 = 0
    local ok2, e2 = pcall(function()
      while true do
        local d = c2:recv(65536)
        if d == "" then break end
        total2 = total2 + #d
      end
    end)
    assert.is_false(ok2, "the client saw an end of file, not a reset")
    assert.are.equal("ECONNRESET", e2.code)
    -- 4000 bytes there, then 1000 of the echo make 5000
    assert.are.equal(1000, total2)
    assert.are.equal(5000, p2.stats.to_server.bytes_sent + p2.stats.to_client.bytes_sent)
  end))

  it("a half-close passes through: the server sees EOF and can still answer", bounded(10, function()
    local srv <close> = socket.create_server(HOST, 0)
    local server = wirelab.spawn(function()
      local conn <close> = srv:accept()
      local got = recv_all(conn)
      conn:sendall("got " .. #got .. " bytes")
    end)
    local p = proxy("tcp_proxy", {target = {srv:getsockname()}})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    c:sendall("hello")
    c:shutdown(socket.SHUT_WR)
    assert.are.equal("got 5 bytes", recv_all(c))
    server:join(5)
    support.wait_until("the proxy closed the connection", function() return p.stats.open == 0 end)
    assert.are.equal(1, p.stats.to_server.fins)
    assert.are.equal(1, p.stats.to_client.fins)
    local seq = {}
    for _, e in ipairs(p:events()) do
      if e.what ~= "pass" then seq[#seq + 1] = e.what .. (e.dir and " " .. e.dir or "") end
    end
    assert.are.same({"open", "fin to_server", "fin to_client", "close"}, seq)
  end))

  it("delay and bandwidth show in what a client measures", bounded(20, function()
    local host, port = support.echo_server()
    local p = proxy("tcp_proxy", {target = {host, port}, delay = {to_server = 0.1, to_client = 0.05}})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    for _ = 1, 3 do
      local t0 = wirelab.now()
      c:sendall("x")
      assert.are.equal("x", c:recv(10))
      local rtt = wirelab.now() - t0
      assert.is_true(rtt >= 0.149 and rtt < 0.5, "rtt " .. rtt)
    end
    c:close()
    p:close()

    local q = proxy("tcp_proxy", {target = {host, port}, bandwidth = {to_client = 256 * 1024}})
    local c2 <close> = socket.create_connection(q.address[1], q.address[2], 5)
    local data = payload(128 * 1024, 3)
    local t0 = wirelab.now()
    local w = wirelab.spawn(function() c2:sendall(data); c2:shutdown(socket.SHUT_WR) end)
    local back = recv_all(c2)
    local took = wirelab.now() - t0
    w:join()
    assert.is_true(back == data)
    -- 128 KiB at 256 KiB/s: half a second
    assert.is_true(took >= 0.45 and took < 2, "128 KiB took " .. took .. " s")
  end))

  it("events() and events_file agree with the stats", bounded(20, function()
    local dir = support.tmpdir()
    local path = dir .. "/tcp.jsonl"
    local host, port = support.echo_server()
    local p = proxy("tcp_proxy", {target = {host, port}, chunk = {1, 100}, seed = 4, events_file = path})
    for k = 1, 3 do
      local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
      local data = payload(50000 * k, k)
      local w = wirelab.spawn(function() c:sendall(data); c:shutdown(socket.SHUT_WR) end)
      assert.is_true(recv_all(c) == data)
      w:join()
    end
    support.wait_until("every connection closed", function() return p.stats.open == 0 end)
    p:close()
    local bytes, passes = {}, {}
    for _, e in ipairs(p:events{what = "pass"}) do
      bytes[e.dir] = (bytes[e.dir] or 0) + e.size
      passes[e.dir] = (passes[e.dir] or 0) + 1
    end
    for _, d in ipairs({"to_server", "to_client"}) do
      assert.are.equal(300000, p.stats[d].bytes_sent)
      assert.are.equal(p.stats[d].bytes_sent, bytes[d])
      assert.are.equal(p.stats[d].reads, passes[d])
    end
    assert.are.equal(3, p.stats.connections)
    assert.are.equal(3, #p:events{what = "close"})
    local out = python([==[
import json
n = 0
sizes = {}
for line in open("%s"):
    e = json.loads(line)
    n += 1
    if e["what"] == "pass":
        sizes[e["dir"]] = sizes.get(e["dir"], 0) + e["size"]
print(n, sizes["to_server"], sizes["to_client"])
]==], path)
    assert.are.equal(("%d 300000 300000\n"):format(#p:events()), out)
  end))

  it("a Python client through re-chunking gets its bytes back", bounded(30, function()
    local host, port = support.echo_server()
    local p = proxy("tcp_proxy", {target = {host, port}, chunk = {1, 64}, seed = 8})
    local out = python([==[
import socket, hashlib, os
data = os.urandom(200000)
s = socket.create_connection(("%s", %d), timeout=20)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
n = 0
while True:
    d = s.recv(65536)
    if not d: break
    got += d
    n += 1
print("ok" if got == data else "mismatch", n)
]==], p.address[1], p.address[2])
    local verdict, n = out:match("^(%a+) (%d+)")
    assert.are.equal("ok", verdict)
    assert.is_true(tonumber(n) > 1)
  end))

  it("a target that refuses gets the client reset", bounded(10, function()
    local dead = socket.socket()
    dead:bind(HOST, 0)
    local _, port = dead:getsockname()
    dead:close()
    local p = proxy("tcp_proxy", {target = {HOST, port}})
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    local ok, e = pcall(c.recv, c, 100)
    assert.is_false(ok)
    assert.are.equal("ECONNRESET", e.code)
    local errs = p:events{what = "error"}
    assert.are.equal(1, #errs)
    assert.are.equal("ECONNREFUSED", errs[1].code)
  end))

  it("close ends open connections and every task; it is idempotent", bounded(10, function()
    local host, port = support.echo_server()
    local before = wirelab.handles()
    local p = netem.tcp_proxy{target = {host, port}, delay = 0.2}
    local c <close> = socket.create_connection(p.address[1], p.address[2], 5)
    c:sendall("in flight")
    support.wait_until("the proxy read it", function() return p.stats.to_server.bytes_received > 0 end)
    p:pause()
    p:close()
    p:close()
    assert.are.equal("", c:recv(100))
    c:close()
    -- the echo server closes its side once it sees the proxy's end
    support.wait_until("only the echo server's socket is left", function()
      return wirelab.handles() == before
    end)
    assert.has_error(function() p:pause("sideways") end)
  end))
end)

describe("netem over IPv6", function()
  it("both proxies listen on and forward to ::1", bounded(10, function()
    local uhost, uport = support.echo_server{type = socket.SOCK_DGRAM, family = socket.AF_INET6}
    local u = proxy("udp_proxy", {target = {uhost, uport}, listen = {"::1", 0}})
    assert.are.equal("::1", u.address[1])
    local c <close> = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    c:settimeout(5)
    c:sendto("over six", u.address[1], u.address[2])
    assert.are.equal("over six", c:recv(100))
    local _, cport = c:getsockname()
    assert.are.equal("[::1]:" .. cport, u:events{what = "client"}[1].client)
    assert.matches("^<netem.udp_proxy %[::1%]:%d+ %-> %[::1%]:%d+, 1 client>$", tostring(u))

    local thost, tport = support.echo_server{family = socket.AF_INET6}
    local t = proxy("tcp_proxy", {target = {thost, tport}, listen = {"::1", 0}, chunk = {1, 3}})
    local s <close> = socket.create_connection(t.address[1], t.address[2], 5)
    s:sendall("tcp over six")
    s:shutdown(socket.SHUT_WR)
    assert.are.equal("tcp over six", recv_all(s))
  end))
end)
