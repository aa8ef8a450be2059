-- tests/reliability/support: what the reliability specs share: cleanup
-- that survives a failed assertion, the binary under test, and a look at
-- another process through /proc. Loaded with require from the repository
-- root (where `make test` runs).
local wirelab = require "wirelab"
local process = require "process"

local M = {}

-- Under AddressSanitizer freed memory sits in quarantine and everything
-- runs slower: RSS and CPU bounds apply to the plain build only.
M.SANITIZED = os.getenv("ASAN_OPTIONS") ~= nil

-- note(fmt, ...): with WIRELAB_TEST_VERBOSE=1, what a test measured
function M.note(fmt, ...)
  if os.getenv("WIRELAB_TEST_VERBOSE") then
    io.stderr:write("    ", fmt:format(...), "\n")
    io.stderr:flush()
  end
end

-- What a test opened is closed afterwards, even when it failed half-way,
-- so a failure leaves no server, helper or socket behind for the next spec.
local cleanup = {}
function M.defer(fn) cleanup[#cleanup + 1] = fn end

-- bounded(seconds, fn): a test body under a time bound, its deferred
-- cleanups run in reverse, and no handle left open
function M.bounded(seconds, fn)
  return function()
    collectgarbage()
    local before = wirelab.handles()
    local ok, err = pcall(wirelab.timeout, seconds, fn)
    local list = cleanup
    cleanup = {}
    for i = #list, 1, -1 do pcall(list[i]) end
    collectgarbage()
    if not ok then error(err, 0) end
    local after = wirelab.handles()
    if after ~= before then      -- (busted's assert lives in the specs)
      error(("open handles leaked: %d before, %d after"):format(before, after), 0)
    end
  end
end

-- the absolute path of the binary under test ($WIRELAB, else ./wirelab)
local WIRELAB
function M.wirelab_path()
  if WIRELAB then return WIRELAB end
  local r = process.run{"readlink", "-f", os.getenv("WIRELAB") or "./wirelab", timeout = 5}
  WIRELAB = r.stdout:match("^(.-)%s*$")
  return WIRELAB
end

-- stop(p): kills a process the spec started, by its handle (its group)
function M.stop(p)
  pcall(p.kill, p, 9)
  pcall(p.wait, p, 5)
  pcall(p.close, p)
end

-- find(cmd) -> its path, or nil when the machine has no such command
function M.find(cmd)
  local r = process.run{"sh", "-c", "command -v " .. cmd, timeout = 5}
  return r.code == 0 and r.stdout:match("^(%S+)") or nil
end

-- proc_status(pid, field) -> a field of /proc/PID/status ("self" too)
function M.proc_status(pid, field)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local text = f:read("a")
  f:close()
  return text:match(field .. ":%s*(%S+)")
end

function M.rss_kib(pid) return tonumber(M.proc_status(pid, "VmRSS")) end

-- nfds(pid) -> how many fds the process has open
function M.nfds(pid)
  local r = process.run{"ls", "/proc/" .. pid .. "/fd", timeout = 5}
  local n = 0
  for _ in r.stdout:gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- echo_server(queue) -> the code of a socketserver echo server, as a
-- student writes it, that prints its port and serves until killed
function M.echo_server(queue)
  return ([[
local socketserver = require "socketserver"
local Echo = socketserver.StreamRequestHandler:extend()
function Echo:handle()
  for line in self.rfile:lines("L") do self.wfile:write(line) end
end
local S = socketserver.ThreadingTCPServer:extend({request_queue_size = %d, daemon_threads = true})
local srv = S({"127.0.0.1", 0}, Echo)
print(srv.server_address[2])
io.stdout:flush()
srv:serve_forever()
]]):format(queue)
end

return M
