-- wl_idle.lua: holds idle connections for the memory benchmark, each in
-- its own task parked in recv, as an echo or chat server's would be. A
-- client that sends "stat" gets (and stdout shows) one line:
--   conns=<idle connections> rss_kb=<VmRSS> lua_kb=<Lua heap>
-- Usage: wirelab bench/wl_idle.lua PORT [RECV_SIZE]. The first line on
-- stdout is the bound port. RECV_SIZE (default 65536, as wl_echo.lua)
-- is what each parked recv asks for.
local wirelab = require "wirelab"
local socket = require "socket"

local port = tonumber(arg[1] or "0")
local recv_size = tonumber(arg[2] or "65536")
local conns = 0

local function rss_kb()
  local f <close> = assert(io.open("/proc/self/status"))
  for line in f:lines() do
    local kb = line:match("^VmRSS:%s*(%d+)")
    if kb then return tonumber(kb) end
  end
end

local function serve(conn)
  conns = conns + 1
  local ok, err = pcall(function()
    while true do
      local data = conn:recv(recv_size)
      if data == "" then break end
      if data:sub(1, 4) == "stat" then
        -- this connection is the one asking, not an idle one
        local line = string.format("conns=%d rss_kb=%d lua_kb=%d\n",
          conns - 1, rss_kb(), math.floor(collectgarbage("count")))
        io.stdout:write(line)
        io.stdout:flush()
        conn:sendall(line)
      end
    end
  end)
  conns = conns - 1
  conn:close()
  if not ok and not (type(err) == "table" and err.code == "ECONNRESET") then
    error(err, 0)
  end
end

local server = socket.create_server("127.0.0.1", port, {backlog = 4096})
local _, bound = server:getsockname()
io.stdout:write(bound, "\n")
io.stdout:flush()
while true do
  local conn = server:accept()
  wirelab.spawn(serve, conn)
end
