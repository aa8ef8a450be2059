-- handshake-observer reference solution in Lua. Run: wirelab observer.lua PORT STEP
-- Performs one step of a TCP connection's life with its own sockets, on
-- 127.0.0.1, and reports on stdout, one JSON object per line, the TCP
-- state the kernel gives at each point: of a socket from s:tcp_info(), of
-- a connection whose socket is closed from /proc/net/tcp.
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
local step = arg[2]
assert(port and step, "usage: wirelab observer.lua PORT STEP")

local STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
                "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

-- report{event=, ...}: one JSON object on a line (keys and values are
-- plain words and numbers here, so no escaping is needed)
local function report(fields)
  local parts = {}
  for k, v in pairs(fields) do
    parts[#parts + 1] = ("%q: %s"):format(k, math.type(v) and tostring(v) or ("%q"):format(v))
  end
  table.sort(parts)
  io.write("{", table.concat(parts, ", "), "}\n")
  io.flush()
end

-- the state of a connection in the kernel's table, socket or not
local function kernel_state(local_port, remote_port)
  for _, path in ipairs{"/proc/net/tcp", "/proc/net/tcp6"} do
    local f = io.open(path)
    if f then
      for line in f:lines() do
        local l, r, st = line:match("%x+:(%x+)%s+%x+:(%x+)%s+(%x%x)")
        if l and tonumber(l, 16) == local_port and tonumber(r, 16) == remote_port then
          f:close()
          return STATES[tonumber(st, 16)]
        end
      end
      f:close()
    end
  end
  return nil
end

-- the connection's state once it is no longer one of leaving (5 s at most)
local function wait_state(local_port, remote_port, leaving)
  local deadline = wirelab.now() + 5
  local state = kernel_state(local_port, remote_port)
  while leaving[state] and wirelab.now() < deadline do
    wirelab.sleep(0.01)
    state = kernel_state(local_port, remote_port)
  end
  return state
end

local function listener(backlog)
  local srv = socket.create_server("127.0.0.1", port, {backlog = backlog})
  report{event = "listening", state = srv:tcp_info().state, backlog = backlog}
  return srv
end

local steps = {}

function steps.handshake()
  -- connect returns once the kernel has done the handshake: the server's
  -- program has not called accept yet
  local s = socket.create_connection("127.0.0.1", port)
  report{event = "connected", local_port = select(2, s:getsockname()), state = s:tcp_info().state}
  while s:recv(4096) ~= "" do end
  s:close()
end

steps["active-close"] = function()
  local s = socket.create_connection("127.0.0.1", port)
  local mine = select(2, s:getsockname())
  report{event = "connected", local_port = mine, state = s:tcp_info().state}
  s:close()
  -- the socket is gone; the connection is the kernel's, in its table
  report{event = "closed", state = wait_state(mine, port, {ESTABLISHED = true, FIN_WAIT1 = true})}
  report{event = "peer-closed", state = wait_state(mine, port, {FIN_WAIT1 = true, FIN_WAIT2 = true})}
end

steps["passive-close"] = function()
  local conn = listener(8):accept()
  local received = 0
  while true do
    local d = conn:recv(65536)
    if d == "" then break end
    received = received + #d
  end
  report{event = "peer-closed", state = conn:tcp_info().state, received = received}
  conn:close()
  report{event = "closed"}
end

function steps.reset()
  local conn = listener(8):accept()
  -- wait for the bytes to arrive, and leave them unread
  local waiting = conn:recv(65536, socket.MSG_PEEK)
  report{event = "unread", bytes = #waiting}
  conn:close()
  report{event = "closed"}
end

function steps.backlog()
  local srv = listener(1)
  -- never accept: the kernel queues what the backlog allows
  wirelab.sleep(60)
  srv:close()
end

assert(steps[step], "unknown step " .. step)()
