-- lab.runner: grades one submission against a lab. The submission is
-- copied to a scratch directory, built if its start says so, and every
-- check runs in its own task under its time limit, with the submission's
-- processes it started ended afterwards whatever happened. Student code
-- never runs in this Lua state: only as processes (lab.context starts
-- them), so a crash, hang or flood is a failed check, never a hung grader.
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local process = require "process"
local fs = require "wirelab.fs"
local context = require "lab.context"

local ipairs, pairs, pcall, tostring, type = ipairs, pairs, pcall, tostring, type
local format = string.format
local report_pts = require("lab.report").pts

local M = {}

-- ---- the scratch copy ------------------------------------------------------

-- under $TMPDIR (/tmp by default), as mktemp has it; the sandbox's uid
-- must be able to pass through $TMPDIR (docs/grading.md)
local function scratch_dir()
  local root = os.getenv("TMPDIR") or "/tmp"
  local r = process.run{"mktemp", "-d", root .. "/wirelab-grade.XXXXXX", timeout = 10}
  if r.code ~= 0 then errors.raise("grade", "EIO", nil, nil, "mktemp: " .. r.stderr) end
  return (r.stdout:gsub("%s+$", ""))
end

-- only a directory scratch_dir made
local function remove_tree(dir)
  if dir and dir:find("/wirelab%-grade%.%w+$") then
    process.run{"rm", "-rf", "--one-file-system", dir, timeout = 30}
  end
end

-- copy(src, dst): a directory's contents, or a single file, into dst
local function copy(src, dst)
  local st = fs.stat(src)
  local argv = st.kind == "directory" and {"cp", "-R", "--", src .. "/.", dst}
    or {"cp", "--", src, dst .. "/"}
  argv.timeout = 60
  local r = process.run(argv)
  return r.code == 0, r.stderr
end

-- The scratch copy belongs to the user the sandbox runs programs as
-- (nobody, when grading as root): they read and write it, nothing else.
local function give_to_sandbox(dir)
  local iso = process.isolation()
  if type(iso.uid) == "number" and iso.uid ~= 0 then
    process.run{"chown", "-R", ("%d:%d"):format(iso.uid, iso.gid or iso.uid), dir, timeout = 30}
  end
end

-- the first start of the contract whose file the submission has
local function find_start(lab, dir)
  for _, s in ipairs(lab.submission.starts) do
    if fs.stat(dir .. "/" .. s.file) then return s end
  end
  return nil
end

