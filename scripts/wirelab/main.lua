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
  --trace        write every socket call and its result to stderr, timed
                 from the start: 0.004 sock#1 accept() -> conn#2 ...
  --sandbox      run untrusted code: no binary chunks, os.execute, io.popen,
                 package.loadlib, debug or process; bounded CPU time and
                 Lua memory (--cpu SECS, default 60; --mem MIB, default 256)
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

-- Where chunks of the command line run: _G, or the sandbox's own
-- environment under --sandbox (scripts/wirelab/sandbox.lua).
local ENV = _G

-- -e CODE
local function run_code(code)
  local chunk, err = load(code, "=(command line)", "t", ENV)
  if not chunk then error(err, 0) end
  chunk()
end

-- -l MODULE: the global is the name's first part ("http" for http.server)
local function require_global(name)
  ENV[name:match("^[^.]+")] = ENV.require(name)
end

-- --trace, --sandbox, --cpu SECS, --mem MIB (or $WIRELAB_SANDBOX_CPU,
-- _MEM), read before any other option runs: nothing may run unbounded
-- first, and every socket call of -e and -l is traced too. Returns nil
-- or a usage message.
local EARLY_OPTS = {["--sandbox"] = 0, ["--cpu"] = 1, ["--mem"] = 1, ["--trace"] = 0}
local TAKES_ARG = {["-e"] = true, ["-l"] = true}

local function early_options(argv)
  local on, trace, vals, i = false, false, {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "-m" or a == "test" or a == "--" or a:sub(1, 1) ~= "-" or a == "-" then break end
    if a == "--sandbox" then on = true
    elseif a == "--trace" then trace = true
    elseif EARLY_OPTS[a] then
      local v = tonumber(argv[i + 1] or "")
      if not v or v <= 0 then return "'" .. a .. "' needs a positive number" end
      vals[a:sub(3)] = v
      i = i + 1
    elseif TAKES_ARG[a] then i = i + 1 end
    i = i + 1
  end
  if trace then require("wirelab.trace").enable() end
  if not on then
    if next(vals) then return "'--cpu' and '--mem' go with '--sandbox'" end
    return nil
  end
  local sandbox = require "wirelab.sandbox"
  local env_cpu = tonumber(os.getenv("WIRELAB_SANDBOX_CPU") or "")
  local env_mem = tonumber(os.getenv("WIRELAB_SANDBOX_MEM") or "")
  ENV = sandbox.enable{cpu = vals.cpu or env_cpu or sandbox.DEFAULT_CPU,
                       mem = vals.mem or env_mem or sandbox.DEFAULT_MEM}
  return nil
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
    elseif EARLY_OPTS[a] then          -- done by early_options
      i = i + 1 + EARLY_OPTS[a]
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
  ENV.arg = script
  local chunk, err
  if path == "-" then
    chunk, err = load(io.stdin:read("a"), "=stdin", "t", ENV)
  else
    chunk, err = loadfile(path, "t", ENV)
  end
  if not chunk then io.stderr:write("wirelab: ", err, "\n") end
  return chunk
end

-- With -i, or when nothing ran: the prompt for -i or on a terminal;
-- otherwise a script on standard input, as lua does.
local function prompt_or_stdin(interactive)
  local repl = require "wirelab.repl"
  if interactive or repl.isatty() then return repl.run() end
  local chunk, err = load(io.stdin:read("a"), "=stdin", "t", ENV)
  if not chunk then error(err, 0) end
  chunk()
  return 0
end

return function(argv)
  local state = {ran = false, interactive = false}
  local bad = early_options(argv)
  if bad then return die(bad) end
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
