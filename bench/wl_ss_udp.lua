-- wl_ss_udp.lua: wirelab's socketserver UDP echo server for the benchmarks,
-- the code a user of socketserver writes: a UDPServer (one datagram at a
-- time, inside serve_forever) with a DatagramRequestHandler subclass that
-- copies rfile to wfile, or a plain function handler(request,
-- client_address, server) that sends the datagram back.
-- Usage: wirelab bench/wl_ss_udp.lua class|function PORT. The first line on
-- stdout is the bound port.
local socketserver = require "socketserver"

local style, port = arg[1], tonumber(arg[2] or "0")

local Echo = socketserver.DatagramRequestHandler:extend()
function Echo:handle() self.wfile:write(self.rfile:read("a")) end

local function echo(request, client_address)
  local data, sock = request[1], request[2]
  sock:sendto(data, client_address[1], client_address[2])
end

local handler
if style == "class" then
  handler = Echo
elseif style == "function" then
  handler = echo
else
  io.stderr:write("usage: wirelab wl_ss_udp.lua class|function PORT\n")
  os.exit(2)
end

-- Python's peer reads up to 65536 bytes too (bench/py_echo_socketserver.py)
local Server = socketserver.UDPServer:extend({max_packet_size = 65536})

local server = Server({"127.0.0.1", port}, handler)
io.stdout:write(server.server_address[2], "\n")
io.stdout:flush()
server:serve_forever()
