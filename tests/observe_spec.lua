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

  it("gives one field alone, without the table, and refuses an unknown name", bounded(5, function()
    local c = pair()
    assert.are.equal("ESTABLISHED", c:tcp_info("state"))
    assert.are.equal(c:tcp_info().snd_mss, c:tcp_info("snd_mss"))
    assert.is_true(c:tcp_info("options").timestamps)
    local ok, err = pcall(function() return c:tcp_info("no_such_field") end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'tcp_info' %(no TCP_INFO field 'no_such_field'%)", err)
  end))

  it("raises ENOTSUP on UDP", bounded(5, function()
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local ok, err = pcall(u.tcp_info, u)
    assert.is_false(ok)
    assert.are.equal("ENOTSUP", err.code)
  end))
end)

-- the row of rows whose local port is lport (and remote port rport)
local function row_of(rows, lport, rport)
  for _, r in ipairs(rows) do
    if r.laddr[2] == lport and (rport == nil or (r.raddr and r.raddr[2] == rport)) then return r end
  end
  return nil
end

describe("socket.connections()", function()
  it("lists this process's connections with their states, queues and fds", bounded(5, function()
    local c, a = pair()
    local _, cport = c:getsockname()
    local _, aport = a:getsockname()
    c:sendall("twelve bytes")
    support.wait_until("the bytes arrive", function() return (a:queues()) == 12 end)
    local rows = socket.connections()
    local cr, ar = row_of(rows, cport, aport), row_of(rows, aport, cport)
    assert.is_table(cr, "the client's row")
    assert.is_table(ar, "the server side's row")
    assert.are.same({"tcp", "ESTABLISHED", {"127.0.0.1", cport}, {"127.0.0.1", aport}, c:fileno()},
                    {cr.proto, cr.state, cr.laddr, cr.raddr, cr.fd})
    assert.are.same({"ESTABLISHED", a:fileno(), 12, 0}, {ar.state, ar.fd, ar.inq, ar.outq})
    assert.are.equal(support.PID, ar.pid)
    assert.is_true(ar.inode > 0)
    -- the listener: no peer
    local l <close> = socket.create_server("127.0.0.1", 0)
    local lr = row_of(socket.connections(), (select(2, l:getsockname())))
    assert.are.same({"LISTEN", nil}, {lr.state, lr.raddr})
    -- another process's list is the same list, asked by pid
    assert.are.same(socket.connections(), socket.connections(support.PID))
  end))

  it("shows TIME_WAIT on the side that closed first, with all=true only", bounded(5, function()
    local c, a = pair()
    local _, cport = c:getsockname()
    local _, aport = a:getsockname()
    c:close()                               -- the active close
    assert.are.equal("", a:recv(10))
    a:close()
    local tw
    support.wait_until("the client's end is in TIME_WAIT", function()
      tw = row_of(socket.connections{all = true}, cport, aport)
      return tw and tw.state == "TIME_WAIT"
    end)
    -- the connection outlives the socket: no fd, no inode, a timer
    assert.are.same({nil, 0, "time_wait"}, {tw.fd, tw.inode, tw.timer})
    assert.is_true(tw.timer_left > 0 and tw.timer_left <= 60, "seconds left: " .. tw.timer_left)
    assert.is_nil(row_of(socket.connections(), cport, aport), "a TIME_WAIT row is nobody's")
  end))

  it("shows CLOSE_WAIT in a child process whose peer closed and which never closes", bounded(15, function()
    if not support.find("python3") then return pending(support.skip("no python3")) end
    local l <close> = socket.create_server("127.0.0.1", 0)
    local port = select(2, l:getsockname())
    local p = support.spawn{"python3", "-c", [[
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1], flush=True)
time.sleep(30)
]], tostring(port)}
    local conn = l:accept()
    local cport = tonumber(p.stdout:read("l"))
    conn:close()                            -- this side closes; the child never does
    local row
    support.wait_until("the child's socket is in CLOSE_WAIT", function()
      row = row_of(socket.connections(p.pid), cport, port)
      return row and row.state == "CLOSE_WAIT"
    end)
    assert.are.equal(p.pid, row.pid)
    assert.is_true(row.fd >= 3)
    -- and in this process, the other end waits in FIN_WAIT2, with no fd:
    -- closed, it belongs to nobody
    support.wait_until("this end is in FIN_WAIT2", function()
      local mine = row_of(socket.connections{all = true}, port, cport)
      return mine and mine.state == "FIN_WAIT2" and mine.fd == nil
    end)
  end))

  it("lists IPv6 connections, IPv4-mapped ones too, and UDP sockets", bounded(5, function()
    local c, a = pair{host = "::1"}
    local _, cport = c:getsockname()
    local r = row_of(socket.connections(), cport)
    assert.are.same({"tcp6", "::1", "::1", "ESTABLISHED"}, {r.proto, r.laddr[1], r.raddr[1], r.state})
    assert.are.equal(socket.AF_INET6, r.family)
    -- a dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1
    local l <close> = socket.create_server("::", 0, {dualstack = true})
    local port = select(2, l:getsockname())
    local v4 <close> = socket.create_connection("127.0.0.1", port)
    local s <close> = l:accept()
    local mapped = row_of(socket.connections(), port, (select(2, v4:getsockname())))
    assert.are.same({"tcp6", "::ffff:127.0.0.1", "::ffff:127.0.0.1"},
                    {mapped.proto, mapped.laddr[1], mapped.raddr[1]})
    -- UDP: unconnected and connected, with what waits to be read
    local u <close> = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u:bind("::1", 0)
    local uport = select(2, u:getsockname())
    local v <close> = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v:connect("::1", uport)
    v:send("datagram")
    support.wait_until("the datagram waits", function() return (u:queues()) > 0 end)
    local ur = row_of(socket.connections(), uport)
    local vr = row_of(socket.connections(), (select(2, v:getsockname())))
    assert.are.same({"udp6", "UNCONN", nil, 0}, {ur.proto, ur.state, ur.raddr, ur.drops})
    assert.is_true(ur.inq >= 8, "the receive queue's memory holds the datagram")
    assert.are.same({"ESTABLISHED", {"::1", uport}}, {vr.state, vr.raddr})
  end))

  it("reads the kernel's hex addresses in host byte order", function()
    if string.pack("=I4", 1):byte(1) ~= 1 then return pending("a big-endian machine prints other text") end
    local parse = require("wirelab.netstat")._parse_addr
    assert.are.same({"127.0.0.1", 8000}, {parse("0100007F:1F40", socket.AF_INET)})
    assert.are.same({"192.0.2.10", 443}, {parse("0A0200C0:01BB", socket.AF_INET)})
    assert.are.same({"::1", 80}, {parse("00000000000000000000000001000000:0050", socket.AF_INET6)})
    assert.are.same({"2001:db8::2", 65535},
                    {parse("B80D0120000000000000000002000000:FFFF", socket.AF_INET6)})
  end)

  it("raises ESRCH for a process that does not exist, and checks its argument", bounded(5, function()
    local ok, err = pcall(socket.connections, 0x3fffffff)
    assert.is_false(ok)
    assert.are.equal("ESRCH", err.code)
    local bad = select(2, pcall(socket.connections, "self"))
    assert.matches("bad argument #1 to 'connections'", bad)
  end))
