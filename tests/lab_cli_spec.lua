-- lab_cli: `wirelab lab list|new|pack` and the platform templates as an
-- instructor meets them, a subprocess each time: the labs listed from the
-- source tree and from an installation; a new lab that grades at once; the
-- zips read back with Info-ZIP's unzip; Gradescope's setup.sh building
-- wirelab from the autograder zip and run_autograder grading in a fake
-- /autograder tree, always leaving a valid results.json; the GitHub
-- Classroom workflow parsed as YAML and its own commands run.
local process = require "process"
local fs = require "wirelab.fs"

local support = require "support"
local WL = support.wirelab
local bounded, tmpdir = support.bounded, support.tmpdir
local ROOT = support.DIR:match("^(.*)/[^/]+$")
local TCP = ROOT .. "/labs/tcp-echo"
local BROKEN = ROOT .. "/tests/labs/tcp-echo"

local function run(argv, opts)
  opts = opts or {}
  argv.timeout = opts.timeout or 60
  argv.cwd, argv.env = opts.cwd, opts.env
  local r = process.run(argv)
  assert.is_false(r.timed_out, table.concat(argv, " ") .. " did not finish")
  return r
end

local function lab(args, opts)
  local argv = {(opts and opts.bin) or WL, "lab"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run(argv, opts)
end

local function sh(script, opts)
  local r = run({"sh", "-c", script}, opts)
  assert.are.equal(0, r.code, script .. ": " .. r.stderr)
  return r.stdout
end

-- python3 runs code over input and prints what it found
local function python(code, input, args)
  local argv = {"python3", "-c", code}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv.stdin = input
  local r = run(argv)
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

-- the environment of this process, with changes (a value false removes)
local function environ(changes)
  local env = {}
  local r = run{"env", "-0"}
  for kv in r.stdout:gmatch("([^%z]+)") do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if k then env[k] = v end
  end
  for k, v in pairs(changes) do env[k] = v or nil end
  return env
end

-- the names in a zip, a set, with their modes
local function zip_entries(zip)
  local r = run{"unzip", "-Z", zip}
  assert.are.equal(0, r.code, r.stderr)
  local names = {}
  for mode, name in r.stdout:gmatch("\n(%S+)%s+[%d.]+%s+%S+%s+%d+%s+%S+%s+%S+%s+%S+%s+%S+%s+([^\n]+)") do
    names[name] = mode
  end
  return names
end

local function pack(lab_path, out, opts)
  local r = lab({"pack", lab_path, "--output", out}, opts)
  assert.are.equal(0, r.code, r.stderr)
  return r
end

-- a new lab in dir (scaffolded), and a copy of it with a hidden check
local function new_lab(dir, name)
  local r = lab({"new", name, dir})
  assert.are.equal(0, r.code, r.stderr)
  return dir
end

describe("wirelab lab, the command line", function()
  it("--help, and exit 2 for a usage error with a message", bounded(30, function()
    local r = lab{"--help"}
    assert.are.equal(0, r.code)
    assert.matches("usage: wirelab lab list", r.stdout, 1, true)
    assert.matches("Exit status: 0", r.stdout, 1, true)
    for _, case in ipairs{{{}, "a command expected"}, {{"frobnicate"}, "unknown command 'frobnicate'"},
                          {{"list", "--bogus"}, "unknown option '--bogus'"}, {{"pack"}, "pack takes one LAB"},
                          {{"new"}, "a NAME expected"}, {{"new", "bad name"}, "a NAME of letters"},
                          {{"pack", "x", "--output"}, "needs a value"}, {{"list", "extra"}, "takes no argument"}} do
      r = lab(case[1])
      assert.are.equal(2, r.code, table.concat(case[1], " "))
      assert.matches(case[2], r.stderr, 1, true)
      assert.matches("try 'wirelab lab --help'", r.stderr, 1, true)
    end
    r = lab{"pack", "no-such-lab"}
    assert.are.equal(1, r.code)
    assert.matches("no lab named 'no-such-lab'", r.stderr, 1, true)
  end))
end)

describe("wirelab lab list", function()
  it("lists the source tree's labs, --labs ones first, with points and checks", bounded(30, function()
    local r = lab{"list"}
    assert.are.equal(0, r.code, r.stderr)
    assert.matches(ROOT .. "/labs (the source tree):", r.stdout, 1, true)
    assert.matches("\n  tcp%-echo +18 points +9 checks +A TCP echo server", r.stdout)
    -- labs/echo/lab.lua is a demo program, not a lab: not listed, not run
    assert.is_nil(r.stdout:find("PASS", 1, true))
    r = lab{"list", "--labs", ROOT .. "/tests/labs"}
    assert.are.equal(0, r.code, r.stderr)
    local mini = r.stdout:find("\n  mini +11 points +8 checks %(1 not visible%)")
    assert.is_truthy(mini, r.stdout)
    assert.is_true(mini < r.stdout:find("tcp-echo", 1, true), "--labs comes first")
  end))

  it("a lab that does not load is shown with its error, exit 1; other lab.lua files are not run",
    bounded(30, function()
    local dir = tmpdir()
    sh(("mkdir -p %s/broken %s/program && printf 'local lab = require \"lab\"\\nreturn lab.new{' >%s/broken/lab.lua"
      .. " && printf 'io.open(\"%s/ran\", \"w\"):close()\\n' >%s/program/lab.lua"):format(dir, dir, dir, dir, dir))
    local r = lab{"list", "--labs", dir}
    assert.are.equal(1, r.code)
    assert.matches("\n  broken +%- +%- +cannot load: ", r.stdout)
    assert.matches("broken/lab.lua: cannot load: ", r.stderr, 1, true)
    assert.is_nil(fs.stat(dir .. "/ran"), "a lab.lua that does not require \"lab\" was run")
    assert.is_nil(r.stdout:find("program", 1, true))
    r = lab{"list", "--labs", dir .. "/nowhere"}
    assert.are.equal(1, r.code)
    assert.matches("no such directory", r.stderr, 1, true)
  end))

  it("finds the labs `make install` put in PREFIX/share/wirelab/labs, and packs from there", bounded(90, function()
    local prefix = tmpdir()
    local build = WL:match("^(.*)/[^/]+$")
    -- the binary under test is installed as it is (-o: never rebuilt here)
    local r = run({"make", "-s", "-C", ROOT, "-o", WL, "install", "BUILD=" .. build, "PREFIX=" .. prefix},
      {timeout = 60})
    assert.are.equal(0, r.code, r.stderr .. r.stdout)
    local bin = prefix .. "/bin/wirelab"
    r = lab({"list"}, {bin = bin})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches(prefix .. "/share/wirelab/labs (installed):", r.stdout, 1, true)
    assert.matches("\n  tcp%-echo +18 points", r.stdout)
    assert.is_nil(r.stdout:find("source tree", 1, true), r.stdout)
    -- pack by name, with the installed sources and templates
    local out = tmpdir()
    pack("tcp-echo", out, {bin = bin})
    local tar = sh(("unzip -p %s/tcp-echo-autograder.zip wirelab-src.tar.gz | tar -tzf -"):format(out))
    for _, f in ipairs{"/Makefile", "/runtime/wl.h", "/bindings/socket.c", "/scripts/lab/pack.lua",
                       "/llhttp/llhttp.c", "/llhttp/llhttp.h", "/docs/wirelab.1"} do
      assert.matches("wirelab%-[%d.]+" .. f:gsub("%p", "%%%0") .. "\n", tar)
    end
  end))
end)

describe("wirelab lab new", function()
  it("makes a lab whose solution scores full marks and whose starter does not", bounded(60, function()
    local dir = tmpdir()
    local r = lab({"new", "demo"}, {cwd = dir})
    assert.are.equal(0, r.code, r.stderr)
    for _, f in ipairs{"lab.lua", "README.md", "starter/server.lua", "solution/server.lua"} do
      assert.is_truthy(fs.stat(dir .. "/demo/" .. f), f)
    end
    local g = run({WL, "grade", "demo", "--format", "json", "--seed", "3"}, {cwd = dir})
    assert.are.equal(0, g.code, g.stderr)
    assert.are.equal("1 1\n", python("import json,sys; r=json.load(sys.stdin); print(r['score'], r['max_score'])",
      g.stdout))
    g = run({WL, "grade", "demo", "demo/starter", "--format", "json", "--seed", "3"}, {cwd = dir})
    assert.are.equal("0 1\n", python("import json,sys; r=json.load(sys.stdin); print(r['score'], r['max_score'])",
      g.stdout))
    -- the README's table names the lab's check
    assert.matches("| echoes-a-line | 1 |", support.read(dir .. "/demo/README.md"), 1, true)
    -- never over a lab, into a DIR given, listed with --labs
    r = lab({"new", "demo"}, {cwd = dir})
    assert.are.equal(1, r.code)
    assert.matches("exists and is not empty", r.stderr, 1, true)
    r = lab({"new", "other", dir .. "/labs/other"})
    assert.are.equal(0, r.code, r.stderr)
    r = lab{"list", "--labs", dir .. "/labs"}
    assert.matches("\n  other +1 point +1 check +A TCP server", r.stdout)
  end))
end)

describe("wirelab lab pack", function()
  it("writes the autograder, student and classroom zips, solution only where it belongs", bounded(60, function()
    local out = tmpdir()
    local r = pack(TCP, out)
    assert.matches(out .. "/tcp-echo-autograder.zip", r.stdout, 1, true)
    local ag = zip_entries(out .. "/tcp-echo-autograder.zip")
    -- Gradescope wants both scripts at the top, executable
    assert.are.equal("-rwxr-xr-x", ag["setup.sh"])
    assert.are.equal("-rwxr-xr-x", ag["run_autograder"])
    for _, f in ipairs{"wirelab-src.tar.gz", "lab/lab.lua", "lab/solution/server.lua", "lab/solution/server.py",
                       "lab/starter/server.lua"} do
      assert.is_truthy(ag[f], "autograder zip: " .. f)
    end
    local st = zip_entries(out .. "/tcp-echo-student.zip")
    for _, f in ipairs{"tcp-echo/README.md", "tcp-echo/CHECKS.md", "tcp-echo/starter/server.lua",
                       "tcp-echo/starter/server.py", "tcp-echo/lab.lua"} do
      assert.is_truthy(st[f], "student zip: " .. f)
    end
    local gh = zip_entries(out .. "/tcp-echo-classroom.zip")
    for _, f in ipairs{".github/workflows/classroom.yml", ".github/wirelab/lab/lab.lua",
                       ".github/wirelab/wirelab-src.tar.gz", "server.lua", "server.py", "README.md"} do
      assert.is_truthy(gh[f], "classroom zip: " .. f)
    end
    for name in pairs(st) do assert.is_nil(name:find("solution", 1, true), "student zip: " .. name) end
    for name in pairs(gh) do assert.is_nil(name:find("solution", 1, true), "classroom zip: " .. name) end
    -- every check visible: the students' CHECKS.md says how to run them
    local checks = sh(("unzip -p %s/tcp-echo-student.zip tcp-echo/CHECKS.md"):format(out))
    assert.matches("| concurrent-10 | 3 |", checks, 1, true)
    assert.matches("wirelab grade . starter", checks, 1, true)
    -- the student's starter is the starter, not the solution
    assert.are.equal(support.read(TCP .. "/starter/server.py"),
      sh(("unzip -p %s/tcp-echo-classroom.zip server.py"):format(out)))
    -- packing again replaces the zips
    pack(TCP, out)
    assert.are.equal("tcp-echo-autograder.zip\ntcp-echo-classroom.zip\ntcp-echo-student.zip\n", sh("ls " .. out))
  end))

  it("a lab with a hidden check: the student zip has no lab.lua and none of its inputs", bounded(60, function()
    local dir = new_lab(tmpdir() .. "/secretive", "secretive")
    local text = support.read(dir .. "/lab.lua")
    local hidden = [[
    {name = "hidden-input", points = 2, visibility = "hidden",
     run = function(t) t:eq("SECRET-INPUT-7731", "SECRET-INPUT-7731") end},
  },
}
]]
    text = text:gsub("\n  },\n}\n$", "\n" .. hidden)
    support.write(dir .. "/lab.lua", text)
    support.write(dir .. "/data.txt", "SECRET-INPUT-7731\n")
    local out = tmpdir()
    local r = pack(dir, out)
    assert.matches("warning: secretive has checks that are not visible", r.stderr, 1, true)
    local st = zip_entries(out .. "/secretive-student.zip")
    assert.is_nil(st["secretive/lab.lua"])
    assert.is_nil(st["secretive/data.txt"])
    assert.is_truthy(st["secretive/starter/server.lua"])
    local all = sh(("unzip -p %s/secretive-student.zip"):format(out))
    assert.is_nil(all:find("SECRET-INPUT", 1, true), "a hidden check's input is in the student zip")
    assert.is_nil(all:find("hidden-input", 1, true), "a hidden check's name is in the student zip")
    local checks = sh(("unzip -p %s/secretive-student.zip secretive/CHECKS.md"):format(out))
    assert.matches("1 more check (2 points): their results are hidden.", checks, 1, true)
    assert.matches("not included here", checks, 1, true)
    -- the autograder needs all of it
    assert.matches("SECRET-INPUT-7731", sh(("unzip -p %s/secretive-autograder.zip lab/lab.lua"):format(out)), 1, true)
  end))
