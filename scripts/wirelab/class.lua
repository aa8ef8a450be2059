-- wirelab.class: the small class system of the Lua modules (Python-style
-- classes for socketserver and http.server). Cls:extend([fields]) makes a
-- subclass; calling a class makes an instance and runs its init.
local setmetatable, getmetatable, rawget, pairs, type = setmetatable, getmetatable, rawget, pairs, type

local M = {}
local Object = {}
Object.__index = Object
M.Object = Object

-- Lua finds metamethods without __index, so they are copied down.
local INHERITED = {"__tostring", "__close", "__eq", "__lt", "__le", "__len", "__call_instance"}

local function new(cls, ...)
  local obj = setmetatable({}, cls)
  local init = cls.init
  if init then init(obj, ...) end
  return obj
end

-- The fields are copied, not adopted: a mixin passed to several extend
-- calls (TCPServer:extend(ThreadingMixIn), UDPServer:extend(ThreadingMixIn))
-- must not become, and be re-parented as, each of those classes.
function Object:extend(fields)
  local cls = {}
  for k, v in pairs(fields or {}) do cls[k] = v end
  for _, k in pairs(INHERITED) do
    if rawget(cls, k) == nil and self[k] ~= nil then cls[k] = self[k] end
  end
  cls.__index = cls
  cls.super = self
  return setmetatable(cls, {__index = self, __call = new})
end

-- Mix the fields of other classes in (Python's mixins come first in the MRO).
function Object:include(...)
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do
      if k ~= "__index" and k ~= "super" and rawget(self, k) == nil then self[k] = v end
    end
  end
  return self
end

function Object:is_instance(cls)
  local mt = getmetatable(self)
  while mt do
    if mt == cls then return true end
    mt = rawget(mt, "super")
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
    local own = rawget(c, "__name")
    if own then return own end
    own = M.global_name(c)
    if own then return own end
    c = rawget(c, "super")
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
    if type(v) == "table" and rawget(v, "__index") == v and rawget(v, "__name") == nil then
      v.__name = k
    end
  end
  return mod
end

setmetatable(Object, {__call = new})
return M
