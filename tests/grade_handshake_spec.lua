-- grade_handshake: the handshake-observer lab graded as an instructor runs
-- it. The references (Lua, Python) score full marks with the packets
-- captured; each broken submission its exact score, failing the check
-- meant for its mistake; and graded without CAP_NET_RAW (as nobody), the
-- checks fall back to TCP states, say so, and still catch a mistake.
local process = require "process"

local support = require "support"
local bounded = support.bounded
local WL = support.wirelab
local LAB = "labs/handshake-observer"
local BROKEN = "tests/labs/handshake-observer"

local ROOT = process.run{"id", "-u", timeout = 5}.stdout:match("^0%s") ~= nil

local function grade(args, opts)
  opts = opts or {}
  local spec = {timeout = 200, env = {PATH = os.getenv("PATH"), HOME = os.getenv("HOME") or "/tmp",
                TMPDIR = opts.tmp}}
  for _, a in ipairs(opts.prefix or {}) do spec[#spec + 1] = a end
  spec[#spec + 1] = WL
  spec[#spec + 1] = "grade"
  for _, a in ipairs(args) do spec[#spec + 1] = a end
  local r = process.run(spec)
  assert.is_false(r.timed_out, "wirelab grade did not finish")
  assert.are.equal(0, r.code, r.stderr)
  return r
end

-- name -> {score, max, {failed check, outcome}..., logs}, from a directory of json reports
local function read_reports(dir)
  local r = process.run{"python3", "-c", [==[
import json, os, sys
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    bad = [[c["name"], c["outcome"]] for c in r["checks"] if c["status"] != "passed"]
    logs = {c["name"]: c["output"] for c in r["checks"]}
    print(json.dumps([f[:-5], r["score"], r["max_score"], bad, logs]))
]==], dir, timeout = 20}
  assert.are.equal(0, r.code, r.stderr)
  local cjson = require "cjson"
  local got = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local v = cjson.decode(line)
    got[v[1]] = {score = v[2], max = v[3], bad = v[4], logs = v[5]}
  end
  return got
end

describe("wirelab grade, the handshake-observer lab", function()
  -- the score of each broken submission, and the check it fails
  local EXPECTED = {
    ["wrong-port"] = {11, "handshake", "wrong output"},
    ["shutdown-tcpinfo"] = {11, "active-close", "wrong output"},
    ["waits-for-eof"] = {11, "active-close", "timed out"},
    ["never-closes"] = {11, "passive-close", "wrong output"},
    ["reads-first"] = {12, "reset", "wrong output"},
    ["accepts"] = {11, "backlog", "wrong output"},
  }

  it("gives the references 14/14 and each broken submission its exact score", bounded(200, function()
    if not ROOT then pending(support.skip("the lab captures packets as root; run as root")) return end
    local out, scratch, pysol = support.tmpdir(), support.tmpdir(), support.tmpdir()
    assert.are.equal(0, process.run{"cp", LAB .. "/solution/observer.py", pysol .. "/", timeout = 5}.code)
    local args = {LAB, "--format", "json", "--output", out, "--jobs", support.SANITIZED and "2" or "3",
                  "--seed", "3", LAB .. "/solution", pysol}
    for name in pairs(EXPECTED) do args[#args + 1] = BROKEN .. "/" .. name end
    grade(args, {tmp = scratch})
    local got = read_reports(out)
    local function bad(g) return require("cjson").encode(g.bad) end
    local py = got[pysol:match("([^/]+)$")]
    assert.are.same({14, 14}, {got.solution.score, got.solution.max}, "the Lua reference: " .. bad(got.solution))
    assert.are.same({14, 14}, {py.score, py.max}, "the Python reference: " .. bad(py))
    -- as root the packets were seen: every check logs what the capture showed
    for check, log in pairs(got.solution.logs) do
      assert.matches("the capture:", log, 1, true, check .. " logged no capture: " .. log)
    end
    assert.matches("SYN sent again", got.solution.logs.backlog, 1, true)
    for name, want in pairs(EXPECTED) do
      local g = got[name]
      assert.is_not_nil(g, name .. " has no report")
      assert.are.equal(want[1], g.score, name .. ": " .. bad(g))
      assert.are.same({{want[2], want[3]}}, g.bad, name .. " fails the check meant for its mistake")
    end
  end))

  it("without CAP_NET_RAW the checks use the TCP states alone, say so, and still catch mistakes",
    bounded(120, function()
      if not ROOT then pending(support.skip("the spec runs the grader as nobody, which needs root")) return end
      if not support.find("setpriv") then pending(support.skip("setpriv (util-linux) is missing")) return end
      -- nobody must read the lab and the submissions: copies under a temp
      -- dir; the Python reference (not the Lua one: as nobody the memory
      -- limit is RLIMIT_AS, which an AddressSanitizer build cannot run under)
      local dir, out, scratch = support.tmpdir(), support.tmpdir(), support.tmpdir()
      assert.are.equal(0, process.run{"cp", "-R", LAB, dir .. "/lab", timeout = 5}.code)
      assert.are.equal(0, process.run{"mkdir", dir .. "/solution", timeout = 5}.code)
      assert.are.equal(0, process.run{"cp", LAB .. "/solution/observer.py", dir .. "/solution/", timeout = 5}.code)
      assert.are.equal(0, process.run{"cp", "-R", BROKEN .. "/reads-first", dir .. "/reads-first", timeout = 5}.code)
      for _, d in ipairs{dir, out, scratch} do
        assert.are.equal(0, process.run{"chmod", "-R", "a+rwX", d, timeout = 5}.code)
      end
      grade({dir .. "/lab", "--format", "json", "--output", out, "--jobs", "2", "--seed", "3",
             dir .. "/solution", dir .. "/reads-first"},
            {tmp = scratch, prefix = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}})
      local got = read_reports(out)
      assert.are.same({14, 14}, {got.solution.score, got.solution.max})
      for check, log in pairs(got.solution.logs) do
        assert.matches("no packet capture here (capturing needs CAP_NET_RAW", log, 1, true, check)
      end
      assert.are.equal(12, got["reads-first"].score)
      assert.are.same({{"reset", "wrong output"}}, got["reads-first"].bad)
    end))
end)
