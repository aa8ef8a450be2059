-- http.headers: the header fields of a request or response, case-insensitive
-- (headers["content-type"], headers:get(name[, default])) and in arrival
-- order (pairs, items). Shared by http.server and http.client.
-- A headers object is one table: name, value, name, value... in its array
-- part, as the C parser fills it in (bindings/http.c), so a request costs
-- one table however many fields it has.
local setmetatable, rawset, rawget, type = setmetatable, rawset, rawget, type
local lower = string.lower

local M = {}
local Headers = {}
M.Headers = Headers

-- The lowercase map is built on first use: a server handler that never
-- looks at the headers pays nothing for them.
local function header_map(t)
  local map = {}
  for i = 1, #t, 2 do
    local k = lower(t[i])
    local old = map[k]
    map[k] = old and (old .. ", " .. t[i + 1]) or t[i + 1]
  end
  rawset(t, "_map", map)
  return map
end

Headers.__index = function(t, k)
  local m = Headers[k]
  if m ~= nil then return m end
  if k == "_map" then return header_map(t) end
  if type(k) == "string" then return t._map[lower(k)] end
end

-- pairs(headers): every (name, value) as received, repeats included
Headers.__pairs = function(t)
  local i = -1
  return function()
    i = i + 2
    local k = rawget(t, i)
    if k then return k, rawget(t, i + 1) end
  end, t, nil
end

-- new(list): list is {{name, value}...}, as the parser's feed gives it
function M.new(list)
  local t = {}
  for i = 1, #list do
    t[2 * i - 1], t[2 * i] = list[i][1], list[i][2]
  end
  return setmetatable(t, Headers)
end

-- get(name[, default]): the value, repeated fields joined with ", "
function Headers:get(name, default)
  local v = self._map[lower(name)]
  if v == nil then return default end
  return v
end

-- get_all(name): every value of a field that may repeat (Set-Cookie)
function Headers:get_all(name)
  local out, k = {}, lower(name)
  for i = 1, #self, 2 do
    if lower(self[i]) == k then out[#out + 1] = self[i + 1] end
  end
  return out
end

-- list(): {{name, value}...} as received
function Headers:list()
  local out = {}
  for i = 1, #self, 2 do out[#out + 1] = {self[i], self[i + 1]} end
  return out
end

function Headers:items() return Headers.__pairs(self) end

return M
