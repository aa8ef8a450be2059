-- netem.tcp: the TCP impairment proxy. Each accepted client gets its own
-- connection to the target and two pumps, one per direction, each a task
-- reading from one socket and writing to the other. A pump can delay
-- what it reads, cap its bandwidth, re-cut every write into random small
-- pieces (so "one recv = one message" bugs show), be paused (it stops
-- reading, so kernel buffers fill and the sender's sendall blocks), pass a
-- FIN on as shutdown(SHUT_WR), and reset both sides after N bytes. A
-- userspace relay cannot lose TCP segments: the kernels on each side
-- would recover them; loss is for the UDP proxy or netem.link.
local socket = require "socket"
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local options = require "netem.options"
local events = require "netem.events"
local Proxy = require("netem.proxy").Proxy
local stop_tasks = require("netem.proxy").stop_tasks

local now, spawn, sleep, pcall = wirelab.now, wirelab.spawn, wirelab.sleep, pcall
local min, max, floor, ceil = math.min, math.max, math.floor, math.ceil
local sub = string.sub

local M = {}

local F = "tcp_proxy"
local KNOWN = {target = true, listen = true, delay = true, bandwidth = true, chunk = true,
               reset_after = true, seed = true, events_file = true, keep_events = true,
               buffer = true}

-- at most this much read ahead and held per direction while delayed
local HELD_MAX = 4 * 1024 * 1024
-- under a bandwidth cap, pieces of at most this many seconds' worth, so
-- the bytes flow evenly instead of in bursts of a whole read
local PACE = 0.02
-- before a reset_after reset, how long to wait for the last bytes to be
-- acknowledged (a reset throws away what the kernel has not yet sent)
local DRAIN = 0.5

local TCPProxy = Proxy:extend({kind = "tcp_proxy"})
M.TCPProxy = TCPProxy

local function other(dir) return dir == "to_server" and "to_client" or "to_server" end

local function code_of(err) return errors.is(err) and err.code or tostring(err) end

-- ---- ending a connection ---------------------------------------------------------

local function forget(self, conn)
  conn.closed = true
  self.conns[conn] = nil
  self.stats.open = self.stats.open - 1
  stop_tasks(conn.tasks)
end

-- reset: both sides get an RST (SO_LINGER {on, 0}, then close), as a
-- crashed peer or middlebox would send
local function reset(self, conn, reason, dir)
  if conn.closed then return end
  for _, s in ipairs({conn.c, conn.s}) do
    pcall(s.setsockopt, s, socket.SOL_SOCKET, socket.SO_LINGER, {true, 0})
    s:close()
  end
  self.stats.resets = self.stats.resets + 1
  if self.log.on then self.log:add({conn = conn.id, dir = dir, what = "reset", reason = reason}) end
  forget(self, conn)
end

-- finish: the source of dir sent a FIN; it goes on to the destination
-- as shutdown(SHUT_WR), and once both directions are done, both close
local function finish(self, conn, dir)
  if conn.closed then return end
  local dst = dir == "to_server" and conn.s or conn.c
  pcall(dst.shutdown, dst, socket.SHUT_WR)
  self.dirs[dir].stats.fins = self.dirs[dir].stats.fins + 1
  if self.log.on then self.log:add({conn = conn.id, dir = dir, what = "fin"}) end
  conn.done[dir] = true
  if conn.done[other(dir)] then
    conn.c:close()
    conn.s:close()
    if self.log.on then self.log:add({conn = conn.id, what = "close"}) end
    forget(self, conn)
  end
end

-- a failed recv or send: the side it was on reset (or went away); the
-- other side is reset too, as it would be without the proxy
local function failed(self, conn, side, dir)
  if conn.closed or self.closed then return end
  reset(self, conn, side, dir)
end

-- ---- writing ------------------------------------------------------------------

-- drained(s): true once the kernel has had all sent bytes acknowledged
local function drained(s)
  local ok, info = pcall(s.tcp_info, s)
  return not ok or info.unacked == 0
end

-- emit: one chunk read from the source goes to the destination, under
-- the direction's pause gate, cap, re-chunking and reset_after limit.
-- Returns false once the connection has ended.
local function emit(self, conn, dir, data, seq, offset)
  local D = self.dirs[dir]
  local st, gate = D.stats, self.gates[dir]
  local dst = dir == "to_server" and conn.s or conn.c
  local cut = false
  local left = conn.left[dir]
  if left and #data >= left then data, cut = sub(data, 1, left), true end
  local n, pieces = #data, 0
  local bw, ch = D.bandwidth, D.chunk
  if not bw and not ch then
    gate:wait()
    if conn.closed then return false end
    local ok = pcall(dst.sendall, dst, data)
    if not ok then failed(self, conn, dir == "to_server" and "server" or "client", dir); return false end
    if n > 0 then pieces = 1 end
    st.writes = st.writes + pieces
  else
    local r = conn.rng[dir]
    local cap = bw and max(1, floor(bw * PACE)) or n
    local i = 1
    while i <= n do
      local k = ch and (r and r:random(ch[1], ch[2]) or ch[1]) or n
      k = min(k, cap)
      gate:wait()
      if bw then
        local t = now()
        local free = conn.link_free[dir]
        if free > t then sleep(free - t); t = now() end
        conn.link_free[dir] = max(free, t) + min(k, n - i + 1) / bw
      end
      if conn.closed then return false end
      local ok = pcall(dst.sendall, dst, sub(data, i, i + k - 1))
      if not ok then failed(self, conn, dir == "to_server" and "server" or "client", dir); return false end
      pieces = pieces + 1
      i = i + k
      if ch and ch.gap > 0 and i <= n then sleep(ch.gap) end
    end
    st.writes = st.writes + pieces
  end
  st.bytes_sent = st.bytes_sent + n
  for _, d in ipairs(options.DIRS) do
    local l = conn.left[d]
    if l and (d == dir or self.reset_total) then conn.left[d] = l - n end
  end
  if self.log.on then
    self.log:add({conn = conn.id, dir = dir, seq = seq, offset = offset, size = n, what = "pass",
                  pieces = pieces, delay = D.delay > 0 and D.delay or nil})
  end
  if cut then
    local deadline = now() + DRAIN
    while not drained(dst) and now() < deadline and not conn.closed do sleep(0.001) end
    reset(self, conn, "reset_after", dir)
    return false
  end
  return true
end

-- ---- the pumps ----------------------------------------------------------------

-- the writer of a delayed direction: takes what the pump read, each at
-- its time
local function write_delayed(self, conn, dir, q)
  while true do
    local item = q:get()
    if item.eof then return finish(self, conn, dir) end
    local wait = item.due - now()
    if wait > 0 then sleep(wait) end
    if not emit(self, conn, dir, item.data, item.seq, item.offset) then return end
  end
end

-- start(conn, fn, ...): a task of the connection, forgotten when it ends
local function start(conn, fn, ...)
  local t
  t = spawn(function(...)
    fn(...)
    conn.tasks[t] = nil
  end, ...)
  conn.tasks[t] = true
  return t
end

-- pump: reads from the source of dir while the direction is not paused
local function pump(self, conn, dir)
  local D = self.dirs[dir]
  local st, gate, size = D.stats, self.gates[dir], self.buffer
  local src = dir == "to_server" and conn.c or conn.s
  local q
  if D.delay > 0 then
    q = wirelab.queue(max(2, ceil(HELD_MAX / size)))
    start(conn, write_delayed, self, conn, dir, q)
  end
  local seq, offset = 0, 0
  while true do
    gate:wait()
    if conn.closed then return end
    local ok, data = pcall(src.recv, src, size)
    if not ok then return failed(self, conn, dir == "to_server" and "client" or "server", dir) end
    if conn.closed then return end
    if data == "" then
      if q then return q:put({eof = true}) end
      return finish(self, conn, dir)
    end
    seq = seq + 1
    st.reads = st.reads + 1
    st.bytes_received = st.bytes_received + #data
    if q then
      q:put({due = now() + D.delay, data = data, seq = seq, offset = offset})
    elseif not emit(self, conn, dir, data, seq, offset) then
      return
    end
    offset = offset + #data
  end
end

-- open: a client was accepted; connect it through
local function open(self, c, host, port)
  self.nconn = self.nconn + 1
  local id = self.nconn
  self.stats.connections = self.stats.connections + 1
  local key = options.hostport(host, port)
  local ok, s = pcall(socket.create_connection, self.target[1], self.target[2], 5)
  if not ok then
    if self.log.on then self.log:add({conn = id, what = "error", client = key, code = code_of(s)}) end
    pcall(c.setsockopt, c, socket.SOL_SOCKET, socket.SO_LINGER, {true, 0})
    c:close()
    return
  end
  if self.closed then c:close(); s:close(); return end
  s:settimeout(nil)
  for _, x in ipairs({c, s}) do pcall(x.setsockopt, x, socket.IPPROTO_TCP, socket.TCP_NODELAY, true) end
  local conn = {id = id, client = key, c = c, s = s, done = {}, tasks = {},
                left = {}, rng = {}, link_free = {to_server = 0, to_client = 0}}
  for _, d in ipairs(options.DIRS) do
    conn.left[d] = self.reset_total or self.dirs[d].reset_after or nil
    local ch = self.dirs[d].chunk
    if ch and ch[1] < ch[2] then conn.rng[d] = options.stream(self.seed, "tcp.chunk." .. d .. "." .. id) end
  end
  self.conns[conn] = true
  self.stats.open = self.stats.open + 1
  if self.log.on then self.log:add({conn = id, what = "open", client = key}) end
  start(conn, pump, self, conn, "to_server")
  start(conn, pump, self, conn, "to_client")
end

local function serve(self)
  local srv = self.sock
  while true do
    local ok, c, host, port = pcall(srv.accept, srv)
    if ok then
      -- connecting through in a task of its own, so accept never waits
      local t
      t = spawn(function()
        open(self, c, host, port)
        self.tasks[t] = nil
      end)
      self.tasks[t] = true
    elseif self.closed or errors.is(c, "EBADF") or errors.is(c, "ECANCELED") then
      return
    else
      -- EMFILE and the like: accept shed that client; go on with the next
      if self.log.on then self.log:add({what = "error", code = code_of(c)}) end
      sleep(0.01)
    end
  end
end

-- ---- the proxy ----------------------------------------------------------------

-- netem.tcp_proxy{...} -> proxy (docs/netem.md)
function M.tcp_proxy(opts)
  options.check_keys(F, opts, KNOWN)
  local thost, tport = options.address(F, "target", opts.target)
  local lhost, lport = options.address(F, "listen", opts.listen, {"127.0.0.1", 0})
  local cfg = {
    delay = options.seconds(F, "delay", opts.delay),
    bandwidth = options.rate(F, "bandwidth", opts.bandwidth),
    chunk = options.chunk(F, "chunk", opts.chunk),
  }
  -- a number counts both directions together; per direction, each alone
  local reset_total
  if type(opts.reset_after) == "table" then
    cfg.reset_after = options.count(F, "reset_after", opts.reset_after)
  elseif opts.reset_after ~= nil then
    reset_total = options.count(F, "reset_after", opts.reset_after).to_server
  end
  local buffer = options.at_least_one(F, "buffer", opts.buffer, 65536).to_server
  local seed = options.seed(F, opts.seed)
  local keep = options.keep(F, opts.keep_events)
  if opts.events_file ~= nil and type(opts.events_file) ~= "string" then
    errors.argerror(1, F, "'events_file' must be a path", 2)
  end
  local srv = socket.create_server(lhost, lport, {family = options.family(lhost)})
  local self = TCPProxy()
  self.sock, self.seed, self.buffer, self.reset_total = srv, seed, buffer, reset_total
  self.address = {srv:getsockname()}
  self.target = {thost, tport}
  self.conns, self.tasks, self.nconn = {}, {}, 0
  self.stats = {connections = 0, open = 0, resets = 0}
  self.dirs, self.gates = {}, {}
  for _, name in ipairs(options.DIRS) do
    local D = {name = name}
    for k, v in pairs(cfg) do D[k] = v[name] end
    D.stats = {bytes_received = 0, bytes_sent = 0, reads = 0, writes = 0, fins = 0}
    self.stats[name] = D.stats
    self.dirs[name] = D
    self.gates[name] = wirelab.event()
    self.gates[name]:set()
  end
  local ok, log = pcall(events.new, keep, opts.events_file)
  if not ok then srv:close(); error(log, 0) end
  self.log = log
  self.tasks[spawn(serve, self)] = true
  return self
end

local function check_dir(fname, dir)
  if dir ~= nil and dir ~= "to_server" and dir ~= "to_client" then
    errors.argerror(1, fname, "'to_server', 'to_client' or nil expected", 3)
  end
end

-- proxy:pause([dir]): stop reading (and writing) in one direction, or both
function TCPProxy:pause(dir)
  check_dir("pause", dir)
  for _, d in ipairs(options.DIRS) do
    if (dir == nil or dir == d) and self.gates[d]:is_set() then
      self.gates[d]:clear()
      if self.log.on then self.log:add({dir = d, what = "pause"}) end
    end
  end
end

-- proxy:resume([dir]): undo pause
function TCPProxy:resume(dir)
  check_dir("resume", dir)
  for _, d in ipairs(options.DIRS) do
    if (dir == nil or dir == d) and not self.gates[d]:is_set() then
      self.gates[d]:set()
      if self.log.on then self.log:add({dir = d, what = "resume"}) end
    end
  end
end

-- what tostring shows of it: connections open, and a pause
function TCPProxy:_state()
  local out = self.stats.open .. " open"
  for _, d in ipairs(options.DIRS) do
    if not self.gates[d]:is_set() then out = out .. ", " .. d .. " paused" end
  end
  return out
end

-- proxy:close(): closes every connection and the listener, ends the tasks
function TCPProxy:close()
  if self.closed then return end
  self.closed = true
  self.sock:close()
  for conn in pairs(self.conns) do
    conn.c:close()
    conn.s:close()
    forget(self, conn)
  end
  stop_tasks(self.tasks)
  self.log:close()
end

return M