end)

-- ---- Gradescope ---------------------------------------------------------------

-- an /autograder tree as Gradescope lays it out: the autograder zip in
-- source/, the student's files in submission/
local function autograder_tree(zip)
  local root = tmpdir() .. "/autograder"
  sh(("mkdir -p %s/source %s/submission && unzip -q %s -d %s/source"):format(root, root, zip, root))
  return root
end

local function run_autograder(root, env, timeout)
  local r = run({"bash", root .. "/source/run_autograder"}, {env = environ(env), timeout = timeout or 120})
  assert.are.equal(0, r.code, r.stderr)
  return r
end

-- results.json checked as Gradescope reads it; prints score, tests, output
local CHECK_RESULTS = [[
import json, sys
r = json.load(open(sys.argv[1]))
assert isinstance(r["score"], (int, float)) and not isinstance(r["score"], bool), r
assert isinstance(r["output"], str)
assert isinstance(r["tests"], list)
for t in r["tests"]:
    assert isinstance(t["name"], str) and isinstance(t["output"], str)
    assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
    assert t["status"] in ("passed", "failed") and t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
print(r["score"], len(r["tests"]), sum(1 for t in r["tests"] if t["status"] == "passed"))
print(r["output"])
]]

local function results(root)
  local out = python(CHECK_RESULTS, nil, {root .. "/results/results.json"})
  local score, n, passed, output = out:match("^(%S+) (%d+) (%d+)\n(.*)$")
  return tonumber(score), tonumber(n), tonumber(passed), output
