-- netem.options: the argument checks both proxies share. An impairment is
-- given once for both directions (`loss = 0.3`) or per direction
-- (`loss = {to_server = 0.3, to_client = 0}`); addresses are {host, port}
-- tables; an option the proxy does not know is an error, so a typo such
-- as `losss = 0.3` cannot leave a lab running unimpaired.
local errors = require "wirelab.error"
local rng = require "lab.rng"
local wirelab = require "wirelab"

local type, pairs, tostring, format = type, pairs, tostring, string.format
local tointeger = math.tointeger

local M = {}

-- the two directions, as events and stats name them
M.DIRS = {"to_server", "to_client"}
local DIRS = M.DIRS

-- fail(fname, msg, level): level as error()'s, counted from fail; the
-- constructors call the checks directly, so the level reaches the caller
local function fail(fname, msg, level) errors.argerror(1, fname, msg, level) end

-- check_keys(fname, opts, known): every key of opts is a known option
function M.check_keys(fname, opts, known)
  if type(opts) ~= "table" then errors.argerror(1, fname, "table expected, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not known[k] then
      errors.argerror(1, fname, format("unknown option '%s'", tostring(k)), 3)
    end
  end
end

-- address(fname, name, v, default) -> host, port from {host, port}
function M.address(fname, name, v, default)
  if v == nil then v = default end
  if type(v) ~= "table" or type(v[1]) ~= "string" or not tointeger(v[2])
     or v[2] < 0 or v[2] > 65535 then
    fail(fname, format("'%s' must be {host, port}", name), 4)
  end
  return v[1], tointeger(v[2])
end

-- Is v a per-direction table ({to_server=, to_client=}, either missing)?
-- check(x) -> x normalised, or nil and what is wrong with it.
local function per_dir(fname, name, v, check, default)
  local out = {}
  if type(v) == "table" and (v.to_server ~= nil or v.to_client ~= nil) then
    for k in pairs(v) do
      if k ~= "to_server" and k ~= "to_client" then
        fail(fname, format("'%s' per direction takes to_server and to_client, not '%s'", name, tostring(k)), 4)
      end
    end
    for _, d in ipairs(DIRS) do
      local x, why = v[d], nil
      if x == nil then x = default else x, why = check(x) end
      if why then fail(fname, format("'%s.%s' %s", name, d, why), 4) end
      out[d] = x
    end
  else
    local x, why = v, nil
    if x == nil then x = default else x, why = check(x) end
    if why then fail(fname, format("'%s' %s", name, why), 4) end
    out.to_server, out.to_client = x, x
  end
  return out
end

local function is_number(x) return type(x) == "number" and x == x end

local function probability(x)
  if not is_number(x) or x < 0 or x > 1 then return nil, "must be a probability from 0 to 1" end
  return x
end

local function seconds(x)
  if not is_number(x) or x < 0 or x == math.huge then return nil, "must be seconds, 0 or more" end
  return x
end

local function positive(x)
  if not is_number(x) or x <= 0 then return nil, "must be a positive number" end
  return x
end

local function count(x)
  local n = tointeger(x)
  if not n or n < 0 then return nil, "must be an integer, 0 or more" end
  return n
end

local function at_least_one(x)
  local n = tointeger(x)
  if not n or n < 1 then return nil, "must be an integer, 1 or more" end
  return n
end

-- {min, max[, gap = seconds]}: the sizes of the pieces a write is cut into
local function chunk(x)
  if type(x) ~= "table" then return nil, "must be {min, max}" end
  local lo, hi = tointeger(x[1]), tointeger(x[2] or x[1])
  if not lo or not hi or lo < 1 or hi < lo then
    return nil, "must be {min, max} with 1 <= min <= max"
  end
  local gap = x.gap or 0
  if not is_number(gap) or gap < 0 then return nil, "gap must be seconds, 0 or more" end
  return {lo, hi, gap = gap}
end

M.probability = function(fname, name, v) return per_dir(fname, name, v, probability, 0) end
M.seconds = function(fname, name, v) return per_dir(fname, name, v, seconds, 0) end
M.rate = function(fname, name, v) return per_dir(fname, name, v, positive, false) end
M.positive = function(fname, name, v, default) return per_dir(fname, name, v, positive, default) end
M.count = function(fname, name, v) return per_dir(fname, name, v, count, false) end
M.at_least_one = function(fname, name, v, default) return per_dir(fname, name, v, at_least_one, default) end
M.chunk = function(fname, name, v) return per_dir(fname, name, v, chunk, false) end

-- seed(fname, v) -> the seed: the one given (an integer or a string), or
-- one made up now and kept in proxy.seed, so any run can be repeated
function M.seed(fname, v)
  if v == nil then
    return (tointeger(wirelab.time() * 1e6 // 1) or 0) ~ (tointeger(wirelab.now() * 1e9 // 1) or 0)
  end
  if not tointeger(v) and type(v) ~= "string" then fail(fname, "'seed' must be an integer or a string", 4) end
  return tointeger(v) or v
end

-- stream(seed, name) -> a seeded generator of its own for one impairment
-- of one direction, so changing one setting leaves the others' draws alone
function M.stream(seed, name) return rng.new(seed, "netem." .. name) end

-- keep(fname, v) -> how many events to keep in memory
function M.keep(fname, v)
  if v == nil then return 100000 end
  local n = tointeger(v)
  if not n or n < 0 then fail(fname, "'keep_events' must be an integer, 0 or more", 4) end
  return n
end

-- hostport(host, port) -> "host:port", "[::1]:port" for IPv6, as
-- addresses are written everywhere else
function M.hostport(host, port)
  if host:find(":", 1, true) then return "[" .. host .. "]:" .. port end
  return host .. ":" .. port
end

-- family(host) -> the socket family a numeric host needs
function M.family(host)
  local socket = require "socket"
  return host:find(":", 1, true) and socket.AF_INET6 or socket.AF_INET
end

return M
