-- flow-control-observer reference sender in Lua.
-- Run: wirelab sender.lua PORT MODE SNDBUF TOTAL (README.md). A socket with
-- a 0.5 s timeout: send takes what fits and returns, or waits for room; one
-- that finds no room for 0.5 s raises ETIMEDOUT, and in fill mode the first
-- of those is the moment to report; after the receiver's go-ahead byte it
-- goes on sending.
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
local mode = arg[2]
local sndbuf, total = math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4]))
assert(port and sndbuf and total, "usage: wirelab sender.lua PORT fill|pace SNDBUF TOTAL")

local ALPHABET = "abcdefghijklmnopqrstuvwxyz"
local BLOCKED = 0.5                 -- seconds without room: send is blocked
local CHUNK = 65536

-- the n bytes of the stream that start at byte offset
local function stream(offset, n)
  local first = offset % #ALPHABET
  return ALPHABET:rep((first + n) // #ALPHABET + 1):sub(first + 1, first + n)
end

local start = wirelab.now()
local s = socket.socket()
s:setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)    -- before connect
s:connect("127.0.0.1", port)
s:settimeout(BLOCKED)
local sent, reported = 0, mode ~= "fill"
while sent < total do
  local ok, n = pcall(s.send, s, stream(sent, math.min(CHUNK, total - sent)))
  if ok then
    sent = sent + n                 -- what send took, maybe less than given
  elseif n.code == "ETIMEDOUT" then
    -- not an error: no room for 0.5 s; the receiver is not reading
    if not reported then
      print(('{"accepted": %d}'):format(sent))
      io.stdout:flush()
      reported = true
      -- the receiver looks at its queues, then sends one byte
      s:settimeout(nil)
      s:recv(1)
      s:settimeout(BLOCKED)
    end
  else
    error(n, 0)
  end
end
local seconds = wirelab.now() - start
s:close()
if mode == "pace" then
  print(('{"seconds": %.6f, "rate": %.1f}'):format(seconds, total / seconds))
end
