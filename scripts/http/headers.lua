-- http.headers: the header fields of a request or response, case-insensitive
-- (headers["content-type"], headers:get(name[, default])) and in arrival
-- order (pairs, items). Shared by http.server and http.client.
local setmetatable, rawset, type, ipairs = setmetatable, rawset, type, ipairs
local lower = string.lower

local M = {}
local Headers = {}
M.Headers = Headers

-- The lowercase map is built on first use: a server handler that never
-- looks at the headers pays nothing for them.
local function header_map(t)
  local map = {}
  local list = t._list
  for i = 1, #list do
    local kv = list[i]
    local k = lower(kv[1])
    local old = map[k]
    map[k] = old and (old .. ", " .. kv[2]) or kv[2]
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
  local i = 0
  return function()
    i = i + 1
    local kv = t._list[i]
    if kv then return kv[1], kv[2] end
  end, t, nil
end

-- new(list): list is {{name, value}...} as the parser gives it
function M.new(list)
  return setmetatable({_list = list}, Headers)
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
  for _, kv in ipairs(self._list) do
    if lower(kv[1]) == k then out[#out + 1] = kv[2] end
  end
  return out
end

function Headers:items() return Headers.__pairs(self) end

return M
