-- flow-control-observer: a sender that measures TCP flow control.
-- Run: wirelab sender.lua PORT MODE SNDBUF TOTAL. Read README.md for what
-- to send, what to print, and what is checked.
local socket = require "socket"
local wirelab = require "wirelab"

local port = math.tointeger(tonumber(arg[1]))
local mode = arg[2]
local sndbuf, total = math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4]))

local ALPHABET = "abcdefghijklmnopqrstuvwxyz"

-- the n bytes of the stream that start at byte offset
local function stream(offset, n)
  local first = offset % #ALPHABET
  return ALPHABET:rep((first + n) // #ALPHABET + 1):sub(first + 1, first + n)
end

local s = socket.socket()
-- TODO: SO_SNDBUF, before connect
s:connect("127.0.0.1", port)
local sent = 0
-- TODO: send the TOTAL bytes of the stream. send may take fewer bytes than
-- you give it: it returns how many it took.
-- TODO: fill mode: the first time send takes nothing for 0.5 s (a timeout:
-- s:settimeout), print {"accepted": N} (and io.stdout:flush()), wait for
-- the receiver's one-byte go-ahead (s:recv(1)), then send the rest.
-- TODO: pace mode: time the sending (wirelab.now()) and print
-- {"seconds": T, "rate": R}.
s:close()
