-- tcp-under-loss reference sender. Run: wirelab sender.lua HOST PORT < data
-- Sends all of stdin to HOST:PORT over TCP, waits until the receiver has
-- everything (it answers, then closes), and reports what the kernel's TCP
-- did: the bytes sent, the segments it retransmitted, its smoothed RTT.
local socket = require "socket"

local host, port = arg[1], tonumber(arg[2])
local data = io.stdin:read("a")
local c = socket.create_connection(host, port)
c:sendall(data)
c:shutdown(socket.SHUT_WR)          -- "that is all": the receiver sees EOF
-- sendall returned when the kernel had the bytes, not when they arrived:
-- the receiver's answer and close say they all did
while c:recv(65536) ~= "" do end
local info = c:tcp_info()
c:close()
print("bytes " .. #data)
print("retransmits " .. info.total_retrans)
print(("rtt_ms %.1f"):format(info.rtt * 1000))
