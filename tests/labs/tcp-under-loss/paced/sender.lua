-- Broken on purpose: 8 KiB at a time with a pause after each, so the
-- sender, not TCP, sets the pace (about 800 KB/s whatever the link).
local socket = require "socket"
local wirelab = require "wirelab"
local c = socket.create_connection(arg[1], tonumber(arg[2]))
local data = io.stdin:read("a")
for i = 1, #data, 8192 do
  c:sendall(data:sub(i, i + 8191))
  wirelab.sleep(0.01)
end
c:shutdown(socket.SHUT_WR)
while c:recv(65536) ~= "" do end
local info = c:tcp_info()
print("bytes " .. #data)
print("retransmits " .. info.total_retrans)
print(("rtt_ms %.1f"):format(info.rtt * 1000))
