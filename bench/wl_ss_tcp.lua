-- wl_ss_tcp.lua: wirelab's socketserver echo server for the benchmarks,
-- the code a user of socketserver writes: a ThreadingTCPServer (a task per
-- connection) with a BaseRequestHandler subclass looping recv/sendall, or
-- the same loop as a plain function handler(request, client_address, server).
-- Usage: wirelab bench/wl_ss_tcp.lua class|function PORT. The first line on
-- stdout is the bound port.
local socketserver = require "socketserver"

local style, port = arg[1], tonumber(arg[2] or "0")

-- the load client exits without closing politely: a reset ends the
-- connection quietly (Python's peer catches ConnectionError the same way)
local QUIET = {ECONNRESET = true, EPIPE = true, ENOTCONN = true}

local function echo(conn)
  local ok, err = pcall(function()
    while true do
      local data = conn:recv(65536)
      if data == "" then break end
      conn:sendall(data)
    end
  end)
  if not ok and not (type(err) == "table" and QUIET[err.code]) then
    error(err, 0)
  end
end

local Echo = socketserver.BaseRequestHandler:extend()
function Echo:handle() echo(self.request) end

local handler
if style == "class" then
  handler = Echo
elseif style == "function" then
  handler = function(request) echo(request) end
else
  io.stderr:write("usage: wirelab wl_ss_tcp.lua class|function PORT\n")
  os.exit(2)
end

-- Python's request_queue_size of 5 would drop SYNs under 50 connections
local Server = socketserver.ThreadingTCPServer:extend({
  allow_reuse_address = true, daemon_threads = true, request_queue_size = 1024,
})

local server = Server({"127.0.0.1", port}, handler)
io.stdout:write(server.server_address[2], "\n")
io.stdout:flush()
server:serve_forever()
