-- lab.pack: `wirelab lab pack LAB`, the bundles of a lab (docs/platforms.md):
--   NAME-autograder.zip  Gradescope's autograder: setup.sh and
--                        run_autograder at the top, the whole lab (its
--                        solution too: setup.sh grades it) in lab/, and
--                        wirelab-src.tar.gz, which setup.sh builds
--   NAME-student.zip     what students get: README.md, CHECKS.md and
--                        starter/, plus lab.lua and the lab's other files
--                        only when every check is visible (then students
--                        run the checks themselves); never solution/
--   NAME-classroom.zip   a GitHub Classroom template repository: the
--                        starter at the top, the workflow, the lab in
--                        .github/wirelab/ (students can read it all)
-- Zips are made by Info-ZIP's zip (Debian's `zip`), which keeps the Unix
-- modes: Gradescope runs setup.sh and run_autograder as they come.
local wirelab = require "wirelab"
local fs = require "wirelab.fs"
local process = require "process"
local lab_mod = require "lab"
local cli = require "lab.cli"

local ipairs, tostring = ipairs, tostring
local format, concat = string.format, table.concat

local M = {}

-- What building wirelab takes, from a source tree (tests/lab_cli_spec.lua
-- builds the tarball made of these, so a missing one fails there).
M.SOURCES = {"Makefile", "runtime", "bindings", "scripts", "docs"}  -- docs: help() is built from them
M.LLHTTP = {c = "/usr/share/llhttp", h = "/usr/share/include/llhttp",
            copyright = "/usr/share/doc/node-llhttp/copyright"}
-- never bundled from a lab directory
M.JUNK = {".git", "__pycache__", ".DS_Store", "__MACOSX"}

local Failed = {}
local function fail(msg) error(setmetatable({msg = msg}, Failed), 0) end

-- run(argv) -> stdout; a failure names the command and its stderr
local function run(argv, cwd)
  argv.timeout = argv.timeout or 120
  argv.cwd = cwd
  local ok, r = pcall(process.run, argv)
  if not ok then
    if tostring(r):find("ENOENT", 1, true) and argv[1] == "zip" then
      fail("zip is not installed: apt-get install zip (Info-ZIP, which keeps the scripts' modes)")
    end
    fail(argv[1] .. ": " .. tostring(r))
  end
  if r.code ~= 0 or r.timed_out then
    fail(format("%s failed (%s): %s", concat(argv, " "), r.timed_out and "timed out" or
      ("status " .. tostring(r.code)), (r.stderr .. r.stdout):sub(1, 2000)))
  end
  return r.stdout
end

local function exists(p) return fs.stat(p) ~= nil end
local function mkdir(...) run({"mkdir", "-p", "--", ...}) end

local function write(path, text)
  local f, err = io.open(path, "wb")
  if not f then fail("cannot write " .. path .. ": " .. tostring(err)) end
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- copy_dir(src, dst, skip): src's entries into dst (made), less the names
-- in skip at its top and the junk anywhere
local function copy_dir(src, dst, skip)
  mkdir(dst)
  for _, e in ipairs(fs.listdir(src) or {}) do
    if not (skip and skip[e.name]) then run{"cp", "-R", "--", src .. "/" .. e.name, dst .. "/"} end
  end
  for _, j in ipairs(M.JUNK) do
    run{"find", dst, "-depth", "-name", j, "-exec", "rm", "-rf", "{}", ";"}
  end
end

-- ---- the pieces ---------------------------------------------------------------

