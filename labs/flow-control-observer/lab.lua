-- labs/flow-control-observer: measure TCP flow control from the sending
-- side. The student writes a sender; the checks are its receiver, which
-- first does not read at all (how much does send accept before it
-- blocks?), then reads at 100 KiB/s (does the reader pace the sender?).
-- Every figure the student reports is compared with the kernel's own
-- figures for the same sockets -- the receiver's unread bytes (SIOCINQ,
-- s:queues()), the sender's unacknowledged ones (its /proc/net/tcp row,
-- socket.connections) -- or with the same measurement made by the check
-- on a twin connection with the same buffer sizes, never with textbook
-- constants: Linux doubles SO_RCVBUF and SO_SNDBUF, autotunes them, and
-- loopback's segments are 64 KiB.
local lab = require "lab"
local wirelab = require "wirelab"
local socket = require "socket"

local KiB = 1024
local SNDBUF = 32 * KiB             -- what the sender sets (the kernel makes it 64 KiB)
local SMALL_RCVBUF = 16 * KiB       -- the receiver's, set before listen
local LARGE_RCVBUF = 512 * KiB
local FILL_TOTAL = 8 * 1024 * KiB   -- bytes a fill run sends: more than Linux lets a
                                    -- send buffer grow to (4 MiB), so it blocks
local PACE_RATE = 100 * KiB         -- bytes per second the paced reader takes
local PACE_BUF = 4 * KiB            -- both buffers in the paced run: small, so the
                                    -- sender follows the reader from the start
local PACE_TOTAL = 512 * KiB
local BLOCKED = 0.5                 -- no progress for this long: send is blocked

local ALPHABET = "abcdefghijklmnopqrstuvwxyz"
local GO = "g"                      -- the receiver's go-ahead after a fill report

