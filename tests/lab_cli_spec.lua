-- lab_cli: `wirelab lab list|new|pack` and the platform templates as an
-- instructor meets them, a subprocess each time: the labs listed from the
-- source tree and from an installation; a new lab that grades at once.
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

  it("finds the labs `make install` put in PREFIX/share/wirelab/labs", bounded(90, function()
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
    for _, f in ipairs{"/src/Makefile", "/src/runtime/wl.h", "/src/llhttp/llhttp.c", "/src/llhttp/llhttp.h"} do
      assert.is_truthy(fs.stat(prefix .. "/share/wirelab" .. f), f)
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

