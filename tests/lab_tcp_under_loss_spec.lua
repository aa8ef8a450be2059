-- lab_tcp_under_loss_spec: `wirelab grade labs/tcp-under-loss` as an
-- instructor runs it. The Lua and Python references score full marks;
-- each broken sender of tests/labs/tcp-under-loss gets its exact score and
-- fails the check meant to catch it; and where no link can be made (run
-- as nobody, who may not make namespaces), every check is skipped with
-- the reason instead of failing the student.
local process = require "process"
local netem_link = require "netem.link"

local support = require "support"
local bounded = support.bounded
local WL = support.wirelab
local LAB = "labs/tcp-under-loss"
local BROKEN = "tests/labs/tcp-under-loss"

local function grade(args, timeout)
  local spec = {WL, "grade", timeout = timeout or 200}
  for _, a in ipairs(args) do spec[#spec + 1] = a end
  local r = process.run(spec)
  assert.is_false(r.timed_out, "wirelab grade did not finish")
  return r
end

-- every report of dir: name -> {score, max, {check = {status, outcome}}}
local function reports(dir)
  local r = process.run{"python3", "-c", [[
import json, os, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    checks = ("%s=%s/%s" % (c["name"], c["status"], c["outcome"].replace(" ", "_")) for c in r["checks"])
    print(f[:-5], r["score"], r["max_score"], " ".join(checks))
    for c in r["checks"]:
        if c["status"] == "failed":
            sys.stderr.write("%s %s: %s\n" % (f[:-5], c["name"], c["output"].split("\nhint:")[0]))
]], dir, timeout = 20}
  assert.are.equal(0, r.code, r.stderr)
  local out = {}
  for name, score, max, checks in r.stdout:gmatch("(%S+) (%S+) (%S+) ([^\n]*)") do
    local c = {}
    for check, status, outcome in checks:gmatch("([%w_.-]+)=(%a+)/(%S+)") do
      c[check] = {status, (outcome:gsub("_", " "))}
    end
    out[name] = {tonumber(score), tonumber(max), c}
  end
  return out, r.stderr
end

describe("wirelab grade, the tcp-under-loss lab", function()
  -- the score each broken sender must get, and the check it must fail
  local EXPECTED = {
    ["send-unchecked"] = {1, "delivers", "wrong output"},
    ["text-stdin"] = {1, "delivers", "crashed"},
    ["no-shutdown"] = {1, "delivers", "wrong output"},
    ["localhost"] = {0, "connects", "crashed"},
    ["stats-too-early"] = {6, "loss-10", "wrong output"},
    ["wrong-field"] = {6, "loss-10", "wrong output"},
    ["rtt-in-us"] = {11, "reports", "wrong output"},
    ["ipv4-only"] = {13, "ipv6", "crashed"},
    ["paced"] = {12, "goodput-falls", "wrong output"},
  }

  it("gives the references full marks and each broken sender its exact score", bounded(280, function()
    local ok, why = netem_link.link_available()
    if not ok then pending(support.skip("netem.link unavailable here: " .. tostring(why))); return end
    local out = support.tmpdir()
    local pysol = support.tmpdir()
    assert.are.equal(0, process.run{"cp", LAB .. "/solution/sender.py", pysol .. "/", timeout = 5}.code)
    -- one at a time: the link is wirelab's own userspace emulator, and two
    -- gradings sharing the CPU with it delay packets enough to look like
    -- retransmissions or a longer RTT to a broken sender's checks
    local jobs = "1"
    local args = {LAB, "--format", "json", "--output", out, "--jobs", jobs, "--seed", "11", LAB .. "/solution", pysol}
    for name in pairs(EXPECTED) do args[#args + 1] = BROKEN .. "/" .. name end
    local r = grade(args, 270)
    assert.are.equal(0, r.code, r.stderr)
    local got, feedback = reports(out)   -- feedback: each failed check's, for the messages
    assert.are.same({14, 14}, {got.solution[1], got.solution[2]}, "the Lua reference\n" .. feedback)
    local py = got[pysol:match("([^/]+)$")]
    assert.are.same({14, 14}, {py[1], py[2]}, "the Python reference\n" .. feedback)
    for name, want in pairs(EXPECTED) do
      local g = got[name]
      assert.is_not_nil(g, name .. " has no report")
      local failed = {}
      for check, res in pairs(g[3]) do
        if res[1] ~= "passed" then failed[#failed + 1] = check .. " " .. res[2] end
      end
      table.sort(failed)
      assert.are.equal(want[1], g[1], name .. "'s score (" .. table.concat(failed, ", ") .. ")\n" .. feedback)
      assert.are.same({"failed", want[3]}, g[3][want[2]], name .. " must fail " .. want[2])
    end
    -- a check that depends on a failed one is skipped, not failed again
    assert.are.same({"skipped", "skipped"}, got.localhost[3].delivers)
  end))

  it("where no link can be made, every check is skipped with the reason", bounded(60, function()
    local setpriv = support.find("setpriv")
    if not setpriv then pending(support.skip("no setpriv(1)")); return end
    local id = process.run{"id", "-u", timeout = 5}
    if id.stdout:match("%d+") ~= "0" then pending(support.skip("needs root, to become nobody")); return end
    local r = process.run{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
      WL, "grade", LAB, LAB .. "/solution", "--seed", "3", timeout = 50}
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("- connects (0/1) skipped", r.stdout, 1, true)
    assert.matches("not run: link: operation not permitted: netem.link needs network namespaces",
      r.stdout, 1, true)
    assert.matches("- goodput-falls (0/2) skipped", r.stdout, 1, true)
    assert.matches("not run: it depends on connects, which was skipped", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("✗", 1, true), "a check failed instead of being skipped:\n" .. r.stdout)
    assert.matches("score: 0/14", r.stdout, 1, true)
  end))
end)
