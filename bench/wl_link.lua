-- wl_link.lua: measurements of netem.link for bench/link.py, one JSON
-- object per line on stdout. The traffic comes from python3 programs run
-- on the link's sides, so that this process does nothing but drive the
-- link and its CPU time is the link's cost.
--   wirelab wl_link.lua bulk MIB [tap]   TCP bulk over a link with no delay,
--                                        and over one namespace's loopback
--   wirelab wl_link.lua delay MS N       N UDP pings 10 ms apart, delay MS each way
--   wirelab wl_link.lua loss MIB         TCP goodput at 0/2/10% loss, 50 ms each way
local wirelab = require "wirelab"
local process = require "process"
local socket = require "socket"
local netem_link = require "netem.link"

local mode = arg[1]

local function cpu_self()
  local f <close> = assert(io.open("/proc/self/stat"))
  local fields = {}
  for w in f:read("a"):match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100      -- CLK_TCK 100
end

local function json(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = ("%q:%s"):format(k, type(v) == "string" and ("%q"):format(v) or tostring(v))
  end
  print("{" .. table.concat(parts, ",") .. "}")
  io.stdout:flush()
end

local RECEIVER = [[
import socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen()
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
buf = bytearray(1 << 20); n = 0; t0 = None
while True:
    k = c.recv_into(buf)
    if t0 is None: t0 = time.monotonic()
    if k == 0: break
    n += k
print(n, time.monotonic() - t0, flush=True)
]]

local SENDER = [[
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf = b"\0" * (1 << 20)
for _ in range(int(sys.argv[3])): c.sendall(buf)
c.close()
]]

-- (run_a, run_b): spawn on each side; returns bytes, seconds the receiver saw
local function transfer(spawn_a, spawn_b, host, mib)
  local rx = spawn_b{"python3", "-c", RECEIVER, host}
  local port = assert(tonumber(rx.stdout:read("l")), "the receiver printed no port")
  local tx = spawn_a{"python3", "-c", SENDER, host, port, mib}
  local n, secs = rx.stdout:read("l"):match("^(%d+) (%S+)")
  tx:wait(60)
  rx:wait(60)
  tx:close()
  rx:close()
  return tonumber(n), tonumber(secs)
end

if mode == "bulk" then
  local mib = tonumber(arg[2]) or 512
  local ns = process.netns()
  local function in_ns(spec) spec.sandbox = {netns = ns, uid = false, readonly = false, scratch = false,
                                              cgroup = false}; return process.spawn(spec) end
  local n, secs = transfer(in_ns, in_ns, "127.0.0.1", mib)
  json{case = "loopback", bytes = n, secs = secs}
  ns:close()
  local l = netem_link.link{log = false}
  if arg[3] == "tap" then l:_tap(function() end) end
  local c0 = cpu_self()
  n, secs = transfer(function(s) return l.a:spawn(s) end, function(s) return l.b:spawn(s) end, l.b.host, mib)
  local cpu = cpu_self() - c0
  local st = l:stats()
  json{case = arg[3] == "tap" and "link+tap" or "link", bytes = n, secs = secs, cpu = cpu,
       packets = st["a>b"].packets + st["b>a"].packets}
  l:close()
elseif mode == "delay" then
  local ms, count = tonumber(arg[2]) or 50, tonumber(arg[3]) or 200
  local l = netem_link.link{delay = ms / 1000, log = false}
  local echo = l.b:spawn{"python3", "-c", [[
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(100)
    if d == b"end": break
    s.sendto(d, a)
]], l.b.host}
  local port = tonumber(echo.stdout:read("l"))
  local ping = l.a:run{"python3", "-c", [[
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    t0 = time.monotonic(); s.sendto(str(i).encode(), (host, port)); s.recvfrom(100)
    print("%.6f" % (time.monotonic() - t0)); time.sleep(0.01)
s.sendto(b"end", (host, port))
]], l.b.host, port, count, timeout = 120}
  echo:wait(5)
  echo:close()
  local rtts = {}
  for v in ping.stdout:gmatch("%S+") do rtts[#rtts + 1] = tonumber(v) end
  table.sort(rtts)
  local function q(p) return rtts[math.max(1, math.ceil(#rtts * p))] end
  json{case = "delay", ms = ms, n = #rtts, min = rtts[1], median = q(0.5), p90 = q(0.9), p99 = q(0.99),
       max = rtts[#rtts]}
  l:close()
elseif mode == "loss" then
  local mib = tonumber(arg[2]) or 4
  local data = string.rep("L", mib * 1024 * 1024)
  for _, loss in ipairs{0, 0.02, 0.1} do
    local l = netem_link.link{delay = "50ms", loss = loss, seed = 1}
    local srv = l.b:create_server(l.b.host, 0)
    local port = select(2, srv:getsockname())
    local got = 0
    local t = wirelab.spawn(function()
      local c = srv:accept()
      while true do local d = c:recv(1 << 20); if d == "" then break end; got = got + #d end
      c:close()
    end)
    local c = l.a:create_connection(l.b.host, port, 10)
    local t0 = wirelab.now()
    c:sendall(data)
    c:shutdown(socket.SHUT_WR)
    t:join()
    local secs = wirelab.now() - t0
    local ti = c:tcp_info()
    c:close()
    srv:close()
    json{case = "loss", loss = loss, bytes = got, secs = secs, retrans = ti.total_retrans,
         dropped = l:stats()["a>b"].dropped}
    l:close()
  end
end
