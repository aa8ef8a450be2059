-- netem.proxy: what every impairment proxy has: its address, its event
-- log and the methods around it, close() as __close. The UDP and TCP
-- proxies (netem/udp.lua, netem/tcp.lua) extend it.
local class = require "wirelab.class"
local wirelab = require "wirelab"
local hostport = require("netem.options").hostport

local M = {}

local Proxy = class.Object:extend()
M.Proxy = Proxy

-- proxy:events([filter]) -> a list of the events kept so far, those whose
-- fields equal filter's when it is given
function Proxy:events(filter)
  if filter ~= nil and type(filter) ~= "table" then
    error("bad argument #1 to 'events' (table expected, got " .. type(filter) .. ")", 2)
  end
  return self.log:select(filter)
end

function Proxy:__close() self:close() end

function Proxy:__tostring()
  if self.closed then return "<netem." .. self.kind .. " [closed]>" end
  return ("<netem.%s %s -> %s, %s>"):format(self.kind, hostport(self.address[1], self.address[2]),
                                           hostport(self.target[1], self.target[2]), self:_state())
end

-- stop_tasks(list): cancels the proxy's tasks (not the caller's own)
function M.stop_tasks(list)
  local me = wirelab.current()
  for t in pairs(list) do
    if t ~= me then t:cancel() end
  end
end

return M
