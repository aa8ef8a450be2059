-- Broken on purpose: one send, its return value ignored. With a timeout
-- on the socket (as in Python), send takes what the socket buffer has
-- room for now: over a slow link, a part of 4 MiB.
local socket = require "socket"
local c = socket.create_connection(arg[1], tonumber(arg[2]))
c:settimeout(30)
local data = io.stdin:read("a")
c:send(data)
c:shutdown(socket.SHUT_WR)
while c:recv(65536) ~= "" do end
local info = c:tcp_info()
print("bytes " .. #data)
print("retransmits " .. info.total_retrans)
print(("rtt_ms %.1f"):format(info.rtt * 1000))
