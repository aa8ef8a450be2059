-- netem: network conditions on demand. Proxies that sit between a client
-- and a server on loopback and impair what passes, and an emulated link
-- between two network namespaces for real TCP segments (netem.link), all
-- reproducible from a seed, with an event log a check can compare a
-- program's counts with. Each piece lives in its own file; this table
-- only gathers them (the link is loaded on first use: it is C and TUN).
local M = {}

M.udp_proxy = require("netem.udp").udp_proxy
M.tcp_proxy = require("netem.tcp").tcp_proxy

function M.link(...) return require("netem.link").link(...) end
function M.link_available(...) return require("netem.link").link_available(...) end

return M
