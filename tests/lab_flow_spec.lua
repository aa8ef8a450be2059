-- lab_flow_spec: the flow-control-observer lab, graded as an instructor
-- grades it (`wirelab grade`, a subprocess): both reference senders get
-- full marks, and each broken sender under tests/labs/flow-control-observer
-- fails exactly the checks its mistake must fail, with the outcome a
-- student would be shown. The lab's checks compare with the kernel's
-- figures, so this also proves them stable from one grading to the next.
local process = require "process"

local support = require "support"
local LAB = "labs/flow-control-observer"
local BROKEN = "tests/labs/flow-control-observer"

-- name -> score, {check = outcome...} of every check that did not pass
-- and was not skipped
local EXPECTED = {
  ["wrong-port"] = {0, {connects = "crashed"}},
  ["blocks-forever"] = {4, {["reports-block"] = "wrong output"}},
  ["textbook"] = {10, {["matches-kernel"] = "wrong output", ["grows-with-rcvbuf"] = "wrong output"}},
  ["ignores-sndbuf"] = {8, {["fills-both-buffers"] = "wrong output", ["grows-with-rcvbuf"] = "wrong output",
                            paced = "wrong output"}},
  ["first-eagain"] = {13, {["grows-with-rcvbuf"] = "wrong output"}},
  ["eagain-fatal"] = {13, {["resumes-after-eagain"] = "crashed"}},
  ["cpu-clock"] = {12, {paced = "wrong output"}},
  ["counts-chunks"] = {5, {["matches-kernel"] = "wrong output", ["fills-both-buffers"] = "wrong output",
                           ["resumes-after-eagain"] = "wrong output", paced = "wrong output"}},
}

describe("the flow-control-observer lab", function()
  it("gives the references 15/15 and each broken sender the failures of its mistake",
     support.bounded(400, function()
    if not support.find("python3") then return pending(support.skip("no python3")) end
    local out = support.tmpdir()
    local pysol = support.tmpdir()
    assert.are.equal(0, process.run{"cp", LAB .. "/solution/sender.py", pysol .. "/", timeout = 5}.code)
    local args = {support.wirelab, "grade", LAB, "--format", "json", "--output", out,
                  "--jobs", support.SANITIZED and "2" or "3", "--seed", "7",
                  LAB .. "/solution", pysol, timeout = 380}
    for name in pairs(EXPECTED) do args[#args + 1] = BROKEN .. "/" .. name end
    local r = process.run(args)
    assert.is_false(r.timed_out, "wirelab grade did not finish")
    assert.are.equal(0, r.code, r.stderr)
    -- each report, read by Python's json: name score max [check outcome]...
    local summary = process.run{"python3", "-c", [[
import json, os, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    bad = " ".join("%s=%s" % (c["name"], c["outcome"].replace(" ", "_"))
                   for c in r["checks"] if c["status"] != "passed" and c["outcome"] != "skipped")
    print(f[:-5], r["score"], r["max_score"], bad)
]], out, timeout = 20}
    assert.are.equal(0, summary.code, summary.stderr)
    local got = {}
    for line in summary.stdout:gmatch("[^\n]+") do
      local name, score, max, bad = line:match("^(%S+) (%S+) (%S+) ?(.*)$")
      local failed = {}
      for check, outcome in bad:gmatch("(%S+)=(%S+)") do failed[check] = outcome:gsub("_", " ") end
      got[name] = {tonumber(score), tonumber(max), failed}
    end
    local pyname = pysol:match("([^/]+)$")
    assert.are.same({15, 15, {}}, got.solution, "the Lua reference")
    assert.are.same({15, 15, {}}, got[pyname], "the Python reference")
    for name, want in pairs(EXPECTED) do
      assert.is_not_nil(got[name], name .. " has no report")
      assert.are.same(want[2], got[name][3], name .. ": the checks that failed")
      assert.are.equal(want[1], got[name][1], name .. ": the score")
    end
  end))
end)
