-- wirelab.pretty: values as the prompt prints them (docs/cli.md): tables
-- in Lua syntax with the array part first and the other keys sorted,
-- nested ones down to a depth, a cycle marked where it closes, a long
-- table or string cut with a count of what was left out. A value with a
-- __tostring (a socket, a server, an error) prints as it says itself.
local type, tostring, pairs, ipairs, next, pcall = type, tostring, pairs, ipairs, next, pcall
local getmetatable, rawget = getmetatable, rawget
local format, concat, sort = string.format, table.concat, table.sort
local math_type = math.type

local M = {}

M.MAX_DEPTH = 4        -- tables nested deeper print as {...}
M.MAX_ITEMS = 30       -- entries shown per table
M.MAX_STRING = 200     -- bytes shown of a string inside a table
M.MAX_TOTAL = 4000     -- bytes of one value's text

local function quote(s)
  local cut = ""
  if #s > M.MAX_STRING then s, cut = s:sub(1, M.MAX_STRING), format("...(%d bytes)", #s) end
  return format("%q", s):gsub("\\\n", "\\n") .. cut
end

local IDENT = "^[%a_][%w_]*$"
local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat " ..
          "return then true until while"):gmatch("%S+") do KEYWORDS[w] = true end

local function key_text(k, show)
  if type(k) == "string" and k:find(IDENT) and not KEYWORDS[k] then return k end
  return "[" .. show(k) .. "]"
end

-- keys in a stable order: numbers, then strings, then the rest by their text
local RANK = {number = 1, string = 2, boolean = 3}
local function key_less(a, b)
  local ra, rb = RANK[type(a)] or 4, RANK[type(b)] or 4
  if ra ~= rb then return ra < rb end
  if ra <= 2 then return a < b end
  return tostring(a) < tostring(b)
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function render(v, depth, seen)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t ~= "table" then return tostring(v) end
  if has_tostring(v) then
    local ok, s = pcall(tostring, v)
    return ok and s or "(a value that cannot be printed)"
  end
  if seen[v] then return "<cycle>" end
  if depth >= M.MAX_DEPTH then return next(v) == nil and "{}" or "{...}" end
  seen[v] = true
  local parts, n = {}, #v
  local shown = 0
  local function show(x) return render(x, depth + 1, seen) end
  for i = 1, n do
    if shown >= M.MAX_ITEMS then break end
    shown = shown + 1
    parts[shown] = show(v[i])
  end
  local keys = {}
  for k in pairs(v) do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  sort(keys, key_less)
  for _, k in ipairs(keys) do
    if shown >= M.MAX_ITEMS then break end
    shown = shown + 1
    parts[shown] = key_text(k, show) .. " = " .. show(v[k])
  end
  local total = n + #keys
  if total > shown then parts[#parts + 1] = format("... (%d more)", total - shown) end
  seen[v] = nil
  return "{" .. concat(parts, ", ") .. "}"
end

-- show(v) -> the text the prompt prints for a result v: a string as it
-- is (as lua's prompt prints it), anything else rendered
function M.show(v)
  if type(v) == "string" then return v end
  local s = render(v, 0, {})
  if #s > M.MAX_TOTAL then s = s:sub(1, M.MAX_TOTAL) .. format("... (%d bytes)", #s) end
  return s
end

-- repr(v) -> v rendered, a string quoted too
function M.repr(v)
  return render(v, 0, {})
end

return M
