-- capture.packet: IP packets decoded into the segments `capture` returns.
-- decode(data) reads one raw IPv4 or IPv6 packet (no link-layer header):
-- addresses, TCP (flags, sequence numbers, window, options) or UDP, the
-- payload's length. A tracker then numbers each connection and makes its
-- sequence numbers relative as Wireshark shows them (the first sequence
-- number of each direction is 0, a SYN counts one) and scales windows
-- once both SYNs have said their shift.
local socket = require "socket"

local unpack, byte, format, concat = string.unpack, string.byte, string.format, table.concat
local inet_ntop, AF_INET, AF_INET6 = socket.inet_ntop, socket.AF_INET, socket.AF_INET6

local M = {}

-- TCP flags in Wireshark's order (its Info column): from the lowest bit up
local FLAG_NAMES = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE"}
M.FIN, M.SYN, M.RST, M.PSH, M.ACK = 0x01, 0x02, 0x04, 0x08, 0x10

-- flags(bits) -> "SYN|ACK": the names of the flags set, "" for none
function M.flags(bits)
  local names = {}
  for i, name in ipairs(FLAG_NAMES) do
    if bits & (1 << (i - 1)) ~= 0 then names[#names + 1] = name end
  end
  return concat(names, "|")
end

local PROTOS = {[1] = "icmp", [6] = "tcp", [17] = "udp", [58] = "icmpv6"}

-- TCP options -> {mss=, wscale=, sack_perm=, sack={{left, right}...},
-- ts={val=, ecr=}, other={kind...}}; a malformed option ends the list
local function tcp_options(d, from, to)
  local o, i = {}, from
  while i < to do
    local kind = byte(d, i)
    if kind == 0 then break end                          -- end of options
    if kind == 1 then
      i = i + 1                                          -- NOP
    else
      local len = byte(d, i + 1)
      if not len or len < 2 or i + len > to then break end
      if kind == 2 and len == 4 then o.mss = unpack(">I2", d, i + 2)
      elseif kind == 3 and len == 3 then o.wscale = byte(d, i + 2)
      elseif kind == 4 and len == 2 then o.sack_perm = true
      elseif kind == 5 and (len - 2) % 8 == 0 then
        o.sack = {}
        for j = i + 2, i + len - 8, 8 do
          local l, r = unpack(">I4I4", d, j)
          o.sack[#o.sack + 1] = {l, r}
        end
      elseif kind == 8 and len == 10 then
        local v, e = unpack(">I4I4", d, i + 2)
        o.ts = {val = v, ecr = e}
      else
        o.other = o.other or {}
        o.other[#o.other + 1] = kind
      end
      i = i + len
    end
  end
  return o
end

-- IPv6 extension headers skipped to reach the transport header: hop by
-- hop, routing, destination options (8-octet units), fragment, AH (4-octet
-- units). -> next header (nil for a later fragment), its offset (1-based)
local function skip_ipv6_ext(d, next, off)
  for _ = 1, 8 do
    if next == 0 or next == 43 or next == 60 then
      if #d < off + 7 then return next, off end
      next, off = byte(d, off), off + 8 + byte(d, off + 1) * 8
    elseif next == 44 then
      if #d < off + 7 then return next, off end
      if unpack(">I2", d, off + 2) & 0xfff8 ~= 0 then return nil, off + 8 end
      next, off = byte(d, off), off + 8
    elseif next == 51 then
      if #d < off + 7 then return next, off end
      next, off = byte(d, off), off + (byte(d, off + 1) + 2) * 4
    else
      break
    end
  end
  return next, off
end

-- decode(data) -> {family=, src=, dst=, ttl=, ip_len=, proto=, sport=,
-- dport=, bits=, raw_seq=, raw_ack=, win=, len=, options=}, or nil when
-- data is not an IP packet. Lengths come from the IP header, so a packet
-- kept short of its payload (snaplen) still says how long it was.
function M.decode(d)
  if #d < 1 then return nil end
  local version = byte(d, 1) >> 4
  local r, next, off, left
  if version == 4 then
    if #d < 20 then return nil end
    local ihl = (byte(d, 1) & 0xf) * 4
    local total, frag, ttl, proto = unpack(">I2 xx I2 BB", d, 3)
    r = {family = 4, ttl = ttl, ip_len = total,
         src = inet_ntop(AF_INET, d:sub(13, 16)), dst = inet_ntop(AF_INET, d:sub(17, 20))}
    next, off, left = proto, ihl + 1, total - ihl
    if frag & 0x1fff ~= 0 then next = nil end               -- a later fragment
  elseif version == 6 then
    if #d < 40 then return nil end
    local plen, nh, hops = unpack(">I2BB", d, 5)
    r = {family = 6, ttl = hops, ip_len = 40 + plen,
         src = inet_ntop(AF_INET6, d:sub(9, 24)), dst = inet_ntop(AF_INET6, d:sub(25, 40))}
    next, off = skip_ipv6_ext(d, nh, 41)
    left = 40 + plen - (off - 1)
  else
    return nil
  end
  r.proto = PROTOS[next] or (next and tostring(next) or "fragment")
  if next == 6 and #d >= off + 19 then
    local sport, dport, seq, ack, hl, bits, win = unpack(">I2I2I4I4BBI2", d, off)
    local thl = (hl >> 4) * 4
    bits = bits | ((hl & 1) << 8)                           -- AE, once NS
    r.sport, r.dport, r.raw_seq, r.raw_ack, r.bits, r.win = sport, dport, seq, ack, bits, win
    r.options = tcp_options(d, off + 20, math.min(off + thl, #d + 1))
    r.len = math.max(0, left - thl)
  elseif next == 17 and #d >= off + 7 then
    local sport, dport, ulen = unpack(">I2I2I2", d, off)
    r.sport, r.dport = sport, dport
    r.len = math.max(0, math.min(ulen, left) - 8)
  else
    r.len = math.max(0, left or 0)
  end
  return r
end

-- "host:port", "[v6]:port"
local function endpoint(host, port)
  if host:find(":", 1, true) then return format("[%s]:%d", host, port) end
  return format("%s:%d", host, port)
end
M.endpoint = endpoint

-- ---- connections --------------------------------------------------------------

local Tracker = {}
Tracker.__index = Tracker

-- tracker() -> t: t:segment(rec, time) turns decoded packets, in capture
-- order, into segments numbered by connection (stream, from 0)
function M.tracker()
  return setmetatable({convs = {}, streams = 0}, Tracker)
end

local function new_conv(t, key, client, server)
  local c = {stream = t.streams, client = client, server = server, ends = {}}
  t.streams = t.streams + 1
  t.convs[key] = c
  return c
end

-- the conversation of rec, made when new; a SYN with a sequence number
-- other than the one this direction began with is a new connection on
-- the same ports (a retransmitted SYN carries the same one)
local function conv_of(t, rec, from, to)
  local key = from < to and (from .. " " .. to) or (to .. " " .. from)
  local c = t.convs[key]
  local syn = rec.bits and rec.bits & M.SYN ~= 0 and rec.bits & M.ACK == 0
  if c and syn and c.ends[from] and c.ends[from].base ~= rec.raw_seq then c = nil end
  if not c then
    local client, server = from, to
    if rec.bits and rec.bits & (M.SYN | M.ACK) == (M.SYN | M.ACK) then
      client, server = to, from                             -- we missed the SYN
    elseif not syn and rec.sport and rec.sport < rec.dport then
      client, server = to, from                             -- the lower port serves
    end
    c = new_conv(t, key, client, server)
  end
  return c
end

local function side(c, name)
  local e = c.ends[name]
  if not e then e = {}; c.ends[name] = e end
  return e
end

local MOD = 1 << 32

-- segment(rec, time) -> the segment of the API (docs/capture.md)
function Tracker:segment(rec, time)
  local s = {time = time, family = rec.family, src = rec.src, dst = rec.dst, sport = rec.sport,
             dport = rec.dport, proto = rec.proto, len = rec.len, ttl = rec.ttl, ip_len = rec.ip_len}
  if not rec.sport then return s end
  local from, to = endpoint(rec.src, rec.sport), endpoint(rec.dst, rec.dport)
  local c = conv_of(self, rec, from, to)
  s.stream = c.stream
  s.client, s.server = c.client, c.server
  if rec.proto ~= "tcp" then return s end
  local bits = rec.bits
  local me, peer = side(c, from), side(c, to)
  s.flags, s.bits = M.flags(bits), bits
  s.raw_seq, s.raw_ack, s.win, s.options = rec.raw_seq, rec.raw_ack, rec.win, rec.options
  if bits & M.SYN ~= 0 then
    me.base, me.syn, me.wscale = rec.raw_seq, true, rec.options.wscale or false
  elseif me.base == nil then
    me.base = rec.raw_seq                                   -- joined midway
  end
  s.seq = (rec.raw_seq - me.base) % MOD
  -- a segment that carries something (data, SYN, FIN) below what this
  -- side has already sent is sent again
  local size = rec.len + ((bits & (M.SYN | M.FIN) ~= 0) and 1 or 0)
  if size > 0 then
    if me.nxt and s.seq < me.nxt then s.retransmission = true end
    if not me.nxt or s.seq + size > me.nxt then me.nxt = s.seq + size end
  end
  if bits & M.ACK ~= 0 then
    if peer.base == nil then
      -- the peer not seen yet: its next byte is the one acknowledged
      -- (after its SYN, when this is the SYN|ACK answering it)
      peer.base = (rec.raw_ack - ((bits & M.SYN ~= 0) and 1 or 0)) % MOD
    end
    s.ack = (rec.raw_ack - peer.base) % MOD
  else
    s.ack = 0
  end
  -- a SYN's window is never scaled; others once both shifts are known
  if bits & M.SYN ~= 0 then
    s.win_scaled = rec.win
  elseif me.syn and peer.syn then
    local shift = (me.wscale and peer.wscale) and me.wscale or 0
    s.win_scaled = rec.win << shift
  end
  return s
end

return M
