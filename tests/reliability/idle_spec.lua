-- reliability/idle_spec: RELIABILITY.md item 22 (many idle connections):
-- 10 000 idle TCP connections held against a wirelab echo server
-- (socketserver.ThreadingTCPServer) and a wirelab HTTP server
-- (http.server.ThreadingHTTPServer), each a task per connection, in its
-- own process under `prlimit --nofile`, watched from /proc. The idle
-- connections are held by a python3 helper, also under prlimit, so this
-- process's own fd limit does not matter; the helper also times new
-- requests made meanwhile and reports each step as one line of key=value.
-- Loopback only; every loop bounded in count and time.
-- WIRELAB_TEST_VERBOSE=1 prints the numbers measured (RSS per connection,
-- latencies, how long the idle ones lived).
local wirelab = require "wirelab"
local process = require "process"

local CONNS = 10000               -- idle connections held
local NOFILE = CONNS + 1000       -- for the server and for the helper
local PROBES = 300               -- new requests timed while they are held
local KIB_PER_CONN = 8           -- target: server RSS per idle connection
-- what a request may leave on a kept-alive connection, beyond the fresh
-- connection's cost: its Lua state (0.5 KiB measured), not the parser's
-- and writer's buffers (1.4 KiB, which go back when a message is done)
local KIB_KEPT_OVER_FRESH = 1.25
local IDLE_TIMEOUT = 2           -- header_timeout and keepalive_timeout

-- Under AddressSanitizer RSS says more about the sanitizer than about the
-- server, and everything runs slower: no memory bounds, looser times.
local support = require "support"
local SANITIZED, note, bounded = support.SANITIZED, support.note, support.bounded
local stop, rss_kib, nfds = support.stop, support.rss_kib, support.nfds
local P99_LIMIT = SANITIZED and 0.5 or 0.1
local CLOSE_MARGIN = SANITIZED and 4 or 1.5    -- past IDLE_TIMEOUT
local EARLY = 0.5             -- the helper's clock may lag the server's

-- polls the fd count of pid until it is `want` (at most `seconds`);
-- returns the last count and how long it took
local function wait_fds(pid, want, seconds)
  local t0 = wirelab.now()
  local n
  for _ = 1, math.ceil(seconds / 0.05) + 1 do
    n = nfds(pid)
    if n == want or wirelab.now() - t0 > seconds then break end
    wirelab.sleep(0.05)
  end
  return n, wirelab.now() - t0
end