end

local function submit(root, files, sub)
  local dest = root .. "/submission" .. (sub and ("/" .. sub) or "")
  sh(("rm -rf %s/submission && mkdir -p %s"):format(root, dest))
  for _, f in ipairs(files) do sh(("cp %s %s/"):format(f, dest)) end
end

describe("labs/gradescope", function()
  local zip, remove
  setup(function()
    local out
    out, remove = tmpdir()
    local r = run{WL, "lab", "pack", TCP, "--output", out}
    assert(r.code == 0, r.stderr)
    zip = out .. "/tcp-echo-autograder.zip"
  end)
  teardown(function() remove() end)

  it("setup.sh builds and installs wirelab from the zip, and refuses a lab its solution fails",
    bounded(180, function()
    -- a small lab, so the self-check is quick; the build is the real one
    local out = tmpdir()
    local dir = new_lab(tmpdir() .. "/small", "small")
    local good = support.read(dir .. "/solution/server.lua")
    sh(("cp %s/starter/server.lua %s/solution/server.lua"):format(dir, dir))
    pack(dir, out)
    local root = autograder_tree(out .. "/small-autograder.zip")
    local prefix = tmpdir()
    local env = environ{WIRELAB_SKIP_APT = "1", WIRELAB_PREFIX = prefix, MAKEFLAGS = false, MFLAGS = false,
                        MAKELEVEL = false}
    local r = run({"bash", root .. "/source/setup.sh"}, {env = env, timeout = 170})
    assert.are.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("the lab's solution/ scored 0/1, not full marks", r.stderr, 1, true)
    -- the real solution back: it builds, installs, self-checks
    support.write(root .. "/source/lab/solution/server.lua", good)
    r = run({"bash", root .. "/source/setup.sh"}, {env = env, timeout = 170})
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("setup.sh: the lab's solution/ scored 1/1", r.stdout, 1, true)
    local v = run{prefix .. "/bin/wirelab", "--version"}
    assert.are.equal(0, v.code)
    assert.matches("^wirelab %d", v.stdout)
    assert.are.equal("-rwxr-xr-x", zip_entries(out .. "/small-autograder.zip")["run_autograder"])
  end))

  it("run_autograder: the reference gets full marks, a broken one its score", bounded(120, function()
    local root = autograder_tree(zip)
    submit(root, {TCP .. "/solution/server.lua"})
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = WL, WIRELAB_SEED = "7"})
    local score, n, passed, output = results(root)
    assert.are.same({18, 9, 9}, {score, n, passed})
    assert.matches("tcp-echo: 18 of 18 points (seed 7)", output, 1, true)
    -- a broken one, inside a folder of its own (an uploaded directory)
    submit(root, {BROKEN .. "/transforms/server.lua"}, "my-work")
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = WL, WIRELAB_SEED = "7"})
    score, n, passed = results(root)
    assert.are.same({1, 9, 1}, {score, n, passed})
  end))

  it("run_autograder: an empty submission, and grading that fails, still give a valid results.json",
    bounded(120, function()
    local root = autograder_tree(zip)
    submit(root, {})
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = WL})
    local score, n, passed = results(root)
    assert.are.same({0, 9, 0}, {score, n, passed})
    local text = support.read(root .. "/results/results.json")
    assert.matches("no file the lab can start was found", text, 1, true)
    -- no wirelab at all
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = "/nonexistent/wirelab"})
    local output
    score, n, _, output = results(root)
    assert.are.same({0, 0}, {score, n})
    assert.matches("could not grade this submission", output, 1, true)
    assert.matches("wirelab could not be run", output, 1, true)
    -- a lab that does not load
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = WL, WIRELAB_LAB = root .. "/nolab"})
    score, n, _, output = results(root)
    assert.are.same({0, 0}, {score, n})
    assert.matches("cannot load the lab", output, 1, true)
    -- grading stopped at its time limit
    submit(root, {TCP .. "/solution/server.lua"})
    run_autograder(root, {AUTOGRADER_ROOT = root, WIRELAB = WL, WIRELAB_TIMEOUT = "1"})
    score, n, _, output = results(root)
    assert.are.same({0, 0}, {score, n})
    assert.matches("grading did not finish within 1 s", output, 1, true)
  end))
