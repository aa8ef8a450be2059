-- wirelab.class: the small class system of the Lua modules (Python-style
-- classes for socketserver and http.server). Cls:extend([fields]) makes a
-- subclass; calling a class makes an instance and runs its init.
--
-- Lookups are one hop, however deep the class chain: each class keeps a
-- flat table of every field it has or inherits, which its instances and
-- the class itself index (a handler's method call used to walk instance,
-- class, BaseHTTPRequestHandler...: about 37 hops an HTTP request). So
-- that no change is missed, a class table holds no field of its own but
-- its metamethods (Lua reads those raw) and __index, the flat table:
-- every assignment to a class goes through __newindex, is kept in the
-- class's own fields, and reaches the flat tables of the class and of
-- every subclass that does not override it, as a Python class attribute
-- does. pairs(cls) lists the own fields; class.own(cls, k) reads one
-- (what rawget read before).
local setmetatable, getmetatable, rawget, rawset, pairs, next, type =
  setmetatable, getmetatable, rawget, rawset, pairs, next, type

local M = {}

-- class -> its own fields; class -> its flat table; class -> subclasses
local own = setmetatable({}, {__mode = "k"})
local flat = setmetatable({}, {__mode = "k"})
local children = setmetatable({}, {__mode = "k"})

-- Lua finds metamethods without __index, so they are copied down.
local INHERITED = {"__tostring", "__close", "__eq", "__lt", "__le", "__len", "__call_instance"}
local INHERITS = {}
for _, k in pairs(INHERITED) do INHERITS[k] = true end

-- a metamethod-like key: kept raw on the class table too
local function is_meta(k)
  return type(k) == "string" and k ~= "__index" and k:sub(1, 2) == "__"
end

-- refresh(cls, k): flat[cls][k] from cls's own field or its parent's
-- flat table, then the same in every subclass that does not own k. A
-- metamethod is also set raw, from the parent's raw slot (where a later
-- raw assignment to an inherited one lands).
local function refresh(cls, k)
  local o = own[cls]
  local parent = o.super
  local v = o[k]
  if v == nil and parent then v = flat[parent][k] end
  flat[cls][k] = v
  if is_meta(k) then
    local raw = o[k]
    if raw == nil and INHERITS[k] and parent then raw = rawget(parent, k) end
    rawset(cls, k, raw)
  end
  for child in next, children[cls] do
    if own[child][k] == nil then refresh(child, k) end
  end
end

-- rebuild(cls): every field again, here and below (super changed)
local function rebuild(cls)
  local f, o = flat[cls], own[cls]
  local parent = o.super
  for k in next, f do f[k] = nil end
  if parent then
    for k, v in next, flat[parent] do f[k] = v end
  end
  for k, v in next, o do f[k] = v end
  for k in next, cls do
    if k ~= "__index" then rawset(cls, k, nil) end
  end
  for k, v in next, o do
    if is_meta(k) then rawset(cls, k, v) end
  end
  if parent then
    for k in next, INHERITS do
      if o[k] == nil then rawset(cls, k, rawget(parent, k)) end
    end
  end
  for child in next, children[cls] do rebuild(child) end
end

local function set_field(cls, k, v)
  local o = own[cls]
  if k == "super" then
    if o.super then children[o.super][cls] = nil end
    if v ~= nil and not own[v] then error("a class's super must be a class", 2) end
    o.super = v
    if v then children[v][cls] = true end
    rebuild(cls)
  else
    o[k] = v
    refresh(cls, k)
  end
end

local function own_pairs(cls) return next, own[cls], nil end

local function new(cls, ...)
  local obj = setmetatable({}, cls)
  local init = cls.init
  if init then init(obj, ...) end
  return obj
end

-- make(parent, fields): a class table, its flat table and bookkeeping
local function make(parent, fields)
  local cls, f, o = {}, {}, {}
  own[cls], flat[cls], children[cls] = o, f, setmetatable({}, {__mode = "k"})
  if parent then
    children[parent][cls] = true
    for k, v in next, flat[parent] do f[k] = v end
    for k in next, INHERITS do
      local v = rawget(parent, k)
      if v ~= nil then rawset(cls, k, v) end
    end
  end
  rawset(cls, "__index", f)
  setmetatable(cls, {__index = f, __newindex = set_field, __call = new, __pairs = own_pairs})
  for k, v in pairs(fields) do
    if k ~= "__index" then
      o[k] = v
      f[k] = v
      if is_meta(k) then rawset(cls, k, v) end
    end
  end
  o.super, f.super = parent, parent
  return cls
end

local Object = make(nil, {})
M.Object = Object

-- The fields are copied, not adopted: a mixin passed to several extend
-- calls (TCPServer:extend(ThreadingMixIn), UDPServer:extend(ThreadingMixIn))
-- must not become, and be re-parented as, each of those classes.
function Object:extend(fields)
  local copy = {}
  for k, v in pairs(fields or {}) do copy[k] = v end
  copy.super = nil
  return make(self, copy)
end

-- Mix the fields of other classes in (Python's mixins come first in the MRO).
function Object:include(...)
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do
      if k ~= "__index" and k ~= "super" and M.own(self, k) == nil then self[k] = v end
    end
  end
  return self
end

-- is_class(v): v is a class made here
function M.is_class(v) return own[v] ~= nil end

-- own(c, k): the field class c has itself (not inherited), or for any
-- other table its raw field
function M.own(c, k)
  local o = own[c]
  if o then return o[k] end
  return rawget(c, k)
end

function Object:is_instance(cls)
  local mt = getmetatable(self)
  while mt do
    if mt == cls then return true end
    mt = M.own(mt, "super")
  end
  return false
end

-- name_of(cls) -> the name a class is known by: its own __name (the
-- library's classes have one), else the global it is stored in (a class
-- made at the prompt), else the field of a loaded module, else that of
-- the nearest named class it extends; nil when none has a name.
function M.name_of(cls)
  local c = cls
  while type(c) == "table" do
    local name = M.own(c, "__name")
    if name then return name end
    name = M.global_name(c)
    if name then return name end
    c = M.own(c, "super")
  end
  return nil
end

-- global_name(v) -> the name of the global holding v, or nil
function M.global_name(v)
  for k, g in pairs(_G) do
    if g == v and type(k) == "string" then return k end
  end
  return nil
end

-- named(mod): the classes of module table mod take their field names as
-- __name (socketserver.TCPServer is "TCPServer"); returns mod
function M.named(mod)
  for k, v in pairs(mod) do
    if type(v) == "table" and own[v] and own[v].__name == nil then
      v.__name = k
    end
  end
  return mod
end

return M
