-- wirelab.test: `wirelab test [PATHS]` runs busted specs inside the
-- runtime, in the main task, so specs call blocking functions directly.
local M = {}

-- run(args, interpreter): interpreter is this binary's argv[0], given to
-- specs as arg[-1] (as lua does) so they can run it as a subprocess
function M.run(args, interpreter)
  local argv = {"-o", "wirelab.busted_output", "--pattern=_spec"}
  local paths = 0
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
    if a:sub(1, 1) ~= "-" then paths = paths + 1 end
  end
  if paths == 0 then argv[#argv + 1] = "tests" end
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
