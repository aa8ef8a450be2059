-- labs/echo/lab.lua: the first lab. A TCP echo server and a UDP echo
-- server run in background tasks; clients talk to them and check what a
-- networking course asks students to observe: bytes come back intact, the
-- OS picks the port when you bind port 0, the server sees the client's
-- address, TCP is a byte stream while UDP keeps message boundaries.
local socket = require "socket"
local wirelab = require "wirelab"

local passed, failed = 0, 0
local function check(what, ok, detail)
  if ok then passed = passed + 1 else failed = failed + 1 end
  print(("  [%s] %s%s"):format(ok and "PASS" or "FAIL", what, detail and ("  (" .. detail .. ")") or ""))
end

-- TCP echo server: one task accepts, one task per client echoes.
local tcp = socket.create_server("127.0.0.1", 0)
local _, tcp_port = tcp:getsockname()
local seen_peers = wirelab.queue()
wirelab.spawn(function()
  while true do
    local conn, host, port = tcp:accept()
    seen_peers:put({host, port})
    wirelab.spawn(function()
      while true do
        local data = conn:recv(4096)
        if data == "" then break end          -- the client shut down its side
        conn:sendall(data)
      end
      conn:close()
    end)
  end
end)

-- UDP echo server: each datagram goes back to whoever sent it.
local udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp:bind("127.0.0.1", 0)
local _, udp_port = udp:getsockname()
wirelab.spawn(function()
  while true do
    local data, host, port = udp:recvfrom(65535)
    udp:sendto(data, host, port)
  end
end)

print(("TCP echo server on 127.0.0.1:%d, UDP echo server on 127.0.0.1:%d (ports chosen by the OS)")
  :format(tcp_port, udp_port))
check("the OS chose non-zero ephemeral ports", tcp_port > 0 and udp_port > 0,
      ("tcp %d, udp %d"):format(tcp_port, udp_port))

print("TCP:")
local c <close> = socket.create_connection("127.0.0.1", tcp_port, 5)
local my_host, my_port = c:getsockname()
local peer = seen_peers:get(5)
check("server saw the client's address", peer[1] == my_host and peer[2] == my_port,
      ("server saw %s:%d, client is %s:%d"):format(peer[1], peer[2], my_host, my_port))

local info = c:tcp_info()
check("TCP_INFO shows the connection's state and RTT", info.state == "ESTABLISHED",
      ("state %s, rtt %.3f ms, cwnd %d segments"):format(info.state, info.rtt * 1000, info.snd_cwnd))

local payload = {}
for i = 0, 100000 - 1 do payload[#payload + 1] = string.char(i % 256) end
payload = table.concat(payload)
local t0 = wirelab.now()
local writer = wirelab.spawn(function() c:sendall(payload); c:shutdown(socket.SHUT_WR) end)
local chunks, got = 0, {}
while true do
  local data = c:recv(65536)
  if data == "" then break end
  chunks = chunks + 1
  got[#got + 1] = data
end
writer:join()
got = table.concat(got)
check("100000 bytes echoed intact", got == payload,
      ("%d bytes back in %d recv calls, %.1f ms"):format(#got, chunks, (wirelab.now() - t0) * 1000))
check("a stream has no message boundaries: recv sizes follow the network, not the sends",
      chunks >= 2, ("%d reads for one sendall"):format(chunks))

print("UDP:")
local u <close> = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u:settimeout(2)
local sizes = {1, 100, 1400, 9000}
for _, n in ipairs(sizes) do u:sendto(("u"):rep(n), "127.0.0.1", udp_port) end
local boundaries = true
local back = {}
for _, n in ipairs(sizes) do
  local data = u:recvfrom(65535)
  back[#back + 1] = #data
  boundaries = boundaries and #data == n
end
check("each datagram comes back whole and separate", boundaries,
      "sent " .. table.concat(sizes, ",") .. " bytes, received " .. table.concat(back, ","))
u:sendto(("x"):rep(1000), "127.0.0.1", udp_port)
local part = u:recvfrom(10)
check("recvfrom(10) on a 1000-byte datagram truncates and drops the rest", #part == 10,
      ("got %d bytes"):format(#part))

print(("%d passed, %d failed"):format(passed, failed))
print(failed == 0 and "PASS: echo lab" or "FAIL: echo lab")
return failed == 0 and 0 or 1