-- the source tarball: wirelab-VERSION/ with the sources and llhttp's
local function source_tarball(src, stage, out)
  local version = (wirelab.version:match("(%d[%w.]*)") or "0")
  local top = "wirelab-" .. version
  local tree = stage .. "/" .. top
  mkdir(tree .. "/llhttp")
  for _, f in ipairs(M.SOURCES) do
    if not exists(src .. "/" .. f) then fail("the wirelab sources at " .. src .. " have no " .. f) end
    run{"cp", "-R", "--", src .. "/" .. f, tree .. "/" .. (f:match("^(.*)/") or "")}
  end
  -- llhttp: the copy an installed source tree carries, else Debian's
  local own = src .. "/llhttp"
  local c = exists(own .. "/llhttp.c") and own or M.LLHTTP.c
  local h = exists(own .. "/llhttp.h") and own or M.LLHTTP.h
  for _, f in ipairs{c .. "/api.c", c .. "/http.c", c .. "/llhttp.c", h .. "/llhttp.h"} do
    if not exists(f) then fail("llhttp's sources are not at " .. f .. " (apt-get install node-llhttp)") end
    run{"cp", "--", f, tree .. "/llhttp/"}
  end
  for _, f in ipairs{own .. "/COPYRIGHT", M.LLHTTP.copyright} do
    if exists(f) then run{"cp", "--", f, tree .. "/llhttp/COPYRIGHT"}; break end
  end
  run{"rm", "-rf", "--", tree .. "/build"}
  run{"tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-czf", out, "-C", stage, top}
end

local function all_visible(lab)
  for _, c in ipairs(lab.checks) do
    if c.visibility ~= "visible" then return false end
  end
  return true
end

local VIS_WORDS = {hidden = "hidden", after_due_date = "shown after the due date",
                   after_published = "shown once grades are published"}

