-- handshake-observer: one step of a TCP connection's life, and what the
-- kernel says. Run: wirelab observer.lua PORT STEP
-- Read labs/handshake-observer/README.md for the steps and what to print.
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
local step = arg[2]

local STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
                "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

-- report{event=, ...}: one JSON object on a line
local function report(fields)
  local parts = {}
  for k, v in pairs(fields) do
    parts[#parts + 1] = ("%q: %s"):format(k, math.type(v) and tostring(v) or ("%q"):format(v))
  end
  io.write("{", table.concat(parts, ", "), "}\n")
  io.flush()
end

-- the state of a connection in /proc/net/tcp, whether a socket holds it or not
local function kernel_state(local_port, remote_port)
  -- TODO: read /proc/net/tcp and /proc/net/tcp6: each line has local
  -- "HEXIP:HEXPORT", remote "HEXIP:HEXPORT", then the state in hex
  -- (STATES[n]); the socket's own state is s:tcp_info().state
  return nil
end

local steps = {}

function steps.handshake()
  local s = socket.create_connection("127.0.0.1", port)
  -- TODO: report "connected" with your socket's own port (s:getsockname())
  -- and its state
  while s:recv(4096) ~= "" do end
  s:close()
end

steps["active-close"] = function()
  -- TODO: connect, report "connected", close first, report "closed" and,
  -- once the server has closed too, "peer-closed", with the states from
  -- kernel_state (the socket is gone after close)
end

steps["passive-close"] = function()
  -- TODO: listen, report "listening", accept, read until "", report
  -- "peer-closed" (state, bytes received), close, report "closed"
end

function steps.reset()
  -- TODO: listen, report "listening", accept, wait for the bytes without
  -- reading them (socket.MSG_PEEK), report "unread", close, report "closed"
end

function steps.backlog()
  -- TODO: listen(1), report "listening", never accept
  wirelab.sleep(60)
end

steps[step]()
