-- wirelab.main: the command line (API.md section 9), run as the main task.
-- Returns the process exit status.
local wirelab = require "wirelab"

local USAGE = [=[
usage: wirelab [options] [SCRIPT [ARGS...]]
       wirelab test [PATHS...]
       wirelab grade LAB [SUBMISSION...] [OPTIONS]
       wirelab lab list|new|pack ...
Run a lab script on wirelab's event loop (Lua 5.4 with Python-style sockets).
  SCRIPT ARGS    run SCRIPT with `arg` and `...` set as lua does ('-' = stdin)
  -e CODE        run CODE
  -l MODULE      require MODULE into the global of the same name
  -m MODULE ARGS run a module as a program (e.g. -m http.server 8000)
  -i             enter the interactive prompt after the script (with no
                 SCRIPT and a terminal, the prompt is where wirelab starts);
                 the event loop keeps running while the prompt waits
  -v, --version  print the version
  -h, --help     print this help
  test [PATHS]   run busted specs (default: tests/) inside the runtime
  grade LAB ...  grade submissions against a lab (wirelab grade --help)
  lab ...        the labs shipped, a new lab, bundles (wirelab lab --help)
Exit status: 0, 1 when the script raised an error, or os.exit's status.
]=]

local function die(msg)
  io.stderr:write("wirelab: ", msg, "\n", "try 'wirelab --help'\n")
  return 2
end

-- -e CODE
local function run_code(code)
  local chunk, err = load(code, "=(command line)", "t")
  if not chunk then error(err, 0) end
  chunk()
end

-- -l MODULE: the global is the name's first part ("http" for http.server)
local function require_global(name)
  _G[name:match("^[^.]+")] = require(name)
end

-- -m MODULE ARGS: the module's main(args) is the program; its status
local function run_module(name, args)
  local mod = require(name)
  local main = type(mod) == "table" and mod.main
  if type(main) ~= "function" then
    return die("module '" .. name .. "' has no main function to run")
  end
  local rc = main(args)
  return math.type(rc) == "integer" and rc or 0
end

-- The options before SCRIPT, each run as it comes. Returns the index of
-- SCRIPT (#argv + 1 for none), or nil and the exit status when an option
-- ends the program (-m, -v, -h, test, a usage error).
local function run_options(argv, state)
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "-e" then
      if i == n then return nil, die("'-e' needs an argument") end
      run_code(argv[i + 1])
      state.ran, i = true, i + 2
    elseif a == "-l" then
      if i == n then return nil, die("'-l' needs an argument") end
      require_global(argv[i + 1])
      i = i + 2
    elseif a == "-m" then
      if i == n then return nil, die("'-m' needs a module name") end
      return nil, run_module(argv[i + 1], table.move(argv, i + 2, n, 1, {}))
    elseif a == "-i" then
      state.interactive, i = true, i + 1
    elseif a == "-v" or a == "--version" then
      print(wirelab.version .. " (" .. _VERSION .. ")")
      return nil, 0
    elseif a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return nil, 0
    elseif a == "test" and not state.ran then
      return nil, require("wirelab.test").run(table.move(argv, i + 1, n, 1, {}), argv[0])
    elseif a == "grade" and not state.ran then
      return nil, require("lab.grade").main(table.move(argv, i + 1, n, 1, {}))
    elseif a == "lab" and not state.ran then
      return nil, require("lab.cli").main(table.move(argv, i + 1, n, 1, {}))
    elseif a == "--" then
      return i + 1
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, die("unknown option '" .. a .. "'")
    else
      return i
    end
  end
  return i
end

-- SCRIPT ARGS: `arg` and `...` as lua sets them. The chunk, or nil when it
-- does not load (the error is written).
local function load_script(argv, i)
  local path = argv[i]
  local script = {[-1] = argv[0], [0] = path}
  table.move(argv, i + 1, #argv, 1, script)
  _G.arg = script
  local chunk, err
  if path == "-" then
    chunk, err = load(io.stdin:read("a"), "=stdin", "t")
  else
    chunk, err = loadfile(path, "t")
  end
  if not chunk then io.stderr:write("wirelab: ", err, "\n") end
  return chunk
end

-- With -i, or when nothing ran: the prompt for -i or on a terminal;
-- otherwise a script on standard input, as lua does.
local function prompt_or_stdin(interactive)
  local repl = require "wirelab.repl"
  if interactive or repl.isatty() then return repl.run() end
  local chunk, err = load(io.stdin:read("a"), "=stdin", "t")
  if not chunk then error(err, 0) end
  chunk()
  return 0
end

return function(argv)
  local state = {ran = false, interactive = false}
  local i, status = run_options(argv, state)
  if not i then return status end
  if i <= #argv then
    local chunk = load_script(argv, i)
    if not chunk then return 1 end
    -- an integer returned by the script is its exit status
    local rc = chunk(table.unpack(argv, i + 1, #argv))
    if math.type(rc) == "integer" and not state.interactive then return rc end
    state.ran = true
  end
  if state.interactive or not state.ran then return prompt_or_stdin(state.interactive) end
  return 0
end
