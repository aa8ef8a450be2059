-- grade: `wirelab grade` as an instructor runs it, a subprocess each time.
-- The tcp-echo reference solutions score full marks and every broken
-- submission its exact score; every report format is read back by a real
-- consumer (Python's json and xml.etree, a TAP line parser); student output
-- built to break reports leaves them well-formed; the same seed gives the
-- same report; nothing of a submission is left running or on disk.
local wirelab = require "wirelab"
local process = require "process"

local support = require "support"
local WL = support.wirelab
local TCP = "labs/tcp-echo"
local BROKEN = "tests/labs/tcp-echo"
local MINI = "tests/labs/mini"

local bounded = support.bounded

local function grade(args, timeout, env)
  local spec = {WL, "grade", timeout = timeout or 120, env = env}
  for _, a in ipairs(args) do spec[#spec + 1] = a end
  local r = process.run(spec)
  assert.is_false(r.timed_out, "wirelab grade did not finish")
  return r
end

local tmpdir = support.tmpdir

-- python3 reads a report and prints what it found, one value per line
local function python(code, input)
  local r = process.run{"python3", "-c", code, stdin = input, timeout = 20}
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end


-- processes still running in a scratch copy that grading has removed:
-- left behind by a grading that ended (another grading running beside
-- this one still has its directory)
local function leftovers()
  local r = process.run{"sh", "-c", "for p in /proc/[0-9]*; do d=$(readlink $p/cwd 2>/dev/null); " ..
    "case \"$d\" in /tmp/wirelab-grade.*' (deleted)') echo \"${p#/proc/} $d\";; esac; done", timeout = 10}
  return r.stdout
end

describe("wirelab grade, the tcp-echo lab", function()
  -- the score each broken submission must get, and a check it must fail
  local EXPECTED = {
    ["crash-on-reset"] = {16, "survives-reset", "crashed"},
    ["fd-leak"] = {14, "no-fd-leak", "resource limit"},
    ["fork-bomb"] = {0, "listens", "resource limit"},
    ["memory-hog"] = {0, "listens", "resource limit"},
    ["loops-forever"] = {0, "listens", "did not listen"},
    ["never-listens"] = {0, "listens", "did not listen"},
    ["no-reuseaddr"] = {16, "restart-time-wait", "crashed"},
    ["one-recv"] = {9, "echo-1byte-sends", "wrong output"},
    ["prints-forever"] = {0, "listens", "did not listen"},
    ["send-unchecked"] = {16, "echo-large-slow-reader", "wrong output"},
    ["serial"] = {13.3, "concurrent-10", "partial"},
    ["transforms"] = {1, "echo-short", "wrong output"},
    ["build-error"] = {0, "listens", "build failed"},
    ["no-program"] = {0, "listens", "did not start"},
  }

  it("gives the references full marks and each broken submission its exact score", bounded(300, function()
    local scratch = tmpdir()                -- where grading makes its scratch copies
    local out = tmpdir()
    local pysol = tmpdir()
    assert.are.equal(0, process.run{"cp", TCP .. "/solution/server.py", pysol .. "/", timeout = 5}.code)
    local subs = {TCP .. "/solution", pysol, BROKEN .. "/c-reference"}
    for name in pairs(EXPECTED) do subs[#subs + 1] = BROKEN .. "/" .. name end
    -- under ASan every program is several times slower: fewer at a time
    local args = {TCP, "--format", "json", "--output", out, "--jobs", support.SANITIZED and "2" or "3",
                  "--seed", "11"}
    for _, s in ipairs(subs) do args[#args + 1] = s end
    local r = grade(args, 280, {TMPDIR = scratch, PATH = os.getenv("PATH"), HOME = os.getenv("HOME")})
    assert.are.equal(0, r.code, r.stderr)
    local summary = python([[
import json, os, sys
d = sys.stdin.read().strip()
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    bad = [(c["name"], c["outcome"]) for c in r["checks"] if c["status"] != "passed"]
    print(f, r["score"], r["max_score"], json.dumps(bad))
]], out)
    local got = {}
    for f, score, max, bad in summary:gmatch("(%S+) (%S+) (%S+) ([^\n]*)") do
      got[f:gsub("%.json$", "")] = {tonumber(score), tonumber(max), bad}
    end
    assert.are.same({18, 18}, {got.solution[1], got.solution[2]}, "the Lua reference: " .. got.solution[3])
    assert.are.same({18, 18}, {got["c-reference"][1], got["c-reference"][2]},
      "the C reference, built by its Makefile: " .. got["c-reference"][3])
    local pyname = pysol:match("([^/]+)$")
    assert.are.same({18, 18}, {got[pyname][1], got[pyname][2]}, "the Python reference: " .. got[pyname][3])
    for name, want in pairs(EXPECTED) do
      local g = got[name]
      assert.is_not_nil(g, name .. " has no report")
      assert.is_true(math.abs(g[1] - want[1]) < 1e-6, ("%s scored %s, expected %s (%s)"):format(name, g[1], want[1], g[3]))
      assert.is_true(g[1] < g[2], name .. " got full marks")
      assert.matches('["' .. want[2] .. '", "' .. want[3] .. '"]', g[3], 1, true)
    end
    -- the summary names every submission; nothing is left behind
    for name in pairs(EXPECTED) do assert.matches(name, r.stderr .. r.stdout, 1, true) end
    assert.are.equal("", leftovers(), "processes of a submission outlived grading")
    assert.are.equal("", process.run{"ls", "-A", scratch, timeout = 5}.stdout, "scratch copies left")
  end))
end)

describe("wirelab grade reports", function()
  local reports = {}
  setup(function()
    wirelab.timeout(60, function()
      for _, f in ipairs{"text", "json", "gradescope", "github", "junit", "tap"} do
        local r1 = grade{MINI, MINI .. "/nasty", "--format", f, "--seed", "5"}
        local r2 = grade{MINI, MINI .. "/nasty", "--format", f, "--seed", "5"}
        reports[f] = {r1, r2}
      end
    end)
  end)

  it("exit 0 for every format, whatever the score", function()
    for f, rs in pairs(reports) do
      assert.are.equal(0, rs[1].code, f .. ": " .. rs[1].stderr)
    end
  end)

  it("the same seed gives the same report, apart from times (RELIABILITY 40)", function()
    local function strip(s)
      return (s:gsub('"duration": [%d.e-]+', ""):gsub('"execution_time": [%d.e-]+', "")
              :gsub('time="[%d.]+"', ""):gsub('"execution_time": "[%d.]+s"', ""))
    end
    for f, rs in pairs(reports) do
      assert.are.equal(strip(rs[1].stdout), strip(rs[2].stdout), f)
    end
  end)

  it("json: wirelab's own fields, with their types", function()
    local out = python([[
import json, sys
r = json.load(sys.stdin)
assert set(r) == {"lab", "submission", "seed", "score", "max_score", "execution_time", "sandbox", "checks"}, set(r)
assert isinstance(r["score"], (int, float)) and isinstance(r["max_score"], (int, float))
assert isinstance(r["sandbox"], dict)
for c in r["checks"]:
    assert {"name", "status", "score", "max_score", "outcome", "output", "duration"} <= set(c), c
    assert c["status"] in ("passed", "failed", "skipped", "error"), c["status"]
    assert isinstance(c["output"], str) and isinstance(c["duration"], (int, float))
print(r["score"], r["max_score"])
print(" ".join(c["name"] + "=" + c["status"] + ":" + c["outcome"] for c in r["checks"]))
]], reports.json[1].stdout)
    local score, max = out:match("^(%S+) (%S+)")
    assert.are.same({2, 11}, {tonumber(score), tonumber(max)})
    assert.matches("passes=passed:passed", out, 1, true)
    assert.matches("fails=failed:crashed", out, 1, true)
    assert.matches("partial=failed:partial", out, 1, true)
    assert.matches("depends%-on%-fails=skipped:skipped", out)
    assert.matches("times%-out=failed:timed out", out)
    assert.matches("lab%-bug=error:error", out)
    assert.matches("crashes=failed:crashed", out, 1, true)
  end)

  it("gradescope: results.json field by field and type by type", function()
    local out = python([[
import json, sys
r = json.load(sys.stdin)
assert isinstance(r["score"], (int, float)) and isinstance(r["execution_time"], (int, float))
assert isinstance(r["output"], str) and r["visibility"] == "visible"
total = 0
for t in r["tests"]:
    assert set(t) == {"name", "score", "max_score", "status", "output", "visibility"}, set(t)
    assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
    assert 0 <= t["score"] <= t["max_score"]
    assert t["status"] in ("passed", "failed")
    assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    total += t["score"]
assert abs(total - r["score"]) < 1e-9
print(len(r["tests"]), [t["visibility"] for t in r["tests"] if t["name"] == "hidden-fails"][0])
print([t["output"] for t in r["tests"] if t["name"] == "hidden-fails"][0])
]], reports.gradescope[1].stdout)
    assert.matches("^8 hidden\n", out)
    assert.matches("hidden check: wrong output", out, 1, true)
    assert.is_nil(out:find("secret input", 1, true), "a hidden check's input reached the report")
  end)

  it("github: the autograding reporter's fields", function()
    python([[
import json, sys
r = json.load(sys.stdin)
assert r["version"] == 1 and r["status"] in ("pass", "fail", "error") and r["max_score"] == 11
assert r["status"] == "error"          # a check of the lab itself failed
for t in r["tests"]:
    assert {"name", "status", "score", "message"} <= set(t), t
    assert t["status"] in ("pass", "fail", "error")
    assert isinstance(t["message"], str)
]], reports.github[1].stdout)
  end)

  it("junit: parses as XML, one testcase per check, failures where expected", function()
    local out = python([[
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
cases = root.findall(".//testcase")
print(len(cases), len(root.findall(".//failure")), len(root.findall(".//error")), len(root.findall(".//skipped")))
print(" ".join(c.get("name") for c in cases))
suite = root.find("testsuite")
print(suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped"))
]], reports.junit[1].stdout)
    assert.are.equal("8 5 1 1\npasses fails partial depends-on-fails hidden-fails times-out lab-bug crashes\n8 5 1 1\n", out)
  end)

  it("tap: version 13, the plan matches, one line per check", function()
    local tap = reports.tap[1].stdout
    local lines = {}
    for l in tap:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("TAP version 13", lines[1])
    assert.are.equal("1..8", lines[2])
    local results = {}
    for _, l in ipairs(lines) do
      local ok, n = l:match("^(n?o?t? ?ok) (%d+)")
      if ok then results[#results + 1] = {ok, tonumber(n)} end
      -- everything else is a diagnostic (indented), the version, the plan or a comment
      assert.is_truthy(ok or l:find("^  ") or l:find("^TAP") or l:find("^1%.%.") or l:find("^#"), l)
    end
    assert.are.equal(8, #results)
    for i, res in ipairs(results) do assert.are.equal(i, res[2]) end
    assert.are.equal("ok", results[1][1])
    assert.are.equal("not ok", results[2][1])
  end)

  it("student output cannot break a report: markup, TAP lines, invalid UTF-8 (RELIABILITY 29)", function()
    local text = reports.json[1].stdout
    assert.matches("]]></failure>", text, 1, true)         -- it is there, as data
    python("import sys; sys.stdin.buffer.read().decode('utf-8')", text)    -- valid UTF-8
    python("import sys; sys.stdin.buffer.read().decode('utf-8')", reports.junit[1].stdout)
    assert.is_nil(reports.tap[1].stdout:find("\nnot ok 99", 1, true))
    assert.is_nil(reports.junit[1].stdout:find('<testcase name="fake"', 1, true))
  end)
end)

describe("wirelab grade, the command line", function()
  it("exit 2 for a usage error, 1 when grading cannot run, with a message", bounded(30, function()
    local r = grade{}
    assert.are.equal(2, r.code)
    assert.matches("no LAB given", r.stderr, 1, true)
    r = grade{MINI, MINI .. "/good", "--format", "yaml"}
    assert.are.equal(2, r.code)
    assert.matches("unknown format 'yaml'", r.stderr, 1, true)
    r = grade{"/nonexistent/lab.lua", MINI .. "/good"}
    assert.are.equal(1, r.code)
    assert.matches("cannot load the lab", r.stderr, 1, true)
    r = grade{MINI, "/nonexistent/submission"}
    assert.are.equal(1, r.code)
    assert.matches("no submission at '/nonexistent/submission'", r.stderr, 1, true)
    r = grade{MINI, MINI .. "/good", "--check", "nope"}
    assert.are.equal(1, r.code)
    assert.matches("no check named 'nope'", r.stderr, 1, true)
    r = grade{"--help"}
    assert.are.equal(0, r.code)
    assert.matches("usage: wirelab grade LAB", r.stdout, 1, true)
  end))

  it("--check runs the check and what it depends on", bounded(30, function()
    local r = grade{MINI, MINI .. "/nasty", "--check", "depends-on-fails", "--seed", "1"}
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("fails", r.stdout, 1, true)
    assert.matches("depends-on-fails (0/1) skipped", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("passes", 1, true))
    assert.matches("score: 0/3", r.stdout, 1, true)
  end))

  it("--output DIR writes one report per submission, atomically, and a summary", bounded(60, function()
    local out = tmpdir() .. "/reports"
    local r = grade{MINI, MINI .. "/nasty", MINI .. "/good", "--format", "junit", "--output", out, "--jobs", "2"}
    assert.are.equal(0, r.code, r.stderr)
    local ls = process.run{"ls", "-A", out, timeout = 5}.stdout
    assert.are.equal("good.xml\nnasty.xml\n", ls)
    assert.matches("good", r.stderr, 1, true)             -- the summary table
  end))

  it("the report of a crash names its signal and the program's last words", bounded(30, function()
    local r = grade{MINI, MINI .. "/nasty", "--check", "fails", "--seed", "1"}
    assert.matches("killed by signal 11 (SIGSEGV)", r.stdout, 1, true)
    assert.matches("to stderr:", r.stdout, 1, true)
    assert.matches("reproduce: wirelab grade " .. MINI .. "/lab.lua " .. MINI .. "/nasty --check fails --seed 1",
      r.stdout, 1, true)
  end))
end)