-- CHECKS.md: the visible checks, the others counted, and how to run them
local function checks_md(lab, with_lab, where, sub)
  local pts = require("lab.report").pts
  local lines = {"# " .. lab.name .. ": how your work is checked", "",
    format("%d checks, %s points in all. Each failed check says what it expected, what your program " ..
      "did, a hint, and the command that runs that check again.", #lab.checks, pts(lab.max_score)), "",
    "| check | points | what it checks |", "|---|---:|---|"}
  local other = {}
  for _, c in ipairs(lab.checks) do
    if c.visibility == "visible" then
      lines[#lines + 1] = format("| %s | %s | %s |", c.name, pts(c.points),
        ((c.description or ""):gsub("|", "\\|")))
    else
      local o = other[c.visibility] or {n = 0, points = 0}
      o.n, o.points = o.n + 1, o.points + c.points
      other[c.visibility] = o
    end
  end
  lines[#lines + 1] = ""
  for _, v in ipairs{"hidden", "after_due_date", "after_published"} do
    local o = other[v]
    if o then
      lines[#lines + 1] = format("%d more check%s (%s points): their results are %s.", o.n,
        o.n == 1 and "" or "s", pts(o.points), VIS_WORDS[v])
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "## Running the checks yourself"
  lines[#lines + 1] = ""
  if with_lab then
    lines[#lines + 1] = "Every check of this lab is visible, so its checks (`" .. where .. "`) come with it. " ..
      "With wirelab installed, from this directory:"
    lines[#lines + 1] = ""
    lines[#lines + 1] = "    wirelab grade " .. where .. " " .. sub .. "        # or the directory of your own work"
    lines[#lines + 1] = ""
    lines[#lines + 1] = "The grader runs the same checks, with its own random payloads."
  else
    lines[#lines + 1] = "Some checks of this lab are not visible, and their code would show their inputs, " ..
      "so the lab's checks are not included here: they run when you submit. Test your program by hand " ..
      "(with `nc 127.0.0.1 PORT` or a client of your own) before you submit."
  end
  return concat(lines, "\n") .. "\n"
end

local function readme(lab)
  local own = read(lab.dir .. "/README.md")
  if own then return own end
  return format("# %s\n\n%s\n\nCHECKS.md lists how your work is checked.\n", lab.name, lab.description)
end

-- ---- pack ---------------------------------------------------------------------

local function pack(lab, opts)
  local places = cli.places()
  if not places.source then
    fail("wirelab's sources are not beside this binary (" .. cli.self() .. "): pack runs from a " ..
      "source tree's build or from an installation made by `make install`")
  end
  local templates = places.labs or places.installed_labs
  local gs = templates and templates .. "/gradescope"
  local gh = templates and templates .. "/github-classroom/.github/workflows/classroom.yml"
  if not (gs and exists(gs .. "/setup.sh") and exists(gs .. "/run_autograder") and exists(gh)) then
    fail("the platform templates (labs/gradescope, labs/github-classroom) are not beside this binary")
  end
  local name = lab.name
  if not name:find("^[%w_][%w_.-]*$") then fail("the lab's name '" .. name .. "' cannot name a file") end
  local outdir = opts.output
  mkdir(outdir)
  outdir = fs.realpath(outdir)

  local stage = (run{"mktemp", "-d", "/tmp/wirelab-pack.XXXXXX"}):gsub("%s+$", "")
  local ok, err = pcall(function()
    local tarball = stage .. "/wirelab-src.tar.gz"
    mkdir(stage .. "/src")
    source_tarball(places.source, stage .. "/src", tarball)
    local lab_is_lab_lua = lab.path:match("[^/]+$") == "lab.lua"
    local function put_lab(dst, skip)
      copy_dir(lab.dir, dst, skip)
      if not lab_is_lab_lua then run{"cp", "--", lab.path, dst .. "/lab.lua"} end
    end
    local made = {}
    local function zip(dir, file, what)
      local tmp = stage .. "/" .. file
      run({"zip", "-q", "-r", "-X", tmp, "."}, dir)
      run{"mv", "-f", "--", tmp, outdir .. "/" .. file}
      made[#made + 1] = format("%s/%s  %s", outdir, file, what)
    end

    -- Gradescope's autograder
    local ag = stage .. "/autograder"
    put_lab(ag .. "/lab")
    run{"cp", "--", gs .. "/setup.sh", gs .. "/run_autograder", tarball, ag .. "/"}
    run{"chmod", "755", ag .. "/setup.sh", ag .. "/run_autograder"}
    zip(ag, name .. "-autograder.zip", "Gradescope: upload as the autograder (Ubuntu 22.04 base image)")

    -- the students'
    local with_lab = all_visible(lab)
    local st = stage .. "/student/" .. name
    if with_lab then
      put_lab(st, {solution = true})
    else
      mkdir(st)
      if exists(lab.dir .. "/starter") then copy_dir(lab.dir .. "/starter", st .. "/starter") end
    end
    write(st .. "/README.md", readme(lab))
    write(st .. "/CHECKS.md", checks_md(lab, with_lab, ".", "starter"))
    zip(stage .. "/student", name .. "-student.zip", with_lab and "students: README, starter/, the checks"
      or "students: README, starter/ (no lab.lua: some checks are not visible)")

    -- GitHub Classroom's template repository
    local cr = stage .. "/classroom"
    mkdir(cr .. "/.github/workflows", cr .. "/.github/wirelab")
    put_lab(cr .. "/.github/wirelab/lab", {solution = true, starter = true})
    run{"cp", "--", gh, cr .. "/.github/workflows/classroom.yml"}
    run{"cp", "--", tarball, cr .. "/.github/wirelab/"}
    if exists(lab.dir .. "/starter") then copy_dir(lab.dir .. "/starter", cr) end
    write(cr .. "/README.md", readme(lab))
    write(cr .. "/CHECKS.md", checks_md(lab, true, ".github/wirelab/lab", "."))
    zip(cr, name .. "-classroom.zip", "GitHub Classroom: a template repository")
    if not with_lab then
      io.stderr:write("wirelab lab: warning: ", name, " has checks that are not visible; a GitHub Classroom ",
        "repository shows its students everything in it, those checks' code too\n")
    end
    print(concat(made, "\n"))
  end)
  run{"rm", "-rf", "--", stage}
  if not ok then error(err, 0) end
end

-- main(path, {output=}) -> exit status
function M.main(path, opts)
  local lab, err = lab_mod.load(path)
  if not lab then return cli.failed("cannot load the lab: " .. tostring(err)) end
  local ok, e = pcall(pack, lab, opts)
  if ok then return 0 end
  if getmetatable(e) == Failed then return cli.failed("pack: " .. e.msg) end
  return cli.failed("pack: " .. tostring(e))
end

return M
