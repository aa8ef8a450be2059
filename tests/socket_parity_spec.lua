-- socket_parity_spec: where a student moving course code from Python 3.11
-- would compare, wirelab's socket module does what Python's does. Each
-- title names the Python behaviour; where it is cheap, the same scenario
-- runs in python3 on this machine and the two outputs are compared.
local socket = require "socket"
local wirelab = require "wirelab"
local process = require "process"
local support = require "support"
local bounded = support.bounded      -- and it checks that no handle leaked

-- Runs a Python 3 program, returns its stdout; fails the spec on error.
local function python(code)
  local r = process.run{"python3", "-c", code, timeout = 10}
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

-- A port with nobody listening on it.
local function dead_port()
  local probe <close> = socket.socket()
  probe:bind("127.0.0.1", 0)
  local _, port = probe:getsockname()
  return port
end

describe("socket parity: connect", function()
  it("a retried connect after ECONNREFUSED raises ECONNREFUSED each time (Python's blocking socket)",
     bounded(10, function()
    local port = dead_port()
    local py = python(([[
import socket
s = socket.socket()
for i in range(3):
    try: s.connect(("127.0.0.1", %d))
    except OSError as e: print(e.errno == 111 and "ECONNREFUSED" or e.errno)
]]):format(port))
    local got = {}
    for _, timeout in ipairs({false, 2}) do
      local s <close> = socket.socket()
      if timeout then s:settimeout(timeout) end
      for _ = 1, 3 do
        local ok, err = pcall(s.connect, s, "127.0.0.1", port)
        assert.is_false(ok)
        got[#got + 1] = err.code
      end
    end
    assert.are.equal(("ECONNREFUSED\n"):rep(3), py)
    assert.are.same({"ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED",
                     "ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED"}, got)
    -- and the socket is still usable: once someone listens, it connects
    local s <close> = socket.socket()
    assert.are.equal("ECONNREFUSED", s:connect_ex("127.0.0.1", port))
    local srv <close> = socket.socket()
    srv:setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv:bind("127.0.0.1", port)
    srv:listen()
    assert.are.equal(0, s:connect_ex("127.0.0.1", port))
  end))

  it("connect_ex on a connected socket returns EISCONN, as Python's returns errno 106", bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local py = python(([[
import socket, errno
s = socket.socket()
print(s.connect_ex(("127.0.0.1", %d)), errno.errorcode[s.connect_ex(("127.0.0.1", %d))])
]]):format(port, port))
    local c <close> = socket.socket()
    local first, second = c:connect_ex("127.0.0.1", port), c:connect_ex("127.0.0.1", port)
    assert.are.equal(py, ("%s %s\n"):format(first, second))
    assert.are.equal("0 EISCONN\n", py)
    local ok, err = pcall(c.connect, c, "127.0.0.1", port)
    assert.is_false(ok)
    assert.are.equal("EISCONN", err.code)
  end))
end)

describe("socket parity: arguments", function()
  it("a host with an embedded NUL is a bad argument, as Python raises TypeError", bounded(10, function()
    local py = python([[
import socket
s = socket.socket()
for f in (lambda: s.connect(("127.0.0.1\0evil", 80)), lambda: s.bind(("127.0.0.1\0evil", 0))):
    try: f()
    except TypeError as e: print("TypeError")
]])
    assert.are.equal("TypeError\nTypeError\n", py)
    local evil = "127.0.0.1\0evil"
    local s <close> = socket.socket()
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local calls = {
      {"connect", function() return s:connect(evil, 80) end},
      {"connect_ex", function() return s:connect_ex(evil, 80) end},
      {"bind", function() return s:bind(evil, 0) end},
      {"sendto", function() return u:sendto("x", evil, 9) end},
      {"getaddrinfo", function() return socket.getaddrinfo(evil, 80) end},
      {"gethostbyname", function() return socket.gethostbyname(evil) end},
      {"create_connection", function() return socket.create_connection(evil, 80) end},
    }
    for _, c in ipairs(calls) do
      local ok, err = pcall(c[2])
      assert.is_false(ok, c[1])
      assert.is_string(err, c[1])
      assert.matches("bad argument #%d to '" .. c[1] .. "' %(host name must not contain a NUL byte%)", err)
    end
    -- nothing was connected or bound: the socket is as new
    assert.has_error(function() s:getpeername() end)
    local host, port = s:getsockname()
    assert.are.same({"0.0.0.0", 0}, {host, port})
  end))

  it("recv(1 << 40) raises ENOMEM (Python's MemoryError), recv(2^63) a bad argument (OverflowError)",
     bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local c <close> = socket.create_connection(srv:getsockname())
    local py = python([[
import socket
a, b = socket.socketpair()
for n in (1 << 40, 1 << 63):
    try: a.recv(n)
    except (MemoryError, OverflowError) as e: print(type(e).__name__)
]])
    assert.are.equal("MemoryError\nOverflowError\n", py)
    local huge = {recv = function() return c:recv(2^63) end,
                  recvfrom = function() return c:recvfrom(2^63) end}
    for _, op in ipairs({"recv", "recvfrom"}) do
      local ok, err = pcall(c[op], c, 1 << 40)
      assert.is_false(ok)
      assert.are.equal("ENOMEM", err.code)
      assert.are.equal(op, err.op)
      ok, err = pcall(huge[op])
      assert.is_false(ok)
      assert.matches("bad argument #1 to '" .. op .. "' %(number has no integer representation%)", err)
    end
    -- the limit is 1 GiB: just under it, recv still reads what has come
    local peer <close> = srv:accept()
    peer:sendall("still here")
    assert.are.equal("still here", c:recv(1 << 30))
  end))
end)

