-- luv_echo.lua: echo peer on Lua 5.4 + luv (libuv's own Lua binding,
-- Debian's lua-luv), written as a luv user writes it: callbacks, no
-- coroutines. TCP: read_start, and each chunk written back; UDP:
-- recv_start, and each datagram sent back. Usage: lua5.4 luv_echo.lua
-- tcp|udp PORT. The first line on stdout is the bound port.
local uv = require "luv"

local mode, port = arg[1], tonumber(arg[2] or "0")

local function announce(handle)
  io.stdout:write(handle:getsockname().port, "\n")
  io.stdout:flush()
end

if mode == "tcp" then
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", port))
  assert(server:listen(1024, function(err)
    assert(not err, err)
    local client = uv.new_tcp()
    server:accept(client)
    client:read_start(function(rerr, data)
      -- an error (the load client resets) or end of file: close quietly
      if rerr or not data then
        client:close()
      else
        client:write(data)
      end
    end)
  end))
  announce(server)
elseif mode == "udp" then
  local sock = uv.new_udp()
  assert(sock:bind("127.0.0.1", port))
  sock:recv_start(function(err, data, addr)
    assert(not err, err)
    if data and addr then sock:send(data, addr.ip, addr.port) end
  end)
  announce(sock)
else
  io.stderr:write("usage: lua5.4 luv_echo.lua tcp|udp PORT\n")
  os.exit(2)
end
uv.run()
