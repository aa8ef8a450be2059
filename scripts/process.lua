-- process: running programs under test (API.md section 6), each in its own
-- process group, read and waited for by tasks without blocking the loop.
local core = require "process.core"
local wirelab = require "wirelab"
local socket = require "socket"
local errors = require "wirelab.error"
local reader = require "wirelab.reader"

local M = {}

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

-- spawn{argv..., cwd=, env=, stdin=, stdout=, stderr=} -> p
-- stdin: true for p:write, a string to feed and close; stdout/stderr:
-- captured unless "inherit" or false.
function M.spawn(spec)
  if type(spec) ~= "table" or type(spec[1]) ~= "string" then
    error("bad argument #1 to 'spawn' (table with the program and its arguments expected)", 2)
  end
  if spec.limits ~= nil then
    error("process limits arrive with the grading driver; spawn without 'limits'", 2)
  end
  local argv = {}
  for i = 1, #spec do argv[i] = tostring(spec[i]) end
  local feed = type(spec.stdin) == "string" and spec.stdin
  local p = core.spawn(argv, {
    cwd = spec.cwd, env = env_list(spec.env), stdin = spec.stdin ~= nil and spec.stdin ~= false,
    stdout = spec.stdout == nil and true or spec.stdout,
    stderr = spec.stderr == nil and true or spec.stderr,
  })
  local obj = setmetatable({_p = p, pid = p.pid,
    stdout = reader.new(pipe_source, {p = p, i = 1}),
    stderr = reader.new(pipe_source, {p = p, i = 2})}, M.Process)
  if feed then
    wirelab.spawn(function()
      pcall(p.write, p, feed)
      p:close_stdin()
    end)
  end
  return obj
end

local Process = {}
Process.__index = Process
M.Process = Process
-- wait([timeout]) -> code, signal; ETIMEDOUT raised when it runs longer
function Process:wait(timeout) return self._p:wait(timeout) end
function Process:kill(sig) return self._p:kill(sig) end
function Process:write(data) return self._p:write(data) end
function Process:close_stdin() return self._p:close_stdin() end
function Process:close() return self._p:close() end
Process.__close = Process.close

-- run{argv..., timeout=, ...} -> {code=, signal=, stdout=, stderr=, timed_out=}
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
  local res = {code = code, signal = sig, stdout = out:join(), stderr = err:join(),
               timed_out = timed_out}
  p:close()
  return res
end

-- wait_port(host, port[, timeout]): until a TCP connect succeeds
function M.wait_port(host, port, timeout)
  local deadline = wirelab.now() + (timeout or 10)
  while true do
    local s = socket.socket(host:find(":", 1, true) and socket.AF_INET6 or socket.AF_INET)
    local rc = s:connect_ex(host, port)
    s:close()
    if rc == 0 then return true end
    if wirelab.now() >= deadline then errors.raise("wait_port", "ETIMEDOUT", host, port) end
    wirelab.sleep(0.02)
  end
end

return M