describe("socket parity: numeric hosts", function()
  -- every form inet_aton takes: fewer parts, octal, hex, one number
  local FORMS = {"127.1", "127.0.1", "0x7f.1", "017.0.0.1", "2130706433", "0x7f000001", "1.2.3",
                 "127.0.0.1", "", "<broadcast>"}

  it("gethostbyname returns the dotted quad of every inet_aton form, as Python's", bounded(10, function()
    local quoted = {}
    for i, f in ipairs(FORMS) do quoted[i] = ("%q"):format(f) end
    local py = python("import socket\nfor h in [" .. table.concat(quoted, ", ") .. "]:\n"
                      .. "    print(socket.gethostbyname(h))\n")
    local got = {}
    for i, f in ipairs(FORMS) do got[i] = socket.gethostbyname(f) end
    assert.are.equal(py, table.concat(got, "\n") .. "\n")
    assert.are.equal("127.0.0.1", got[1])
    assert.are.equal("15.0.0.1", got[4])             -- a leading 0 is octal
  end))

  it("bind, connect and create_connection take 127.1, as Python does", bounded(10, function()
    local srv <close> = socket.socket()
    srv:bind("127.1", 0)
    srv:listen()
    local host, port = srv:getsockname()
    assert.are.equal("127.0.0.1", host)
    local c <close> = socket.socket()
    c:connect("127.1", port)
    assert.are.same({"127.0.0.1", port}, {c:getpeername()})
    local c2 <close> = socket.create_connection("0x7f.1", port)
    assert.are.same({"127.0.0.1", port}, {c2:getpeername()})
    local v6 <close> = socket.socket(socket.AF_INET6)   -- mapped, as a dotted quad is
    v6:connect("127.1", port)
    assert.are.same({"::ffff:127.0.0.1", port}, {v6:getpeername()})
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:bind("127.1", 0)
    u:sendto("to 127.1", "127.1", (select(2, u:getsockname())))
    u:settimeout(2)
    assert.are.equal("to 127.1", u:recv(100))
    -- still malformed: a part too large is no address
    local bad <close> = socket.socket()
    local ok, err = pcall(bad.bind, bad, "999.1.1.1", 0)
    assert.is_false(ok)
    assert.are.equal("EINVAL", err.code)
  end))

  -- addr.c reads and writes the plain dotted quad itself (it is on every
  -- datagram): parts of one, two and three digits, 0 and 255, both ways
  it("recvfrom and getsockname write every dotted quad as sendto reads it", bounded(10, function()
    local srv <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv:bind("127.0.0.1", 0)
    srv:settimeout(2)
    local port = select(2, srv:getsockname())
    for _, host in ipairs{"127.0.0.1", "127.10.100.255", "127.255.0.9", "127.1.22.200", "127.0.0.0"} do
      local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      c:bind(host, 0)
      assert.are.equal(host, (c:getsockname()))
      c:sendto(host, "127.0.0.1", port)
      local data, from, from_port = srv:recvfrom(100)
      assert.are.same({host, host, select(2, c:getsockname())}, {data, from, from_port})
      srv:sendto("back", from, from_port)        -- the written form reads back
      c:settimeout(2)
      assert.are.equal("back", c:recv(100))
    end
    -- a leading zero is inet_aton's octal, not the plain quad's decimal
    local c <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c:connect("127.0.0.010", 9)                  -- UDP connect sends nothing
    assert.are.equal("127.0.0.8", (c:getpeername()))
  end))
end)

