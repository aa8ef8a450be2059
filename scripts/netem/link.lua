-- netem.link: an emulated link between two network namespaces, for real
-- kernel TCP under loss, delay and a bottleneck (docs/link.md). Each side
-- is a namespace of its own (process.netns) holding a TUN device that
-- wirelab drives: every IP packet one side's kernel sends is read by
-- wirelab, impaired by its emulator (bindings/emul.c, seeded), and
-- written into the other side's kernel, which answers as it would over a
-- wire, so handshakes, retransmissions and congestion windows are the
-- kernel's own. The packet path is C (bindings/link.c); this file checks
-- the options, makes the sides, and gives them socket constructors and
-- spawn, as the Mahimahi shells do with a program run inside.
local core = require "netem.link.core"
local pcore = require "process.core"
local process = require "process"
local wirelab = require "wirelab"
local errors = require "wirelab.error"

local type, tostring, tonumber, pairs, ipairs, setmetatable, pcall, error =
  type, tostring, tonumber, pairs, ipairs, setmetatable, pcall, error
local math_type, floor, format = math.type, math.floor, string.format

local M = {}

-- Documentation ranges only (RFC 5737, RFC 3849): nothing routable.
M.A = {host = "192.0.2.1", host6 = "2001:db8::1"}
M.B = {host = "192.0.2.2", host6 = "2001:db8::2"}
M.DEFAULT_QUEUE = 1000            -- packets waiting at a rate's bottleneck
M.DEFAULT_LOG = 100000            -- lines of the packet log kept

-- ---- the options ------------------------------------------------------------

local function bad(name, want, v)
  error(("bad argument #1 to 'link' (%s: %s expected, got %s)"):format(name, want, tostring(v)), 0)
end

local TIME_UNITS = {s = 1, ms = 1e-3, us = 1e-6}

-- seconds: a number, or "50ms", "1.5s", "200us"
local function secs(name, v)
  if type(v) == "number" and v >= 0 and v < math.huge then return v end
  if type(v) == "string" then
    local n, u = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
    local mult = n and TIME_UNITS[u == "" and "s" or u:lower()]
    if mult then return tonumber(n) * mult end
  end
  bad(name, "seconds (a number, or a string like '50ms')", v)
end

-- a probability: 0..1, or "10%"
local function prob(name, v)
  if type(v) == "number" and v >= 0 and v <= 1 then return v end
  if type(v) == "string" then
    local n = tonumber(v:match("^%s*(%d+%.?%d*)%s*%%%s*$"))
    if n and n <= 100 then return n / 100 end
  end
  bad(name, "a probability from 0 to 1, or a percentage like '10%'", v)
end

-- Rates: "10mbit", "10Mbit/s", "10Mbps" are bits per second; a capital B
-- means bytes: "2MB/s", "512KiB/s".
local BIT_UNITS = {b = 1 / 8, bit = 1 / 8, kb = 1e3 / 8, kbit = 1e3 / 8, mb = 1e6 / 8,
                   mbit = 1e6 / 8, gb = 1e9 / 8, gbit = 1e9 / 8}
local BYTE_UNITS = {b = 1, kb = 1e3, mb = 1e6, gb = 1e9, kib = 1024, mib = 1024 ^ 2, gib = 1024 ^ 3}

-- bytes per second: a number, or a string as above; false or 0: no limit
local function rate(name, v)
  if v == false or v == 0 then return 0 end
  if type(v) == "number" and v > 0 and v < math.huge then return v end
  if type(v) == "string" then
    local n, unit = v:match("^%s*(%d+%.?%d*)%s*([%a/]+)%s*$")
    if n then
      local u = unit:lower():gsub("/s$", ""):gsub("ps$", "")
      local mult = (unit:find("B", 1, true) and BYTE_UNITS or BIT_UNITS)[u]
      if mult then return tonumber(n) * mult end
    end
  end
  bad(name, "bytes per second, or a string like '10mbit' or '2MB/s'", v)
