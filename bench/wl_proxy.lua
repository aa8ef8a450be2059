-- wl_proxy.lua: a netem proxy with no impairment, for the proxy
-- benchmark: what forwarding itself costs. keep_events = 0, as a long
-- run would otherwise keep an event per datagram.
-- Usage: wirelab bench/wl_proxy.lua tcp|udp TARGET_PORT. The first line
-- on stdout is the proxy's port; it serves until killed.
local netem = require "netem"
local wirelab = require "wirelab"

local mode, target = arg[1], tonumber(arg[2])
if (mode ~= "tcp" and mode ~= "udp") or not target then
  io.stderr:write("usage: wl_proxy.lua tcp|udp TARGET_PORT\n")
  os.exit(2)
end

local p = netem[mode .. "_proxy"]{target = {"127.0.0.1", target}, keep_events = 0}
io.stdout:write(p.address[2], "\n")
io.stdout:flush()
while true do wirelab.sleep(3600) end
