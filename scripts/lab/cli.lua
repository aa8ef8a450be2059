-- lab.cli: `wirelab lab list|new|pack` (docs/cli.md): the labs found next
-- to this binary (its source tree's labs/, or PREFIX/share/wirelab/labs
-- where `make install` puts them) and under --labs DIR, a new lab from a
-- template (lab.scaffold), and the bundles the grading platforms take
-- (lab.pack). Exit status as `wirelab grade`: 0 when it worked, 1 when it
-- could not, 2 for a usage error.
local fs = require "wirelab.fs"
local process = require "process"

local ipairs, tostring, tonumber = ipairs, tostring, tonumber
local format, concat = string.format, table.concat

local M = {}

M.USAGE = [[
usage: wirelab lab list [--labs DIR]...
       wirelab lab new NAME [DIR]
       wirelab lab pack LAB [--output DIR] [--labs DIR]...
The labs wirelab ships, a new lab, and the bundles grading platforms take.
  list            every lab found: under each --labs DIR, then the labs/
                  of the source tree this binary was built in, then the
                  installed ones (PREFIX/share/wirelab/labs): name,
                  points, checks, description and where it is
  new NAME [DIR]  a new lab in DIR (default: ./NAME): lab.lua with one
                  example check, README.md, starter/ and solution/
  pack LAB        writes NAME-autograder.zip (Gradescope: setup.sh,
                  run_autograder, the lab with its solution, wirelab's
                  sources), NAME-student.zip (README.md, CHECKS.md,
                  starter/, and the lab's checks only when every check is
                  visible) and NAME-classroom.zip (a GitHub Classroom
                  template repository); LAB is a lab directory, a lab
                  file, or a name that `list` shows
  --labs DIR      look for labs in DIR too, before the others
  --output DIR    where pack writes its zips (default: the current directory)
Exit status: 0 when it worked, 1 when it could not, 2 for a usage error.]]

local function usage_error(msg)
  io.stderr:write("wirelab lab: ", msg, "\n", "try 'wirelab lab --help'\n")
  return 2
end

local function failed(msg)
  io.stderr:write("wirelab lab: ", msg, "\n")
  return 1
end
M.failed = failed

-- ---- where things are ------------------------------------------------------

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function is_dir(p)
  local st = fs.stat(p)
  return st ~= nil and st.kind == "directory"
end

local function is_file(p)
  local st = fs.stat(p)
  return st ~= nil and st.kind == "file"
end

-- this binary, through /proc: `arg` is not set for subcommands, and a
-- name looked up in PATH would say nothing about where it lives
function M.self()
  return fs.realpath("/proc/self/exe") or "wirelab"
end

-- places() -> {source=, labs=, share=}: the source tree this binary was
-- built in (ROOT/build/wirelab, ROOT has the Makefile and runtime/) or
-- the installation it belongs to (PREFIX/bin/wirelab, with
-- PREFIX/share/wirelab/{labs,src}); each field nil where it is not there
function M.places()
  local root = dirname(dirname(M.self()))
  local p = {}
  if is_file(root .. "/Makefile") and is_file(root .. "/runtime/wl.h") then
    p.source = root
    p.labs = is_dir(root .. "/labs") and root .. "/labs" or nil
    p.kind = "source tree"
  end
  local share = root .. "/share/wirelab"
  if is_dir(share) then
    p.share = share
    p.installed_labs = is_dir(share .. "/labs") and share .. "/labs" or nil
    if not p.source and is_file(share .. "/src/Makefile") then p.source = share .. "/src" end
  end
  p.root = root
  return p
end