end

local SIZE_UNITS = {b = 1, k = 1024, kb = 1024, kib = 1024, m = 1024 ^ 2, mb = 1024 ^ 2, mib = 1024 ^ 2}

-- the bottleneck's buffer: packets (an integer), or bytes ("64KiB");
-- false or math.huge: no limit
local function queue(name, v)
  if v == false or v == math.huge then return 0, 0 end
  if math_type(v) == "integer" and v > 0 then return v, 0 end
  if type(v) == "string" then
    local n, u = v:match("^%s*(%d+)%s*(%a*)%s*$")
    local mult = n and SIZE_UNITS[u:lower()]
    if mult and tonumber(n) > 0 then return 0, floor(tonumber(n) * mult) end
  end
  bad(name, "a number of packets, or bytes as a string like '64KiB'", v)
end

local DIR_KEYS = {delay = secs, jitter = secs, reorder_gap = secs, loss = prob, duplicate = prob,
                  reorder = prob, rate = rate, queue = queue}
local TOP_KEYS = {seed = true, log = true, mtu = true, a_to_b = true, b_to_a = true}

-- the C settings of one direction from the table t ("a_to_b." in names)
local function dir_settings(t, prefix, out)
  for k, v in pairs(t) do
    local f = DIR_KEYS[k]
    if f == nil and not (prefix == "" and TOP_KEYS[k]) then
      error(("bad argument #1 to 'link' (unknown option '%s%s')"):format(prefix, tostring(k)), 0)
    end
    if f == queue then out.queue, out.queue_bytes = queue(prefix .. k, v)
    elseif f then out[k] = f(prefix .. k, v) end
  end
  return out
end

local function check_options(opts)
  if opts ~= nil and type(opts) ~= "table" then bad("options", "a table", opts) end
  opts = opts or {}
  local both = dir_settings(opts, "", {})
  local dirs = {}
  for i, key in ipairs{"a_to_b", "b_to_a"} do
    local d = {}
    for k, v in pairs(both) do d[k] = v end
    if opts[key] ~= nil then
      if type(opts[key]) ~= "table" then bad(key, "a table", opts[key]) end
      dir_settings(opts[key], key .. ".", d)
    end
    dirs[i] = d
  end
  local seed = opts.seed == nil and 1 or opts.seed
  if math_type(seed) ~= "integer" then bad("seed", "an integer", seed) end
  local log = opts.log == nil and M.DEFAULT_LOG or opts.log
  if log == false then log = 0 end
  if math_type(log) ~= "integer" or log < 0 then bad("log", "a number of lines, or false", log) end
  local mtu = opts.mtu or 1500
  if math_type(mtu) ~= "integer" or mtu < 1280 or mtu > 65535 then bad("mtu", "1280 to 65535", mtu) end
  return dirs, seed, log, mtu
end

-- ---- what a machine allows ---------------------------------------------------

-- The error when a side cannot be made: which piece is missing and what
-- gives it; err.unavailable is "netns" or "tun", for labs that skip.
local function unavailable(err, what)
  local code = errors.is(err) and err.code or "EPERM"
  local detail
  if what == "netns" then
    detail = "netem.link needs network namespaces, and this process may not make one " ..
      "(unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN): run as root, under `unshare -r` " ..
      "(a user namespace), or in a container allowed to make namespaces"
  elseif code == "ENOENT" or code == "ENODEV" or code == "ENXIO" then
    detail = "netem.link needs a TUN device, and this machine has none at /dev/net/tun " ..
      "(load the tun module; in a container, pass the device: docker --device /dev/net/tun)"
  elseif err.step == "opening /dev/net/tun" then
    detail = "netem.link needs a TUN device, and /dev/net/tun may not be opened by this user " ..
      "(it is usually mode 0666; here it is not: run as root, or ask for access to it)"
  else
    detail = "netem.link needs a TUN device, and " .. tostring(err.step or "making it") ..
      " was refused (it needs CAP_NET_ADMIN in the link's namespace)"
  end
  local e = errors.new("link", code, nil, nil, detail)
  e.unavailable = what
  return e
