-- wirelab.complete: what Tab offers at the prompt. Given the line up to
-- the cursor and the word there, the words it may become: globals and
-- keywords; fields and methods after `.` and `:`, found in the value and
-- along its metatables' __index tables (so `srv:se` offers a server's
-- methods and those of the classes it inherits); module names inside
-- `require "`. Nothing is called to find them -- no __index function, no
-- __pairs -- so Tab has no side effects.
local M = {}

-- name -> loader of the globals the prompt makes on first use (repl.lua)
M.lazy = {}

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
  "true", "until", "while",
}

local rawget, next, type, getmetatable = rawget, next, type, getmetatable
local sort = table.sort

-- Where v's fields go on: its metatable's __index table, or, for a C
-- object whose __index is a function (a socket, a process), the table of
-- methods its metatable keeps as `methods`.
local function index_table(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local index = rawget(mt, "__index")
  if type(index) == "table" then return index end
  index = rawget(mt, "methods")
  return type(index) == "table" and index or nil
end

-- The value of a field as Lua would find it without calling anything:
-- raw, then along __index tables (strings index the string library).
local function field(v, k)
  for _ = 1, 20 do                       -- a loop of __index tables ends
    if type(v) == "table" then
      local got = rawget(v, k)
      if got ~= nil then return got end
    elseif type(v) == "string" then
      return string[k]
    end
    local index = index_table(v)
    if index == nil then return nil end
    v = index
  end
  return nil
end

-- Every string key reachable from v that way, with its value (the first
-- one found, as lookup would see it).
local function fields(v)
  local out, seen = {}, {}
  for _ = 1, 20 do
    if type(v) == "table" then
      for k, val in next, v do
        if type(k) == "string" and out[k] == nil then out[k] = val end
      end
    elseif type(v) == "string" then
      v = string
      for k, val in next, v do out[k] = out[k] or val end
    end
    local index = index_table(v)
    if index == nil or seen[index] then break end
    seen[index] = true
    v = index
  end
  return out
end

-- the callable: a function, or a table or userdata with __call
local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

local function identifier(k)
  return k:match("^[%a_][%w_]*$") ~= nil
end

-- what a completed name is followed by: "(" for a call (as Python's
-- rlcompleter does), nothing otherwise
local function suffix(v, after_colon)
  if after_colon or callable(v) then return "(" end
  return ""
end

local function module_names(prefix)
  local names, out = {}, {}
  for name in next, package.preload do names[name] = true end
  for name in next, package.loaded do names[name] = true end
  for name in next, names do
    if type(name) == "string" and name:sub(1, #prefix) == prefix
       and not name:find("%.core$") and not name:find("^_") then
      out[#out + 1] = name
    end
  end
  sort(out)
  return out
end

-- candidates(line, word) -> list: what `word`, which ends `line` at the
-- cursor, may become. env is where names are looked up (default _G).
function M.candidates(line, word, env)
  env = env or _G
  local before = line:sub(1, #line - #word)
  if before:match("require%s*%(?%s*[\"']$") then
    local out = module_names(word)
    if #out == 1 then out[1] = out[1] .. before:sub(-1) end  -- the quote closed
    return out
  end
  local out = {}
  local path, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  if path and path ~= "" then
    local v = env
    for name, s in (path .. "."):gmatch("([^.:]+)([.:])") do
      if not identifier(name) then return out end
      if s == ":" then return out end    -- a method call in the middle
      local got = field(v, name)
      if got == nil and v == env and M.lazy[name] then got = M.lazy[name]() end
      v = got
      if v == nil then return out end
    end
    for k, val in next, fields(v) do
      if identifier(k) and k:sub(1, #partial) == partial and k:sub(1, 2) ~= "__"
         and (sep == "." or callable(val)) then
        out[#out + 1] = path .. sep .. k .. suffix(val, sep == ":")
      end
    end
  elseif not word:find("[.:]") then
    for k, val in next, fields(env) do
      if identifier(k) and k:sub(1, #word) == word then
        out[#out + 1] = k .. suffix(val)
      end
    end
    for k in next, M.lazy do
      if k:sub(1, #word) == word and rawget(env, k) == nil then out[#out + 1] = k end
    end
    for _, k in ipairs(KEYWORDS) do
      if k:sub(1, #word) == word then out[#out + 1] = k end
    end
  end
  sort(out)
  return out
end

return M
