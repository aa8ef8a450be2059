-- wirelab.trace: `wirelab --trace`, every socket call and its result on
-- stderr, one line each, as it returns:
--
--   0.001 sock#1 bind(127.0.0.1, 8000) -> ok
--   0.004 sock#1 accept() -> conn#2 127.0.0.1:41234
--   12.003 conn#2 recv(1024) -> 13 bytes "hello, world\n" (waited 11.998 s)
--   12.010 conn#2 send(5 bytes "bye\r\n") -> ECONNRESET
--
-- enable() replaces the socket methods and the module functions that make
-- sockets with wrappers, in the tables every socket shares, so the sockets
-- socketserver, http, create_connection and accept make are traced too.
-- Nothing is wrapped, or even loaded, without --trace: the calls of a
-- program that is not traced run as they always do.
local core = require "socket.core"
local wirelab = require "wirelab"

local pack, unpack, select, type, tostring = table.pack, table.unpack, select, type, tostring
local format, concat = string.format, table.concat
local now = wirelab.now
local getinfo = debug.getinfo      -- taken now: --sandbox removes debug later

local M = {}

local out, start = io.stderr, 0
local labels = setmetatable({}, {__mode = "k"})   -- socket -> "sock#1"
local count = 0

local function label(s, kind)
  if type(s) ~= "userdata" then return "(" .. type(s) .. ")" end
  local l = labels[s]
  if not l then
    count = count + 1
    l = (kind or "sock") .. "#" .. count
    labels[s] = l
  end
  return l
end

-- ---- how values are shown ---------------------------------------------------

