-- netem: network conditions on demand. Proxies that sit between a client
-- and a server on loopback and impair what passes, reproducibly from a
-- seed, with an event log a check can compare a program's counts with.
-- Each piece lives in its own file; this table only gathers them.
local M = {}

M.udp_proxy = require("netem.udp").udp_proxy
M.tcp_proxy = require("netem.tcp").tcp_proxy

return M
