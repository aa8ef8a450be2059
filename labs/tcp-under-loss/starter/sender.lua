-- tcp-under-loss: a bulk TCP sender. Run: wirelab sender.lua HOST PORT < data
-- Send all of stdin to HOST:PORT, then report what the kernel's TCP did.
-- Read labs/tcp-under-loss/README.md for what is checked.
local socket = require "socket"

local host, port = arg[1], tonumber(arg[2])
local data = io.stdin:read("a")
local c = socket.create_connection(host, port)
-- TODO: send all of data, and tell the receiver you have finished.
-- TODO: wait until the receiver has everything: it answers, then closes.
-- TODO: c:tcp_info() is the socket's TCP_INFO as a table (docs/socket.md).
print("bytes " .. #data)
print("retransmits 0")            -- TODO
print("rtt_ms 0")                 -- TODO
c:close()
