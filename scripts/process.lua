-- process: running programs under test (API.md section 6), each in its own
-- process group, read and waited for by tasks without blocking the loop.
-- With limits or a sandbox (docs/process.md), the program runs under
-- wirelab's supervisor (runtime/supervisor.c): rlimits, cgroups, another
-- uid, a loopback-only network namespace, read-only mounts, a clean
-- environment, and nothing of it left once it has ended.
local core = require "process.core"
local wirelab = require "wirelab"
local socket = require "socket"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"

local type, tostring, tonumber, pairs, ipairs = type, tostring, tonumber, pairs, ipairs
local math_type, ceil, floor = math.type, math.ceil, math.floor

local M = {}

local KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024

-- What a sandbox gets when its limits do not say (docs/process.md).
local SANDBOX_LIMITS = {memory = 512 * MiB, nproc = 128, fsize = 16 * MiB, nofile = 1024}
local OUTPUT_CAP = 1 * MiB
local CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"

-- p.stdout and p.stderr are the one reader (wirelab.reader) over the
-- pipe: read(n) waits for n bytes or the end, read1(n) takes what came.
local function pipe_source(ctx) return ctx.p:_read(ctx.i) end

local function env_list(env)
  if env == nil then return nil end
  local list = {}
  for k, v in pairs(env) do
    if type(k) == "number" then list[#list + 1] = v else list[#list + 1] = k .. "=" .. tostring(v) end
  end
  return list
end

-- The checks below raise this, caught by spawn, which raises Lua's
-- argument error at its caller.
local BadArg = {}
local function spawn_error(msg) error(setmetatable({msg = msg}, BadArg), 0) end

-- ---- limits ----------------------------------------------------------------

local UNITS = {b = 1, byte = 1, bytes = 1, k = KiB, kb = KiB, kib = KiB, m = MiB, mb = MiB,
               mib = MiB, g = GiB, gb = GiB, gib = GiB}

-- A size: a number of MiB (as lab files and --mem write it: memory = 256),
-- or a string with its unit, "512k", "16 MiB", "1G", "100B" (no unit: MiB).
local function size_of(name, v)
  if type(v) == "number" and v > 0 and v == v and v < math.huge then
    local n = floor(v * MiB)
    if n > 0 then return n end
  end
  if type(v) == "string" then
    local n, unit = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
    local mult = unit and (unit == "" and MiB or UNITS[unit:lower()])
    if n and mult and floor(tonumber(n) * mult) > 0 then return floor(tonumber(n) * mult) end
  end
  spawn_error(("limits.%s: a number of MiB or a string like '512k' or '1G' expected, got %s")
    :format(name, tostring(v)))
end

local function secs_of(name, v)
  if type(v) == "number" and v > 0 and v == v then return v end
  spawn_error(("limits.%s: a positive number of seconds expected, got %s"):format(name, tostring(v)))
end

local function count_of(name, v)
  if math_type(v) == "integer" and v > 0 then return v end
  spawn_error(("limits.%s: a positive integer expected, got %s"):format(name, tostring(v)))
end

local LIMIT_KINDS = {cpu = secs_of, wall = secs_of, memory = size_of, output = size_of,
                     fsize = size_of, nofile = count_of, nproc = count_of}

-- limits checked, with the sandbox's defaults where it is on
local function check_limits(given, sandboxed)
  local lim = {}
  if given ~= nil and type(given) ~= "table" then spawn_error("limits: a table expected") end
  for k, v in pairs(given or {}) do
    local kind = LIMIT_KINDS[k]
    if not kind then spawn_error("limits: unknown limit '" .. tostring(k) .. "'") end
    if v ~= false then lim[k] = kind(k, v) end
  end
  if sandboxed then
    for k, v in pairs(SANDBOX_LIMITS) do
      if lim[k] == nil and (given == nil or given[k] ~= false) then lim[k] = v end
    end
  end
  if lim.output == nil and (given == nil or given.output ~= false) then lim.output = OUTPUT_CAP end
  return lim
end

-- ---- the sandbox -------------------------------------------------------------

local cgroups              -- found once: core._cgroups()

-- Root of a user namespace (`unshare -r`) is not root of the machine: it
-- may not setgroups, and only the uids mapped into it exist there, so
-- the switch to nobody cannot be made. -> nil, or why (found once).
local userns_why
local function userns_root()
  if userns_why == nil then
    userns_why = false
    local f = io.open("/proc/self/setgroups")
    local sg = f and f:read("l")
    if f then f:close() end
    if sg == "deny" then
      userns_why = "in a user namespace (unshare -r), where setgroups is denied: the program runs as uid 0 of it"
    end
  end
  return userns_why or nil
end

-- The supervisor's options (runtime/supervisor.c) for spec, and what
-- the sandbox table says before the supervisor adds its part.
local function supervise(spec, lim, sb)
  local sup, info = {}, {unavailable = {}}
  for _, k in ipairs({"memory", "fsize", "nofile", "nproc", "wall"}) do
    if lim[k] then sup[#sup + 1] = k .. "=" .. tostring(lim[k]) end
  end
  -- RLIMIT_CPU counts whole seconds: its first SIGXCPU comes at the next
  if lim.cpu then sup[#sup + 1] = "cpu=" .. tostring(ceil(lim.cpu)) end
  local root = core._geteuid() == 0
  if sb.cgroup ~= false then
    cgroups = cgroups or core._cgroups()
    sup[#sup + 1] = "cgroup=1"
    if cgroups.v2 ~= "" then sup[#sup + 1] = "cg2=" .. cgroups.v2 end
    if cgroups.mem ~= "" then sup[#sup + 1] = "cgmem=" .. cgroups.mem end
    if cgroups.pids ~= "" then sup[#sup + 1] = "cgpids=" .. cgroups.pids end
    if cgroups.v2_memory then sup[#sup + 1] = "cg2mem=1" end
    if cgroups.v2_pids then sup[#sup + 1] = "cg2pids=1" end
    if cgroups.why ~= "" then sup[#sup + 1] = "cgwhy=" .. cgroups.why end
  end
  if sb.on then
    if sb.uid == false then
      info.unavailable.uid = "not asked (sandbox.uid = false)"
    elseif root and userns_root() then
      info.unavailable.uid = userns_root()
    elseif root then
      local uid, gid = core._getpwnam("nobody")
      uid = sb.uid or uid or 65534
      gid = sb.gid or (sb.uid and uid) or gid or 65534
      sup[#sup + 1] = "uid=" .. uid
      sup[#sup + 1] = "gid=" .. gid
    else
      info.unavailable.uid = ("wirelab is not root: the program runs as uid %d"):format(core._geteuid())
    end
    if sb.scratch ~= false then
      sup[#sup + 1] = "scratch=" .. (sb.scratch_dir or os.getenv("TMPDIR") or "/tmp")
      sup[#sup + 1] = "home=1"
      if spec.cwd == nil then sup[#sup + 1] = "chdir=1" end
    end
    if sb.readonly ~= false then
      if root then sup[#sup + 1] = "readonly=1"
      else info.unavailable.readonly = "mounting needs root (CAP_SYS_ADMIN)" end
    end
  end
  return sup, info
end

-- The network namespace of a sandbox: the one given, a new one, or none
-- (and why). A new one is the process's own and closed with it.
local function sandbox_netns(sb, info)
  if not sb.on or sb.netns == false then return nil end
  if type(sb.netns) == "userdata" then info.netns_given = true; return sb.netns end
  local ok, ns = pcall(M.netns)
  if ok then return ns, true end
  info.unavailable.netns = tostring(ns)
  return nil
end

-- The environment of a sandbox: only the documented variables (HOME and
-- TMPDIR are the scratch directory, set by the supervisor), then spec.env.
local function clean_env(spec)
  local env = {PATH = CLEAN_PATH, LANG = "C.UTF-8", HOME = spec.cwd or "/"}
  for k, v in pairs(spec.env or {}) do
    if type(k) == "number" then
      local name, value = tostring(v):match("^([^=]+)=(.*)$")
      if name then env[name] = value end
    else
      env[k] = tostring(v)
    end
  end
  return env_list(env)
end

-- The supervisor's report: "layer", "unavailable", "end" and "note" lines.
local function parse_report(text)
  local r = {layer = {}, unavailable = {}, ["end"] = {}, note = {}}
  for line in text:gmatch("[^\n]+") do
    local kind, name, value = line:match("^(%S+)%s+(%S+)%s*(.*)$")
    if kind == "layer" or kind == "end" then
      if name == "cgdir" then
        r.layer.cgdirs = r.layer.cgdirs or {}
        r.layer.cgdirs[#r.layer.cgdirs + 1] = value
      else
        r[kind][name] = value == "" and true or tonumber(value) or value
      end
    elseif kind == "unavailable" then
      r.unavailable[name] = value
    elseif kind == "note" then
      r.note[#r.note + 1] = name .. (value ~= "" and " " .. value or "")
    end
  end
  return r
end

-- p.sandbox: which layers are in force (docs/process.md, "The sandbox").
local function sandbox_table(report, info, netns, env_kind)
  local layer = report.layer
  local t = {
    supervised = true, subreaper = layer.subreaper == true,
    no_new_privs = layer.no_new_privs == true, kill = layer.kill,
    cgroup = layer.cgroup, cgroup_dirs = layer.cgdirs, memory = layer.memory, pids = layer.pids,
    netns = netns ~= nil, readonly = layer.readonly == true,
    scratch = type(layer.scratch) == "string" and layer.scratch or nil,
    env = env_kind, fds = "0-2", unavailable = {},
  }
  if type(layer.uid) == "string" then
    local uid, gid = layer.uid:match("^(%d+) (%d+)$")
    t.uid, t.gid = tonumber(uid), tonumber(gid)
  elseif math_type(layer.uid) == "integer" then
    t.uid, t.gid = layer.uid, layer.uid
  end
  for k, v in pairs(info.unavailable) do t.unavailable[k] = v end
  for k, v in pairs(report.unavailable) do t.unavailable[k] = v end
  return t
end

-- ---- spawn ---------------------------------------------------------------------

local Process = {}
Process.__index = Process
M.Process = Process

-- the processes spawned, for wirelab.status(): weak, a forgotten one goes
local processes = setmetatable({}, {__mode = "k"})
M._processes = processes

-- spawn{argv..., cwd=, env=, stdin=, stdout=, stderr=, limits=, sandbox=} -> p
-- stdin: true for p:write, a string to feed and close; stdout/stderr:
-- captured unless "inherit" or false.
function M.spawn(spec)
  if type(spec) ~= "table" or type(spec[1]) ~= "string" then
    error("bad argument #1 to 'spawn' (table with the program and its arguments expected)", 2)
  end
  local sb = spec.sandbox
  if sb ~= nil and type(sb) ~= "boolean" and type(sb) ~= "table" then
    error("bad argument #1 to 'spawn' (sandbox: true, false or a table expected)", 2)
  end
  sb = type(sb) == "table" and setmetatable({on = true}, {__index = sb}) or {on = sb == true}
  local supervised = spec.limits ~= nil or sb.on
  local argv = {}
  for i = 1, #spec do argv[i] = tostring(spec[i]) end
  local feed = type(spec.stdin) == "string" and spec.stdin
  local opts = {
    cwd = spec.cwd, env = env_list(spec.env), stdin = spec.stdin ~= nil and spec.stdin ~= false,
    stdout = spec.stdout == nil and true or spec.stdout,
    stderr = spec.stderr == nil and true or spec.stderr,
  }
  local lim, info, ns, own_ns, env_kind
  if supervised then
    local ok, l = pcall(check_limits, spec.limits, sb.on)
    if not ok then
      if getmetatable(l) == BadArg then error("bad argument #1 to 'spawn' (" .. l.msg .. ")", 2) end
      error(l, 0)
    end
    lim = l
    opts.supervise, info = supervise(spec, lim, sb)
    ns, own_ns = sandbox_netns(sb, info)
    opts.netns = ns
    -- the cap is what keeps the reading going: past it output is dropped
    opts.output = lim.output or (1 << 62)
    env_kind = sb.on and "clean" or spec.env and "given" or "inherited"
    if sb.on then opts.env = clean_env(spec) end
  end
  local p, failed, stage, code = core.spawn(argv, opts)
  if failed == nil and stage then
    p:close()
    if own_ns then ns:close() end
    errors.raise("spawn", code, argv[1], nil, stage ~= "exec" and "in the sandbox, at " .. stage or nil)
  end
  local obj = setmetatable({_p = p, pid = p.pid, _argv = argv,
    stdout = reader.new(pipe_source, {p = p, i = 1}),
    stderr = reader.new(pipe_source, {p = p, i = 2})}, Process)
  if supervised then
    local report = parse_report(p:_report())
    obj.sandbox = sandbox_table(report, info, ns, env_kind)
    obj.limits, obj.netns, obj._own_ns = lim, ns, own_ns
  end
  processes[obj] = true
  if feed then
    wirelab.spawn(function()
      pcall(p.write, p, feed)
      p:close_stdin()
    end)
  end
  return obj
end

-- ---- how it ended ------------------------------------------------------------------

local SIGNALS = {"SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
  "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
  "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
  "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"}
M.SIGNALS = SIGNALS

local function size_text(n)
  if n >= GiB and n % GiB == 0 then return ("%d GiB"):format(n // GiB) end
  if n >= MiB and n % MiB == 0 then return ("%d MiB"):format(n // MiB) end
  if n >= MiB then return ("%.1f MiB"):format(n / MiB) end
  if n >= KiB and n % KiB == 0 then return ("%d KiB"):format(n // KiB) end
  return ("%d bytes"):format(n)
end

local function secs_text(s)
  return (math_type(s) == "integer" or s == floor(s)) and ("%d s"):format(floor(s)) or ("%g s"):format(s)
end

-- The sentence a grader shows: isolate's statuses in words.
local function describe(r, lim)
  local msg
  if r.status == "XX" then
    msg = "sandbox error: " .. (r.error or "the supervisor ended without a report")
  elseif r.limit == "wall" then
    msg = ("timed out after %s (wall clock)"):format(secs_text(r.timeout or lim.wall))
  elseif r.limit == "cpu" then
    -- no cpu limit of ours: the program's own (wirelab --sandbox --cpu)
    msg = lim.cpu and ("CPU time limit exceeded (%s)"):format(secs_text(ceil(lim.cpu)))
          or "CPU time limit exceeded"
  elseif r.limit == "memory" then
    msg = ("killed: memory limit %s"):format(size_text(lim.memory))
  elseif r.limit == "fsize" then
    msg = ("killed: file size limit %s (SIGXFSZ)"):format(size_text(lim.fsize))
  elseif r.signal then
    msg = ("killed by signal %d (%s)"):format(r.signal, SIGNALS[r.signal] or "?")
  else
    msg = ("exited with status %d"):format(r.code)
  end
  local also = {}
  local ex = r.exceeded or {}
  if ex.nproc and r.limit ~= "nproc" then also[#also + 1] = ("process limit %d reached"):format(lim.nproc) end
  if ex.memory and r.limit ~= "memory" then
    also[#also + 1] = ("memory limit %s reached"):format(size_text(lim.memory))
  end
  if ex.output then also[#also + 1] = ("output cut at %s"):format(size_text(lim.output)) end
  if #also > 0 then msg = msg .. " (" .. table.concat(also, "; ") .. ")" end
  return msg
end

local function status_of(r)
  if r.status then return r.status end
  if r.limit == "wall" or r.limit == "cpu" then return "TO" end
  if r.signal then return "SG" end
  if r.code ~= 0 then return "RE" end
  return "OK"
end

-- The result of wait(): {code=, signal=, status=, limit=, message=, ...}
function Process:_result(code, sig)
  if self._res then return self._res end
  local r = {code = code, signal = sig}
  if self.sandbox then
    local report = parse_report(self._p:_report())
    local e = report["end"]
    if e.code == nil and e.signal == nil then
      r.status = "XX"
      r.error = ("the supervisor ended without a report (%s)"):format(
        sig and ("signal " .. sig) or ("status " .. tostring(code)))
    end
    r.limit = e.limit
    r.cpu_time, r.wall_time = e.cpu, e.wall
    r.max_rss = e.max_rss and e.max_rss * KiB
    r.memory_peak = e.memory_peak
    r.exceeded = {}
    if r.limit then r.exceeded[r.limit] = true end
    if (e.pids_max or 0) > 0 then r.exceeded.nproc = true end
    if (e.oom_kills or 0) > 0 then r.exceeded.memory = true end
    local out, err = self._p:_dropped(1), self._p:_dropped(2)
    r.truncated = {stdout = out, stderr = err}
    if out > 0 or err > 0 then r.exceeded.output = true end
    r.notes = #report.note > 0 and report.note or nil
    r.sandbox = self.sandbox
  end
  r.status = status_of(r)
  r.message = describe(r, self.limits or {})
  self._res = r
  return r
end

-- wait([timeout]) -> code, signal, result; ETIMEDOUT raised when it runs longer
function Process:wait(timeout)
  local code, sig = self._p:wait(timeout)
  return code, sig, self:_result(code, sig)
end
function Process:kill(sig) return self._p:kill(sig) end
function Process:write(data) return self._p:write(data) end
function Process:close_stdin() return self._p:close_stdin() end
function Process:close()
  self._p:close()
  if self._own_ns then self.netns:close() end
end
Process.__close = Process.close

-- state() -> "running" | "exited" | "closed", and how it ended once waited for
function Process:state()
  local ended = self._res and self._res.message
  if self._p.pid == nil then return "closed", ended end
  if self._p.exited then return "exited", ended end
  return "running"
end

-- <process 1234 ./server running>, <process 1234 ./server exited with status 0>
function Process:__tostring()
  local state, ended = self:state()
  local cmd = table.concat(self._argv or {}, " ")
  if #cmd > 60 then cmd = cmd:sub(1, 57) .. "..." end
  if state == "exited" and ended then state = ended
  elseif ended then state = state .. ", " .. ended end
  return ("<process %s %s %s>"):format(tostring(self.pid), cmd, state)
end

-- Sockets that reach the program: made in its network namespace when it
-- has one, plain ones otherwise -- the same lab code works either way.
function Process:socket(family, kind)
  if self.netns then return self.netns:socket(family, kind) end
  return socket.socket(family, kind)
end

function Process:create_connection(host, port, timeout)
  if self.netns then return self.netns:create_connection(host, port, timeout) end
  return socket.create_connection(host, port, timeout)
end

function Process:wait_port(host, port, timeout)
  if self.netns then return self.netns:wait_port(host, port, timeout) end
  return M.wait_port(host, port, timeout)
end

-- run{argv..., timeout=, ...} -> {code=, signal=, stdout=, stderr=, timed_out=, status=, ...}
function M.run(spec)
  local p = M.spawn(spec)
  local out = wirelab.spawn(function() return p.stdout:read("a") end)
  local err = wirelab.spawn(function() return p.stderr:read("a") end)
  local ok, code, sig = pcall(p.wait, p, spec.timeout)
  local timed_out = false
  if not ok then
    if not errors.is(code, "ETIMEDOUT") then p:kill(9); p:close(); error(code, 0) end
    timed_out = true
    p:kill(9)
    code, sig = p:wait()
  end
  local res = {}
  for k, v in pairs(p:_result(code, sig)) do res[k] = v end
  res.stdout, res.stderr, res.timed_out = out:join(), err:join(), timed_out
  if timed_out and res.limit == nil then
    res.limit, res.status, res.timeout = "wall", "TO", spec.timeout
    res.message = describe(res, p.limits or {})
  end
  p:close()
  return res
end

-- wait_port(host, port[, timeout]): until a TCP connect succeeds
local function wait_port_with(new_socket, host, port, timeout)
  local deadline = wirelab.now() + (timeout or 10)
  while true do
    local s = new_socket(host:find(":", 1, true) and socket.AF_INET6 or socket.AF_INET)
    local rc = s:connect_ex(host, port)
    s:close()
    if rc == 0 then return true end
    if wirelab.now() >= deadline then errors.raise("wait_port", "ETIMEDOUT", host, port) end
    wirelab.sleep(0.02)
  end
end

function M.wait_port(host, port, timeout) return wait_port_with(socket.socket, host, port, timeout) end

-- ---- network namespaces ----------------------------------------------------------

-- netns() -> ns: a network namespace with only loopback, for a sandbox
-- and the grader's sockets to it (bindings/sandbox.c).
local NetNS = core._netns_mt.__index
M.NetNS = NetNS
M.netns = core.netns

-- ns:socket([family[, type]]) -> s: a socket object made in the namespace
function NetNS:socket(family, kind)
  family, kind = family or socket.AF_INET, kind or socket.SOCK_STREAM
  local fd = self:_socket(family, kind)
  local ok, s = pcall(socket.fromfd, fd, family, kind)
  core._closefd(fd)
  if not ok then error(s, 2) end
  local t = socket.getdefaulttimeout()
  if t then s:settimeout(t) end
  return s
end

function NetNS:create_connection(host, port, timeout, source_host, source_port)
  return socket._connect_with(function(f, k) return self:socket(f, k) end,
    host, port, timeout, source_host, source_port)
end

function NetNS:create_server(host, port, opts)
  return socket._serve_with(function(f, k) return self:socket(f, k) end, host, port, opts)
end

function NetNS:wait_port(host, port, timeout)
  return wait_port_with(function(f, k) return self:socket(f, k) end, host, port, timeout)
end

-- isolation() -> the sandbox table a sandboxed `true` gets here: what
-- this machine offers, and why not where it does not (cached).
local isolation
function M.isolation()
  if not isolation then
    local r = M.run{"true", sandbox = true, timeout = 10}
    isolation = r.sandbox
  end
  return isolation
end

return M
