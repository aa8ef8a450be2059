-- wl_echo.lua: wirelab echo server for the benchmarks, the code a user
-- would write. TCP: socket.create_server and a task per connection looping
-- recv(65536)/sendall. UDP: one task looping recvfrom/sendto.
-- Usage: wirelab bench/wl_echo.lua tcp|udp PORT. The first line on stdout
-- is the bound port.
local wirelab = require "wirelab"
local socket = require "socket"

local mode, port = arg[1], tonumber(arg[2] or "0")

-- the load client exits without closing politely: a reset ends the task
-- quietly, anything else is a bug worth a traceback
local QUIET = {ECONNRESET = true, EPIPE = true, ENOTCONN = true}

local function announce(sock)
  local _, bound = sock:getsockname()
  io.stdout:write(bound, "\n")
  io.stdout:flush()
end

local function echo(conn)
  local ok, err = pcall(function()
    while true do
      local data = conn:recv(65536)
      if data == "" then break end
      conn:sendall(data)
    end
  end)
  conn:close()
  if not ok and not (type(err) == "table" and QUIET[err.code]) then
    error(err, 0)
  end
end

if mode == "tcp" then
  local server = socket.create_server("127.0.0.1", port, {backlog = 1024})
  announce(server)
  while true do
    local conn = server:accept()
    wirelab.spawn(echo, conn)
  end
elseif mode == "udp" then
  local s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  s:bind("127.0.0.1", port)
  announce(s)
  while true do
    local data, host, from = s:recvfrom(65536)
    s:sendto(data, host, from)
  end
else
  io.stderr:write("usage: wirelab wl_echo.lua tcp|udp PORT\n")
  os.exit(2)
end
