-- wirelab.class: the small class system of the Lua modules (Python-style
-- classes for socketserver and http.server). Cls:extend([fields]) makes a
-- subclass; calling a class makes an instance and runs its init.
local setmetatable, getmetatable, rawget, pairs = setmetatable, getmetatable, rawget, pairs

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

setmetatable(Object, {__call = new})
return M
