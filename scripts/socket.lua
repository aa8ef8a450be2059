-- socket: Python's socket module (API.md section 3). The C half
-- (socket.core) is the socket object and its system calls; this half adds
-- name resolution, makefile and the module-level helpers.
local core = require "socket.core"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"

local type, error, pcall, setmetatable = type, error, pcall, setmetatable
local concat = table.concat
local AF_INET, AF_INET6, AF_UNSPEC = core.AF_INET, core.AF_INET6, core.AF_UNSPEC
local SOCK_STREAM = core.SOCK_STREAM

local M = {}
for k, v in pairs(core) do       -- "_" names are for this half only
  if k ~= "methods" and k:sub(1, 1) ~= "_" then M[k] = v end
end
local is_numeric = core._is_numeric    -- addr.c's rule: a literal, not a name
M._open = core._open                   -- the open sockets' rows (status)
local Socket = core.methods
M.Socket = Socket
require("wirelab.core")._name_waits(Socket)   -- "waiting in wait_readable"

-- A host argument of a Lua function: a string with no NUL byte, which C
-- would cut short (Python raises TypeError).
local function check_host(host, n, fname)
  if type(host) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, fname, type(host)), 3)
  end
  if host:find("\0", 1, true) then
    error(("bad argument #%d to '%s' (host name must not contain a NUL byte)"):format(n, fname), 3)
  end
  return host
end

-- socket([family[, type]]) -> s, with the default timeout; a Lua function
-- so that a bad argument names 'socket' even through pcall
function M.socket(family, kind)
  local s = core.socket(family, kind)
  return s
end

-- setdefaulttimeout(seconds | nil): the C function keeps it; checked here
-- so that a bad argument names the caller's line, through pcall too
function M.setdefaulttimeout(t)
  if t ~= nil and (type(t) ~= "number" or not (t >= 0)) then
    error("bad argument #1 to 'setdefaulttimeout' (non-negative number or nil expected)", 2)
  end
  core.setdefaulttimeout(t)
end

-- bind, connect, connect_ex and sendto are C methods, which check their
-- arguments and resolve names themselves.

Socket.__close = Socket.close

-- ---- sendfile -------------------------------------------------------------

-- sendfile(file[, offset[, count]]) -> bytes sent, Python's: the bytes of
-- file (a Lua file, or a path, opened here) from offset, count of them or
-- up to its end, copied by the kernel (sendfile(2), in sendfile.c). The
-- file's position ends at offset + bytes sent. Python's ValueErrors are
-- bad arguments.
function Socket:sendfile(file, offset, count)
  if self.closed then errors.raise("sendfile", "EBADF") end
  if self.type ~= SOCK_STREAM then
    error("calling 'sendfile' on bad self (only SOCK_STREAM type sockets are supported)", 2)
  end
  if self:gettimeout() == 0 then
    error("calling 'sendfile' on bad self (non-blocking sockets are not supported)", 2)
  end
  offset = offset or 0
  if math.type(offset) ~= "integer" or offset < 0 then
    error("bad argument #2 to 'sendfile' (non-negative integer offset expected)", 2)
  end
  if count ~= nil and (math.type(count) ~= "integer" or count <= 0) then
    error("bad argument #3 to 'sendfile' (count must be a positive integer)", 2)
  end
  if type(file) == "string" then
    local f, _, errno = io.open(file, "rb")
    if not f then errors.raise("sendfile", -(errno or 2), file) end
    local opened <close> = f
    local sent = core._sendfile(self, opened, offset, count)
    return sent
  end
  if io.type(file) ~= "file" then
    error(("bad argument #1 to 'sendfile' (file or path expected, got %s)"):format(
      io.type(file) == "closed file" and "closed file" or type(file)), 2)
  end
  local sent = core._sendfile(self, file, offset, count)
  return sent
end

-- ---- makefile: a buffered file over the socket ----------------------------
-- Reads go through the one reader (wirelab.reader); writes are buffered
-- here and leave with sendall.

local READ_SIZE = 65536

local function sock_source(sock) return sock:recv(READ_SIZE) end

local File = reader.extend()
M.SocketFile = File
-- the write side's state, as defaults (see wirelab.reader): the list out
-- is made by the first write
File.nout, File.bytes, File.unbuffered = 0, 0, false

-- makefile([mode[, {buffering=, max_line=}]]); buffering 0 sends each
-- write at once. A mode without "b" is text: "\r\n" reads as "\n".
function Socket:makefile(mode, opts)
  mode = mode or "r"
  if type(mode) ~= "string" or not mode:find("^[rwb]+$") then
    error("bad argument #1 to 'makefile' (mode of 'r', 'w', 'rw' or 'b' expected)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'makefile' (table of options expected, got " .. type(opts) .. ")", 2)
  end
  local f = reader.new_of(File, sock_source, self,
    {text = not mode:find("b", 1, true), max_line = opts and opts.max_line})
  f.sock, f.mode = self, mode
  if opts and opts.buffering == 0 then f.unbuffered = true end
  return f
end

local function check_file(f, op)
  if f.closed then errors.raise(op, "EBADF") end
end

