-- capture: what went over the wire, as segments a program can check.
-- capture.start{interface=} reads an interface's packets with an
-- AF_PACKET socket (bindings/capture.c: needs CAP_NET_RAW over the
-- interface's namespace); capture.start{link=} taps a netem.link, whose
-- packets pass through wirelab and need no privilege. Either way the
-- packets are kept, within limits, decoded into segments
-- (capture.packet: flags, relative seq/ack as Wireshark shows them,
-- options), drawn as a ladder (capture.ladder) and written as a pcap file
-- that Wireshark and tcpdump open.
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local socket = require "socket"
local core = require "capture.core"
local packet = require "capture.packet"
local ladder = require "capture.ladder"

local type, tostring, math_type, pack, floor = type, tostring, math.type, string.pack, math.floor
local format = string.format

local M = {}

M.MAX_PACKETS = 100000
M.MAX_BYTES = 64 * 1024 * 1024
M.SNAPLEN = 262144

local NO_RAW = "capturing on an interface needs CAP_NET_RAW over its network namespace: " ..
  "run as root, or inside `unshare -rn` (its own loopback only); " ..
  "a capture on a netem.link needs no privilege"

local Capture = {}
Capture.__index = Capture
M.Capture = Capture

local function arg_integer(opts, key, default, lo, hi)
  local v = opts[key]
  if v == nil then return default end
  if math_type(v) ~= "integer" or v < lo or (hi and v > hi) then
    errors.argerror(1, "start", format("%s: an integer from %d%s expected, got %s", key, lo,
      hi and (" to " .. hi) or "", tostring(v)), 3)
  end
  return v
end

-- the host as decode() writes addresses (inet_ntop's form), or an error
local function canonical_host(h)
  if type(h) ~= "string" then
    errors.argerror(1, "start", "host: a numeric IPv4 or IPv6 address expected, got " .. type(h), 3)
  end
  for _, fam in ipairs{socket.AF_INET, socket.AF_INET6} do
    local ok, b = pcall(socket.inet_pton, fam, h)
    if ok then return socket.inet_ntop(fam, b) end
  end
  errors.argerror(1, "start", "host: a numeric IPv4 or IPv6 address expected, got " .. h, 3)
end

-- ---- starting --------------------------------------------------------------------

local function start_interface(cap, opts)
  local nsfd
  if opts.netns ~= nil then
    local ok, fd = pcall(function() return opts.netns:fileno() end)
    if not ok and errors.is(fd) then error(fd, 0) end        -- a closed namespace: EBADF
    if not ok then errors.argerror(1, "start", "netns: a network namespace (process.netns()) expected", 3) end
    nsfd = fd
  end
  local ok, c = pcall(core.open, opts.interface, nsfd, cap.port, cap.host, cap.max_packets,
    cap.max_bytes, cap.snaplen)
  if not ok then
    if errors.is(c, "EPERM") or errors.is(c, "EACCES") then
      errors.raise("capture", c.code, opts.interface, nil, NO_RAW)
    end
    error(c, 0)
  end
  cap._core = c
  cap._start_ns = c:started_ns()
end

-- a packet from the link: filtered and kept here, as the C side does
local function tapped(cap, time, dir, data)
  if cap._stopped then return end
  local rec = packet.decode(data)
  if not rec then return end
  if cap.port and rec.sport ~= cap.port and rec.dport ~= cap.port then return end
  if cap.host and rec.src ~= cap.host and rec.dst ~= cap.host then return end
  local keep = #data > cap.snaplen and data:sub(1, cap.snaplen) or data
  if cap._kept >= cap.max_packets or cap._bytes + #keep > cap.max_bytes then
    cap._not_kept = cap._not_kept + 1
    return
  end
  cap._kept, cap._bytes = cap._kept + 1, cap._bytes + #keep
  cap._pending[#cap._pending + 1] = {t = time - cap._t0, data = keep, len = #data, dir = dir, rec = rec}
  cap._q:notify_all()
end

local function start_link(cap, link)
  if type(link) ~= "table" and type(link) ~= "userdata" then
    errors.argerror(1, "start", "link: a netem.link expected, got " .. type(link), 3)
  end
  local ok, tap = pcall(function() return link._tap end)
  if not ok or type(tap) ~= "function" then
    errors.argerror(1, "start", "link: a netem.link (with _tap) expected", 3)
  end
  cap._q = require("wirelab.core").waitq()
  cap._pending, cap._kept, cap._bytes, cap._not_kept = {}, 0, 0, 0
  cap._t0 = wirelab.now()
  cap._start_ns = core.realtime_ns()
  cap._untap = link:_tap(function(time, dir, data) tapped(cap, time, dir, data) end)
end

-- start{interface= | link=, port=, host=, netns=, max_packets=, max_bytes=,
-- snaplen=} -> cap, capturing from now on
function M.start(opts)
  if type(opts) ~= "table" then
    errors.argerror(1, "start", "table expected, got " .. type(opts))
  end
  if (opts.interface == nil) == (opts.link == nil) then
    errors.argerror(1, "start", "interface= or link= expected (one of them)")
  end
  if opts.interface ~= nil and type(opts.interface) ~= "string" then
    errors.argerror(1, "start", "interface: a name (\"lo\") expected, got " .. type(opts.interface))
  end
  local cap = setmetatable({
    port = arg_integer(opts, "port", nil, 1, 65535),
    host = opts.host ~= nil and canonical_host(opts.host) or nil,
    max_packets = arg_integer(opts, "max_packets", M.MAX_PACKETS, 1),
    max_bytes = arg_integer(opts, "max_bytes", M.MAX_BYTES, 1),
    snaplen = arg_integer(opts, "snaplen", M.SNAPLEN, 64, M.SNAPLEN),
    interface = opts.interface, link = opts.link,
    _packets = {}, _segs = {}, _marks = {}, _tracker = packet.tracker(), _drops = 0,
  }, Capture)
  if opts.interface then start_interface(cap, opts) else start_link(cap, opts.link) end
  return cap
end

-- ---- reading what came -------------------------------------------------------------

-- new packets into _packets and their segments into _segs
local function pull(cap)
  local new
  if cap._core then
    new = cap._core:take()
    cap._drops = cap._drops + cap._core:stats().kernel_drops
  else
    new, cap._pending = cap._pending, {}
  end
  local packets, segs, tracker = cap._packets, cap._segs, cap._tracker
  for i = 1, #new do
    local p = new[i]
    packets[#packets + 1] = p
    local rec = p.rec or packet.decode(p.data)
    p.rec = nil
    if rec then
      local s = tracker:segment(rec, p.t)
      s.dir = p.dir
      segs[#segs + 1] = s
    end
  end
end

local function counts(cap)
  if cap._final then return cap._final.kept, cap._final.not_kept end
  if cap._core then
    local st = cap._core:stats()
    cap._drops = cap._drops + st.kernel_drops
    return st.kept, st.not_kept
  end
  return cap._kept, cap._not_kept
end

-- what was not kept, in a sentence, or nil
local function note(cap, not_kept)
  local parts = {}
  if not_kept > 0 then
    parts[#parts + 1] = format("%d more packets came after the capture's limit (max_packets %d, " ..
      "max_bytes %d) and were not kept", not_kept, cap.max_packets, cap.max_bytes)
  end
  if cap._drops > 0 then
    parts[#parts + 1] = format("the kernel dropped %d packets the capture did not read in time", cap._drops)
  end
  local why = cap._core and not cap._stopped and cap._core:error()
  if why then parts[#parts + 1] = "the capture stopped reading: " .. why end
  if cap._error then parts[#parts + 1] = "the capture stopped reading: " .. cap._error end
  if #parts == 0 then return nil end
  return table.concat(parts, "; ")
end

-- the segments as the API returns them: a new list, with marks and notes
local function snapshot(cap)
  local out = {}
  for i, s in ipairs(cap._segs) do out[i] = s end
  local marks = {}
  for i, m in ipairs(cap._marks) do marks[i] = m end
  out.marks = marks
  local _, not_kept = counts(cap)
  out.not_kept = not_kept
  out.kernel_drops = cap._drops
  out.note = note(cap, not_kept)
  return out
end

-- cap:segments() -> segments: what was captured so far
function Capture:segments()
  if not self._stopped then pull(self) end
  return snapshot(self)
end

-- cap:wait(pred[, timeout]) -> segments | nil: until pred(segments) is
-- true (a number n: until there are n), or nil when time runs out
function Capture:wait(pred, timeout)
  if math_type(pred) == "integer" then
    local n = pred
    pred = function(segs) return #segs >= n end
  elseif type(pred) ~= "function" then
    errors.argerror(1, "wait", "function or integer expected, got " .. type(pred))
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    errors.argerror(2, "wait", "non-negative number of seconds or nil expected")
  end
  local deadline = timeout and wirelab.now() + timeout
  while true do
    local segs = self:segments()
    if pred(segs) then return segs end
    if self._stopped or (self._core and self._core:error()) then return nil end
    local left = deadline and deadline - wirelab.now()
    if left and left <= 0 then return nil end
    if self._core then self._core:wait(left) else self._q:wait(left) end
  end
end

-- cap:mark(label): a moment of the program's own ("accept() returned"),
-- on the capture's clock; the ladder draws it among the segments
function Capture:mark(label)
  if type(label) ~= "string" then errors.argerror(1, "mark", "string expected, got " .. type(label)) end
  if self._stopped then errors.raise("mark", "EBADF", nil, nil, "the capture has stopped") end
  local t = self._core and self._core:now() or (wirelab.now() - self._t0)
  if self._core then pull(self) end          -- the packets before it come first
  self._marks[#self._marks + 1] = {time = t, label = label}
  return t
end

-- cap:stop() -> segments: stops capturing; what was captured (again, the
-- same, on a later call)
function Capture:stop()
  if not self._stopped then
    pull(self)
    if self._core then
      local kept, not_kept = counts(self)
      self._final = {kept = kept, not_kept = not_kept}
      self._error = self._core:error()
      self._core:close()
    else
      pcall(self._untap)
    end
    self._stopped = true
  end
  return snapshot(self)
end

Capture.close = Capture.stop
Capture.__close = Capture.stop

-- cap:packets() -> {{time=, data=, len=, dir=}...}: the raw IP packets kept
function Capture:packets()
  if not self._stopped then pull(self) end
  local out = {}
  for i, p in ipairs(self._packets) do
    out[i] = {time = p.t, data = p.data, len = p.len, dir = p.dir}
  end
  return out
end

-- ---- pcap -----------------------------------------------------------------------

local PCAP_MAGIC_NS = 0xa1b23c4d      -- nanosecond timestamps
local LINKTYPE_RAW = 101              -- each record an IPv4 or IPv6 packet

-- cap:write_pcap(path) -> n: the packets kept, as a classic pcap file
function Capture:write_pcap(path)
  if type(path) ~= "string" then errors.argerror(1, "write_pcap", "path expected, got " .. type(path)) end
  if not self._stopped then pull(self) end
  local f, err = io.open(path, "wb")
  if not f then errors.raise("write_pcap", "EIO", nil, nil, err) end
  local out = {pack("<I4I2I2i4I4I4I4", PCAP_MAGIC_NS, 2, 4, 0, 0, M.SNAPLEN, LINKTYPE_RAW)}
  for _, p in ipairs(self._packets) do
    local ns = self._start_ns + floor(p.t * 1e9 + 0.5)
    out[#out + 1] = pack("<I4I4I4I4", ns // 1000000000, ns % 1000000000, #p.data, p.len)
    out[#out + 1] = p.data
    if #out > 512 then f:write(table.concat(out)); out = {} end
  end
  local ok, werr = f:write(table.concat(out))
  local cok, cerr = f:close()
  if not ok or not cok then errors.raise("write_pcap", "EIO", nil, nil, tostring(werr or cerr)) end
  return #self._packets
end

-- format(segments[, opts]) -> text: the ladder diagram (capture.ladder)
M.format = ladder.format

return M