-- the bytes a sender sends: byte i (from 0) is ALPHABET[i % 26]
local function stream(n)
  return ALPHABET:rep(n // #ALPHABET + 1):sub(1, n)
end

-- The numbers of one line of JSON, {"name": number, ...}: what the
-- sender reports. nil when the line is not such an object.
local function numbers(line)
  local body = line:match("^%s*{(.*)}%s*$")
  if not body then return nil end
  local t, rest = {}, body
  for key, num in body:gmatch('"([%w_]+)"%s*:%s*(-?[%d.]+[eE]?[-+]?%d*)') do
    t[key] = tonumber(num)
  end
  rest = rest:gsub('"[%w_]+"%s*:%s*-?[%d.]+[eE]?[-+]?%d*', ""):gsub("[%s,]", "")
  if rest ~= "" then return nil end
  return t
end

-- a listening socket in the check's namespace, SO_RCVBUF set before
-- listen so that the accepted socket has it from the handshake on
local function listener(t, rcvbuf)
  local l = t:socket()
  l:setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
  l:bind("127.0.0.1", 0)
  l:listen(1)
  return l, select(2, l:getsockname())
end

-- holder(): a list of programs and sockets, ended when the variable holding
-- it goes out of scope (local held <close> = holder()), however the check
-- ends: the programs first, so that closing a socket with unread bytes
-- (a reset) does not make a sender crash before the check is told
local function holder()
  return setmetatable({}, {__close = function(list)
    for _, x in ipairs(list) do if type(x) == "table" then pcall(x.kill, x) end end
    for _, x in ipairs(list) do if type(x) ~= "table" then pcall(x.close, x) end end
  end})
end

-- accepts the sender's connection, within 5 s, into held; a sender that
-- ends first is reported as having crashed
local function accept(t, l, p, held)
  local deadline = wirelab.now() + 5
  l:settimeout(0.1)
  while true do
    local ok, a = pcall(l.accept, l)
    if ok then
      held[#held + 1] = a
      a:settimeout(10)
      return a
    end
    if not p:alive() then
      t:fail("the sender ended before it connected", "crashed")
    end
    if wirelab.now() >= deadline then
      t:fail(("nothing connected to 127.0.0.1 port %d within 5 s"):format(select(2, l:getsockname())))
    end
  end
end

-- the first line of the sender's stdout, within `secs`, read as numbers
local function report(t, p, secs, what)
  local deadline = wirelab.now() + secs
  while true do
    local out = p:stdout()
    local line = out:match("^([^\n]*)\n")
    if line then
      local r = numbers(line)
      if not r then
        t:fail(("the sender printed %s, not a JSON object of numbers such as %s"):format(lab.show(line), what))
      end
      return r
    end
    if not p:alive() then t:fail("the sender ended without printing " .. what, "crashed") end
    if wirelab.now() >= deadline then
      t:fail(("the sender printed no line within %g s while the receiver was not reading " ..
        "(expected %s)"):format(secs, what))
    end
    wirelab.sleep(0.02)
  end
end

-- The kernel's figures for the connection, once they stop changing: the
-- receiver's unread bytes (ioctl SIOCINQ on a) and the sender's
-- unacknowledged ones (the tx_queue of its /proc/net/tcp row, read from
-- the sender's own network namespace).
local function kernel_queues(t, a, p)
  local _, sport = a:getpeername()
  local _, lport = a:getsockname()
  local last, same, inq, outq = nil, 0, 0, 0
  local deadline = wirelab.now() + 3
  repeat
    inq = a:queues()
    outq = nil
    local ok, rows = pcall(socket.connections, {pid = p.pid, all = true})
    for _, r in ipairs(ok and rows or {}) do
      if r.proto == "tcp" and r.laddr[2] == sport and r.raddr and r.raddr[2] == lport then outq = r.outq end
    end
    if outq == nil then t:fail("the sender's end of the connection is gone (it closed or exited)") end
    local v = inq .. " " .. outq
    if v == last then same = same + 1 else last, same = v, 0 end
    if same >= 3 then break end
    wirelab.sleep(0.05)
  until wirelab.now() >= deadline
  return inq, outq
end

-- What a sender that really is blocked has given the kernel: the check's
-- own fill, on a twin connection with the same buffer sizes, in the same
-- namespace: send until no byte goes for BLOCKED seconds.
local function twin_capacity(t, rcvbuf)
  local l <close>, port = listener(t, rcvbuf)
  local c <close> = t:socket()
  c:setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
  c:connect("127.0.0.1", port)
  local a <close> = l:accept()
  local chunk, total = ("x"):rep(64 * KiB), 0
  c:settimeout(BLOCKED)
  for _ = 1, 10000 do
    local ok, n = pcall(c.send, c, chunk)
    if not ok then break end
    total = total + n
  end
  return total
end

-- fill(t, rcvbuf, held) -> the sender's figure, the kernel's two, the
-- program and the receiving socket (in held): one run of `sender PORT fill
-- SNDBUF TOTAL` against a receiver that reads nothing
local function fill(t, rcvbuf, held)
  local l <close>, port = listener(t, rcvbuf)
  local p = t:start_submission{port = port, "fill", SNDBUF, FILL_TOTAL, exits = true}
  held[#held + 1] = p
  local a = accept(t, l, p, held)
  t:step(("the receiver (SO_RCVBUF %d) reads nothing"):format(rcvbuf))
  local r = report(t, p, 10, '{"accepted": N}')
  local n = r.accepted
  if math.type(n) ~= "integer" or n <= 0 then
    t:fail(("the sender reported accepted = %s: a positive whole number of bytes expected"):format(tostring(n)))
  end
  local inq, outq = kernel_queues(t, a, p)
  t:step(("the sender reported %d bytes accepted; the kernel holds %d unread at the receiver and %d " ..
    "unacknowledged at the sender"):format(n, inq, outq))
  if outq == 0 then
    t:log(("with SO_RCVBUF %d, the sender's own queue was empty when it reported: send could still " ..
      "take more, it was not blocked"):format(rcvbuf))
  end
  return n, inq, outq, p, a
end

-- a sender that has sent everything closes and exits 0; e is p:wait's,
-- got what the receiver read
local function exited_cleanly(t, p, e, got, total)
  if e == nil then t:fail("the sender did not exit within 5 s of closing the connection") end
  if e.code ~= 0 or e.signal then
    t:fail(("the receiver got %d of the %d bytes; then the sender %s; the last line of its " ..
      "stderr: %s"):format(got, total,
      e.signal and ("was killed by signal " .. e.signal) or ("exited with status " .. tostring(e.code)),
      lab.show((p:stderr():match("([^\n]*)\n?$")))), "crashed")
  end
end

local function within(got, want, frac) return math.abs(got - want) <= frac * want end

local function pct(got, want) return ("%+.0f%%"):format((got / want - 1) * 100) end

return lab.new{
  name = "flow-control-observer",
  description = "A sender that measures TCP flow control: what send accepts before it blocks, " ..
                "and how a slow reader paces it.",
  submission = {
    {file = "sender.lua", run = {"{wirelab}", "--sandbox", "sender.lua", "{port}"}},
    {file = "sender.py", run = {"python3", "sender.py", "{port}"}},
    {file = "Makefile", build = {"make"}, run = {"./sender", "{port}"}},
    {file = "sender.c", build = {"cc", "-O2", "-o", "sender", "sender.c"}, run = {"./sender", "{port}"}},
    {file = "sender", run = {"./sender", "{port}"}},
    limits = {cpu = 20, memory = 256, nproc = 16, nofile = 64, fsize = 1, output = 1},
  },
  timeout = 20,
  checks = {
    {name = "connects", points = 1,
     description = "connects to 127.0.0.1 at the port given as the first argument within 5 s",
     hint = "connect to 127.0.0.1 and the port in argv[1] (a number: convert the string)",
     run = function(t)
       local l <close>, port = listener(t, SMALL_RCVBUF)
       local p = t:start_submission{port = port, "fill", SNDBUF, FILL_TOTAL}
       local held <close> = holder()
       accept(t, l, p, held)
     end},

    {name = "reports-block", points = 2, depends = "connects",
     description = 'against a receiver that does not read, prints {"accepted": N} once send blocks',
     hint = "a send to a receiver that does not read blocks for ever once the buffers are full: " ..
            "use a timeout (settimeout(0.5)) or a non-blocking socket and select, and report when " ..
            "send has taken nothing for 0.5 s",
     run = function(t)
       local held <close> = holder()
       fill(t, SMALL_RCVBUF, held)
     end},

    {name = "matches-kernel", points = 3, depends = "reports-block",
     description = "the bytes reported as accepted are the bytes the kernel holds for the connection",
     hint = "send returns how many bytes it took, which may be fewer than you gave it: add up " ..
            "what it returns, not the sizes you passed it, and not a buffer size from getsockopt",
     run = function(t)
       local held <close> = holder()
       local n, inq, outq = fill(t, SMALL_RCVBUF, held)
       local held = inq + outq
       t:log(("of the bytes send accepted, %d wait unread in the receiver's buffer and %d in the " ..
         "sender's (unacknowledged): %d in all"):format(inq, outq, held))
       if not within(n, held, 0.05) then
         t:fail(("the sender reported %d bytes accepted, but the kernel holds %d for the connection " ..
           "(%s): within 5%% expected"):format(n, held, pct(n, held)))
       end
     end},

    {name = "fills-both-buffers", points = 2, depends = "reports-block",
     description = "with SO_SNDBUF set as told, send blocks once the receiver's and the sender's " ..
                   "buffers are full",
     hint = "set SO_SNDBUF to the third argument before connect (the kernel doubles it); without " ..
            "it Linux grows the send buffer to megabytes and send blocks much later",
     run = function(t)
       local held <close> = holder()
       local n = fill(t, SMALL_RCVBUF, held)
       local want = twin_capacity(t, SMALL_RCVBUF)
       t:log(("a sender with SO_SNDBUF %d, blocked against this receiver, has %d bytes accepted"):format(
         SNDBUF, want))
       if not within(n, want, 0.25) then
         t:fail(("the sender reported %d bytes accepted before send blocked; a sender with SO_SNDBUF %d " ..
           "gets %d accepted (%s): within 25%% expected"):format(n, SNDBUF, want, pct(n, want)))
       end
     end},

    {name = "grows-with-rcvbuf", points = 2, depends = "reports-block", timeout = 30,
     description = ("a receiver with SO_RCVBUF %d instead of %d lets send accept more, as much more as " ..
                    "the kernel says"):format(LARGE_RCVBUF, SMALL_RCVBUF),
     hint = "EAGAIN (or a send that takes less than it was given) means your send buffer is full " ..
            "right now, not that the receiver is: wait until the socket is writable again, and call " ..
            "send blocked only when it has taken nothing for 0.5 s",
     run = function(t)
       local held <close> = holder()
       local small = fill(t, SMALL_RCVBUF, held)
       local large, linq, loutq = fill(t, LARGE_RCVBUF, held)
       local want = twin_capacity(t, LARGE_RCVBUF) - twin_capacity(t, SMALL_RCVBUF)
       t:log(("SO_RCVBUF %d: %d accepted; SO_RCVBUF %d: %d accepted (the kernel: %d unread at the " ..
         "receiver, %d at the sender)"):format(SMALL_RCVBUF, small, LARGE_RCVBUF, large, linq, loutq))
       if not within(large - small, want, 0.25) then
         t:fail(("with the receiver's SO_RCVBUF %d instead of %d the sender reported %d more bytes " ..
           "accepted; blocked senders get %d more (%s): within 25%% expected"):format(
           LARGE_RCVBUF, SMALL_RCVBUF, large - small, want, pct(math.max(large - small, 0), want)))
       end
     end},

    {name = "resumes-after-eagain", points = 2, depends = "reports-block", timeout = 25,
     description = "once the receiver reads again, the sender sends the rest: all bytes arrive, in order",
     hint = "EAGAIN and a timeout are not errors here: wait until the socket can take more (select, " ..
            "or a blocking send), then go on from the first byte send did not take",
     run = function(t)
       local held <close> = holder()
       local n, _, _, p, a = fill(t, SMALL_RCVBUF, held)
       a:sendall(GO)
       t:step("the receiver sent the go-ahead byte and reads everything now")
       local got, size = {}, 0
       while true do
         local ok, d = pcall(a.recv, a, 65536)
         if not ok then
           t:log("while reading: " .. tostring(d))
           break
         end
         if d == "" then break end
         got[#got + 1] = d
         size = size + #d
       end
       t:step(("read %d bytes, then the end of the stream"):format(size))
       exited_cleanly(t, p, p:wait(5), size, FILL_TOTAL)
       t:same_bytes(table.concat(got), stream(FILL_TOTAL),
         ("the %d bytes sent in all (%d before send blocked)"):format(FILL_TOTAL, n))
     end},

    {name = "paced", points = 3, depends = "connects", timeout = 30,
     description = ("a reader taking %d bytes per second paces the sender: it reports that rate, " ..
                    "within 15%%"):format(PACE_RATE),
     hint = "time the sending with a wall clock (time.monotonic(), wirelab.now(), " ..
            "clock_gettime(CLOCK_MONOTONIC)), not CPU time: a blocked sender uses none; " ..
            "rate = bytes / seconds",
     run = function(t)
       local l <close>, port = listener(t, PACE_BUF)
       local p = t:start_submission{port = port, "pace", PACE_BUF, PACE_TOTAL, exits = true}
       local held <close> = holder()
       local a = accept(t, l, p, held)
       t:step(("the receiver (SO_RCVBUF %d) reads %d bytes per second"):format(PACE_BUF, PACE_RATE))
       local got, size, start = {}, 0, wirelab.now()
       while size < PACE_TOTAL do
         local allowed = math.floor((wirelab.now() - start) * PACE_RATE) - size
         if allowed > 0 then
           local ok, d = pcall(a.recv, a, math.min(allowed, 8 * KiB))
           if not ok or d == "" then break end
           got[#got + 1] = d
           size = size + #d
         else
           wirelab.sleep(0.01)
         end
       end
       local secs = wirelab.now() - start
       t:step(("read %d bytes in %.2f s (%.0f bytes per second)"):format(size, secs, size / secs))
       local r = report(t, p, 5, '{"seconds": T, "rate": R}')
       exited_cleanly(t, p, p:wait(5), size, PACE_TOTAL)
       t:same_bytes(table.concat(got), stream(PACE_TOTAL), "the bytes sent")
       if type(r.rate) ~= "number" then t:fail('the sender reported no "rate"') end
       t:log(("the sender reported %s bytes per second over %s s"):format(tostring(r.rate), tostring(r.seconds)))
       -- the rate the reader really kept (a loaded machine may fall behind)
       local took = size / secs
       if not within(r.rate, took, 0.15) then
         t:fail(("the sender reported a rate of %.0f bytes per second; the reader took %.0f (%s): " ..
           "within 15%% expected"):format(r.rate, took, pct(r.rate, took)))
       end
     end},
  },
}