function File:write(...)
  check_file(self, "write")
  for i = 1, select("#", ...) do
    local s = select(i, ...)
    if type(s) == "number" then s = tostring(s)
    elseif type(s) ~= "string" then
      error("bad argument #" .. i .. " to 'write' (string expected, got " .. type(s) .. ")", 2)
    end
    local out = self.out
    if out == nil then
      out = {}
      self.out = out
    end
    self.nout = self.nout + 1
    out[self.nout] = s
    self.bytes = self.bytes + #s
  end
  if self.unbuffered or self.bytes >= READ_SIZE then self:flush() end
  return self
end

function File:flush()
  check_file(self, "flush")
  if self.nout == 0 then return self end
  local data = self.nout == 1 and self.out[1] or concat(self.out, "", 1, self.nout)
  for i = 1, self.nout do self.out[i] = nil end
  self.nout, self.bytes = 0, 0
  self.sock:sendall(data)
  return self
end

-- close(): flushes what is written, then closes the file (not the socket)
local reader_close = File.close
function File:close()
  if self.closed then return end
  local ok, err = true, nil
  if self.nout > 0 then ok, err = pcall(self.flush, self) end
  reader_close(self)
  if not ok then error(err, 0) end
end
File.__close = File.close

-- ---- module helpers -------------------------------------------------------

-- The helpers over any maker of sockets, new_socket(family, type): the
-- module's own, or process.netns's (sockets made in another namespace).

-- create_connection(host, port[, timeout[, source_host, source_port]]) -> s
local function connect_with(new_socket, host, port, timeout, source_host, source_port)
  local list
  check_host(host, 1, "create_connection")
  if host ~= "" and is_numeric(host) then
    list = {{family = host:find(":", 1, true) and AF_INET6 or AF_INET, host = host, port = port}}
  else
    list = M.getaddrinfo(host, port, AF_UNSPEC, SOCK_STREAM)
  end
  local last
  for _, ai in ipairs(list) do
    local s = new_socket(ai.family, SOCK_STREAM)        -- with the default timeout
    if timeout ~= nil then s:settimeout(timeout) end
    local ok, err = pcall(function()
      -- method calls, so that `wirelab --trace` sees them
      if source_host then s:bind(source_host, source_port or 0) end
      s:connect(ai.host, ai.port)
    end)
    if ok then return s end
    s:close()
    last = err
  end
  if last then error(last, 3) end
  errors.raise("connect", "EAI_NONAME", host, port)
end
M._connect_with = connect_with

function M.create_connection(host, port, timeout, source_host, source_port)
  return connect_with(core.socket, host, port, timeout, source_host, source_port)
end

-- create_server(host, port[, {family=, backlog=, reuse_port=, dualstack=}]) -> s
local function serve_with(new_socket, host, port, opts)
  opts = opts or {}
  host = host or ""
  local family = opts.family or ((host:find(":", 1, true) or opts.dualstack) and AF_INET6 or AF_INET)
  local s = new_socket(family, SOCK_STREAM)
  local ok, err = pcall(function()
    s:setsockopt(core.SOL_SOCKET, core.SO_REUSEADDR, 1)
    if opts.reuse_port then s:setsockopt(core.SOL_SOCKET, core.SO_REUSEPORT, 1) end
    if family == AF_INET6 then
      s:setsockopt(core.IPPROTO_IPV6, core.IPV6_V6ONLY, opts.dualstack and 0 or 1)
    end
    s:bind(host, port or 0)
    s:listen(opts.backlog)
  end)
  if not ok then
    s:close()
    error(err, 3)
  end
  return s
end
M._serve_with = serve_with

function M.create_server(host, port, opts) return serve_with(core.socket, host, port, opts) end

function M.has_dualstack_ipv6() return true end

-- connections([pid | {pid=, all=}]) -> rows: the TCP and UDP sockets of a
-- process from /proc (scripts/wirelab/netstat.lua, loaded on first use)
function M.connections(opts)
  local rows = require("wirelab.netstat").connections(opts)
  return rows
end

-- gethostbyname(name) -> the first IPv4 address, as a dotted quad
function M.gethostbyname(name)
  check_host(name, 1, "gethostbyname")
  -- Python's: "" is INADDR_ANY, and every inet_aton form a literal
  if name == "" then return "0.0.0.0" end
  if name == "<broadcast>" then return "255.255.255.255" end
  local quad = core._ipv4(name)
  if quad then return quad end
  local list = M.getaddrinfo(name, nil, AF_INET, SOCK_STREAM)
  if not list[1] then errors.raise("gethostbyname", "EAI_NONAME", name) end
  return list[1].host
end

-- getfqdn([name]) -> name, Python's: of the names the reverse lookup of
-- name gives (its host name, then its aliases), the first with a dot in
-- it, else the host name; name itself when the lookup fails. No name
-- (or "0.0.0.0", "::") is this machine's.
function M.getfqdn(name)
  check_host(name or "", 1, "getfqdn")
  name = (name or ""):match("^%s*(.-)%s*$")
  if name == "" or name == "0.0.0.0" or name == "::" then name = M.gethostname() end
  local ok, host, aliases = pcall(M.gethostbyaddr, name)
  if not ok then
    if errors.is(host) then return name end
    error(host, 0)
  end
  table.insert(aliases, 1, host)
  for _, n in ipairs(aliases) do
    if n:find(".", 1, true) then return n end
  end
  return host
end

return M
