-- observe_spec: what the kernel shows of a connection, read the ways a
-- student or a grader reads it: s:queues() (unread and unacknowledged
-- bytes), s:tcp_info() (states, byte counters), socket.connections()
-- (/proc/net, this process or another) and `wirelab --trace`. Real
-- loopback sockets, and real other processes where the subject is another
-- process's sockets.
local socket = require "socket"
local wirelab = require "wirelab"

local support = require "support"
local bounded = support.bounded

-- a connected pair on loopback: client, server side; closed with the test
local function pair(opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  local l <close> = socket.create_server(host, 0)
  local c = socket.socket(host:find(":", 1, true) and socket.AF_INET6 or socket.AF_INET)
  if opts.rcvbuf then
    -- set before listen/connect: the window scale is agreed in the handshake
    l:setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
  end
  if opts.sndbuf then c:setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf) end
  c:connect(host, select(2, l:getsockname()))
  local a = l:accept()
  support.defer(function() c:close(); a:close() end)
  return c, a
end

-- sends into c until send raises EAGAIN (the kernel holds no more):
-- the bytes it accepted
local function fill(c)
  c:settimeout(0)
  local chunk, total = ("x"):rep(65536), 0
  for _ = 1, 10000 do
    local ok, n = pcall(c.send, c, chunk)
    if not ok then
      assert.are.equal("EAGAIN", n.code, tostring(n))
      return total
    end
    total = total + n
  end
  error("send never blocked: " .. total .. " bytes accepted")
end

describe("s:queues()", function()
  it("shows bytes received and not read on the receiver", bounded(5, function()
    local c, a = pair()
    c:sendall(("a"):rep(5000))
    support.wait_until("5000 bytes are queued", function() return (a:queues()) == 5000 end)
    assert.are.same({5000, 0}, {a:queues()})
    assert.are.equal(1234, #a:recv(1234))
    assert.are.same({3766, 0}, {a:queues()})
    -- the sender's are all acknowledged
    support.wait_until("the sender's queue is empty", function() return select(2, c:queues()) == 0 end)
    assert.are.same({0, 0}, {c:queues()})
  end))

  it("shows unsent bytes on a sender whose peer does not read, and they add up to what send took",
     bounded(10, function()
    local c, a = pair{rcvbuf = 65536, sndbuf = 65536}
    local accepted = fill(c)
    -- what send took is in the two queues: the receiver's unread bytes,
    -- the sender's unacknowledged ones (nothing is lost on loopback)
    support.wait_until("the queues settle", function()
      return (a:queues()) + select(2, c:queues()) == accepted
    end)
    local inq = a:queues()
    local _, outq = c:queues()
    support.note("accepted %d = receiver inq %d + sender outq %d", accepted, inq, outq)
    assert.is_true(outq > 0, "the sender holds bytes the receiver had no room for")
    assert.is_true(inq > 0)
    -- reading drains the receiver, and the sender's bytes move across
    c:settimeout(nil)
    local got = 0
    while got < accepted do got = got + #a:recv(65536) end
    assert.are.equal(accepted, got)
    support.wait_until("all acknowledged", function() return select(2, c:queues()) == 0 end)
  end))

  it("a listening socket counts the connections waiting for accept", bounded(5, function()
    local l <close> = socket.create_server("127.0.0.1", 0, {backlog = 8})
    local port = select(2, l:getsockname())
    assert.are.same({0, 0}, {l:queues()})
    local c1 <close> = socket.create_connection("127.0.0.1", port)
    local c2 <close> = socket.create_connection("127.0.0.1", port)
    support.wait_until("two connections queue", function() return (l:queues()) == 2 end)
    local info = l:tcp_info()
    assert.are.equal("LISTEN", info.state)
    assert.are.equal(2, info.unacked)
    assert.are.equal(8, info.sacked)
    local a <close> = l:accept()
    assert.are.same({1, 0}, {l:queues()})
  end))

  it("UDP: the size of the next datagram", bounded(5, function()
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:bind("127.0.0.1", 0)
    local v <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert.are.same({0, 0}, {u:queues()})
    v:sendto("hello", u:getsockname())
    v:sendto("a longer datagram", u:getsockname())
    support.wait_until("a datagram waits", function() return (u:queues()) > 0 end)
    assert.are.equal(5, (u:queues()))
    u:recvfrom(100)
    assert.are.equal(17, (u:queues()))
  end))

  it("raises EBADF after close", bounded(5, function()
    local s = socket.socket()
    s:close()
    local ok, err = pcall(s.queues, s)
    assert.is_false(ok)
    assert.are.equal("EBADF", err.code)
  end))
end)

describe("s:tcp_info()", function()
  it("follows the states of a connection and its close", bounded(5, function()
    local c, a = pair()
    assert.are.equal("ESTABLISHED", c:tcp_info().state)
    assert.are.equal("ESTABLISHED", a:tcp_info().state)
    c:shutdown(socket.SHUT_WR)
    support.wait_until("the FIN is acknowledged", function() return c:tcp_info().state == "FIN_WAIT2" end)
    assert.are.equal("CLOSE_WAIT", a:tcp_info().state)
    assert.are.equal("", a:recv(10))
    a:shutdown(socket.SHUT_WR)
    -- the active closer's connection lives on as a TIME_WAIT entry
    -- (socket.connections shows it); the socket itself is done
    support.wait_until("both ends are closed", function()
      return c:tcp_info().state == "CLOSE" and a:tcp_info().state == "CLOSE"
    end)
  end))

  it("counts the bytes acknowledged and received", bounded(5, function()
    local c, a = pair()
    local n = 100000
    c:sendall(("b"):rep(n))
    local got = 0
    while got < n do got = got + #a:recv(65536) end
    a:sendall("ok")
    assert.are.equal("ok", c:recv(2))
    local ci, ai = c:tcp_info(), a:tcp_info()
    assert.are.equal(n, ai.bytes_received)
    assert.are.equal(n, ci.bytes_sent)
    -- the connecting side's SYN counts as a byte, as sequence numbers do
    support.wait_until("all is acknowledged", function() return c:tcp_info().bytes_acked == n + 1 end)
    assert.are.equal(2, ci.bytes_received)
    assert.are.equal(0, ci.notsent_bytes)
    assert.is_true(ci.rtt > 0 and ci.rtt < 1, "rtt in seconds: " .. ci.rtt)
    assert.is_true(ci.snd_cwnd >= 1)
    assert.is_true(ci.snd_wnd > 0 and ai.rcv_space > 0)
    assert.is_true(ci.options.timestamps and ci.options.sack and ci.options.wscale)
    assert.are.equal("open", ci.ca_state)
  end))

  it("raises ENOTSUP on UDP", bounded(5, function()
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local ok, err = pcall(u.tcp_info, u)
    assert.is_false(ok)
    assert.are.equal("ENOTSUP", err.code)
  end))
end)