local function expected_files(lab)
  local names = {}
  for _, s in ipairs(lab.submission.starts) do names[#names + 1] = s.file end
  return table.concat(names, ", ")
end

-- ---- one check -----------------------------------------------------------------

-- The outcome of a check that did not pass, from what was raised and what
-- the submission's processes did meanwhile (crashed, hit a limit).
local function classify(t, err)
  t:_settle()
  local ended = t:_ended_early()
  if context.is_failure(err) then
    local outcome = err.outcome
    if ended and (outcome == "wrong output" or outcome == "did not listen") then
      return ended.outcome, err.message .. "\n" .. ended.message
    end
    return outcome, err.message
  end
  if errors.is(err, "ETIMEDOUT") and err.op == "timeout" then
    local msg = format("timed out after %g s", t.check.timeout)
    if ended then return ended.outcome, msg .. "\n" .. ended.message end
    return "timed out", msg .. (t.last_step and ("; the check was waiting on: " .. t.last_step) or "")
  end
  if ended then return ended.outcome, ended.message .. "\n(" .. tostring(err) .. ")" end
  if errors.is(err) then
    -- a socket error the submission caused: refused, reset, cut short
    return "wrong output", tostring(err)
  end
  return "error", "the check itself failed (a bug in the lab): " .. tostring(err)
end

local function run_check(sub, check)
  local t = context.new(sub, check)
  local t0 = wirelab.now()
  local ok, err = pcall(wirelab.timeout, check.timeout, check.run, t)
  local res = {name = check.name, max_score = check.points, visibility = check.visibility,
               description = check.description}
  if ok then
    local k, n = t:_partial()
    res.score = check.points * k / n
    res.status = k == n and "passed" or "failed"
    res.outcome = k == n and "passed" or "partial"
    if k < n then
      res.hint = check.hint
      res.message = format("%s of %s", report_pts(k), report_pts(n))
    end
  else
    res.score = 0
    res.outcome, res.message = classify(t, err)
    res.status = (res.outcome == "error" or res.outcome == "skipped") and res.outcome or "failed"
    if res.status ~= "skipped" then res.hint = check.hint end
  end
  -- only now: what ended on its own had to be told from what we end
  t:_stop_all()
  -- a limit reached that did not end the program is the likelier cause
  local reached = res.status == "failed" and res.outcome ~= "resource limit" and t:_limits_reached()
  if reached then
    res.outcome, res.message = "resource limit", (res.message or "") .. "\n" .. reached
  end
  res.log = t:_log_text()
  -- the same grading gives the same report (RELIABILITY 40): the ports
  -- chosen and the scratch directory are named, not numbered
  res.message = res.message and t:_normalise(res.message)
  res.log = t:_normalise(res.log)
  res.duration = wirelab.now() - t0
  return res
end

-- the sandbox's layers, without what differs from one program to the next
-- (cgroup paths, scratch directories), so reports compare
local function layers(s)
  local out = {}
  for k, v in pairs(s or {}) do
    if k ~= "cgroup_dirs" and k ~= "scratch" then out[k] = v end
  end
  return out
end

-- ---- one submission ----------------------------------------------------------

-- grade(lab, path, {seed=, only=, wirelab=}) -> result
function M.grade(lab, path, opts)
  local t0 = wirelab.now()
  local result = {lab = lab.name, submission = path, seed = opts.seed, checks = {},
                  max_score = 0, score = 0}
  local checks = lab:select(opts.only)
  for _, c in ipairs(checks) do result.max_score = result.max_score + c.points end

  local dir = scratch_dir()
  local sub = {lab = lab, dir = dir, seed = opts.seed, wirelab = opts.wirelab, path = path,
               limits = lab.submission.limits}
  local ok, err = pcall(function()
    local copied, why = copy(path, dir)
    if not copied then sub.problem = "could not copy the submission: " .. why; return end
    give_to_sandbox(dir)
    sub.start = find_start(lab, dir)
    if not sub.start then
      sub.problem = "no file the lab can start was found (expected one of: " .. expected_files(lab) .. ")"
      sub.problem_outcome = "did not start"
      return
    end
    if sub.start.build then
      local r = context.build(sub)
      if not r.ok then
        sub.problem = "the build (" .. table.concat(sub.start.build, " ") .. ") failed: " .. r.message
        sub.problem_outcome = "build failed"
      end
    end
  end)
  if not ok then sub.problem = tostring(err) end

  local by_name = {}
  for _, check in ipairs(checks) do
    local res
    local blocked, why
    for _, d in ipairs(check.depends) do
      local dr = by_name[d]
      if dr and dr.status ~= "passed" then
        blocked, why = d, dr.status == "skipped" and "which was skipped" or "which did not pass"
        break
      end
    end
    if sub.problem and not sub.problem_told then
      -- told once, by the first check; the others are skipped because of it
      sub.problem_told = true
      res = {name = check.name, max_score = check.points, score = 0, status = "failed",
             outcome = sub.problem_outcome or "error", message = sub.problem,
             visibility = check.visibility, description = check.description, duration = 0}
    elseif sub.problem then
      res = {name = check.name, max_score = check.points, score = 0, status = "skipped",
             outcome = "skipped", message = "not run: " .. (sub.problem_outcome or "the submission could not be graded"),
             visibility = check.visibility, description = check.description, duration = 0}
    elseif blocked then
      res = {name = check.name, max_score = check.points, score = 0, status = "skipped",
             outcome = "skipped", message = "not run: it depends on " .. blocked .. ", " .. why,
             visibility = check.visibility, description = check.description, duration = 0}
    else
      res = run_check(sub, check)
    end
    res.reproduce = M.reproduce(lab, path, check.name, opts.seed)
    by_name[check.name] = res
    result.checks[#result.checks + 1] = res
    result.score = result.score + res.score
  end
  remove_tree(dir)
  result.sandbox = layers(sub.sandbox or context.sandbox_report())
  result.execution_time = wirelab.now() - t0
  return result
end

local function shell_quote(s)
  if s:find("^[%w_./:=@%%+-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.reproduce(lab, path, name, seed)
  return format("wirelab grade %s %s --check %s --seed %s", shell_quote(lab.path or lab.name),
    shell_quote(path), shell_quote(name), tostring(seed))
end

return M
