-- wirelab.test: `wirelab test [PATHS]` runs busted specs inside the
-- runtime, in the main task, so specs call blocking functions directly.
local fs = require "wirelab.fs"

local M = {}

-- busted's options that take the next argument as their value
local VALUED = {}
for o in ([[-C --directory -f --config-file --coverage-config-file -t --tags
  --exclude-tags -m --lpath --cpath -r --run --loaders --helper -o --output -p
  --pattern --exclude-pattern --filter --filter-out --exclude-names-file --name
  -e --seed --repeat --lang -Xoutput -Xhelper]]):gmatch("%S+") do VALUED[o] = true end

-- The directory of a spec path, or the one above it, that holds a
-- support.lua (tests/support.lua serves tests/ and tests/reliability/):
-- specs share their helpers through `require "support"`.
local function support_dir(path)
  local st = fs.stat(path)
  local dir = (st and st.kind == "directory") and path or (path:match("^(.*)/[^/]*$") or ".")
  dir = fs.realpath(dir)
  for _ = 1, 2 do
    if not dir then return nil end
    if fs.stat(dir .. "/support.lua") then return dir end
    dir = dir:match("^(.*)/[^/]+$")
  end
  return nil
end

-- run(args, interpreter): interpreter is this binary's argv[0], given to
-- specs as arg[-1] (as lua does) so they can run it as a subprocess
function M.run(args, interpreter)
  local argv = {"-o", "wirelab.busted_output", "--pattern=_spec"}
  local paths, valued = {}, false
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
    if valued then valued = false
    elseif VALUED[a] then valued = true
    elseif a:sub(1, 1) ~= "-" then paths[#paths + 1] = a end
  end
  if #paths == 0 then
    argv[#argv + 1] = "tests"
    paths[1] = "tests"
  end
  local seen = {}
  for _, p in ipairs(paths) do
    local dir = support_dir(p)
    if dir and not seen[dir] then
      seen[dir] = true
      package.path = dir .. "/?.lua;" .. package.path
    end
  end
  _G.arg = argv
  argv[0] = "wirelab test"
  argv[-1] = interpreter
  local ok, runner = pcall(require, "busted.runner")
  if not ok then
    io.stderr:write("wirelab test: busted is not installed (apt-get install lua-busted)\n", runner, "\n")
    return 2
  end
  -- busted ends with os.exit(failures); the summary line is printed first
  runner({standalone = false})
  return 0
end

return M
