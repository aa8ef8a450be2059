-- netem.udp: the UDP impairment proxy. Clients send to the proxy's
-- address; like a NAT it gives each client address its own upstream
-- socket connected to the target, so replies find their way back and
-- several clients can share it. Each datagram, in each direction, may be
-- dropped, corrupted (one bit flipped), duplicated, held back so that
-- later ones overtake it, delayed (with jitter) and queued behind a rate
-- limit. The draws come from seeded streams, one per impairment and
-- direction, so one seed drops the same datagrams every run.
local socket = require "socket"
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local options = require "netem.options"
local events = require "netem.events"
local schedule = require "netem.schedule"
local Proxy = require("netem.proxy").Proxy
local stop_tasks = require("netem.proxy").stop_tasks

local now, spawn, pcall, max = wirelab.now, wirelab.spawn, pcall, math.max
local byte, char, sub = string.byte, string.char, string.sub

local M = {}

local F = "udp_proxy"
local KNOWN = {target = true, listen = true, loss = true, duplicate = true, reorder = true,
               reorder_distance = true, reorder_hold = true, delay = true, jitter = true,
               corrupt = true, rate = true, queue = true, seed = true, events_file = true,
               keep_events = true, rule = true}

local UDPProxy = Proxy:extend({kind = "udp_proxy"})
M.UDPProxy = UDPProxy

local apply_rule             -- below: the rule's verdict on a datagram

local function new_stats()
  return {received = 0, sent = 0, dropped = 0, duplicated = 0, reordered = 0, corrupted = 0,
          delayed = 0, bytes_received = 0, bytes_sent = 0, errors = 0}
end

-- ---- leaving the proxy ----------------------------------------------------------

