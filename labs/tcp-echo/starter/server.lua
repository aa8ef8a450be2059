-- tcp-echo: a TCP echo server. Run: wirelab server.lua PORT
-- Listen on 127.0.0.1 at PORT and send back every byte each client sends,
-- until that client closes. Read labs/tcp-echo/README.md for what is checked.
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
local server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
-- TODO: what must be set before bind so that a restart can bind at once?
server:bind("127.0.0.1", port)
server:listen()

while true do
  local conn = server:accept()
  -- TODO: serve conn: recv and send back until recv returns "".
  -- TODO: several clients may be connected at once (wirelab.spawn).
  conn:close()
end
