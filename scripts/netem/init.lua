-- netem: network conditions on demand (docs/link.md). This branch has
-- only the emulated link; the proxies live in the netem branch, whose
-- init.lua adds these two fields.
local link = require "netem.link"

local M = {}

M.link = link.link
M.link_available = link.link_available

return M
