-- lab.context: `t`, what a check's run(t) works with: assertions that word
-- their failures in network terms, the submission's programs (started as
-- processes, watched, and ended when the check ends), free ports, seeded
-- random payloads, and a log shown to the student.
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local socket = require "socket"
local process = require "process"
local rng_mod = require "lab.rng"

local type, tostring, ipairs, pairs, select, setmetatable, pcall =
  type, tostring, ipairs, pairs, select, setmetatable, pcall
local format, concat, byte = string.format, table.concat, string.byte

local M = {}

M.OUTPUT_CAP = 1024 * 1024          -- what is kept of each stream a program prints

local SIGNALS = {[1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [6] = "SIGABRT",
  [7] = "SIGBUS", [8] = "SIGFPE", [9] = "SIGKILL", [11] = "SIGSEGV", [13] = "SIGPIPE",
  [14] = "SIGALRM", [15] = "SIGTERM", [24] = "SIGXCPU", [25] = "SIGXFSZ", [31] = "SIGSYS"}
M.SIGNALS = SIGNALS

-- ---- failures -------------------------------------------------------------------

local Failure = {__tostring = function(f) return f.message end}

-- outcome classes (LABS.md (b)): wrong output, crashed, timed out,
-- resource limit, did not listen (and, from the runner, skipped, error,
-- build failed, did not start)
local function failure(message, outcome)
  return setmetatable({message = message, outcome = outcome or "wrong output"}, Failure)
end

function M.is_failure(e) return getmetatable(e) == Failure end

-- a value in a message: strings quoted and cut, bytes as \xHH
local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  local s = v
  local cut = ""
  if #s > 60 then s, cut = s:sub(1, 60), format("... (%d bytes)", #v) end
  return '"' .. s:gsub("[%c\128-\255\"\\]", function(c)
    if c == "\n" then return "\\n" elseif c == "\r" then return "\\r" elseif c == "\t" then return "\\t" end
    if c == '"' or c == "\\" then return "\\" .. c end
    return format("\\x%02x", byte(c))
  end) .. '"' .. cut
end
M.show = show

-- ---- the context -------------------------------------------------------------

local T = {}
T.__index = T
M.Context = T

function M.new(sub, check)
  return setmetatable({sub = sub, check = check, seed = sub.seed, rng = rng_mod.new(sub.seed, check.name),
                       ns = M.netns(), _procs = {}, _socks = {}, _links = {}, _log = {}, _steps = {}, _k = nil,
                       _n = nil}, T)
end

-- log(...): a line of the feedback the student reads
function T:log(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  self._log[#self._log + 1] = concat(parts, " ")
end

-- step(what): what the check does next; a failure lists the steps so far,
-- so the student sees the sequence that led to it (as CS144's tests do)
function T:step(what)
  self._steps[#self._steps + 1] = what
  self.last_step = what
end

local function steps_text(t)
  if #t._steps == 0 then return "" end
  local lines = {"", "steps:"}
  local first = math.max(1, #t._steps - 9)
  for i = first, #t._steps do lines[#lines + 1] = format("  %d. %s", i, t._steps[i]) end
  return concat(lines, "\n")
end

-- fail(message[, outcome]): the check fails with this feedback
function T:fail(message, outcome)
  error(failure(tostring(message) .. steps_text(self), outcome), 2)
end

function T:eq(got, want, what)
  if got ~= want then
    self:fail(format("%s: expected %s, got %s", what or "value", show(want), show(got)))
  end
  return got
end

function T:match(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    self:fail(format("%s: expected text matching %s, got %s", what or "output", show(pattern), show(s)))
  end
  return s
end

function T:truthy(v, what)
  if not v then self:fail(what or "expected a true value") end
  return v
end

-- same_bytes(got, want, what): byte for byte, or where they part
function T:same_bytes(got, want, what)
  if got == want then return true end
  what = what or "the bytes"
  local n = math.min(#got, #want)
  local i = 1
  -- compare in blocks first: a 16 MiB payload must not cost a loop per byte
  local block = 4096
  while i + block - 1 <= n and got:sub(i, i + block - 1) == want:sub(i, i + block - 1) do i = i + block end
  while i <= n and byte(got, i) == byte(want, i) do i = i + 1 end
  local diff
  if i <= n then
    diff = format("first difference at byte %d: expected 0x%02x, got 0x%02x", i - 1, byte(want, i), byte(got, i))
  elseif #got < #want then
    diff = format("first difference at byte %d: expected 0x%02x, got the end of the data", i - 1, byte(want, i))
  else
    diff = format("%d bytes more than expected after byte %d", #got - #want, #want)
  end
  self:fail(format("%s: expected %d bytes, got %d; %s", what, #want, #got, diff))
end

-- skip(reason): the check cannot run on this machine (no namespaces, no
-- TUN device...): it ends now, reported as skipped with the reason, not
-- as the student's failure
function T:skip(reason)
  error(failure("not run: " .. tostring(reason), "skipped"), 2)
end

-- link([opts]) -> a netem.link (docs/link.md) closed when the check ends;
-- where this machine cannot make one, the check is skipped, saying why
function T:link(opts)
  local netem_link = require "netem.link"
  local ok, l = pcall(netem_link.link, opts)
  if not ok then
    if type(l) == "table" and l.unavailable then self:skip(tostring(l)) end
    error(l, 2)
  end
  self._links[#self._links + 1] = l
  return l
end

-- score(k, n): partial credit, k of n (7 of 10 clients served)
function T:score(k, n)
  if type(k) ~= "number" or type(n) ~= "number" or n <= 0 or k < 0 or k > n then
    errors.argerror(1, "score", "0 <= k <= n, n > 0 expected")
  end
  self._k, self._n = k, n
end

function T:_partial()
  if self._n then return self._k, self._n end
  return 1, 1
end

function T:_log_text()
  return concat(self._log, "\n")
end

-- socket([family[, type]]) -> a socket where the submission's programs
-- are: in the check's network namespace when there is one. Close it.
function T:socket(family, kind)
  if self.ns then return self.ns:socket(family, kind) end
  return socket.socket(family, kind)
end

-- port() -> a port that was free on 127.0.0.1 (and ::1) just now
function T:port()
  local s <close> = self:socket(socket.AF_INET, socket.SOCK_STREAM)
  s:bind("127.0.0.1", 0)
  local _, port = s:getsockname()
  return port
end

-- connect(port[, host[, timeout]]) -> a connected socket, closed when the
-- check ends; a refusal is the submission's failure, worded as one
function T:connect(port, host, timeout)
  host = host or "127.0.0.1"
  local ok, s
  if self.ns then ok, s = pcall(self.ns.create_connection, self.ns, host, port, timeout or 5)
  else ok, s = pcall(socket.create_connection, host, port, timeout or 5) end
  if not ok then
    self:fail(format("could not connect to %s: %s", errors.is(s) and (s.address or host) or host, tostring(s)))
  end
  s:settimeout(timeout or 5)
  self._socks[#self._socks + 1] = s
  return s
end

-- wait_port(port[, timeout[, host]]): until the submission listens there
function T:wait_port(port, timeout, host)
  host = host or "127.0.0.1"
  timeout = timeout or 5
  local deadline = wirelab.now() + timeout
  while true do
    local s = self:socket(host:find(":", 1, true) and socket.AF_INET6 or socket.AF_INET)
    local rc = s:connect_ex(host, port)
    s:close()
    if rc == 0 then return true end
    local ended = self:_ended_early()
    if ended then
      error(failure(format("nothing listened on %s port %d: %s", host, port, ended.message), ended.outcome), 2)
    end
    if wirelab.now() >= deadline then
      error(failure(format("nothing listened on %s port %d within %g s (connect: %s)", host, port, timeout,
        rc), "did not listen"), 2)
    end
    wirelab.sleep(0.02)
  end
end

-- ---- the submission's programs -------------------------------------------------

local Program = {}
Program.__index = Program

-- a stream drained as it comes, so a program never blocks on a full pipe,
-- kept up to OUTPUT_CAP with a count of what was dropped; what was kept
-- is readable at once (before the task has run: nothing yet)
local function drain(prog, stream, key)
  local kept, n, dropped = {}, 0, 0
  prog[key] = function() return concat(kept), dropped end
  return wirelab.spawn(function()
    while true do
      local ok, d = pcall(stream.read1, stream, 65536)
      if not ok or d == "" then break end
      if n < M.OUTPUT_CAP then
        local room = M.OUTPUT_CAP - n
        if #d > room then dropped = dropped + #d - room; d = d:sub(1, room) end
        kept[#kept + 1] = d
        n = n + #d
      else
        dropped = dropped + #d
      end
    end
  end)
end

local function captured(prog, key)
  local text, dropped = prog[key]()
  if dropped > 0 then text = text .. format("\n[truncated %d bytes]", dropped) end
  return text
end

function Program:stdout() return captured(self, "_out") end
function Program:stderr() return captured(self, "_err") end
function Program:alive() return self.exited == nil end

-- fds() -> how many descriptors the program has open (/proc/PID/fd)
function Program:fds()
  local r = process.run{"ls", "-1", "/proc/" .. self.pid .. "/fd", timeout = 5}
  if r.code ~= 0 then return nil end
  local n = 0
  for _ in r.stdout:gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- kill([signal]): the program and its process group
function Program:kill(sig)
  if self.exited then return false end
  self._killed = true
  return pcall(self.p.kill, self.p, sig or 9)
end

-- wait([timeout]) -> the exit record {code=, signal=}, or nil on timeout
function Program:wait(timeout)
  if self.exited then return self.exited end
  if not self._done:wait(timeout) then return nil end
  return self.exited
end

-- How a program ended, in words, with the last lines of its stderr.
local function describe_exit(prog)
  local e = prog.exited
  local what, outcome
  if e.limit then
    what, outcome = "stopped at its " .. e.limit .. " limit" ..
      (e.message and (" (" .. e.message .. ")") or ""), "resource limit"
  elseif e.signal == 24 then
    what, outcome = "stopped at its CPU time limit (SIGXCPU)", "resource limit"
  elseif e.signal == 25 then
    what, outcome = "stopped at its file size limit (SIGXFSZ)", "resource limit"
  elseif e.signal then
    what, outcome = format("crashed: killed by signal %d (%s)", e.signal, SIGNALS[e.signal] or "?"), "crashed"
  elseif e.code ~= 0 then
    what, outcome = format("crashed: exited with status %d", e.code), "crashed"
  else
    what, outcome = "exited (status 0) while the check was running", "crashed"
  end
  for _, d in ipairs(prog._drains) do pcall(d.join, d, 0.5) end   -- its last words
  local err = prog:stderr()
  local tail = {}
  for line in err:gmatch("[^\n]*") do tail[#tail + 1] = line end
  while #tail > 0 and tail[#tail] == "" do tail[#tail] = nil end
  local last = {}
  for i = math.max(1, #tail - 4), #tail do last[#last + 1] = "    " .. tail[i] end
  local msg = "the program " .. what
  if #last > 0 then msg = msg .. "; the last lines of its stderr:\n" .. concat(last, "\n") end
  return {outcome = outcome, message = msg}
end

-- start_submission{args..., port=, host=, netns=, exits=, env=, stdin=}
-- -> program: the submission as its contract starts it, with "{port}" in
-- its command line the given port (or a free one, program.port) and
-- "{host}" opts.host (127.0.0.1); in the network namespace opts.netns (a
-- link's side: link.b.ns) instead of the check's; with exits, a client
-- that ends by itself when done (status 0 is not a crash)
function T:start_submission(opts)
  opts = opts or {}
  local sub = self.sub
  local start = sub.start
  local port = opts.port or self:port()
  local argv = {}
  local subst = {port = tostring(port), wirelab = sub.wirelab, host = opts.host or "127.0.0.1"}
  for _, a in ipairs(start.run) do
    argv[#argv + 1] = (a:gsub("{(%a+)}", subst))
  end
  for _, a in ipairs(opts) do argv[#argv + 1] = tostring(a) end
  local env = {PATH = "/usr/local/bin:/usr/bin:/bin", HOME = sub.dir, LANG = "C.UTF-8",
               PYTHONUNBUFFERED = "1", PORT = tostring(port)}
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local spec = {cwd = sub.dir, env = env, stdin = opts.stdin or false}
  for i, a in ipairs(argv) do spec[i] = a end
  M.apply_limits(spec, sub.limits, opts.netns or self.ns)
  local ok, p = pcall(process.spawn, spec)
  if not ok then self:fail("the program could not be started: " .. tostring(p), "crashed") end
  if p.sandbox then sub.sandbox = p.sandbox end
  local prog = setmetatable({p = p, pid = p.pid, port = port, argv = argv, exits = opts.exits == true,
                             _done = wirelab.event()}, Program)
  prog._drains = {drain(prog, p.stdout, "_out"), drain(prog, p.stderr, "_err")}
  prog._watch = wirelab.spawn(function()
    local wok, code, sig, res = pcall(p.wait, p)
    res = type(res) == "table" and res or {}
    prog.exited = wok and {code = code, signal = sig, limit = res.limit, status = res.status,
      exceeded = res.exceeded,
      message = res.message, killed = prog._killed} or {code = -1, killed = prog._killed}
    prog._done:set()
  end)
  self._procs[#self._procs + 1] = prog
  self:step(format("started %s", concat(argv, " ")))
  return prog
end

-- normalise(text): the check's ports as {port}, the scratch dir as ".",
-- so that grading the same submission twice gives the same words
function T:_normalise(text)
  if text == nil or text == "" then return text end
  local dir = self.sub.dir
  if dir then
    local i = 1
    while true do
      local a, b = text:find(dir, i, true)
      if not a then break end
      text = text:sub(1, a - 1) .. "." .. text:sub(b + 1)
      i = a + 1
    end
  end
  for _, prog in ipairs(self._procs) do
    text = text:gsub("%f[%d]" .. prog.port .. "%f[%D]", "{port}")
  end
  return text
end

-- Lets the loop report exits that have happened but not been seen yet
-- (the exit callback runs on the loop): a failure right after a crash must
-- be told as the crash.
function T:_settle()
  for _, prog in ipairs(self._procs) do
    if not prog.exited then prog._done:wait(0.1) end
  end
end

-- A limit a program reached that did not end it (a fork bomb whose forks
-- fail, output past the cap): known once it has been ended. -> a sentence
function T:_limits_reached()
  for _, prog in ipairs(self._procs) do
    local e = prog.exited
    if e and e.exceeded then
      local names = {}
      for k in pairs(e.exceeded) do
        if k ~= "output" then names[#names + 1] = k end
      end
      table.sort(names)
      if #names > 0 then
        return "the program reached its " .. table.concat(names, ", ") .. " limit" ..
          (e.message and (" (" .. e.message .. ")") or "")
      end
    end
  end
  return nil
end

-- A program that ended on its own while the check ran: how, or nil. A
-- client started with `exits` that ended with status 0 did its work.
function T:_ended_early()
  for _, prog in ipairs(self._procs) do
    local e = prog.exited
    if e and not e.killed and not (prog.exits and e.code == 0 and not e.signal and not e.limit) then
      return describe_exit(prog)
    end
  end
  return nil
end

-- Ends what the check started: sockets closed, every program killed with
-- its group and waited for, its output drained.
function T:_stop_all()
  for _, s in ipairs(self._socks) do pcall(s.close, s) end
  for _, prog in ipairs(self._procs) do
    if not prog.exited then
      prog._killed = true
      pcall(prog.p.kill, prog.p, 9)
    end
  end
  for _, prog in ipairs(self._procs) do
    prog._done:wait(5)
    for _, d in ipairs(prog._drains) do pcall(d.join, d, 2) end
    pcall(prog.p.close, prog.p)
  end
  if self.ns then pcall(self.ns.close, self.ns); self.ns = nil end
  for _, l in ipairs(self._links) do pcall(l.close, l) end
end

-- ---- limits and the build ------------------------------------------------------

-- Every program of a submission runs in process.spawn's sandbox
-- (docs/process.md) with the lab's limits; ns: the check's network
-- namespace, which the check's own sockets share (nil: loopback of the
-- host, where namespaces are not allowed).
function M.apply_limits(spec, limits, ns)
  spec.limits = limits
  spec.sandbox = {netns = ns or false, scratch = false}
end

-- what the sandbox of this machine offers, for the report
function M.sandbox_report()
  return process.isolation()
end

-- The check's network namespace, or nil (and why) where none can be made.
function M.netns()
  local iso = process.isolation()
  if not iso.netns then return nil end
  local ok, ns = pcall(process.netns)
  if ok then return ns end
  return nil
end

-- build(sub) -> {ok=, message=}: the start's build command in the scratch dir
function M.build(sub)
  local spec = {cwd = sub.dir, env = {PATH = "/usr/local/bin:/usr/bin:/bin", HOME = sub.dir, LANG = "C.UTF-8"},
                timeout = 120}
  for i, a in ipairs(sub.start.build) do spec[i] = a end
  M.apply_limits(spec, sub.limits)
  spec.limits = nil                 -- a build may take more than the program: the sandbox's defaults
  local ok, r = pcall(process.run, spec)
  if not ok then return {ok = false, message = tostring(r)} end
  if r.code == 0 and not r.timed_out then return {ok = true} end
  local out = (r.stdout .. r.stderr)
  if #out > 2000 then out = "..." .. out:sub(-2000) end
  return {ok = false, message = (r.timed_out and "timed out after 120 s" or ("status " .. tostring(r.code)))
    .. (out ~= "" and (":\n" .. out) or "")}
end

return M