end

local function new_ns()
  local ok, ns = pcall(process.netns)
  if not ok then error(unavailable(ns, "netns"), 0) end
  return ns
end

-- a side's TUN device; IPv6 left out where the machine has none
local function make_tun(ns, addrs, mtu)
  local conf = {addr = addrs.host, prefix = 24, addr6 = addrs.host6, prefix6 = 64, mtu = mtu}
  local ok, fd = pcall(core._tun, ns, conf)
  if not ok and errors.is(fd, "EAFNOSUPPORT") then
    conf.addr6 = nil
    ok, fd = pcall(core._tun, ns, conf)
    if ok then return fd, false end
  end
  if not ok then
    if errors.is(fd) and fd.step then error(unavailable(fd, "tun"), 0) end
    error(fd, 0)
  end
  return fd, true
end

-- ---- a side ----------------------------------------------------------------------

local Side = {}
Side.__index = Side
M.Side = Side

function Side:socket(family, kind) return self.ns:socket(family, kind) end
function Side:create_connection(...) return self.ns:create_connection(...) end
function Side:create_server(...) return self.ns:create_server(...) end
function Side:wait_port(host, port, timeout) return self.ns:wait_port(host, port, timeout) end

-- The sandbox of a program on this side: this namespace, and by default
-- none of the other layers (the caller's uid, files and cgroup), since a
-- link is for experiments; spec.sandbox's own fields win.
local function on_side(side, spec)
  if type(spec) ~= "table" then return spec end
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  local sb = {netns = side.ns, uid = false, readonly = false, scratch = false, cgroup = false}
  if type(spec.sandbox) == "table" then
    for k, v in pairs(spec.sandbox) do sb[k] = v end
  end
  s.sandbox = sb
  return s
end

function Side:spawn(spec) return process.spawn(on_side(self, spec)) end
function Side:run(spec) return process.run(on_side(self, spec)) end

function Side:__tostring()
  return format("<link side %s %s%s>", self.name, self.host, self.host6 and (" " .. self.host6) or "")
end

-- ---- the link ----------------------------------------------------------------

local Link = {}
Link.__index = Link
M.Link = Link

local DIR_NAMES = {"a>b", "b>a"}

local function check(self, op)
  if self._core == nil then errors.raise(op, "EBADF") end
  return self._core
end

-- link{delay=, jitter=, loss=, duplicate=, reorder=, reorder_gap=, rate=,
-- queue=, seed=, log=, mtu=, a_to_b={...}, b_to_a={...}} -> link
function M.link(opts)
  local dirs, seed, log, mtu = check_options(opts)
  local made = {}
  local ok, res = pcall(function()
    local nsa = new_ns()
    made[#made + 1] = nsa
    local nsb = new_ns()
    made[#made + 1] = nsb
    local fda, v6a = make_tun(nsa, M.A, mtu)
    local okb, fdb, v6b = pcall(make_tun, nsb, M.B, mtu)
    if not okb then pcore._closefd(fda); error(fdb, 0) end
    local c = core._new(fda, fdb, log)
    local v6 = v6a and v6b
    local self = setmetatable({_core = c, _taps = {}, options = dirs, seed = seed}, Link)
    self.a = setmetatable({name = "a", ns = nsa, host = M.A.host, host6 = v6 and M.A.host6 or nil}, Side)
    self.b = setmetatable({name = "b", ns = nsb, host = M.B.host, host6 = v6 and M.B.host6 or nil}, Side)
    self.a.peer, self.b.peer = self.b, self.a
    for i = 1, 2 do
      c:_seed(i, seed * 2 + i)
      c:_set(i, dirs[i])
    end
    return self
  end)
  if not ok then
    for _, ns in ipairs(made) do ns:close() end
    error(res, 2)
  end
  return res
end

-- set{...}: changes the conditions while traffic flows (not seed, log, mtu)
function Link:set(opts)
  local c = check(self, "set")
  if type(opts) ~= "table" then bad("options", "a table", opts) end
  for _, k in ipairs{"seed", "log", "mtu"} do
    if opts[k] ~= nil then
      error(("bad argument #1 to 'set' (%s is fixed when the link is made)"):format(k), 2)
    end
  end
  local ok, dirs = pcall(function()
    local both = dir_settings(opts, "", {})
    local out = {}
    for i, key in ipairs{"a_to_b", "b_to_a"} do
      local d = {}
      for k, v in pairs(both) do d[k] = v end
      if opts[key] ~= nil then dir_settings(opts[key], key .. ".", d) end
      out[i] = d
    end
    return out
  end)
  if not ok then error((tostring(dirs):gsub("'link'", "'set'")), 2) end
  for i = 1, 2 do
    c:_set(i, dirs[i])
    for k, v in pairs(dirs[i]) do self.options[i][k] = v end
  end
end

-- stats() -> {["a>b"] = {packets=, bytes=, delivered=, ...}, ["b>a"] = ..., log_lost=, tap_lost=}
function Link:stats()
  local s = check(self, "stats"):stats()
  return {["a>b"] = s[1], ["b>a"] = s[2], log_lost = s.log_lost, tap_lost = s.tap_lost}
end

-- events([from]) -> the packet log, line `from` (1) on
function Link:events(from) return check(self, "events"):_events(from) end

function Link:clear_events() check(self, "events"):_clear() end

-- _tap(fn) -> untap: fn(time, dir, packet) for every packet delivered,
-- after the impairment, in a task of its own; for the capture module.
-- Packets are copied only while a tap is on.
function Link:_tap(fn)
  local c = check(self, "tap")
  if type(fn) ~= "function" then errors.argerror(1, "_tap", "function expected") end
  local taps = self._taps
  taps[#taps + 1] = fn
  if not self._tap_task then
    c:_tap(true)
    self._tap_task = wirelab.spawn(function()
      while true do
        local ok, times, dirs, pkts = pcall(c._tap_read, c)
        if not ok then return end
        for i = 1, #pkts do
          for j = #taps, 1, -1 do
            local f = taps[j]
            local fok, err = pcall(f, times[i], dirs[i], pkts[i])
            if not fok then
              table.remove(taps, j)
              io.stderr:write("netem.link: a tap raised an error and was removed: ", tostring(err), "\n")
            end
          end
        end
      end
    end)
  end
  return function()
    for i = #taps, 1, -1 do
      if taps[i] == fn then table.remove(taps, i); break end
    end
    if #taps == 0 and self._tap_task and self._core then
      self._core:_tap(false)
      self._tap_task:cancel()
      self._tap_task = nil
    end
  end
end

-- close(): the devices, the namespaces and the handles, all of them
function Link:close()
  local c = self._core
  if c == nil then return end
  self._core = nil
  c:close()
  if self._tap_task then self._tap_task:cancel(); self._tap_task = nil end
  self.a.ns:close()
  self.b.ns:close()
end
Link.__close = Link.close

function Link:__tostring()
  if self._core == nil then return "<netem.link [closed]>" end
  return format("<netem.link %s <-> %s>", self.a.host, self.b.host)
end

-- ---- can this machine make one? -----------------------------------------------

-- link_available() -> true | false, reason: a link is made and closed once,
-- and the answer kept
local known, why
function M.link_available()
  if known == nil then
    local ok, l = pcall(M.link, {log = false})
    if ok then l:close() end
    known, why = ok, not ok and tostring(l) or nil
  end
  return known, why
end

return M