end)

-- ---- GitHub Classroom ---------------------------------------------------------

local WORKFLOW = ROOT .. "/labs/github-classroom/.github/workflows/classroom.yml"

-- the workflow as PyYAML reads it, re-emitted as lines Lua can take:
-- key<TAB>value, run scripts base64-encoded
local READ_WORKFLOW = [[
import base64, sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
assert isinstance(w["on"], dict) and "push" in w["on"], w.get("on")
job = w["jobs"]["autograding"]
assert job["runs-on"].startswith("ubuntu-")
for k, v in sorted(job["env"].items()):
    print("env\t%s\t%s" % (k, v))
for s in job["steps"]:
    name = s["name"]
    if "run" in s:
        print("run\t%s\t%s" % (name, base64.b64encode(s["run"].encode()).decode()))
    if "uses" in s:
        print("uses\t%s\t%s" % (name, s["uses"]))
    if "id" in s:
        print("id\t%s\t%s" % (name, s["id"]))
    for k, v in sorted(s.get("env", {}).items()):
        print("stepenv\t%s\t%s=%s" % (name, k, v))
    for k, v in sorted(s.get("with", {}).items()):
        print("with\t%s\t%s=%s" % (name, k, v))
]]

local function read_workflow(path)
  local w = {env = {}, run = {}, uses = {}, id = {}, stepenv = {}, with = {}}
  for kind, a, b in python(READ_WORKFLOW, nil, {path}):gmatch("(%w+)\t([^\t]*)\t([^\n]*)\n") do
    if kind == "run" then
      w.run[a] = python("import base64,sys; sys.stdout.write(base64.b64decode(sys.stdin.read()).decode())", b)
    elseif kind == "env" then w.env[a] = b
    else w[kind][a] = (w[kind][a] and (w[kind][a] .. "\n") or "") .. b end
  end
  return w
