-- Broken on purpose: reports tcp_info's retrans, the retransmitted
-- segments not yet acknowledged (none, at the end), not total_retrans.
local socket = require "socket"
local c = socket.create_connection(arg[1], tonumber(arg[2]))
local data = io.stdin:read("a")
c:sendall(data)
c:shutdown(socket.SHUT_WR)
while c:recv(65536) ~= "" do end
local info = c:tcp_info()
print("bytes " .. #data)
print("retransmits " .. info.retrans)
print(("rtt_ms %.1f"):format(info.rtt * 1000))
