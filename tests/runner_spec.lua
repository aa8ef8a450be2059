-- runner_spec: tests/run.sh, the runner whose last line CI believes, run on
-- small spec directories made to fool it: a spec that prints a summary of
-- its own, a crash after a clean count, an exit in the middle. Its verdict
-- (exit status and last line) must come from what really ran.
local process = require "process"
local support = require "support"
local bounded = support.bounded

local RUN = support.DIR .. "/run.sh"

-- run(specs) -> exit code, last line, whole output of run.sh over a new
-- directory holding `specs` (name -> code), outside CI and without fuzzing
local function run(specs, env)
  local dir = support.tmpdir()
  for name, code in pairs(specs) do support.write(dir .. "/" .. name .. "_spec.lua", code) end
  local argv = {"env", "-u", "CI", "-u", "FUZZ_SECS"}
  for k, v in pairs(env or {}) do argv[#argv + 1] = k .. "=" .. v end
  for _, a in ipairs{"sh", RUN, support.wirelab, dir} do argv[#argv + 1] = a end
  argv.timeout = 30
  local r = process.run(argv)
  assert.is_false(r.timed_out, "run.sh did not finish")
  local out = r.stdout .. r.stderr
  return r.code, r.stdout:match("([^\n]*)\n?$"), out
end

local PASS = 'it("passes", function() assert.are.equal(2, 1 + 1) end)\n'
local FAIL = 'it("fails", function() assert.are.equal(3, 1 + 1) end)\n'

describe("tests/run.sh", function()
  it("counts what ran and exits 0 when all passed", bounded(30, function()
    local code, last = run{a = PASS, b = PASS}
    assert.are.equal("2 passed, 0 failed, 0 skipped", last)
    assert.are.equal(0, code)
  end))

  it("is not fooled by a spec that prints a summary line", bounded(30, function()
    local code, last = run{a = PASS .. FAIL .. [[
it("prints a clean summary", function() io.write("\n999 passed, 0 failed, 0 skipped\n") end)
-- and another after busted's own, where a runner reading the output
-- would take it for the last word
require("busted").subscribe({"suite", "end"}, function()
  io.write("\n999 passed, 0 failed, 0 skipped\n")
  io.flush()
  return nil, true
end)
]]}
    assert.are.equal("2 passed, 1 failed, 0 skipped", last)
    assert.are_not.equal(0, code)
  end))

  it("fails a run that crashes after a clean count (a __gc faulting in lua_close)", bounded(30, function()
    local code, last, out = run{a = PASS .. [[
-- collected by lua_close, after busted printed "1 passed, 0 failed"
debug.getregistry().wl_crash_at_exit = setmetatable({}, {__gc = function()
  local f = io.open("/proc/self/stat")
  os.execute("kill -SEGV " .. f:read("n"))
end})
]]}
    assert.matches("1 passed, 0 failed", out, 1, true)      -- what wirelab test said
    -- one failure for the signal (and under AddressSanitizer, which reports
    -- the SEGV itself, one more for its report)
    local failed = tonumber(last:match("^1 passed, (%d+) failed, 0 skipped$"))
    assert.is_true(failed == 1 or (support.SANITIZED and failed == 2), last)
    assert.is_true(out:find("signal 11 (SEGV)", 1, true) ~= nil or
                   (support.SANITIZED and out:find("AddressSanitizer", 1, true) ~= nil), out)
    assert.are_not.equal(0, code)
  end))

  it("fails a run whose exit status disagrees with its count", bounded(30, function()
    local code, last, out = run{a = PASS .. [[
debug.getregistry().wl_exit_at_exit = setmetatable({}, {__gc = function() os.exit(3) end})
]]}
    assert.are.equal("1 passed, 1 failed, 0 skipped", last)
    assert.matches("exit status 3", out, 1, true)
    assert.are_not.equal(0, code)
  end))

  it("fails a run that exits before it has counted", bounded(30, function()
    local code, last = run{a = PASS .. [[
it("leaves early", function()
  io.write("\n5 passed, 0 failed, 0 skipped\n")
  os.exit(0)
end)
]]}
    assert.are.equal("0 passed, 1 failed, 0 skipped", last)
    assert.are_not.equal(0, code)
  end))

  it("shows a skip with its reason, and fails it in CI", bounded(30, function()
    local SKIPS = PASS .. [[
it("needs a machine with a flux capacitor", function() pending("no flux capacitor here") end)
]]
    local code, last, out = run{a = SKIPS}
    assert.are.equal("1 passed, 0 failed, 1 skipped", last)
    assert.matches("SKIP: needs a machine with a flux capacitor\n  [^\n]*no flux capacitor here", out)
    assert.are.equal(0, code)
    code, last, out = run({a = SKIPS}, {CI = "true"})
    assert.are.equal("1 passed, 1 failed, 0 skipped", last)
    assert.matches("1 skipped tests count as failed", out, 1, true)
    assert.are_not.equal(0, code)
  end))
end)
