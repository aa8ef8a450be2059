-- tcp-echo reference solution in Lua: a task per client, recv/sendall
-- until the client closes. Run: wirelab server.lua PORT
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
assert(port, "usage: wirelab server.lua PORT")

-- create_server sets SO_REUSEADDR, binds and listens
local server = socket.create_server("127.0.0.1", port, {backlog = 128})

local function serve(conn)
  while true do
    local ok, data = pcall(conn.recv, conn, 65536)
    if not ok or data == "" then break end      -- reset, or the client finished
    if not pcall(conn.sendall, conn, data) then break end
  end
  conn:close()
end

while true do
  local conn = server:accept()
  wirelab.spawn(serve, conn)
end
