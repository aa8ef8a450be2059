-- lab.grade: `wirelab grade LAB [SUBMISSION...] [options]` (docs/grading.md).
-- Grades each submission (in parallel with --jobs), writes one report per
-- submission (stdout, a file, or a directory of files) and a summary.
-- Exit status 0 whenever grading ran, whatever the scores; 2 for a usage
-- error; 1 when grading itself failed (bad lab file, missing submission).
local wirelab = require "wirelab"
local fs = require "wirelab.fs"
local lab_mod = require "lab"
local runner = require "lab.runner"
local report = require "lab.report"

local ipairs, tostring, tonumber = ipairs, tostring, tonumber

local M = {}

M.USAGE = [[
usage: wirelab grade LAB [SUBMISSION...] [--format FORMAT] [--output PATH]
                     [--jobs N] [--seed S] [--check NAME] [--reveal]
Grades each SUBMISSION (a directory or a single file; a directory of
submission directories grades each of them) against the checks of LAB (a
lab file, or a directory holding lab.lua). Without SUBMISSION, grades the
lab's own solution/ (the reference must score full marks).
  --format F    text (default), json, gradescope, github, junit, tap
  --output P    write the report to P (a directory when there are several
                submissions: one file each), not to stdout
  --jobs N      grade N submissions at a time (default 1)
  --seed S      the seed of every random payload (default: a fresh one,
                printed in the report; the same seed gives the same grading)
  --check NAME  run only NAME (and the checks it depends on)
  --reveal      show hidden checks' feedback too (for instructors)
Exit status: 0 when grading ran, 1 when it could not, 2 for a usage error.]]

local function die(msg)
  io.stderr:write("wirelab grade: ", msg, "\n", "try 'wirelab grade --help'\n")
  return 2
end

local function failed(msg)
  io.stderr:write("wirelab grade: ", msg, "\n")
  return 1
end

local VALUE = {["--format"] = "format", ["--output"] = "output", ["--jobs"] = "jobs",
               ["--seed"] = "seed", ["--check"] = "check", ["-o"] = "output", ["-j"] = "jobs"}