end

describe("labs/github-classroom", function()
  it("the workflow parses as YAML and feeds the reporter the grade step's result", bounded(30, function()
    local w = read_workflow(WORKFLOW)
    assert.are.equal("classroom-resources/autograding-grading-reporter@v1", w.uses["Autograding Reporter"])
    assert.are.equal("runners=grade", w.with["Autograding Reporter"])
    assert.are.equal("GRADE_RESULTS=${{ steps.grade.outputs.result }}", w.stepenv["Autograding Reporter"])
    assert.are.equal("grade", w.id["Grade"])
    assert.matches("wirelab grade \"$LAB\" . --format github", w.run["Grade"], 1, true)
    -- the packages are Gradescope's setup.sh's
    local setup = support.read(ROOT .. "/labs/gradescope/setup.sh")
    local want = setup:match('\nPACKAGES="([^"]+)"')
    local got = w.run["Install the packages wirelab needs"]:match("%-%-no%-install%-recommends ([^\n]+)")
    assert.are.equal(want, got)
  end))

  it("its build and grade steps, run as written, grade the reference to version-1 JSON", bounded(150, function()
    local out = tmpdir()
    pack(TCP, out)
    local repo = tmpdir() .. "/repo"
    sh(("mkdir -p %s && cd %s && unzip -q %s/tcp-echo-classroom.zip && cp %s/solution/* ."):format(repo, repo, out, TCP))
    local w = read_workflow(repo .. "/.github/workflows/classroom.yml")
    local runner = tmpdir()
    local gh_path, gh_output = runner .. "/path", runner .. "/output"
    support.write(gh_path, "")
    support.write(gh_output, "")
    local env = {RUNNER_TEMP = runner, GITHUB_PATH = gh_path, GITHUB_OUTPUT = gh_output, WIRELAB = false,
                 MAKEFLAGS = false, MFLAGS = false, MAKELEVEL = false}
    for k, v in pairs(w.env) do env[k] = v end
    -- as GitHub runs a step: bash -e, in the repository
    local function step(name)
      local r = run({"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", w.run[name]},
        {cwd = repo, env = environ(env), timeout = 140})
      assert.are.equal(0, r.code, name .. ": " .. r.stdout .. r.stderr)
    end
    step("Build wirelab")
    local bin_dir = support.read(gh_path):match("^([^\n]+)")
    assert.is_truthy(fs.stat(bin_dir .. "/wirelab"), "the build step put no wirelab on GITHUB_PATH")
    env.PATH = bin_dir .. ":" .. environ{}.PATH
    step("Grade")
    local b64 = support.read(gh_output):match("^result=(%S+)\n$")
    assert.is_string(b64, "the grade step wrote no result= line")
    local got = python([[
import base64, json, sys
r = json.loads(base64.b64decode(sys.stdin.read()))
assert r["version"] == 1, r["version"]
total = 0
for t in r["tests"]:
    assert t["status"] in ("pass", "fail", "error") and isinstance(t["message"], str)
    total += t["score"]
print(r["status"], r["max_score"], len(r["tests"]), total)
]], b64)
    assert.are.equal("pass 18 9 18\n", got)
  end))
end)