-- transmit: one datagram (or copy) goes out now. A datagram leaving after
-- a later one of the same client is what a receiver sees as reordered:
-- counted here, whatever held it (reorder, or jitter), once: a copy
-- following its original is not counted again.
local function transmit(self, D, flow, data, seq, copy)
  local st, name = D.stats, D.name
  local top = flow.maxseq[name]
  if copy then
    -- after its original: nothing to count
  elseif seq < top then
    st.reordered = st.reordered + 1
    if self.log.on then
      self.log:add({dir = name, seq = seq, size = #data, what = "reorder", client = flow.key, after = top})
    end
  else
    flow.maxseq[name] = seq
  end
  local ok, err
  if name == "to_server" then
    ok, err = pcall(flow.sock.send, flow.sock, data)
  else
    ok, err = pcall(self.sock.sendto, self.sock, data, flow.host, flow.port)
  end
  if ok then
    st.sent = st.sent + 1
    st.bytes_sent = st.bytes_sent + #data
  elseif not self.closed then
    st.errors = st.errors + 1
    if self.log.on then
      self.log:add({dir = name, seq = seq, size = #data, what = "error", client = flow.key,
                    code = errors.is(err) and err.code or tostring(err)})
    end
  end
end

-- release(held list, i): a held datagram (and its copy) goes out at last
local function release(self, list, i)
  local h = table.remove(list, i)
  h.held = false
  for c = 1, h.copies do transmit(self, h.dir, h.flow, h.data, h.seq, c > 1) end
end

-- depart: a datagram's time has come; a duplicated one goes twice, the
-- copy right after it. One picked for reordering waits until
-- `reorder_distance` later datagrams of its client have left (or
-- `reorder_hold` seconds have passed), its copy with it; any other goes
-- now, and counts for the held ones.
local function depart(self, D, flow, data, seq, hold, copies)
  local list = flow.held[D.name]
  if hold then
    local h = {dir = D, flow = flow, data = data, seq = seq, copies = copies,
               left = D.reorder_distance, held = true}
    list[#list + 1] = h
    self.sched:at(now() + D.reorder_hold, {release = h})
    return
  end
  for c = 1, copies do transmit(self, D, flow, data, seq, c > 1) end
  local i = 1
  while list[i] do
    local h = list[i]
    if h.seq < seq then h.left = h.left - 1 end
    if h.left <= 0 then release(self, list, i) else i = i + 1 end
  end
end

-- fire: what the schedule runs when due: a departure, or a held
-- datagram's time limit
local function fire(self, x)
  if self.closed then return end
  local h = x.release
  if h then
    if h.held then
      local list = h.flow.held[h.dir.name]
      for i = 1, #list do
        if list[i] == h then release(self, list, i); break end
      end
    end
    return
  end
  depart(self, x.dir, x.flow, x.data, x.seq, x.hold, x.copies)
end

-- ---- arriving at the proxy --------------------------------------------------------

local function flip_bit(D, data)
  local bit = D.r_bits:random(0, #data * 8 - 1)
  local i = bit // 8 + 1
  return sub(data, 1, i - 1) .. char(byte(data, i) ~ (1 << (bit % 8))) .. sub(data, i + 1), bit
end

-- through_link(D, t, size) -> when the datagram is through the rate limit,
-- or nil when the queue in front of it is full (a tail drop)
local function through_link(D, t, size)
  local rate = D.rate
  if not rate then return t end
  local start = max(t, D.link_free)
  if (start - t) * rate + size > D.queue then return nil end
  D.link_free = start + size / rate
  return D.link_free
end

-- The verdict of the proxy's rule on one datagram, as a table of what
-- to do ({drop=, corrupt=, duplicate=, reorder=, delay=}), or nil for
-- what the seeded draws decided. "drop", "duplicate", "corrupt" and
-- "reorder" name a one-field verdict, a number a delay. A rule that
-- raises is reported once and no longer asked.
local VERDICTS = {drop = {drop = true}, duplicate = {duplicate = true},
                  corrupt = {corrupt = true}, reorder = {reorder = true},
                  pass = {drop = false, corrupt = false, duplicate = false, reorder = false}}

apply_rule = function(self, D, flow, data, seq)
  local ok, v = pcall(self.rule, D.name, seq, data, flow.key)
  if not ok then
    io.stderr:write("netem.udp_proxy: rule raised (no longer asked): ", tostring(v), "\n")
    self.rule = nil
    return nil
  end
  if v == nil or v == false then return nil end
  if type(v) == "number" and v >= 0 then return {delay = v} end
  if type(v) == "string" and VERDICTS[v] then return VERDICTS[v] end
  if type(v) == "table" then return v end
  io.stderr:write("netem.udp_proxy: rule returned ", tostring(v),
                  " (nil, \"drop\", \"duplicate\", \"corrupt\", \"reorder\", \"pass\", a delay or a table expected); no longer asked\n")
  self.rule = nil
  return nil
end

-- receive: one datagram came in direction D from (or for) flow. Every
-- enabled impairment draws for every datagram, in a fixed order, so the
-- draws of one impairment do not depend on the others' outcomes.
local function receive(self, D, flow, data)
  local st, log = D.stats, self.log
  local size = #data
  local seq = st.received + 1
  st.received = seq
  st.bytes_received = st.bytes_received + size
  local drop = D.loss > 0 and D.r_loss:random() < D.loss
  local bad = D.corrupt > 0 and D.r_corrupt:random() < D.corrupt
  local dup = D.duplicate > 0 and D.r_dup:random() < D.duplicate
  local hold = D.reorder > 0 and D.r_reorder:random() < D.reorder
  local delay = D.delay
  if D.jitter > 0 then delay = max(0, delay + (2 * D.r_jitter:random() - 1) * D.jitter) end
  local ruled = self.rule and apply_rule(self, D, flow, data, seq)
  if ruled then
    if ruled.drop ~= nil then drop = ruled.drop end
    if ruled.corrupt ~= nil then bad = ruled.corrupt end
    if ruled.duplicate ~= nil then dup = ruled.duplicate end
    if ruled.reorder ~= nil then hold = ruled.reorder end
    if ruled.delay ~= nil then delay = ruled.delay end
  end
  local t = now()
  local due = not drop and through_link(D, t, size)
  if not due then
    st.dropped = st.dropped + 1
    if log.on then
      log:add({dir = D.name, seq = seq, size = size, what = "drop", client = flow.key,
               reason = drop and "loss" or "queue"})
    end
    return
  end
  due = due + delay
  local bit
  if bad and size > 0 then
    data, bit = flip_bit(D, data)
    st.corrupted = st.corrupted + 1
  end
  -- the copy takes its turn on the link too, and may find the queue full
  local copies = 1
  if dup and through_link(D, t, size) then
    copies = 2
    st.duplicated = st.duplicated + 1
  end
  if due > t then st.delayed = st.delayed + 1 end
  if log.on then
    log:add({dir = D.name, seq = seq, size = size, what = "pass", client = flow.key,
             delay = due > t and due - t or nil})
    if bit then log:add({dir = D.name, seq = seq, size = size, what = "corrupt", client = flow.key, bit = bit}) end
    if copies == 2 then log:add({dir = D.name, seq = seq, size = size, what = "dup", client = flow.key}) end
  end
  if not self.sched:defer(due, {dir = D, flow = flow, data = data, seq = seq, hold = hold,
                                copies = copies}) then
    depart(self, D, flow, data, seq, hold, copies)
  end
end

-- ---- the tasks ----------------------------------------------------------------

-- the end of a task's loop: the proxy closed, or its socket did
local function finished(self, err)
  return self.closed or errors.is(err, "EBADF") or errors.is(err, "ECANCELED")
end

-- a client's upstream socket: replies from the target
local function serve_flow(self, flow)
  local D, sock = self.dirs.to_client, flow.sock
  while true do
    local ok, data = pcall(sock.recv, sock, 65535)
    if ok then
      receive(self, D, flow, data)
    elseif finished(self, data) then
      return
    else
      -- ECONNREFUSED: the target sent port unreachable for an earlier datagram
      local up = self.dirs.to_server.stats
      up.errors = up.errors + 1
      if self.log.on then
        self.log:add({dir = "to_server", what = "error", client = flow.key,
                      code = errors.is(data) and data.code or tostring(data)})
      end
    end
  end
end

local function new_flow(self, host, port, id)
  local sock = socket.socket(options.family(self.target[1]), socket.SOCK_DGRAM)
  local ok, err = pcall(sock.connect, sock, self.target[1], self.target[2])
  if not ok then sock:close(); error(err, 0) end
  local key = options.hostport(host, port)
  local flow = {key = key, host = host, port = port, sock = sock,
                held = {to_server = {}, to_client = {}}, maxseq = {to_server = 0, to_client = 0}}
  self.flows[id] = flow
  self.stats.clients = self.stats.clients + 1
  if self.log.on then self.log:add({what = "client", client = key}) end
  self.tasks[spawn(serve_flow, self, flow)] = true
  return flow
end

-- the listening socket: datagrams from clients
local function serve(self)
  local D, sock, flows = self.dirs.to_server, self.sock, self.flows
  while true do
    local ok, data, host, port = pcall(sock.recvfrom, sock, 65535)
    if ok then
      local id = host .. " " .. port
      local flow = flows[id]
      if not flow then
        local fok, f = pcall(new_flow, self, host, port, id)
        if fok then flow = f
        elseif self.closed then return
        else
          D.stats.errors = D.stats.errors + 1
          if self.log.on then
            self.log:add({dir = "to_server", what = "error", client = options.hostport(host, port),
                          code = errors.is(f) and f.code or tostring(f)})
          end
        end
      end
      if flow then receive(self, D, flow, data) end
    elseif finished(self, data) then
      return
    else
      D.stats.errors = D.stats.errors + 1
    end
  end
end

-- ---- the proxy ----------------------------------------------------------------

-- netem.udp_proxy{...} -> proxy (docs/netem.md)
function M.udp_proxy(opts)
  options.check_keys(F, opts, KNOWN)
  local thost, tport = options.address(F, "target", opts.target)
  local lhost, lport = options.address(F, "listen", opts.listen, {"127.0.0.1", 0})
  local cfg = {
    loss = options.probability(F, "loss", opts.loss),
    duplicate = options.probability(F, "duplicate", opts.duplicate),
    reorder = options.probability(F, "reorder", opts.reorder),
    corrupt = options.probability(F, "corrupt", opts.corrupt),
    delay = options.seconds(F, "delay", opts.delay),
    jitter = options.seconds(F, "jitter", opts.jitter),
    rate = options.rate(F, "rate", opts.rate),
    queue = options.positive(F, "queue", opts.queue, 262144),
    reorder_distance = options.at_least_one(F, "reorder_distance", opts.reorder_distance, 1),
    reorder_hold = options.positive(F, "reorder_hold", opts.reorder_hold, 1.0),
  }
  local seed = options.seed(F, opts.seed)
  local keep = options.keep(F, opts.keep_events)
  if opts.rule ~= nil and type(opts.rule) ~= "function" then
    errors.argerror(1, F, "'rule' must be a function(dir, seq, data, client)", 2)
  end
  if opts.events_file ~= nil and type(opts.events_file) ~= "string" then
    errors.argerror(1, F, "'events_file' must be a path", 2)
  end
  local sock = socket.socket(options.family(lhost), socket.SOCK_DGRAM)
  local ok, err = pcall(sock.bind, sock, lhost, lport)
  if not ok then sock:close(); error(err, 0) end
  local self = UDPProxy()
  self.sock, self.seed, self.flows, self.tasks = sock, seed, {}, {}
  self.rule = opts.rule
  self.address = {sock:getsockname()}
  self.target = {thost, tport}
  self.stats = {clients = 0}
  self.dirs = {}
  for _, name in ipairs(options.DIRS) do
    local D = {name = name, link_free = 0}
    for k, v in pairs(cfg) do D[k] = v[name] end
    D.stats = new_stats()
    self.stats[name] = D.stats
    for _, imp in ipairs({"loss", "corrupt", "dup", "reorder", "jitter", "bits"}) do
      D["r_" .. imp] = options.stream(seed, "udp." .. imp .. "." .. name)
    end
    self.dirs[name] = D
  end
  local lok, log = pcall(events.new, keep, opts.events_file)
  if not lok then sock:close(); error(log, 0) end
  self.log = log
  self.sched = schedule.new(function(x) fire(self, x) end)
  self.tasks[spawn(serve, self)] = true
  return self
end

-- what tostring shows of it
function UDPProxy:_state()
  local n = self.stats.clients
  return n == 1 and "1 client" or n .. " clients"
end

-- proxy:close(): closes the sockets, ends the tasks, flushes events_file
function UDPProxy:close()
  if self.closed then return end
  self.closed = true
  self.sched:close()
  self.sock:close()
  for _, flow in pairs(self.flows) do flow.sock:close() end
  stop_tasks(self.tasks)
  self.log:close()
end

return M