-- names of the constants, by group: the module's own values
local function names(prefixes)
  local t = {}
  for k, v in pairs(core) do
    if math.type(v) == "integer" then
      for _, p in ipairs(prefixes) do
        if k:sub(1, #p) == p and t[v] == nil then t[v] = k end
      end
    end
  end
  return t
end
local FAMILIES = names{"AF_"}
local TYPES = names{"SOCK_"}
local SHUT = names{"SHUT_"}
local LEVELS = {[core.SOL_SOCKET] = "SOL_SOCKET", [core.IPPROTO_TCP] = "IPPROTO_TCP",
                [core.IPPROTO_IP] = "IPPROTO_IP", [core.IPPROTO_IPV6] = "IPPROTO_IPV6",
                [core.IPPROTO_UDP] = "IPPROTO_UDP"}
local OPTIONS = {[core.SOL_SOCKET] = names{"SO_"}, [core.IPPROTO_TCP] = names{"TCP_"},
                 [core.IPPROTO_IP] = names{"IP_"}, [core.IPPROTO_IPV6] = names{"IPV6_"}}

local PREVIEW = 32         -- bytes of data shown

local function quote(data)
  local shown = data:sub(1, PREVIEW):gsub('[%c"\\\128-\255]', function(c)
    if c == "\n" then return "\\n" elseif c == "\r" then return "\\r"
    elseif c == "\t" then return "\\t" elseif c == '"' or c == "\\" then return "\\" .. c end
    return format("\\x%02x", c:byte())
  end)
  return '"' .. shown .. (#data > PREVIEW and '"...' or '"')
end

local function bytes(data)
  if type(data) ~= "string" then return tostring(data) end
  if data == "" then return "0 bytes" end
  return #data .. (#data == 1 and " byte " or " bytes ") .. quote(data)
end

local function host(h)
  if h == "" then return '""' end
  return tostring(h)
end

-- bind's and connect's arguments: the host as given, unquoted
local function hostport(h, p)
  if h == nil and p == nil then return "" end
  if p == nil then return host(h) end
  return host(h) .. ", " .. (type(p) == "string" and quote(p) or tostring(p))
end

local function addr(h, p)
  if type(h) ~= "string" then return tostring(h) end
  if h:find(":", 1, true) then return "[" .. h .. "]:" .. tostring(p) end
  return h .. ":" .. tostring(p)
end

local function value(v)
  if type(v) == "string" then return quote(v) end
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = tostring(v[i]) end
    return "{" .. concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

-- the arguments given, without trailing nils: listen() for listen(nil)
local function args(...)
  local parts, n = {}, select("#", ...)
  while n > 0 and select(n, ...) == nil do n = n - 1 end
  for i = 1, n do parts[i] = value((select(i, ...))) end
  return concat(parts, ", ")
end

local function ok() return "ok" end

-- what a failed call shows: the errno name of an error object, else
-- the message
local function failure(err)
  if type(err) == "table" and err.code then return tostring(err.code) end
  return "error: " .. tostring(err)
end

-- An argument error as the call would have raised it untraced. The C
-- function, called by pcall here, words it as called from C: arguments
-- counted from self, named '?' or by a module path, and no position (the
-- position is its caller's). How the wrapper was called (s:bind() counts
-- from the first argument after self and names 'bind'; pcall(s.bind, s)
-- counts self) says what the words would have been, and the wrapper's
-- caller where. A Lua function words its own errors; only its position
-- (error's level 2) fell on pcall. `level` is the wrapper's, seen from
-- here.
local function as_called(err, method, lua, level)
  if type(err) ~= "string" or not (err:find("^bad argument") or err:find("^calling")) then
    return err
  end
  if not lua then
    local n, rest = err:match("^bad argument #(%d+) to '[^']*' (.*)$")
    if n then
      local how = getinfo(level, "n") or {}
      local name = how.name or "?"
      n = tonumber(n)
      if method and how.namewhat == "method" then n = n - 1 end
      if n == 0 then err = ("calling '%s' on bad self %s"):format(name, rest)
      else err = ("bad argument #%d to '%s' %s"):format(n, name, rest) end
    end
  end
  local at = getinfo(level + 1, "Sl")
  if at and at.currentline and at.currentline > 0 then
    err = at.short_src .. ":" .. at.currentline .. ": " .. err
  end
  return err
end

local function emit(t, who, name, argtext, result, waited)
  out:write(format("%.3f %s%s(%s) -> %s%s\n", t - start, who and who .. " " or "", name, argtext,
    result, waited >= 0.001 and format(" (waited %.3f s)", waited) or ""))
end

-- ---- wrappers -----------------------------------------------------------------

-- wrap(tbl, name, show_args, show_result[, method]): tbl[name] traced.
-- show_args(...) gives the arguments' text, show_result(results...) the
-- result's; a method's line names its socket.
local function wrap(tbl, name, show_args, show_result, method)
  local orig = tbl[name]
  if type(orig) ~= "function" then return end
  local lua = getinfo(orig, "S").what ~= "C"
  -- a failure: its line, then the error as it would have been raised
  local function failed(err, t0, t1, who, ...)
    err = as_called(err, method, lua, 3)
    emit(t1, who, name, show_args(...), failure(err), t1 - t0)
    error(err, 0)
  end
  if method then
    tbl[name] = function(s, ...)
      local who = label(s)
      local t0 = now()
      local r = pack(pcall(orig, s, ...))
      local t1 = now()
      if not r[1] then failed(r[2], t0, t1, who, ...) end
      emit(t1, who, name, show_args(...), show_result(unpack(r, 2, r.n)), t1 - t0)
      return unpack(r, 2, r.n)
    end
  else
    tbl[name] = function(...)
      local t0 = now()
      local r = pack(pcall(orig, ...))
      local t1 = now()
      if not r[1] then failed(r[2], t0, t1, nil, ...) end
      emit(t1, nil, name, show_args(...), show_result(unpack(r, 2, r.n)), t1 - t0)
      return unpack(r, 2, r.n)
    end
  end
end

local function one_socket(s) return label(s) end

local METHODS = {
  bind = {hostport, ok},
  connect = {hostport, ok},
  connect_ex = {hostport, tostring},
  listen = {args, ok},
  accept = {args, function(c, h, p) return label(c, "conn") .. " " .. addr(h, p) end},
  send = {function(d, ...) return bytes(d) .. (select("#", ...) > 0 and ", " .. args(...) or "") end,
          tostring},
  sendall = {function(d, ...) return bytes(d) .. (select("#", ...) > 0 and ", " .. args(...) or "") end,
             ok},
  sendto = {function(d, h, p) return bytes(d) .. ", " .. hostport(h, p) end, tostring},
  recv = {args, function(d) return d == "" and "0 bytes (EOF)" or bytes(d) end},
  recvfrom = {args, function(d, h, p) return bytes(d) .. " from " .. addr(h, p) end},
  shutdown = {function(how) return SHUT[how] or tostring(how) end, ok},
  setsockopt = {function(level, opt, v)
    return (LEVELS[level] or tostring(level)) .. ", " ..
           (OPTIONS[level] and OPTIONS[level][opt] or tostring(opt)) .. ", " .. value(v)
  end, ok},
  getsockopt = {function(level, opt)
    return (LEVELS[level] or tostring(level)) .. ", " .. (OPTIONS[level] and OPTIONS[level][opt] or tostring(opt))
  end, args},
  getsockname = {args, addr},
  getpeername = {args, addr},
  settimeout = {function(t) return tostring(t) end, ok},
  setblocking = {args, ok},
  join_group = {args, ok},
  leave_group = {args, ok},
  sendfile = {function(f, ...)
    return (type(f) == "string" and f or io.type(f) or value(f)) .. (select("#", ...) > 0 and ", " .. args(...) or "")
  end, tostring},
  detach = {args, tostring},
  dup = {args, one_socket},
}

-- enable([out]): from now on every socket call is written to out
-- (io.stderr), timed from now. Idempotent.
local enabled = false
function M.enable(stream)
  if enabled then return end
  enabled = true
  out, start = stream or io.stderr, now()
  local socket = require "socket"            -- its Lua methods too
  local Socket = core.methods
  local made, close = core.socket, Socket.close
  -- the metatable every socket has, for <close>
  local probe = made()
  local mt = getmetatable(probe)
  close(probe)
  for name, how in pairs(METHODS) do wrap(Socket, name, how[1], how[2], true) end
  -- close, and <close>: a socket already closed says nothing
  local function traced_close(s)
    if type(s) ~= "userdata" or s.closed then return close(s) end
    local who = label(s)
    close(s)
    emit(now(), who, "close", "", "ok", 0)
  end
  Socket.close, Socket.__close = traced_close, traced_close
  if type(mt) == "table" then mt.__close = traced_close end
  -- core.socket is what socket.socket, create_connection and
  -- create_server call; its line names the family and type the socket got
  core.socket = function(family, kind)
    local t0 = now()
    local okc, s = pcall(made, family, kind)
    local t1 = now()
    if not okc then
      local err = as_called(s, false, false, 2)
      emit(t1, nil, "socket", args(family, kind), failure(err), t1 - t0)
      error(err, 0)
    end
    emit(t1, nil, "socket", FAMILIES[s.family] .. ", " .. TYPES[s.type], label(s), t1 - t0)
    return s
  end
  wrap(socket, "socketpair", args, function(a, b) return label(a) .. ", " .. label(b) end)
  wrap(socket, "fromfd", function(fd, f, k)
    return tostring(fd) .. (f and ", " .. (FAMILIES[f] or tostring(f)) or "") ..
           (k and ", " .. (TYPES[k] or tostring(k)) or "")
  end, one_socket)
  wrap(socket, "getaddrinfo", hostport, function(list)
    local hosts = {}
    for i, ai in ipairs(list) do hosts[i] = ai.host end
    return concat(hosts, ", ")
  end)
  -- http.server's replies leave by sendall, where they show
  local okh, http = pcall(require, "http.core")
  if okh and http._send_by_sendall then http._send_by_sendall(true) end
end

return M