describe("socket parity: getaddrinfo", function()
  it("gives Python's entries: one per socket type, with proto and canonname", bounded(10, function()
    -- each case as Python and Lua arguments; "localhost" comes from /etc/hosts
    local cases = {
      {py = '"localhost", 8080', lua = {"localhost", 8080}},
      {py = '"127.0.0.1", 8080', lua = {"127.0.0.1", 8080}},
      {py = '"localhost", None', lua = {"localhost", nil}},
      {py = '"::1", 80', lua = {"::1", 80}},
      {py = 'None, 80', lua = {nil, 80}},
      {py = '"localhost", "http"', lua = {"localhost", "http"}},
      {py = '"localhost", 80, 0, socket.SOCK_STREAM', lua = {"localhost", 80, 0, socket.SOCK_STREAM}},
      {py = '"localhost", 80, socket.AF_INET, 0, socket.IPPROTO_UDP',
       lua = {"localhost", 80, socket.AF_INET, 0, socket.IPPROTO_UDP}},
      {py = '"localhost", None, 0, 0, 0, socket.AI_CANONNAME',
       lua = {"localhost", nil, 0, 0, 0, socket.AI_CANONNAME}},
      {py = 'None, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE',
       lua = {nil, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE}},
    }
    local prog = {"import socket"}
    for _, c in ipairs(cases) do
      prog[#prog + 1] = ("print(' '.join('%%d %%d %%d [%%s] %%s %%d' %% (f, t, p, cn, sa[0], sa[1])"
                         .. " for f, t, p, cn, sa in socket.getaddrinfo(%s)))"):format(c.py)
    end
    local py = python(table.concat(prog, "\n"))
    local lines = {}
    for i, c in ipairs(cases) do
      local list = socket.getaddrinfo(table.unpack(c.lua, 1, 6))
      local t = {}
      for j, e in ipairs(list) do
        t[j] = ("%d %d %d [%s] %s %d"):format(e.family, e.type, e.proto, e.canonname, e.host, e.port)
      end
      lines[i] = table.concat(t, " ")
    end
    assert.are.equal(py, table.concat(lines, "\n") .. "\n")
    -- the three of the first case, spelled out
    local list = socket.getaddrinfo("localhost", 8080)
    assert.are.equal(3, #list)
    assert.are.same({socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW},
                    {list[1].type, list[2].type, list[3].type})
    assert.are.same({socket.IPPROTO_TCP, socket.IPPROTO_UDP, 0}, {list[1].proto, list[2].proto, list[3].proto})
  end))

  it("raises Python's gaierror codes as error objects", bounded(10, function()
    local ok, err = pcall(socket.getaddrinfo, "localhost", "no-such-service")
    assert.is_false(ok)
    assert.are.equal("EAI_SERVICE", err.code)
    assert.are.equal("getaddrinfo localhost:no-such-service: service not available for socket type (EAI_SERVICE)",
                     tostring(err))
    ok, err = pcall(socket.getaddrinfo, nil, nil)
    assert.are.equal("EAI_NONAME", err.code)
    ok, err = pcall(socket.getaddrinfo, ("a"):rep(64) .. ".example", 80)
    assert.are.equal("EAI_NONAME", err.code)
    ok, err = pcall(function() return socket.getaddrinfo("localhost", 70000) end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'getaddrinfo' %(port out of range 0%-65535%)", err)
  end))
end)

describe("socket parity: names on a non-blocking socket", function()
  it("settimeout(0): bind, connect and sendto resolve the name, then make the non-blocking call "
     .. "(Python: connect raises BlockingIOError EINPROGRESS)", bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local py = python(([[
import socket, errno
s = socket.socket(); s.settimeout(0); s.bind(("localhost", 0)); print(s.getsockname()[0])
try: s.connect(("localhost", %d))
except BlockingIOError as e: print(errno.errorcode[e.errno])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(0)
print(u.sendto(b"hi", ("localhost", %d)))
]]):format(port, port))
    local got = {}
    local s <close> = socket.socket()
    s:settimeout(0)
    s:bind("localhost", 0)
    got[1] = (s:getsockname())
    local ok, err = pcall(s.connect, s, "localhost", port)
    assert.is_false(ok)
    got[2] = err.code
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:settimeout(0)
    got[3] = u:sendto("hi", "localhost", port)
    assert.are.equal(py, table.concat(got, "\n") .. "\n")
    assert.are.equal("127.0.0.1\nEINPROGRESS\n2\n", py)
    -- the handshake went on in the kernel: the server has the client
    -- (after Python's, which connected first)
    srv:settimeout(2)
    local _, mine = s:getsockname()
    local ports = {}
    for i = 1, 2 do
      local conn <close> = srv:accept()
      ports[i] = select(2, conn:getpeername())
    end
    assert.are.equal(mine, ports[2])
  end))

  it("a lookup is not bounded by the socket's timeout, as in Python", bounded(10, function()
    -- the smallest positive timeout still expires before the thread pool answers
    local s <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s:settimeout(1e-9)
    s:bind("localhost", 0)
    assert.are.equal("127.0.0.1", (s:getsockname()))
  end))
end)

describe("socket parity: setdefaulttimeout", function()
  it("reaches accepted sockets, create_server and fromfd, as Python's does", bounded(10, function()
    local py = python([[
import socket
socket.setdefaulttimeout(1.5)
srv = socket.create_server(("127.0.0.1", 0)); print(srv.gettimeout())
srv.settimeout(None)
c = socket.create_connection(srv.getsockname()); conn, _ = srv.accept(); print(c.gettimeout(), conn.gettimeout())
print(socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM).gettimeout())
socket.setdefaulttimeout(None)
srv.settimeout(2)
c = socket.create_connection(srv.getsockname()); conn, _ = srv.accept(); print(conn.gettimeout())
]])
    local function show(t) return t == nil and "None" or ("%.1f"):format(t) end
    local out = {}
    support.defer(function() socket.setdefaulttimeout(nil) end)   -- process-wide: put it back
    socket.setdefaulttimeout(1.5)
    assert.are.equal(1.5, socket.getdefaulttimeout())
    local srv <close> = socket.create_server("127.0.0.1", 0)
    out[#out + 1] = show(srv:gettimeout())
    srv:settimeout(nil)
    local c <close> = socket.create_connection(srv:getsockname())
    local conn <close> = srv:accept()
    out[#out + 1] = show(c:gettimeout()) .. " " .. show(conn:gettimeout())
    local f <close> = socket.fromfd(conn:fileno(), socket.AF_INET, socket.SOCK_STREAM)
    out[#out + 1] = show(f:gettimeout())
    socket.setdefaulttimeout(nil)
    srv:settimeout(2)                    -- the listener's own timeout is not inherited
    local c2 <close> = socket.create_connection(srv:getsockname())
    local conn2 <close> = srv:accept()
    out[#out + 1] = show(conn2:gettimeout())
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal("1.5\n1.5 1.5\n1.5\nNone\n", py)
    -- and an accepted socket under the default really times out
    local c3 <close> = socket.create_connection(srv:getsockname())
    socket.setdefaulttimeout(0.2)
    local conn3 <close> = srv:accept()
    socket.setdefaulttimeout(nil)
    local ok, err = pcall(conn3.recv, conn3, 1)
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
  end))

  it("refuses a negative timeout, as Python raises ValueError", bounded(5, function()
    local ok, err = pcall(function() socket.setdefaulttimeout(-1) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'setdefaulttimeout'", err)
    assert.is_nil(socket.getdefaulttimeout())
  end))
end)

describe("socket parity: recv flags", function()
  -- a connected pair: c (ours) and p (its peer), and a to-be-closed
  -- value that closes both
  local function pair()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local c = socket.create_connection(srv:getsockname())
    local p = srv:accept()
    return c, p, setmetatable({}, {__close = function() c:close(); p:close() end})
  end

  it("recv(n, MSG_WAITALL) waits for all n bytes from a Python peer, as Python's blocking recv does",
     bounded(10, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local _, port = srv:getsockname()
    local p = support.spawn{"python3", "-c", ([[
import socket, time
s = socket.create_connection(("127.0.0.1", %d))
s.sendall(b"12345"); time.sleep(0.3); s.sendall(b"67890abc"); time.sleep(0.2)
s.close()
]]):format(port)}
    local c <close> = srv:accept()
    -- ten bytes exist only after the second write, 0.3 s after the first
    assert.are.equal("1234567890", c:recv(10, socket.MSG_WAITALL))
    assert.are.equal("abc", c:recv(100, socket.MSG_WAITALL))     -- then end of file
    assert.are.equal(0, (p:wait(5)))
    p:close()
  end))

  it("MSG_WAITALL ends at end of file, at the timeout with what has come, and on close (EBADF)",
     bounded(10, function()
    local c, p, _c <close> = pair()
    -- under a timeout: all n if they come in time (Python's timeout socket
    -- returns the first 5 at once; docs/socket.md says why wirelab waits)
    c:settimeout(2)
    local feeder = wirelab.spawn(function() p:sendall("12345"); wirelab.sleep(0.2); p:sendall("67890") end)
    assert.are.equal("1234567890", c:recv(10, socket.MSG_WAITALL))
    feeder:join()
    -- the timeout passes with 5 of 10: the 5, as SO_RCVTIMEO gives them
    c:settimeout(0.2)
    p:sendall("12345")
    local t0 = wirelab.now()
    assert.are.equal("12345", c:recv(10, socket.MSG_WAITALL))
    assert.is_true(wirelab.now() - t0 >= 0.18)
    -- nothing at all: ETIMEDOUT, as any recv
    local ok, err = pcall(c.recv, c, 10, socket.MSG_WAITALL)
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
    -- non-blocking: what is there, at once (Python's too)
    c:settimeout(0)
    p:sendall("xyz")
    wirelab.sleep(0.05)
    assert.are.equal("xyz", c:recv(10, socket.MSG_WAITALL))
    ok, err = pcall(c.recv, c, 10, socket.MSG_WAITALL)
    assert.are.equal("EAGAIN", err.code)
    -- close() from another task wakes the waiting one
    c:settimeout(nil)
    local reader = wirelab.spawn(function() return c:recv(10, socket.MSG_WAITALL) end)
    wirelab.sleep(0.01)
    c:close()
    ok, err = pcall(reader.join, reader)
    assert.is_false(ok)
    assert.are.equal("EBADF", err.code)
    -- with MSG_PEEK, one peek at what has come (documented), consuming nothing
    local c3, p3, _c3 <close> = pair()
    p3:sendall("abc")
    wirelab.sleep(0.05)
    assert.are.equal("abc", c3:recv(10, socket.MSG_WAITALL | socket.MSG_PEEK))
    assert.are.equal("abc", c3:recv(10))
    -- end of file after 2: the 2
    local c2, p2, _c2 <close> = pair()
    p2:sendall("ab")
    p2:shutdown(socket.SHUT_WR)
    assert.are.equal("ab", c2:recv(10, socket.MSG_WAITALL))
    assert.are.equal("", c2:recv(10, socket.MSG_WAITALL))
  end))

  it("a reset after some bytes: MSG_WAITALL returns them, the next recv raises ECONNRESET (Python's)",
     bounded(10, function()
    local py = python([[
import socket, struct, threading, time
srv = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(srv.getsockname()); p, _ = srv.accept()
def go():
    time.sleep(0.1); p.sendall(b"12345"); time.sleep(0.1)
    p.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); p.close()
threading.Thread(target=go).start()
print(c.recv(10, socket.MSG_WAITALL).decode())
try: c.recv(10)
except ConnectionResetError: print("ECONNRESET")
print(repr(c.recv(10)))
]])
    local c, p, _c <close> = pair()
    wirelab.spawn(function()
      wirelab.sleep(0.1)
      p:sendall("12345")
      wirelab.sleep(0.1)
      p:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
      p:close()
    end)
    local out = {c:recv(10, socket.MSG_WAITALL)}
    local ok, err = pcall(c.recv, c, 10)
    out[2] = not ok and err.code or "no error"
    out[3] = ("b'%s'"):format(c:recv(10))
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal("12345\nECONNRESET\nb''\n", py)
  end))

  it("recv(0) returns '' and leaves the datagram queued; recvfrom(0) consumes it (Python's both)",
     bounded(10, function()
    local py = python([[
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
u.sendto(b"hello", u.getsockname()); time.sleep(0.05)
print(repr(u.recv(0)), repr(u.recv(100)))
u.sendto(b"hello", u.getsockname()); u.sendto(b"next", u.getsockname()); time.sleep(0.05)
print(repr(u.recvfrom(0)[0]), repr(u.recv(100)))
]])
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:bind("127.0.0.1", 0)
    u:settimeout(2)
    u:sendto("hello", u:getsockname())
    local out = {("b'%s' b'%s'"):format(u:recv(0), u:recv(100))}
    u:sendto("hello", u:getsockname())
    u:sendto("next", u:getsockname())
    out[2] = ("b'%s' b'%s'"):format((u:recvfrom(0)), u:recv(100))
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal("b'' b'hello'\nb'' b'next'\n", py)
    -- recv(0) makes no call, so it does not wait either
    local t0 = wirelab.now()
    assert.are.equal("", u:recv(0))
    assert.is_true(wirelab.now() - t0 < 0.1)
  end))

  it("MSG_TRUNC gives the datagram's real length, as Python's (the bytes past n are zeros here)",
     bounded(10, function()
    local py = python([[
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
u.sendto(b"helloworld", u.getsockname()); time.sleep(0.05)
d = u.recv(2, socket.MSG_TRUNC); print(len(d), d[:2].decode())
u.sendto(b"helloworld", u.getsockname()); time.sleep(0.05)
d, a = u.recvfrom(3, socket.MSG_TRUNC | socket.MSG_PEEK); print(len(d), d[:3].decode(), a[0])
print(len(u.recv(100)))
]])
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:bind("127.0.0.1", 0)
    u:settimeout(2)
    u:sendto("helloworld", u:getsockname())
    local d = u:recv(2, socket.MSG_TRUNC)
    local out = {("%d %s"):format(#d, d:sub(1, 2))}
    assert.are.equal("he" .. ("\0"):rep(8), d)
    u:sendto("helloworld", u:getsockname())
    local d2, host = u:recvfrom(3, socket.MSG_TRUNC | socket.MSG_PEEK)
    out[2] = ("%d %s %s"):format(#d2, d2:sub(1, 3), host)
    out[3] = tostring(#u:recv(100))
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal("10 he\n10 hel 127.0.0.1\n10\n", py)
    -- on TCP, MSG_TRUNC discards: the count, as zeros, never stale bytes
    local c, p, _c <close> = pair()
    c:settimeout(2)
    assert.are.equal("", u:recv(0))
    p:sendall("secret")
    wirelab.sleep(0.05)
    assert.are.equal(("\0"):rep(6), c:recv(100, socket.MSG_TRUNC))
  end))

  it("MSG_DONTWAIT raises EAGAIN at once on a blocking socket (Python's BlockingIOError)", bounded(10, function()
    local py = python([[
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
try: u.recv(100, socket.MSG_DONTWAIT)
except BlockingIOError: print("EAGAIN", u.gettimeout())
]])
    assert.are.equal("EAGAIN None\n", py)
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u:bind("127.0.0.1", 0)
    for _, op in ipairs({"recv", "recvfrom"}) do
      local t0 = wirelab.now()
      local ok, err = pcall(u[op], u, 100, socket.MSG_DONTWAIT)
      assert.is_false(ok)
      assert.are.equal("EAGAIN", err.code)
      assert.is_true(wirelab.now() - t0 < 0.1)
    end
    u:sendto("here", u:getsockname())
    wirelab.sleep(0.05)
    assert.are.equal("here", u:recv(100, socket.MSG_DONTWAIT))
    local c, p, _c <close> = pair()
    local ok, err = pcall(c.recv, c, 100, socket.MSG_DONTWAIT)
    assert.are.equal("EAGAIN", err.code)
    assert.is_nil(c:gettimeout())           -- the socket itself stays blocking
  end))
end)

describe("socket parity: send", function()
  local MiB4 = 4 << 20

  -- a listener whose every client is read to the end; join() gives the counts
  local function sink()
    local srv = socket.create_server("127.0.0.1", 0)
    local counts, tasks = {}, {}
    local acceptor = wirelab.spawn(function()
      while true do
        local conn = srv:accept()
        tasks[#tasks + 1] = wirelab.spawn(function()
          local total = 0
          while true do
            local d = conn:recv(65536)
            if d == "" then break end
            total = total + #d
          end
          conn:close()
          counts[#counts + 1] = total
        end)
      end
    end)
    local _, port = srv:getsockname()
    return port, function()
      for _, t in ipairs(tasks) do t:join() end
      acceptor:cancel()
      srv:close()
      return counts
    end
  end

  it("a blocking send of 4 MiB returns 4 MiB once the kernel has taken it all, as Python's",
     bounded(20, function()
    local port, done = sink()
    local py = python(([[
import socket
s = socket.create_connection(("127.0.0.1", %d))
print(s.send(b"y" * (4 << 20)))
s.close()
]]):format(port))
    local c <close> = socket.create_connection("127.0.0.1", port)
    local n = c:send(("y"):rep(MiB4))
    c:close()
    assert.are.equal(py, n .. "\n")
    assert.are.equal(MiB4 .. "\n", py)
    assert.are.same({MiB4, MiB4}, done())
  end))

  it("with a timeout or non-blocking, send is partial, as Python's", bounded(20, function()
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local c <close> = socket.create_connection(srv:getsockname())
    local peer <close> = srv:accept()                 -- never reads
    c:settimeout(1)
    local n = c:send(("y"):rep(MiB4))
    assert.is_true(n > 0 and n < MiB4, n)
    c:settimeout(0)
    local ok, r = pcall(c.send, c, ("y"):rep(MiB4))
    assert.is_true((ok and r < MiB4) or r.code == "EAGAIN")
    -- MSG_DONTWAIT: the same on a blocking socket, for this call only
    c:settimeout(nil)
    ok, r = pcall(c.send, c, ("y"):rep(MiB4), socket.MSG_DONTWAIT)
    assert.is_true((ok and r < MiB4) or r.code == "EAGAIN")
    assert.is_nil(c:gettimeout())
  end))

  it("a reset during a blocking send: the bytes sent, then ECONNRESET, as Python's", bounded(20, function()
    local py = python([[
import socket, struct, threading, time, fcntl, termios, array
srv = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(srv.getsockname()); p, _ = srv.accept()
data = b"x" * (64 << 20)
def queued():
    q = array.array("i", [0]); fcntl.ioctl(c.fileno(), termios.TIOCOUTQ, q); return q[0]
def go():
    # the reset must find send() blocked on a full buffer, however slow
    # this machine is today: a fixed sleep from the start lost that race
    t = time.time()
    while queued() == 0 and time.time() - t < 10: time.sleep(0.01)
    time.sleep(0.2)
    p.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); p.close()
threading.Thread(target=go).start()
n = c.send(data)
print(0 < n < (64 << 20))
try: c.send(b"x")
except ConnectionResetError: print("ECONNRESET")
]])
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local c <close> = socket.create_connection(srv:getsockname())
    local p = srv:accept()
    wirelab.spawn(function()
      wirelab.sleep(0.2)
      p:setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, {1, 0})
      p:close()
    end)
    local n = c:send(("x"):rep(64 << 20))
    local ok, err = pcall(c.send, c, "x")
    assert.is_false(ok)
    assert.are.equal(py, ("%s\n%s\n"):format(n > 0 and n < (64 << 20) and "True" or "False", err.code))
    assert.are.equal("True\nECONNRESET\n", py)
  end))
end)

describe("socket parity: address conversions", function()
  -- Python's OSError is an error object here, its TypeError, ValueError
  -- and OverflowError a bad argument: both sides print OSError/ArgError
  local PY_SHOW = [[
import socket
def show(f, *a):
    try:
        r = f(*a)
        print(r.hex() if isinstance(r, bytes) else r)
    except OSError: print("OSError")
    except (TypeError, ValueError, OverflowError): print("ArgError")
]]
  local PACKED = {inet_aton = true, inet_pton = true}     -- these return bytes
  local function show(name, ...)
    local ok, r = pcall(socket[name], ...)
    if not ok then return type(r) == "table" and "OSError" or "ArgError" end
    if PACKED[name] then return (r:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
    return tostring(r)
  end

  it("inet_aton, inet_ntoa, inet_pton and inet_ntop give Python's bytes, text and errors", bounded(10, function()
    local calls = {
      {"inet_aton", '"127.1"'}, {"inet_aton", '"0x7f.1"'}, {"inet_aton", '"017.0.0.1"'},
      {"inet_aton", '"2130706433"'}, {"inet_aton", '"1.2.3"'}, {"inet_aton", '"bad"'},
      {"inet_aton", '"256.1.1.1"'},
      {"inet_ntoa", '"\\x7f\\x00\\x00\\x01"'}, {"inet_ntoa", '"\\x7f\\x00\\x00"'},
      {"inet_pton", 'socket.AF_INET, "127.0.0.1"'}, {"inet_pton", 'socket.AF_INET, "127.1"'},
      {"inet_pton", 'socket.AF_INET6, "::1"'}, {"inet_pton", 'socket.AF_INET6, "2001:db8::1"'},
      {"inet_pton", 'socket.AF_INET6, "zz"'}, {"inet_pton", '99, "::1"'},
      {"inet_ntop", 'socket.AF_INET, "\\x7f\\x00\\x00\\x01"'}, {"inet_ntop", 'socket.AF_INET, "\\x7f\\x00"'},
      {"inet_ntop", 'socket.AF_INET6, "\\x00" * 15 + "\\x01"'}, {"inet_ntop", '99, "\\x00" * 4'},
    }
    local prog = {PY_SHOW}
    local mine = {}
    for i, c in ipairs(calls) do
      -- Python wants bytes where Lua has strings: b"..." for packed arguments
      local pyargs = c[2]
      if c[1] == "inet_ntoa" or c[1] == "inet_ntop" then
        pyargs = pyargs:gsub('"([^"]*)"', 'b"%1"')
      end
      prog[#prog + 1] = ("show(socket.%s, %s)"):format(c[1], pyargs)
      -- and Lua writes "\x00" * 15 + "\x01" as ("\x00"):rep(15) .. "\x01"
      local luaargs = c[2]:gsub('"\\x00" %* (%d+)', '("\\x00"):rep(%1)'):gsub("%+", "..")
      mine[i] = show(c[1], load("local socket = ...; return " .. luaargs)(socket))
    end
    local py = python(table.concat(prog, "\n"))
    assert.are.equal(py, table.concat(mine, "\n") .. "\n")
    assert.are.equal("7f000001", mine[1])
  end))

  it("htons, ntohs, htonl and ntohl swap bytes and refuse what does not fit, as Python's", bounded(10, function()
    local calls = {
      {"htons", 1}, {"ntohs", 258}, {"htons", 65535}, {"htons", 65536}, {"htons", -1},
      {"htonl", 1}, {"ntohl", 0x01020304}, {"htonl", 0xffffffff}, {"htonl", 1 << 32}, {"ntohl", -1},
    }
    local prog, mine = {PY_SHOW}, {}
    for i, c in ipairs(calls) do
      prog[#prog + 1] = ("show(socket.%s, %d)"):format(c[1], c[2])
      mine[i] = show(c[1], c[2])
    end
    assert.are.equal(python(table.concat(prog, "\n")), table.concat(mine, "\n") .. "\n")
    assert.are.equal("256", mine[1])
  end))
end)

describe("socket parity: socketpair, dup, getblocking", function()
  it("socketpair() is a connected AF_UNIX stream pair with the default timeout, as Python's",
     bounded(10, function()
    local py = python([[
import socket
socket.setdefaulttimeout(2.5)
a, b = socket.socketpair()
print(int(a.family), int(a.type), a.gettimeout())
a.sendall(b"ping"); print(b.recv(10).decode())
b.close(); print(repr(a.recv(10)))
try: socket.socketpair(socket.AF_INET)
except OSError as e: print(e.errno)
u, v = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
u.send(b"one"); u.send(b"two"); print(v.recv(10).decode(), v.recv(10).decode())
]])
    support.defer(function() socket.setdefaulttimeout(nil) end)
    socket.setdefaulttimeout(2.5)
    local a, b = socket.socketpair()
    socket.setdefaulttimeout(nil)
    local out = {("%d %d %s"):format(a.family, a.type, a:gettimeout())}
    a:sendall("ping")
    out[2] = b:recv(10)
    b:close()
    out[3] = ("b'%s'"):format(a:recv(10))
    a:close()
    local ok, err = pcall(socket.socketpair, socket.AF_INET)
    assert.is_false(ok)
    out[4] = tostring(err.errno)
    local u, v = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    u:send("one")
    u:send("two")
    out[5] = v:recv(10) .. " " .. v:recv(10)
    u:close()
    v:close()
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal(socket.AF_UNIX, 1)
  end))

  it("dup() copies the descriptor and the timeout; getblocking() is false only for timeout 0 (Python's)",
     bounded(10, function()
    local py = python([[
import socket
s = socket.socket(); s.settimeout(3)
d = s.dup(); print(d.gettimeout(), d.fileno() != s.fileno(), int(d.family), int(d.type))
for t in (None, 1.0, 0.0):
    s.settimeout(t); print(s.getblocking())
]])
    local s <close> = socket.socket()
    s:settimeout(3)
    local d <close> = s:dup()
    local out = {("%.1f %s %d %d"):format(d:gettimeout(), d:fileno() ~= s:fileno() and "True" or "False",
                                          d.family, d.type)}
    for _, t in ipairs({false, 1.0, 0.0}) do
      s:settimeout(t or nil)
      out[#out + 1] = s:getblocking() and "True" or "False"
    end
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    -- the copy is the same socket: what one binds, the other shows
    s:bind("127.0.0.1", 0)
    assert.are.same({s:getsockname()}, {d:getsockname()})
    s:close()
    assert.are.equal("127.0.0.1", (d:getsockname()))      -- and outlives the original
  end))
end)

describe("socket parity: hosts and services", function()
  -- only names /etc/hosts answers (nsswitch: files first), so nothing
  -- goes to a name server; Python prints [] lists as Lua tables here
  local PY_HOST = [[
import socket
def show(f, *a):
    try:
        r = f(*a)
        print(" ".join([r[0], ",".join(r[1]), ",".join(r[2])]) if isinstance(r, tuple) else r)
    except OSError: print("OSError")
    except (TypeError, ValueError, OverflowError): print("ArgError")
]]
  local function show(f, ...)
    local ok, a, b, c = pcall(f, ...)
    if not ok then return type(a) == "table" and "OSError" or "ArgError" end
    if b == nil then return tostring(a) end
    return table.concat({a, table.concat(b, ","), table.concat(c, ",")}, " ")
  end

  it("gethostbyname_ex, gethostbyaddr and getfqdn give Python's names, aliases and addresses",
     bounded(10, function()
    local calls = {
      {"gethostbyname_ex", "localhost"}, {"gethostbyname_ex", "127.1"}, {"gethostbyname_ex", "127.0.0.1"},
      {"gethostbyaddr", "127.0.0.1"}, {"gethostbyaddr", "localhost"}, {"gethostbyaddr", "127.1"},
      {"getfqdn", "localhost"}, {"getfqdn", "127.0.0.1"}, {"getfqdn", " 127.1 "},
    }
    -- getfqdn() looks up this machine's name: only where /etc/hosts has it
    local f <close> = io.open("/etc/hosts")
    local hosts = f and f:read("a") or ""
    if hosts:find("%s" .. socket.gethostname():gsub("%p", "%%%0") .. "%f[%s\0]") then
      calls[#calls + 1] = {"getfqdn"}
    end
    local prog, mine = {PY_HOST}, {}
    for i, c in ipairs(calls) do
      prog[#prog + 1] = ("show(socket.%s%s)"):format(c[1], c[2] and (", %q"):format(c[2]) or "")
      mine[i] = show(socket[c[1]], c[2])
    end
    assert.are.equal(python(table.concat(prog, "\n")), table.concat(mine, "\n") .. "\n")
    assert.are.equal("localhost  127.0.0.1", mine[1])
  end))

  it("getservbyname and getservbyport read /etc/services as Python's", bounded(10, function()
    local calls = {
      {"getservbyname", '"http"'}, {"getservbyname", '"http", "tcp"'}, {"getservbyname", '"domain", "udp"'},
      {"getservbyname", '"nosuchsvc"'}, {"getservbyname", '"http", "xyz"'},
      {"getservbyport", "80"}, {"getservbyport", '22, "tcp"'}, {"getservbyport", '80, "udp"'},
      {"getservbyport", "65000"}, {"getservbyport", "70000"},
    }
    local prog, mine = {PY_HOST}, {}
    for i, c in ipairs(calls) do
      prog[#prog + 1] = ("show(socket.%s, %s)"):format(c[1], c[2])
      mine[i] = show(socket[c[1]], load("return " .. c[2])())
    end
    assert.are.equal(python(table.concat(prog, "\n")), table.concat(mine, "\n") .. "\n")
    assert.are.equal("80", mine[1])
    local ok, err = pcall(socket.getservbyname, "http", "xyz")
    assert.is_false(ok)
    assert.are.equal("getservbyname http/xyz: service not available for socket type (EAI_SERVICE)",
                     tostring(err))
  end))

  it("an unknown host raises EAI_NONAME; a NUL is a bad argument", bounded(10, function()
    local unknown = ("a"):rep(64) .. ".example"     -- refused before any query is sent
    for _, f in ipairs({"gethostbyname_ex", "gethostbyaddr"}) do
      local ok, err = pcall(socket[f], unknown)
      assert.is_false(ok)
      assert.are.equal("EAI_NONAME", err.code)
      assert.are.equal(f, err.op)
      ok, err = pcall(socket[f], "local\0host")
      assert.is_false(ok)
      assert.matches("host name must not contain a NUL byte", err)
    end
    assert.are.equal(unknown, socket.getfqdn(unknown))   -- Python's: the name as given
  end))

  it("lookups run on the thread pool: other tasks go on, and a task that leaves frees nothing early",
     bounded(10, function()
    local ticks = 0
    local ticker = wirelab.spawn(function() while true do ticks = ticks + 1; wirelab.sleep(0) end end)
    for _ = 1, 10 do
      socket.getservbyname("http")
      socket.gethostbyaddr("127.0.0.1")
      socket.gethostbyname_ex("localhost")
    end
    ticker:cancel()
    assert.is_true(ticks > 0)
    -- the answer may come before the interrupt (the loop polls once a
    -- task's 5 ms are over): then the task returns, and another try is made
    local caught = {interrupt = 0, cancel = 0}
    for _ = 1, 50 do
      for _, how in ipairs({"interrupt", "cancel"}) do
        local t = wirelab.spawn(function() return socket.gethostbyaddr("127.0.0.1") end)
        wirelab.sleep(0)
        t[how](t)
        local ok, err = pcall(t.join, t)
        if not ok then
          assert.are.equal(how == "interrupt" and "EINTR" or "ECANCELED", err.code)
          assert.are.equal("gethostbyaddr", err.op)
          caught[how] = caught[how] + 1
        end
      end
      if caught.interrupt > 0 and caught.cancel > 0 then break end
    end
    assert.is_true(caught.interrupt > 0 and caught.cancel > 0, "no task was caught in its lookup")
    for _ = 1, 10 do socket.getservbyport(80) end     -- the abandoned answers come meanwhile
  end))
end)

describe("socket parity: sendfile", function()
  -- a file of n bytes (a pseudo-random 64 KiB block, repeated) in a
  -- temporary directory, removed when the test ends
  local function temp_file(n)
    local dir = support.tmpdir()
    local t, x = {}, 11
    for i = 1, math.min(n, 65536) do
      x = (x * 1103515245 + 12345) % 2147483648
      t[i] = string.char(x % 256)
    end
    local block = table.concat(t)
    local data = block:rep(n // #block + 1):sub(1, n)
    support.write(dir .. "/data.bin", data)
    return dir .. "/data.bin", data
  end

  -- a listener that reads each client to the end; next() gives the bytes
  local function sink()
    local srv = socket.create_server("127.0.0.1", 0)
    local q = wirelab.queue()
    local acceptor = wirelab.spawn(function()
      while true do
        local conn = srv:accept()
        wirelab.spawn(function()
          local parts = {}
          while true do
            local d = conn:recv(65536)
            if d == "" then break end
            parts[#parts + 1] = d
          end
          conn:close()
          q:put(table.concat(parts))
        end)
      end
    end)
    local _, port = srv:getsockname()
    return port, function() return q:get(5) end, function() acceptor:cancel(); srv:close() end
  end

  it("sends a file, a path, an offset and a count as Python's socket.sendfile, moving the position as it does",
     bounded(30, function()
    local path, data = temp_file(300000)
    local port, next_data, stop = sink()
    local py = python(([[
import socket
def send(*a):
    s = socket.create_connection(("127.0.0.1", %d))
    with open(%q, "rb") as f:
        n = s.sendfile(f, *a)
        print(n, f.tell())
    s.close()
send(); send(100, 5000); send(299990); send(0, 10 ** 9)
]]):format(port, path))
    -- Python's four connections may end in any order here: sorted by size
    local py_got = {next_data(), next_data(), next_data(), next_data()}
    table.sort(py_got, function(a, b) return #a < #b end)
    local out, got = {}, {}
    for _, args in ipairs({{}, {100, 5000}, {299990}, {0, 1000000000}}) do
      local c <close> = socket.create_connection("127.0.0.1", port)
      local f <close> = assert(io.open(path, "rb"))
      local n = c:sendfile(f, table.unpack(args))
      out[#out + 1] = ("%d %d"):format(n, f:seek())
      c:close()
      got[#got + 1] = next_data()
    end
    -- and a path: the file is opened and closed here
    local c <close> = socket.create_connection("127.0.0.1", port)
    assert.are.equal(#data, c:sendfile(path))
    c:close()
    local whole = next_data()
    stop()
    assert.are.equal(py, table.concat(out, "\n") .. "\n")
    assert.are.equal("300000 300000\n5000 5100\n10 300000\n300000 300000\n", py)
    assert.is_true(got[1] == data and got[4] == data, "whole file differs")
    assert.is_true(got[2] == data:sub(101, 5100), "offset and count")
    assert.is_true(got[3] == data:sub(299991), "offset to the end")
    assert.is_true(whole == data, "by path")
    assert.is_true(py_got[1] == got[3] and py_got[2] == got[2] and py_got[3] == data
                   and py_got[4] == data, "Python's peer got other bytes")
  end))

  it("refuses what Python refuses: UDP, non-blocking, a bad count; a missing path raises ENOENT",
     bounded(10, function()
    local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local f <close> = assert(io.open("/dev/null", "rb"))
    assert.matches("only SOCK_STREAM", select(2, pcall(function() return u:sendfile(f) end)))
    local s <close> = socket.socket()
    s:settimeout(0)
    assert.matches("non%-blocking sockets are not supported", select(2, pcall(function() return s:sendfile(f) end)))
    s:settimeout(nil)
    assert.matches("bad argument #3 to 'sendfile'", select(2, pcall(function() return s:sendfile(f, 0, 0) end)))
    assert.matches("bad argument #1 to 'sendfile'", select(2, pcall(function() return s:sendfile(42) end)))
    local ok, err = pcall(s.sendfile, s, "/nonexistent/file")
    assert.is_false(ok)
    assert.are.equal("ENOENT", err.code)
    -- an empty file (or one of unknown size) sends nothing, as in Python
    assert.are.equal(0, s:sendfile(f))
  end))

  it("waits for a slow reader, and times out under the socket's timeout", bounded(20, function()
    local path, data = temp_file(16 << 20)
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local c <close> = socket.create_connection(srv:getsockname())
    local peer <close> = srv:accept()
    c:settimeout(0.3)
    local f <close> = assert(io.open(path, "rb"))
    local big = assert(io.open(path, "rb"))
    -- 16 MiB into a peer that does not read: more than the buffers hold
    local t0 = wirelab.now()
    local ok, err = pcall(c.sendfile, c, big, 0)
    big:close()
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(wirelab.now() - t0 >= 0.25)
    -- a reader that keeps up: all of it
    local c2 <close> = socket.create_connection(srv:getsockname())
    local p2 <close> = srv:accept()
    local reader = wirelab.spawn(function()
      local parts, n = {}, 0
      while n < #data do
        local d = p2:recv(65536)
        if d == "" then break end
        parts[#parts + 1] = d
        n = n + #d
      end
      return table.concat(parts)
    end)
    assert.are.equal(#data, c2:sendfile(f))
    assert.is_true(reader:join() == data)
  end))
end)
