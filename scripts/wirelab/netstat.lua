-- wirelab.netstat: socket.connections(), the TCP and UDP sockets of a
-- process as netstat and ss show them, read from /proc: the rows of
-- /proc/PID/net/{tcp,tcp6,udp,udp6} (the tables of that process's network
-- namespace), matched to the process's descriptors by the inode its
-- /proc/PID/fd links name ("socket:[12345]"). Loaded on first use.
local core = require "socket.core"
local fs = require "wirelab.fs"
local errors = require "wirelab.error"

local tonumber, type, pack = tonumber, type, string.pack
local AF_INET, AF_INET6 = core.AF_INET, core.AF_INET6
local SOCK_STREAM, SOCK_DGRAM = core.SOCK_STREAM, core.SOCK_DGRAM

local M = {}

-- the kernel's TCP states (include/net/tcp_states.h), by number
local TCP_STATES = {
  [1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
  [5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
  [9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING", [12] = "SYN_RECV",
}
-- UDP has no states; the kernel marks a connected socket ESTABLISHED and
-- any other CLOSE, which ss shows as UNCONN
local UDP_STATES = {[1] = "ESTABLISHED", [7] = "UNCONN"}

-- the "tr" column: which timer is pending
local TIMERS = {[1] = "retransmit", [2] = "keepalive", [3] = "time_wait", [4] = "probe"}

-- /proc's clock ticks (USER_HZ), the unit of the timers' "tm->when"
local USER_HZ = 100

local TABLES = {
  {proto = "tcp", file = "tcp", family = AF_INET, type = SOCK_STREAM},
  {proto = "tcp6", file = "tcp6", family = AF_INET6, type = SOCK_STREAM},
  {proto = "udp", file = "udp", family = AF_INET, type = SOCK_DGRAM},
  {proto = "udp6", file = "udp6", family = AF_INET6, type = SOCK_DGRAM},
}

-- "0100007F:1F40" -> "127.0.0.1", 8000. The kernel prints each 32-bit
-- word of the address as it sits in memory, read as a host-order
-- integer; packing the integer back in host order ("=") restores the
-- bytes, in network order, on either endianness. IPv6 is four words.
local function parse_addr(text, family)
  local hex, port = text:match("^(%x+):(%x+)$")
  if not hex then return nil end
  local packed
  if family == AF_INET then
    packed = pack("=I4", tonumber(hex, 16))
  else
    packed = pack("=I4I4I4I4", tonumber(hex:sub(1, 8), 16), tonumber(hex:sub(9, 16), 16),
                  tonumber(hex:sub(17, 24), 16), tonumber(hex:sub(25, 32), 16))
  end
  return core.inet_ntop(family, packed), tonumber(port, 16)
end
M._parse_addr = parse_addr

-- One row of a /proc/net table, or nil for the header line.
local function parse_row(line, t)
  local fields = {}
  for w in line:gmatch("%S+") do fields[#fields + 1] = w end
  if not (fields[1] or ""):match("^%d+:$") then return nil end
  local lhost, lport = parse_addr(fields[2], t.family)
  local rhost, rport = parse_addr(fields[3], t.family)
  local st = tonumber(fields[4], 16)
  local tx, rx = fields[5]:match("^(%x+):(%x+)$")
  local tr, when = fields[6]:match("^(%x+):(%x+)$")
  local row = {
    proto = t.proto, family = t.family, type = t.type,
    laddr = {lhost, lport},
    -- a listener or an unconnected UDP socket has no peer: 0.0.0.0:0
    raddr = rport ~= 0 and {rhost, rport} or nil,
    state = (t.type == SOCK_STREAM and TCP_STATES or UDP_STATES)[st] or ("0x%02X"):format(st),
    outq = tonumber(tx, 16), inq = tonumber(rx, 16),
    uid = tonumber(fields[8]), inode = tonumber(fields[10]),
  }
  tr = tonumber(tr, 16)
  if TIMERS[tr] then
    row.timer, row.timer_left = TIMERS[tr], tonumber(when, 16) / USER_HZ
  end
  if t.type == SOCK_DGRAM then row.drops = tonumber(fields[13]) end
  return row
end

-- inode -> fd of every socket the process holds; nil, errno name when
-- its descriptors cannot be read
local function socket_fds(pid)
  local dir = "/proc/" .. pid .. "/fd"
  local list, _, code = fs.listdir(dir)
  if not list then return nil, code end
  local map = {}
  for _, e in ipairs(list) do
    local target = fs.readlink(dir .. "/" .. e.name)
    local inode = target and target:match("^socket:%[(%d+)%]$")
    if inode then map[tonumber(inode)] = tonumber(e.name) end
  end
  return map
end

-- this process's pid, as /proc names it
local function self_pid() return tonumber(fs.readlink("/proc/self")) end

local function check_opts(opts)
  if opts == nil then return self_pid(), false end
  if math.type(opts) == "integer" then return opts, false end
  if type(opts) ~= "table" then
    errors.argerror(1, "connections", "pid or table of options expected, got " .. type(opts), 3)
  end
  local pid = opts.pid
  if pid ~= nil and math.type(pid) ~= "integer" then
    errors.argerror(1, "connections", "pid must be an integer", 3)
  end
  return pid or self_pid(), opts.all and true or false
end

-- connections([pid | {pid=, all=}]) -> rows (docs/socket.md)
function M.connections(opts)
  local pid, all = check_opts(opts)
  local fds, code = socket_fds(pid)
  if not fds then
    if code == "ENOENT" then errors.raise("connections", "ESRCH", nil, nil, "pid " .. pid) end
    if not all then errors.raise("connections", code, nil, nil, "/proc/" .. pid .. "/fd") end
    fds = {}
  end
  local rows, owned = {}, {}
  for _, t in ipairs(TABLES) do
    local f = io.open("/proc/" .. pid .. "/net/" .. t.file)
    if f then                            -- a kernel without IPv6 has no tcp6
      for line in f:lines() do
        local row = parse_row(line, t)
        local fd = row and fds[row.inode]
        if fd and row.inode ~= 0 then
          row.fd, row.pid = fd, pid
          owned[#owned + 1] = row
        elseif row and all then
          rows[#rows + 1] = row
        end
      end
      f:close()
    end
  end
  table.sort(owned, function(a, b) return a.fd < b.fd end)
  -- the process's own sockets first, by fd; then the rest of the namespace
  table.move(rows, 1, #rows, #owned + 1, owned)
  return owned
end

return M