-- lab_dirs(extra) -> {{dir=, kind=}...}: where labs are looked for, in order
function M.lab_dirs(extra)
  local dirs, seen = {}, {}
  local function add(d, kind)
    local real = d and fs.realpath(d)
    if real and not seen[real] then
      seen[real] = true
      dirs[#dirs + 1] = {dir = d, kind = kind}
    end
  end
  for _, d in ipairs(extra or {}) do add(d, "--labs") end
  local p = M.places()
  add(p.labs, "the source tree")
  add(p.installed_labs, "installed")
  return dirs
end

-- A lab file requires "lab"; other lab.lua files (labs/echo's demo
-- script) are programs, and are not run to find out.
local function looks_like_lab(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local text = f:read(65536) or ""
  f:close()
  return text:find("require%s*%(?%s*[\"']lab[\"']") ~= nil
end

local MARK = "--wirelab-lab-summary--"

-- summary(path) -> {name=, points=, checks=, hidden=, description=} or
-- nil, why. The lab is loaded in a child wirelab, under a time bound, so
-- a lab file that prints, hangs or crashes spoils no listing.
function M.summary(path)
  local code = ([[
local lab, err = require("lab").load(%q)
local function one(s) return (tostring(s):gsub("%%s+", " ")) end
io.write("\n", %q, "\n")
if not lab then io.write("error\n", one(err), "\n") return end
local hidden = 0
for _, c in ipairs(lab.checks) do if c.visibility ~= "visible" then hidden = hidden + 1 end end
io.write("ok\n", one(lab.name), "\n", require("lab.report").pts(lab.max_score), "\n", #lab.checks, "\n",
  hidden, "\n", one(lab.description), "\n")
]]):format(path, MARK)
  local r = process.run{M.self(), "-e", code, timeout = 20}
  if r.timed_out then return nil, "loading it did not finish within 20 s" end
  local out = r.stdout
  local at = out:find("\n" .. MARK .. "\n", 1, true)
  if not at then
    local err = r.stderr:match("^%s*(.-)%s*$")
    return nil, err ~= "" and err:gsub("\n.*", "") or ("it ended with status " .. tostring(r.code))
  end
  local lines = {}
  for l in out:sub(at + #MARK + 2):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  if lines[1] == "error" then return nil, lines[2] end
  return {name = lines[2], points = lines[3], checks = tonumber(lines[4]), hidden = tonumber(lines[5]),
          description = lines[6] or ""}
end

-- the labs of one directory: {{dir=, path=}...}, by name
local function labs_in(dir)
  local list = {}
  for _, e in ipairs(fs.listdir(dir) or {}) do
    local path = dir .. "/" .. e.name .. "/lab.lua"
    if e.isdir and e.name:sub(1, 1) ~= "." and is_file(path) and looks_like_lab(path) then
      list[#list + 1] = {dir = dir .. "/" .. e.name, path = path, entry = e.name}
    end
  end
  table.sort(list, function(a, b) return a.entry < b.entry end)
  return list
end

-- resolve(arg, extra) -> the lab's path (file or directory), or nil, why:
-- a path as it is, else a lab's name (or its directory's) among the dirs
function M.resolve(name, extra)
  if fs.stat(name) then return name end
  if name:find("/", 1, true) then return nil, "no lab at '" .. name .. "'" end
  for _, d in ipairs(M.lab_dirs(extra)) do
    for _, l in ipairs(labs_in(d.dir)) do
      if l.entry == name then return l.dir end
    end
  end
  for _, d in ipairs(M.lab_dirs(extra)) do
    for _, l in ipairs(labs_in(d.dir)) do
      local s = M.summary(l.path)
      if s and s.name == name then return l.dir end
    end
  end
  return nil, "no lab named '" .. name .. "' (wirelab lab list shows them)"
end

-- ---- list ------------------------------------------------------------------

local function list(o)
  for _, d in ipairs(o.labs) do
    if not is_dir(d) then return failed("--labs " .. d .. ": no such directory") end
  end
  local dirs = M.lab_dirs(o.labs)
  local problems, seen, any = 0, {}, false
  local out = {}
  for _, d in ipairs(dirs) do
    local rows = {}
    for _, l in ipairs(labs_in(d.dir)) do
      local s, why = M.summary(l.path)
      if s then
        local note = seen[s.name] and format("  (shadowed: '%s' names the lab above)", s.name) or ""
        seen[s.name] = true
        rows[#rows + 1] = {s.name, s.points .. (s.points == "1" and " point" or " points"),
          s.checks .. (s.checks == 1 and " check" or " checks") ..
            (s.hidden > 0 and format(" (%d not visible)", s.hidden) or ""),
          s.description .. note}
      else
        problems = problems + 1
        io.stderr:write("wirelab lab: ", l.path, ": cannot load: ", tostring(why), "\n")
        rows[#rows + 1] = {l.entry, "-", "-", "cannot load: " .. tostring(why)}
      end
    end
    out[#out + 1] = format("%s (%s):%s", d.dir, d.kind, #rows == 0 and " no labs" or "")
    local w = {0, 0, 0}
    for _, r in ipairs(rows) do
      for i = 1, 3 do w[i] = math.max(w[i], utf8.len(r[i]) or #r[i]) end
    end
    for _, r in ipairs(rows) do
      any = true
      out[#out + 1] = (format("  %-" .. w[1] .. "s  %" .. w[2] .. "s  %-" .. w[3] .. "s  %s", r[1], r[2], r[3], r[4])
        :gsub("%s+$", ""))
    end
  end
  if #dirs == 0 then
    out[#out + 1] = "no lab directories found: this binary has no source tree and no installation " ..
      "beside it (" .. M.places().root .. "); name one with --labs DIR"
  elseif not any then
    out[#out + 1] = "no labs found"
  end
  io.stdout:write(concat(out, "\n"), "\n")
  return problems > 0 and 1 or 0
end

-- ---- the command line ----------------------------------------------------------

local function parse(args)
  local o = {labs = {}, words = {}}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%a-]+)=(.*)$")
    if not name then name = a end
    if name == "--labs" or name == "--output" or name == "-o" then
      if value == nil then
        value = args[i + 1]
        if value == nil then return nil, "option " .. a .. " needs a value" end
        i = i + 1
      end
      if name == "--labs" then o.labs[#o.labs + 1] = value else o.output = value end
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option '" .. a .. "'"
    else o.words[#o.words + 1] = a end
    i = i + 1
  end
  return o
end

function M.main(args)
  local o, msg = parse(args)
  if not o then return usage_error(msg) end
  local cmd = table.remove(o.words, 1)
  if o.help or cmd == "help" then print(M.USAGE); return 0 end
  if cmd == nil then return usage_error("a command expected: list, new or pack") end
  if cmd == "list" then
    if #o.words > 0 then return usage_error("list takes no argument ('" .. o.words[1] .. "')") end
    if o.output then return usage_error("list takes no --output") end
    return list(o)
  elseif cmd == "new" then
    if #o.words < 1 then return usage_error("new: a NAME expected") end
    if #o.words > 2 then return usage_error("new takes NAME [DIR]") end
    if o.output or #o.labs > 0 then return usage_error("new takes no option") end
    return require("lab.scaffold").new(o.words[1], o.words[2])
  elseif cmd == "pack" then
    if #o.words ~= 1 then return usage_error("pack takes one LAB") end
    local path, why = M.resolve(o.words[1], o.labs)
    if not path then return failed(why) end
    return require("lab.pack").main(path, {output = o.output or "."})
  end
  return usage_error("unknown command '" .. cmd .. "' (list, new, pack)")
end

return M