-- the kernel's count of handshakes it dropped or answered with SYN cookies
-- because a listen queue was full (system-wide: for diagnosis only)
local function listen_overflows()
  local f = io.open("/proc/net/netstat")
  if not f then return 0 end
  local text = f:read("a")
  f:close()
  local names, values = text:match("TcpExt:([^\n]*)\nTcpExt:([^\n]*)")
  if not names then return 0 end
  local vals = {}
  for v in values:gmatch("%S+") do vals[#vals + 1] = tonumber(v) end
  local n, i = 0, 0
  for name in names:gmatch("%S+") do
    i = i + 1
    if name == "ListenOverflows" or name == "TCPReqQFullDoCookies" then n = n + (vals[i] or 0) end
  end
  return n
end

-- ---------------------------------------------------------------------------
-- what the machine must offer: prlimit that may raise NOFILE, and python3

local find = support.find
local PRLIMIT, PYTHON = find("prlimit"), find("python3")
local SKIP
if not PRLIMIT then
  SKIP = "prlimit (util-linux) is not installed"
elseif not PYTHON then
  SKIP = "python3 (the client helper) is not installed"
else
  local r = process.run{PRLIMIT, "--nofile=" .. NOFILE .. ":" .. NOFILE, PYTHON, "-c",
    "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])", timeout = 10}
  if r.code ~= 0 or tonumber(r.stdout) ~= NOFILE then
    SKIP = ("NOFILE cannot be raised to %d here (%s)"):format(NOFILE,
      (r.stderr:match("[^\n]+") or r.stdout:match("[^\n]+") or "no reason given"))
  end
end

-- 10 000 connections from 127.0.0.1 to one server port need 10 000 local
-- ports; with a small ephemeral range the helper spreads them over
-- 127.0.0.2, 127.0.0.3, ... (IP_BIND_ADDRESS_NO_PORT keeps the port choice
-- at connect time, so each source address has the whole range)
local SOURCES = 1
do
  local f = io.open("/proc/sys/net/ipv4/ip_local_port_range")
  if f then
    local lo, hi = f:read("a"):match("(%d+)%s+(%d+)")
    f:close()
    local ports = lo and (tonumber(hi) - tonumber(lo) + 1)
    if ports and ports < 2 * CONNS then SOURCES = math.ceil(2 * CONNS / ports) end
  end
end

-- ---------------------------------------------------------------------------
-- the servers, as a student writes them, with a backlog of 1024 (the
-- defaults, 5 for socketserver and 128 for http.server, overflow at once
-- when thousands of clients arrive together; the helper also paces its
-- connects by the accept queue, see open_conns)

local ECHO_SERVER = support.echo_script(1024)

local HTTP_SERVER = [[
local hs = require "http.server"
local Hello = hs.BaseHTTPRequestHandler:extend()
function Hello:log_message() end
function Hello:do_GET()
  local body = "hello " .. self.path
  self:send_response(200)
  self:send_header("Content-Type", "text/plain")
  self:send_header("Content-Length", #body)
  self:end_headers()
  self.wfile:write(body)
end
local S = hs.ThreadingHTTPServer:extend({request_queue_size = 1024,
  header_timeout = @TIMEOUT@, keepalive_timeout = @TIMEOUT@})
local srv = S({"127.0.0.1", 0}, Hello)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]

-- ---------------------------------------------------------------------------
-- the client helper: python3 HOST PORT KIND SOURCES, commands on stdin, one
-- line of "verb key=value..." back for each. Every command ends with its
-- own time limit in seconds. Between and during its commands the helper
-- watches the held connections, so it timestamps their EOF when it comes.
--   open N T     N more connections (256 handshakes at a time, paced by
--                the server's accept queue), held idle
--   request T    one keep-alive GET on every idle held connection
--   probe K T    K new connections one after the other, each one request
--                (GET with Connection: close, or an echoed line), timed
--   watch T      until every held connection has seen EOF or reset
--   close T      close every held connection

local HELPER = [==[
import errno, math, os, selectors, socket, sys, time

HOST, PORT, KIND, SOURCES = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
REQ = b"GET /idle HTTP/1.1\r\nHost: a\r\n\r\n"
NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
now = time.monotonic
sel = selectors.DefaultSelector()
STDIN = sys.stdin.fileno()
os.set_blocking(STDIN, False)
sel.register(STDIN, selectors.EVENT_READ, None)
conns = []                      # every held connection, in opening order
inflight = [0]                  # handshakes under way
failures = []                   # the first few errors, for the report


class Conn:
    # state: connecting, idle, waiting (for a response), eof, reset,
    # cut (EOF in a response), bad, failed; t: last activity; t_end: EOF
    __slots__ = ("s", "state", "t", "buf", "extra", "t_end", "served")


def fail(what):
    if len(failures) < 5:
        failures.append(what.replace(" ", "_"))


def complete(buf):
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return False
    n = 0
    for line in buf[:i].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return len(buf) >= i + 4 + n


def event(c):
    t = now()
    if c.state == "connecting":
        inflight[0] -= 1
        err = c.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            fail("connect:" + errno.errorcode.get(err, str(err)))
            c.state, c.t_end = "failed", t
            sel.unregister(c.s)
            c.s.close()
            return
        c.state, c.t = "idle", t
        sel.modify(c.s, selectors.EVENT_READ, c)
        return
    try:
        d = c.s.recv(65536)
    except ConnectionResetError:
        c.state, c.t_end = "reset", t
        sel.unregister(c.s)
        return
    if d == b"":
        c.state, c.t_end = ("eof" if c.state == "idle" else "cut"), t
        sel.unregister(c.s)
        return
    if c.state == "waiting":
        c.buf += d
        if complete(c.buf):
            if c.buf.startswith(b"HTTP/1.1 200 ") and c.buf.endswith(b"hello /idle"):
                c.state, c.t, c.buf, c.served = "idle", t, b"", True
            else:
                fail("response:" + c.buf[:40].decode("latin-1"))
                c.state = "bad"
    else:
        c.extra += len(d)             # bytes sent to an idle connection


def pump(timeout):
    for key, _ in sel.select(timeout):
        if key.data is not None:
            event(key.data)


def count(*states):
    return sum(1 for c in conns if c.state in states)


def accept_queue():
    """connections the server's kernel holds for it to accept: the rx_queue
    of its listening socket in /proc/net/tcp (listeners come first)"""
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                w = line.split()
                if w[3] != "0A":
                    break
                if w[1].endswith(":%04X" % PORT):
                    return int(w[4].split(":")[1], 16)
    except (OSError, IndexError, ValueError):
        pass
    return 0


def open_conns(n, deadline):
    # Paced by the server's accept queue: past its backlog (1024) the kernel
    # drops handshakes, or completes them with SYN cookies and then drops
    # the client's ACK, leaving a connection the client holds and the
    # server never sees. At most 512 queued + 256 under way stays below.
    t0, started, waits = now(), 0, 0
    while now() < deadline:
        if started < n and inflight[0] < 256 and accept_queue() > 512:
            waits += 1
            pump(0.01)
            continue
        while started < n and inflight[0] < 256:
            c = Conn()
            c.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.s.setblocking(False)
            c.state, c.t, c.buf, c.extra, c.t_end, c.served = "connecting", now(), b"", 0, None, False
            conns.append(c)
            started += 1
            if SOURCES > 1:
                c.s.setsockopt(socket.IPPROTO_IP, NO_PORT, 1)
                c.s.bind(("127.0.0.%d" % (2 + len(conns) % SOURCES), 0))
            rc = c.s.connect_ex((HOST, PORT))
            if rc not in (0, errno.EINPROGRESS):
                fail("connect:" + errno.errorcode.get(rc, str(rc)))
                c.state = "failed"
                c.s.close()
            else:
                inflight[0] += 1
                sel.register(c.s, selectors.EVENT_WRITE, c)
        if started >= n and inflight[0] == 0:
            break
        pump(0.02)
    return "open held=%d idle=%d failed=%d pending=%d paused=%d secs=%.3f" % (
        len(conns), count("idle"), count("failed"), inflight[0], waits, now() - t0)


def request_all(deadline):
    t0, sent = now(), 0
    for c in conns:
        if c.state == "idle":
            try:
                c.s.send(REQ)
                c.state, c.buf = "waiting", b""
                sent += 1
            except OSError as e:
                fail("send:" + type(e).__name__)
    while count("waiting") and now() < deadline:
        pump(0.02)
    return "request sent=%d idle=%d waiting=%d bad=%d secs=%.3f" % (
        sent, count("idle"), count("waiting"), count("bad", "cut", "reset"), now() - t0)


def one_probe(i):
    t = now()
    s = socket.create_connection((HOST, PORT), timeout=5)
    try:
        if KIND == "http":
            s.sendall(b"GET /probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            ok = buf.startswith(b"HTTP/1.1 200 ") and buf.endswith(b"hello /probe")
        else:
            line = b"probe %d\n" % i
            s.sendall(line)
            buf = b""
            while len(buf) < len(line):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            ok = buf == line
    finally:
        s.close()
    return now() - t, ok


def probe(k, deadline):
    lat, bad = [], 0
    for i in range(k):
        if now() > deadline:
            break
        try:
            dt, ok = one_probe(i)
        except OSError as e:
            fail("probe:" + type(e).__name__)
            bad += 1
            continue
        if ok:
            lat.append(dt)
        else:
            bad += 1
            fail("probe:bad_reply")
    pump(0)
    r = "probe n=%d bad=%d held_idle=%d" % (len(lat), bad, count("idle"))
    if lat:
        lat.sort()
        rank = lambda f: lat[max(0, math.ceil(f * len(lat)) - 1)]
        r += " p50=%.6f p99=%.6f max=%.6f" % (rank(0.5), rank(0.99), lat[-1])
    return r


def lifetimes(name, cs):
    life = sorted(c.t_end - c.t for c in cs if c.t_end is not None)
    if not life:
        return ""
    return " %s_n=%d %s_min=%.3f %s_p50=%.3f %s_max=%.3f" % (
        name, len(life), name, life[0], name, life[len(life) // 2], name, life[-1])


def watch(deadline):
    t0 = now()
    while now() < deadline and count("idle", "waiting"):
        pump(0.02)
    r = "watch eof=%d reset=%d cut=%d open=%d noisy=%d secs=%.3f" % (
        count("eof"), count("reset"), count("cut"), count("idle", "waiting"),
        sum(1 for c in conns if c.extra), now() - t0)
    r += lifetimes("fresh", [c for c in conns if not c.served and c.state in ("eof", "reset")])
    r += lifetimes("kept", [c for c in conns if c.served and c.state in ("eof", "reset")])
    return r


def close_all():
    n = 0
    for c in conns:
        if c.state in ("connecting", "idle", "waiting", "bad"):
            sel.unregister(c.s)
        if c.state != "failed":
            c.s.close()
            n += 1
    conns.clear()
    inflight[0] = 0
    return "close n=%d" % n


def command(line):
    w = line.split()
    limit = now() + float(w[-1])
    if w[0] == "open":
        r = open_conns(int(w[1]), limit)
    elif w[0] == "request":
        r = request_all(limit)
    elif w[0] == "probe":
        r = probe(int(w[1]), limit)
    elif w[0] == "watch":
        r = watch(limit)
    elif w[0] == "close":
        r = close_all()
    else:
        r = "unknown"
    if failures:
        r += " errors=" + ",".join(failures)
        failures.clear()
    sys.stdout.write(r + "\n")
    sys.stdout.flush()


pending = b""
print("ready", flush=True)
while True:
    for key, _ in sel.select(1.0):
        if key.data is not None:
            event(key.data)
            continue
        d = os.read(STDIN, 4096)
        if not d:
            close_all()
            sys.exit(0)
        pending += d
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            if line.strip():
                command(line.decode())
]==]

local function prlimited(argv)
  local out = {PRLIMIT, "--nofile=" .. NOFILE .. ":" .. NOFILE}
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

local function assert_nofile(pid, who)
  local f = assert(io.open("/proc/" .. pid .. "/limits"))
  local text = f:read("a")
  f:close()
  assert.matches("Max open files%s+" .. NOFILE .. "%s+" .. NOFILE, text, who .. "'s NOFILE was not raised")
end

-- start_server(code) -> process, port: wirelab -e code under prlimit
local function start_server(code)
  local p, line = support.script(code, {prefix = prlimited{}, stdin = false})
  local port = math.tointeger(tonumber(line))
  if not port then error("the server did not start: " .. line) end
  assert_nofile(p.pid, "the server")
  return p, port
end

-- the helper, holding connections to port; ask(h, cmd) -> reply fields
local function start_helper(port, kind)
  local argv = prlimited{PYTHON, "-c", HELPER, "127.0.0.1", tostring(port), kind, tostring(SOURCES)}
  argv.stdin = true
  local h = support.spawn(argv)
  local line = h.stdout:read("l")
  if line ~= "ready" then
    stop(h)
    error("the client helper did not start: " .. tostring(line) .. " " .. tostring(h.stderr:read("a")))
  end
  assert_nofile(h.pid, "the client helper")
  return h
end

local function ask(h, cmd)
  h:write(cmd .. "\n")
  local line = h.stdout:read("l")
  if not line then
    h:kill(9)
    h:wait(5)
    error("the client helper died at '" .. cmd .. "': " .. tostring(h.stderr:read("a")))
  end
  local r = {line = line, verb = line:match("^(%S+)")}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) or v end
  return r
end

-- opens CONNS idle connections (in `batches` commands, `between` after each
-- but the last); the reply of the last, with the seconds all took and the
-- listen-queue overflows counted meanwhile
local function hold(h, batches, between)
  local per = CONNS // (batches or 1)
  local r
  local t0, ov0 = wirelab.now(), listen_overflows()
  for i = 1, batches or 1 do
    r = ask(h, ("open %d %d"):format(per, 20))
    if i < (batches or 1) and between then between() end
  end
  r.secs = wirelab.now() - t0
  r.overflows = listen_overflows() - ov0
  assert.are.equal(CONNS, r.held, r.line)
  assert.are.equal(0, r.failed, "connections failed: " .. r.line)
  assert.are.equal(0, r.pending, "connections still pending: " .. r.line)
  return r
end

-- the server has accepted every held connection: its fd count says so
local function assert_accepted(p, base_fds, r)
  local n, secs = wait_fds(p.pid, base_fds + CONNS, 10)
  assert.are.equal(base_fds + CONNS, n, ("the server holds %d of the %d connections the client holds " ..
    "(listen queue overflows meanwhile: %d; helper: %s)"):format(n - base_fds, CONNS, r.overflows, r.line))
  return secs
end

local function assert_probes(r, what)
  assert.are.equal(PROBES, r.n, "new requests " .. what .. " failed: " .. r.line)
  assert.are.equal(0, r.bad, r.line)
  assert.is_true(r.p99 < P99_LIMIT, ("new requests %s: p99 %.1f ms (max %.1f ms), limit %.0f ms"):format(
    what, r.p99 * 1000, r.max * 1000, P99_LIMIT * 1000))
end

local function assert_kib(per, what)
  if SANITIZED then return end
  assert.is_true(per <= KIB_PER_CONN, ("server RSS per %s: %.2f KiB, target <= %d KiB"):format(
    what, per, KIB_PER_CONN))
end

-- stops the server and checks it wrote nothing to stderr (no handler
-- errors, no tracebacks) while serving the idle connections
local function assert_quiet_exit(p)
  p:kill(9)
  p:wait(5)
  local err = p.stderr:read("a")
  assert.are.equal("", err:sub(1, 2000), "the server wrote to stderr")
end

-- ---------------------------------------------------------------------------

describe("reliability: 10 000 idle connections (item 22)", function()
  if SKIP then
    pending(support.skip("item 22 (many idle connections): " .. SKIP))
    return
  end
  if SOURCES > 1 then
    note("idle: small ephemeral port range: clients spread over %d source addresses", SOURCES)
  end

  it("an echo server (socketserver.ThreadingTCPServer) holds " .. CONNS .. " idle connections at <= " ..
     KIB_PER_CONN .. " KiB each, answers new clients in < 100 ms p99, and lets them all go",
     bounded(30, function()
      local p, port = start_server(ECHO_SERVER)
      local h = start_helper(port, "echo")
      local warm = ask(h, "probe 20 10")
      assert.are.equal(20, warm.n, warm.line)
      local base_rss, base_fds = rss_kib(p.pid), nfds(p.pid)

      local r = hold(h)
      local accept_s = assert_accepted(p, base_fds, r)
      local per = (rss_kib(p.pid) - base_rss) / CONNS
      local pr = ask(h, ("probe %d 20"):format(PROBES))
      note("echo: %d idle connections opened in %.2f s (paused %d times for the accept queue, " ..
           "%d listen overflows), the server had them all %.2f s later; " ..
           "RSS %d KiB + %.2f KiB per idle connection; %d new requests meanwhile: p50 %.2f ms, " ..
           "p99 %.2f ms, max %.2f ms", CONNS, r.secs, r.paused, r.overflows, accept_s, base_rss, per,
           pr.n, (pr.p50 or 0) * 1000, (pr.p99 or 0) * 1000, (pr.max or 0) * 1000)
      assert_probes(pr, "with " .. CONNS .. " idle connections")
      assert.are.equal(CONNS, pr.held_idle, "the server dropped idle connections: " .. pr.line)
      assert_kib(per, "idle echo connection")

      -- the clients leave: every connection's fd and task is let go
      assert.are.equal(CONNS, ask(h, "close 10").n)
      local n, secs = wait_fds(p.pid, base_fds, 10)
      note("echo: fds back to %d (baseline %d) %.2f s after the clients closed", n, base_fds, secs)
      assert.are.equal(base_fds, n, "the server kept fds of closed connections")
      pr = ask(h, "probe 20 10")
      assert.are.equal(20, pr.n, "not serving after the idle clients left: " .. pr.line)
      assert_quiet_exit(p)
  end))

  it("an HTTP server (http.server.ThreadingHTTPServer) holds " .. CONNS .. " fresh idle connections, then " ..
     CONNS .. " idle after one keep-alive request each, at <= " .. KIB_PER_CONN .. " KiB each, " ..
     "and answers new requests in < 100 ms p99 throughout", bounded(30, function()
      local p, port = start_server((HTTP_SERVER:gsub("@TIMEOUT@", "60")))
      local h = start_helper(port, "http")
      local warm = ask(h, "probe 20 10")
      assert.are.equal(20, warm.n, warm.line)
      local base_rss, base_fds = rss_kib(p.pid), nfds(p.pid)

      -- fresh: connected, not a byte sent
      local r = hold(h)
      local accept_s = assert_accepted(p, base_fds, r)
      local per_fresh = (rss_kib(p.pid) - base_rss) / CONNS
      local pr = ask(h, ("probe %d 20"):format(PROBES))
      note("http: %d fresh idle connections opened in %.2f s (paused %d times for the accept queue, " ..
           "%d listen overflows), the server had them all %.2f s later; " ..
           "RSS %d KiB + %.2f KiB per fresh idle connection; %d new requests meanwhile: p50 %.2f ms, " ..
           "p99 %.2f ms, max %.2f ms", CONNS, r.secs, r.paused, r.overflows, accept_s, base_rss,
           per_fresh, pr.n, (pr.p50 or 0) * 1000, (pr.p99 or 0) * 1000, (pr.max or 0) * 1000)
      assert_probes(pr, "with " .. CONNS .. " fresh idle connections")
      assert.are.equal(CONNS, pr.held_idle, "the server dropped idle connections: " .. pr.line)

      -- kept alive: one request served on each, then idle again
      local rq = ask(h, "request 20")
      assert.are.equal(CONNS, rq.sent, rq.line)
      assert.are.equal(CONNS, rq.idle, "keep-alive requests not answered: " .. rq.line)
      local per_kept = (rss_kib(p.pid) - base_rss) / CONNS
      assert.are.equal(base_fds + CONNS, nfds(p.pid), "the server closed kept-alive connections")
      local pk = ask(h, ("probe %d 20"):format(PROBES))
      note("http: %d keep-alive requests answered in %.2f s; RSS + %.2f KiB per idle kept-alive " ..
           "connection; %d new requests meanwhile: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
           CONNS, rq.secs, per_kept, pk.n, (pk.p50 or 0) * 1000, (pk.p99 or 0) * 1000, (pk.max or 0) * 1000)
      assert_probes(pk, "with " .. CONNS .. " idle kept-alive connections")
      assert.are.equal(CONNS, pk.held_idle, "the server dropped idle connections: " .. pk.line)
      assert_kib(per_fresh, "fresh idle HTTP connection")
      assert_kib(per_kept, "idle kept-alive HTTP connection")
      if not SANITIZED then
        assert.is_true(per_kept - per_fresh <= KIB_KEPT_OVER_FRESH, ("an idle kept-alive HTTP " ..
          "connection holds %.2f KiB more than a fresh one, bound %.2f: does a request's parser " ..
          "or writer keep its buffers?"):format(per_kept - per_fresh, KIB_KEPT_OVER_FRESH))
      end

      assert.are.equal(CONNS, ask(h, "close 10").n)
      local n = wait_fds(p.pid, base_fds, 10)
      assert.are.equal(base_fds, n, "the server kept fds of closed connections")
      assert_quiet_exit(p)
  end))

  it("with header_timeout and keepalive_timeout at " .. IDLE_TIMEOUT .. " s, the HTTP server closes " ..
     CONNS .. " idle connections (half fresh, half kept alive) silently at the timeout, " ..
     "its fds fall back to the baseline, and it goes on serving", bounded(30, function()
      local p, port = start_server((HTTP_SERVER:gsub("@TIMEOUT@", tostring(IDLE_TIMEOUT))))
      local h = start_helper(port, "http")
      local warm = ask(h, "probe 20 10")
      assert.are.equal(20, warm.n, warm.line)
      local base_fds = nfds(p.pid)

      -- 5 000 connections make one request each, then 5 000 more connect
      -- and say nothing; the helper notes when each went quiet
      local rq
      local r = hold(h, 2, function() rq = ask(h, "request 20") end)
      local t_open = wirelab.now()
      assert.are.equal(CONNS // 2, rq.idle, "keep-alive requests not answered: " .. rq.line)
      local w = ask(h, ("watch %g"):format(IDLE_TIMEOUT + CLOSE_MARGIN + 3))
      local n = wait_fds(p.pid, base_fds, 3)
      local fd_s = wirelab.now() - t_open
      note("http timeout %d s: %d connections ended (%d EOF, %d reset, %d still open, %d got bytes); " ..
           "fresh ones lived %.3f .. %.3f s (median %.3f), kept-alive ones %.3f .. %.3f s (median %.3f) " ..
           "after going idle; server fds back to %d (baseline %d) %.2f s after the last connect; " ..
           "%d listen overflows while connecting",
           IDLE_TIMEOUT, (w.eof or 0) + (w.reset or 0), w.eof or 0, w.reset or 0, w.open or 0, w.noisy or 0,
           w.fresh_min or -1, w.fresh_max or -1, w.fresh_p50 or -1, w.kept_min or -1, w.kept_max or -1,
           w.kept_p50 or -1, n, base_fds, fd_s, r.overflows)
      assert.are.equal(0, w.open, "idle connections not closed by the server: " .. w.line)
      assert.are.equal(0, w.cut, w.line)
      assert.are.equal(CONNS, w.eof + w.reset, w.line)
      assert.are.equal(0, w.noisy, "idle connections were sent bytes (a 408?) before the close: " .. w.line)
      assert.are.equal(CONNS // 2, w.fresh_n, w.line)
      assert.are.equal(CONNS // 2, w.kept_n, w.line)
      for _, kind in ipairs{"fresh", "kept"} do
        local lo, hi = w[kind .. "_min"], w[kind .. "_max"]
        assert.is_true(lo >= IDLE_TIMEOUT - EARLY, ("%s idle connections closed after %.3f s, before " ..
          "the %d s timeout"):format(kind, lo, IDLE_TIMEOUT))
        assert.is_true(hi <= IDLE_TIMEOUT + CLOSE_MARGIN, ("%s idle connections closed only after %.3f s, " ..
          "timeout %d s"):format(kind, hi, IDLE_TIMEOUT))
      end
      assert.are.equal(base_fds, n, "the server's fds did not fall back to the baseline")

      -- and it goes on serving
      local pr = ask(h, ("probe %d 20"):format(PROBES))
      assert_probes(pr, "after the idle connections were closed")
      ask(h, "close 10")
      assert_quiet_exit(p)
  end))
end)
