-- Broken on purpose (in Lua): sends back the data upper-cased.
local socket = require "socket"
local wirelab = require "wirelab"
local server = socket.create_server("127.0.0.1", math.tointeger(tonumber(arg[1])), {backlog = 128})
while true do
  local conn = server:accept()
  wirelab.spawn(function()
    while true do
      local ok, data = pcall(conn.recv, conn, 65536)
      if not ok or data == "" then break end
      if not pcall(conn.sendall, conn, data:upper()) then break end
    end
    conn:close()
  end)
end
