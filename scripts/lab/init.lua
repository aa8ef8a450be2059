-- lab: labs as Lua files (docs/labs.md). A lab file returns lab.new{...}:
-- its name, the submission's contract (how each language is started) and
-- its checks. lab.new only validates and normalises; lab.runner grades a
-- submission against it, and lab.report writes the result.
local errors = require "wirelab.error"

local type, ipairs, tostring = type, ipairs, tostring
local argerror = errors.argerror

local M = {}

M.VISIBILITY = {visible = true, hidden = true, after_due_date = true, after_published = true}
M.DEFAULT_TIMEOUT = 10

-- The starts a lab may name: {file=, run={argv...}, build={argv...}}; in
-- argv, "{port}" is the port the check chose, "{wirelab}" this program.
M.STARTS = {
  lua = {file = "server.lua", run = {"{wirelab}", "server.lua", "{port}"}},
  python = {file = "server.py", run = {"python3", "server.py", "{port}"}},
  make = {file = "Makefile", build = {"make"}, run = {"./server", "{port}"}},
  c = {file = "server.c", build = {"cc", "-O2", "-o", "server", "server.c"}, run = {"./server", "{port}"}},
  executable = {file = "server", run = {"./server", "{port}"}},
}

local function fail(msg) argerror(1, "lab.new", msg, 3) end

local function check_argv(v, what)
  if type(v) ~= "table" or #v == 0 then fail(what .. ": a list of strings expected") end
  for i, a in ipairs(v) do
    if type(a) ~= "string" then fail(what .. "[" .. i .. "]: string expected, got " .. type(a)) end
  end
end

-- the submission contract: a list of starts, the first whose file exists
-- in the submission is used; a name of M.STARTS stands for its entry
local function normalise_submission(sub)
  if sub == nil then sub = {"lua", "python", "make", "c", "executable"} end
  if type(sub) ~= "table" then fail("submission: table expected, got " .. type(sub)) end
  local starts = {}
  for i, s in ipairs(sub) do
    if type(s) == "string" then
      if not M.STARTS[s] then fail("submission[" .. i .. "]: unknown start '" .. s .. "'") end
      s = M.STARTS[s]
    end
    if type(s) ~= "table" or type(s.file) ~= "string" then
      fail("submission[" .. i .. "]: {file=, run=} expected")
    end
    check_argv(s.run, "submission[" .. i .. "].run")
    if s.build ~= nil then check_argv(s.build, "submission[" .. i .. "].build") end
    starts[#starts + 1] = {file = s.file, run = s.run, build = s.build}
  end
  if #starts == 0 then fail("submission: at least one start expected") end
  return {starts = starts, limits = sub.limits, files = sub.files}
end

local function normalise_check(c, i, names, lab_timeout)
  local where = "checks[" .. i .. "]"
  if type(c) ~= "table" then fail(where .. ": table expected, got " .. type(c)) end
  if type(c.name) ~= "string" or not c.name:find("^[%w_.-]+$") then
    fail(where .. ".name: a name of letters, digits, '_', '-' and '.' expected")
  end
  where = "check '" .. c.name .. "'"
  if names[c.name] then fail(where .. ": the name is used twice") end
  if type(c.run) ~= "function" then fail(where .. ".run: function expected") end
  local points = c.points == nil and 1 or c.points
  if type(points) ~= "number" or points < 0 then fail(where .. ".points: non-negative number expected") end
  local depends = c.depends
  if type(depends) == "string" then depends = {depends} end
  depends = depends or {}
  for _, d in ipairs(depends) do
    if not names[d] then
      fail(where .. ".depends: '" .. tostring(d) .. "' is not an earlier check")
    end
  end
  local vis = c.visibility or "visible"
  if not M.VISIBILITY[vis] then
    fail(where .. ".visibility: visible, hidden, after_due_date or after_published expected")
  end
  local timeout = c.timeout or lab_timeout
  if type(timeout) ~= "number" or timeout <= 0 then fail(where .. ".timeout: positive number expected") end
  for _, k in ipairs{"description", "hint"} do
    if c[k] ~= nil and type(c[k]) ~= "string" then fail(where .. "." .. k .. ": string expected") end
  end
  return {name = c.name, points = points, run = c.run, depends = depends, visibility = vis,
          timeout = timeout, description = c.description, hint = c.hint}
end

local Lab = {}
Lab.__index = Lab
M.Lab = Lab

-- new{name=, description=, submission=, checks={...}, timeout=} -> lab
function M.new(spec)
  if type(spec) ~= "table" then argerror(1, "lab.new", "table expected, got " .. type(spec)) end
  if type(spec.name) ~= "string" or spec.name == "" then fail("name: string expected") end
  if type(spec.checks) ~= "table" or #spec.checks == 0 then fail("checks: a list of checks expected") end
  local timeout = spec.timeout or M.DEFAULT_TIMEOUT
  if type(timeout) ~= "number" or timeout <= 0 then fail("timeout: positive number expected") end
  local lab = setmetatable({name = spec.name, description = spec.description or "",
                            submission = normalise_submission(spec.submission),
                            checks = {}, by_name = {}, timeout = timeout,
                            setup = spec.setup}, Lab)
  for i, c in ipairs(spec.checks) do
    local n = normalise_check(c, i, lab.by_name, timeout)
    lab.checks[i] = n
    lab.by_name[n.name] = n
  end
  local max = 0
  for _, c in ipairs(lab.checks) do max = max + c.points end
  lab.max_score = max
  return lab
end

-- load(path) -> lab: a lab file, or a directory holding lab.lua
function M.load(path)
  local fs = require "wirelab.fs"
  local st = fs.stat(path)
  if st and st.kind == "directory" then path = path:gsub("/+$", "") .. "/lab.lua" end
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, err end
  local ok, lab = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(lab) end
  if getmetatable(lab) ~= Lab then return nil, path .. ": a lab file must return lab.new{...}" end
  lab.path = path
  lab.dir = path:match("^(.*)/[^/]*$") or "."
  return lab
end

-- the checks to run for `only` (a name): it and what it depends on
function Lab:select(only)
  if only == nil then return self.checks end
  if not self.by_name[only] then return nil end
  local want = {}
  local function mark(name)
    if want[name] then return end
    want[name] = true
    for _, d in ipairs(self.by_name[name].depends) do mark(d) end
  end
  mark(only)
  local list = {}
  for _, c in ipairs(self.checks) do
    if want[c.name] then list[#list + 1] = c end
  end
  return list
end

-- show(v): a value quoted for feedback, as the assertions quote it
function M.show(v) return require("lab.context").show(v) end

return M
