-- http.url: the URLs of http.client: parse (absolute http:// URLs, with
-- IPv6 literals and userinfo), join (a Location against the URL that
-- answered, RFC 3986 5.2), authority (host and port as a URL or Host
-- header writes them) and base64 for Basic credentials.
local core = require "http.core"

local concat, format, lower = table.concat, string.format, string.lower
local type, tostring, tonumber = type, tostring, tonumber

local M = {}

-- show(s): s quoted for an error message, controls as \xHH, so the message
-- itself cannot inject anything into a log or a terminal
local function show(s)
  return '"' .. tostring(s):gsub('[%c"\\\127]', function(c) return format("\\x%02x", c:byte()) end) .. '"'
end

M.show = show

local function unpercent(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- authority(host[, port]) -> "host:port", "[v6]:port", or without ":port"
-- when port is nil. Lua's one copy of the rule; C's is wl_format_addr.
function M.authority(host, port)
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  if port == nil then return host end
  return host .. ":" .. port
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function M.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for j = 1, 4 do
      local k = (n >> (6 * (4 - j))) & 63
      q[j] = B64:sub(k + 1, k + 1)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    out[#out + 1] = concat(q)
  end
  return concat(out)
end

-- parse(url[, default_port]) -> {scheme=, host=, port=, target=, userinfo=}
-- or nil, message, code (EPROTONOSUPPORT for https and other schemes)
local function parse_url(url, default_port)
  if type(url) ~= "string" then return nil, "string expected, got " .. type(url) end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "absolute http:// URL expected, got " .. show(url) end
  scheme = lower(scheme)
  if scheme == "https" then
    return nil, "https is not supported (wirelab speaks plain HTTP only): " .. show(url), "EPROTONOSUPPORT"
  elseif scheme ~= "http" then
    return nil, "unsupported URL scheme '" .. scheme .. "' in " .. show(url), "EPROTONOSUPPORT"
  end
  local authority, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "")
  if target == "" then target = "/" elseif target:sub(1, 1) == "?" then target = "/" .. target end
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  hostport = hostport or authority
  local host, portpart
  if hostport:sub(1, 1) == "[" then
    host, portpart = hostport:match("^%[([%x:.%%%w]+)%](.*)$")
  else
    host, portpart = hostport:match("^([^:]*)(.*)$")
  end
  if not host or host == "" then return nil, "no host in URL " .. show(url) end
  if host:find("[\0-\32\127]") then return nil, "invalid host in URL " .. show(url) end
  local port = default_port or 80
  if portpart ~= "" and portpart ~= ":" then
    local digits = portpart:match("^:(%d+)$")
    port = digits and math.tointeger(tonumber(digits))
    if not port or port < 1 or port > 65535 then return nil, "invalid port in URL " .. show(url) end
  end
  if not core.valid_target(target) then
    return nil, "invalid URL " .. show(url) .. ": spaces and control bytes must be percent-encoded"
  end
  return {scheme = scheme, host = host, port = port, target = target,
          userinfo = userinfo and unpercent(userinfo)}
end
M.parse = parse_url

-- RFC 3986 5.2.4: "/a/b/../c" -> "/a/c"
local function remove_dot_segments(path)
  local segs, i = {}, 1
  while true do
    local j = path:find("/", i, true)
    if not j then segs[#segs + 1] = path:sub(i); break end
    segs[#segs + 1] = path:sub(i, j - 1)
    i = j + 1
  end
  local out = {}
  for k, seg in ipairs(segs) do
    if seg == ".." or seg == "." then
      if seg == ".." and #out > 1 then out[#out] = nil end
      if k == #segs then out[#out + 1] = "" end   -- "/a/.." names the directory "/"
    else
      out[#out + 1] = seg
    end
  end
  local r = concat(out, "/")
  if r:sub(1, 1) ~= "/" then r = "/" .. r end
  return r
end

-- The URL a Location names, relative to the URL that answered.
local function resolve(base, loc)
  -- servers do send raw spaces and 8-bit bytes in Location: encode them
  loc = loc:gsub("[\0-\32\127-\255]", function(c) return format("%%%02X", c:byte()) end)
  if loc:find("^%a[%w+.-]*:") then return loc end
  local scheme, authority, path = base:match("^(%a[%w+.-]*)://([^/?#]*)([^?#]*)")
  if loc:sub(1, 2) == "//" then return scheme .. ":" .. loc end
  local prefix = scheme .. "://" .. authority
  if path == "" then path = "/" end
  if loc == "" then return (base:gsub("#.*$", "")) end
  local first = loc:sub(1, 1)
  if first == "#" then return (base:gsub("#.*$", "")) .. loc end
  if first == "?" then return prefix .. path .. loc end
  local lpath, tail = loc:match("^([^?#]*)(.*)$")
  if first ~= "/" then lpath = path:gsub("[^/]*$", "") .. lpath end
  return prefix .. remove_dot_segments(lpath) .. tail
end
M.join = resolve

return M