end)

describe("wirelab --trace", function()
  local process = require "process"

  -- runs code under `wirelab --trace -e` (opts.args before -e, opts.stdin);
  -- its stdout and the trace lines
  local function traced(code, opts)
    opts = opts or {}
    local argv = {support.wirelab, "--trace"}
    for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
    argv[#argv + 1] = "-e"
    argv[#argv + 1] = code
    argv.stdin, argv.timeout = opts.stdin, 20
    local r = process.run(argv)
    assert.are.equal(0, r.code, r.stderr)
    local lines = {}
    for l in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = l end
    return r.stdout, lines
  end

  -- the first line matching pattern (after index from), and its index
  local function find(lines, pattern, from)
    for i = from or 1, #lines do
      if lines[i]:find(pattern) then return lines[i], i end
    end
    error("no trace line matches " .. pattern .. " in:\n" .. table.concat(lines, "\n"), 2)
  end

  it("writes each call of a small server and client, timed, with its result", bounded(30, function()
    local _, lines = traced([[
local socket, wirelab = require "socket", require "wirelab"
local srv = socket.socket()
srv:bind("127.0.0.1", 0)
srv:listen(5)
local port = select(2, srv:getsockname())
local t = wirelab.spawn(function()
  local c = srv:accept()
  local d = c:recv(1024)
  c:sendall(d)
  assert(c:recv(10) == "")
  c:close()
end)
local c <close> = socket.create_connection("127.0.0.1", port)
wirelab.sleep(0.05)
c:send("hello, world\n")
c:recv(1024)
c:shutdown(socket.SHUT_WR)
t:join()
local dead = socket.socket()
srv:close()
pcall(dead.connect, dead, "127.0.0.1", port)
dead:close()
]])
    for _, l in ipairs(lines) do
      assert.matches("^%d+%.%d%d%d %S", l)       -- seconds since the start, 3 decimals
    end
    assert.matches("^0%.%d%d%d socket%(AF_INET, SOCK_STREAM%) %-> sock#1$", lines[1])
    find(lines, "^%d+%.%d+ sock#1 bind%(127%.0%.0%.1, 0%) %-> ok$")
    find(lines, "^%d+%.%d+ sock#1 listen%(5%) %-> ok$")
    local accepted = find(lines, " sock#1 accept%(%) %-> conn#%d+ 127%.0%.0%.1:%d+")
    local conn = accepted:match("(conn#%d+)")
    local sent, at = find(lines, ' sock#%d+ send%(13 bytes "hello, world\\n"%) %-> 13$')
    find(lines, " " .. conn .. ' recv%(1024%) %-> 13 bytes "hello, world\\n" %(waited 0%.0%d%d s%)$')
    find(lines, " " .. conn .. ' sendall%(13 bytes "hello, world\\n"%) %-> ok$', at)
    find(lines, " sock#%d+ shutdown%(SHUT_WR%) %-> ok$")
    find(lines, " " .. conn .. " recv%(10%) %-> 0 bytes %(EOF%)")
    find(lines, " " .. conn .. " close%(%) %-> ok$")
    find(lines, " sock#%d+ connect%(127%.0%.0%.1, %d+%) %-> ECONNREFUSED$")
    -- the 50 ms sleep shows in the clock
    local t1 = tonumber(accepted:match("^(%S+)"))
    local t2 = tonumber(sent:match("^(%S+)"))
    assert.is_true(t2 - t1 >= 0.045, ("send at %s, accept at %s"):format(t2, t1))
  end))

  it("covers the sockets of socketserver, http.server and http.client", bounded(30, function()
    local out, lines = traced([[
local hs, hc = require "http.server", require "http.client"
local H = hs.BaseHTTPRequestHandler:extend()
function H:do_GET()
  self:send_response(200)
  self:send_header("Content-Length", 2)
  self:end_headers()
  self.wfile:write("hi")
end
function H:log_message() end
local srv = hs.ThreadingHTTPServer({"127.0.0.1", 0}, H)
srv:start()
print(hc.get("http://localhost:" .. srv.server_address[2] .. "/").body)
srv:shutdown()
srv:server_close()
]])
    assert.are.equal("hi\n", out)
    find(lines, " sock#1 setsockopt%(SOL_SOCKET, SO_REUSEADDR, 1%) %-> ok$")
    find(lines, " getaddrinfo%(localhost, %d+%) %-> 127%.0%.0%.1")
    find(lines, ' sock#%d+ sendall%(%d+ bytes "GET / HTTP/1%.1\\r\\n')
    local _, i = find(lines, " sock#1 accept%(%) %-> conn#%d+ ")
    -- the reply leaves by sendall, where the trace sees it
    find(lines, ' conn#%d+ sendall%(%d+ bytes "HTTP/1%.1 200 OK\\r\\n', i)
    find(lines, ' sock#%d+ recv%(65536%) %-> %d+ bytes "HTTP/1%.1 200 OK\\r\\n')
  end))

  it("traces the prompt's sockets under -i, and changes no result or message", bounded(30, function()
    -- argument errors of C and Lua methods, called every way
    local session = [[
socket = require "socket"
s = socket.socket()
print(select(2, pcall(function() s:bind("127.0.0.1", "x") end)))
print(select(2, pcall(function() s:listen("many") end)))
print(select(2, pcall(s.bind, s)))
print(select(2, pcall(function() socket.Socket.bind(42) end)))
print(select(2, pcall(function() s:sendfile(42) end)))
print(select(2, pcall(function() socket.socket("x") end)))
print(select(2, pcall(function() socket.getaddrinfo() end)))
s:close()
]]
    local out, lines = traced("x = 1", {stdin = session, args = {"-i"}})
    find(lines, "sock#1 close%(%) %-> ok")
    local r = process.run{support.wirelab, "-i", stdin = session, timeout = 10}
    assert.are.equal(r.stdout, out)
    assert.matches("bad argument #2 to 'bind'", out)
    assert.matches("stdin:%d+: bad argument #1 to 'sendfile'", out)
    find(lines, 'sock#1 bind%(127%.0%.0%.1, "x"%) %-> error: stdin:%d+: bad argument #2 to \'bind\'')
    find(lines, "sock#1 sendfile%(42%) %-> error: ")
  end))

  it("costs nothing untraced: the methods are the C functions themselves", bounded(10, function()
    local probe = [[
local S = require("socket").Socket
print(debug.getinfo(S.recv, "S").what, debug.getinfo(S.send, "S").what)]]
    local r = process.run{support.wirelab, "-e", probe, timeout = 10}
    assert.are.equal("C\tC\n", r.stdout)
    local out = traced(probe)
    assert.are.equal("Lua\tLua\n", out)
  end))
end)