local function parse(args)
  local o = {format = "text", jobs = 1, paths = {}}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%a-]+)=(.*)$")
    if not (name and VALUE[name]) then name, value = a, nil end
    if VALUE[name] then
      if value == nil then
        value = args[i + 1]
        if value == nil then return nil, "option " .. a .. " needs a value" end
        i = i + 1
      end
      o[VALUE[name]] = value
    elseif a == "--reveal" then o.reveal = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option '" .. a .. "'"
    else o.paths[#o.paths + 1] = a end
    i = i + 1
  end
  local okfmt = false
  for _, f in ipairs(report.FORMATS) do okfmt = okfmt or f == o.format end
  if not okfmt then return nil, "unknown format '" .. o.format .. "' (" .. table.concat(report.FORMATS, ", ") .. ")" end
  o.jobs = math.tointeger(tonumber(o.jobs))
  if not o.jobs or o.jobs < 1 then return nil, "--jobs: a positive integer expected" end
  if o.seed then
    local n = math.tointeger(tonumber(o.seed))
    if not n then return nil, "--seed: an integer expected" end
    o.seed = n
  end
  return o
end

-- a fresh seed: the time and the pid, so two graders started together differ
local function fresh_seed()
  local f = io.open("/dev/urandom", "rb")
  local s = f and f:read(4)
  if f then f:close() end
  if s and #s == 4 then return string.unpack("<I4", s) % 1000000000 end
  return math.floor(wirelab.time() * 1000) % 1000000000
end

-- Submissions named on the command line: a directory of submission
-- directories (none of the lab's start files at its top) means each one.
local function expand(lab, paths)
  local list = {}
  for _, p in ipairs(paths) do
    p = p:gsub("(.)/+$", "%1")
    local st = fs.stat(p)
    if not st then return nil, "no submission at '" .. p .. "'" end
    local is_sub = st.kind ~= "directory"
    if not is_sub then
      for _, s in ipairs(lab.submission.starts) do
        if fs.stat(p .. "/" .. s.file) then is_sub = true; break end
      end
    end
    if is_sub then
      list[#list + 1] = p
    else
      local entries = fs.listdir(p) or {}
      local dirs = {}
      for _, e in ipairs(entries) do
        if e.isdir and e.name:sub(1, 1) ~= "." then dirs[#dirs + 1] = p .. "/" .. e.name end
      end
      table.sort(dirs)
      if #dirs == 0 then list[#list + 1] = p end     -- an empty submission: graded, and fails
      for _, d in ipairs(dirs) do list[#list + 1] = d end
    end
  end
  return list
end

-- write a file atomically: a reader never sees half a report
local function write_atomic(path, text)
  local tmp = path .. ".tmp" .. tostring(math.random(1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); return nil, rerr end
  return true
end
M.write_atomic = write_atomic

local function self_path()
  local p = arg and arg[-1] or "wirelab"
  return fs.realpath(p) or p
end

function M.main(args)
  local o, msg = parse(args)
  if not o then return die(msg) end
  if o.help then print(M.USAGE); return 0 end
  local lab_path = table.remove(o.paths, 1)
  if not lab_path then return die("no LAB given") end
  local lab, err = lab_mod.load(lab_path)
  if not lab then return failed("cannot load the lab: " .. tostring(err)) end
  if o.check and not lab.by_name[o.check] then
    return failed("the lab has no check named '" .. o.check .. "'")
  end
  if #o.paths == 0 then
    local sol = lab.dir .. "/solution"
    if not fs.stat(sol) then return die("no SUBMISSION given, and the lab has no solution/ to grade") end
    o.paths = {sol}
  end
  local subs, why = expand(lab, o.paths)
  if not subs then return failed(why) end
  local seed = o.seed or fresh_seed()
  local several = #subs > 1
  if o.output and several then
    local st = fs.stat(o.output)
    if st and st.kind ~= "directory" then return failed("--output must be a directory for several submissions") end
    if not st then
      local r = require("process").run{"mkdir", "-p", o.output, timeout = 10}
      if r.code ~= 0 then return failed("cannot create " .. o.output .. ": " .. r.stderr) end
    end
  end

  local results = {}
  local next_i = 0
  local color = o.format == "text" and not o.output and require("wirelab.readline").isatty(1)
  local problems = 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > #subs then return end
      local ok, r = pcall(runner.grade, lab, subs[i], {seed = seed, only = o.check, wirelab = self_path()})
      if not ok then
        problems = problems + 1
        r = {lab = lab.name, submission = subs[i], seed = seed, checks = {}, score = 0,
             max_score = lab.max_score, error = tostring(r)}
        io.stderr:write("wirelab grade: grading ", subs[i], " failed: ", tostring(r.error), "\n")
      end
      results[i] = r
      if not r.error then
        local text = report.write(r, o.format, {reveal = o.reveal, color = color})
        if o.output then
          local path = o.output
          if several then
            local base = subs[i]:gsub("/+$", ""):match("([^/]+)$") or ("submission" .. i)
            path = o.output .. "/" .. base .. "." .. report.EXTENSION[o.format]
          end
          local wok, werr = write_atomic(path, text)
          if not wok then io.stderr:write("wirelab grade: cannot write ", path, ": ", tostring(werr), "\n") end
        else
          io.stdout:write(text)
          io.stdout:flush()
        end
      end
    end
  end
  local tasks = {}
  for j = 1, math.min(o.jobs, #subs) do tasks[j] = wirelab.spawn(worker) end
  for _, t in ipairs(tasks) do t:join() end
  if several then
    local out = (o.output or o.format ~= "text") and io.stderr or io.stdout
    out:write(report.summary(results))
  end
  if problems == #subs then return 1 end
  return 0
end

return M
