-- wirelab.main: the command line (API.md section 9), run as the main task.
-- Returns the process exit status.
local wirelab = require "wirelab"

local USAGE = [=[
usage: wirelab [options] [SCRIPT [ARGS...]]
       wirelab test [PATHS...]
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
Exit status: 0, 1 when the script raised an error, or os.exit's status.
]=]

local function die(msg)
  io.stderr:write("wirelab: ", msg, "\n", "try 'wirelab --help'\n")
  return 2
end

local function run_chunk(chunk, argv, first)
  return chunk(table.unpack(argv, first, #argv))
end

return function(argv)
  local i, n = 1, #argv
  local ran, interactive = false, false
  while i <= n do
    local a = argv[i]
    if a == "-e" then
      if i == n then return die("'-e' needs an argument") end
      local chunk, err = load(argv[i + 1], "=(command line)", "t")
      if not chunk then error(err, 0) end
      chunk()
      ran, i = true, i + 2
    elseif a == "-l" then
      if i == n then return die("'-l' needs an argument") end
      local name = argv[i + 1]
      _G[name:match("^[^.]+")] = require(name)
      i = i + 2
    elseif a == "-m" then
      if i == n then return die("'-m' needs a module name") end
      local mod = require(argv[i + 1])
      local main = type(mod) == "table" and mod.main
      if type(main) ~= "function" then
        return die("module '" .. argv[i + 1] .. "' has no main function to run")
      end
      local args = table.move(argv, i + 2, n, 1, {})
      local rc = main(args)
      return math.type(rc) == "integer" and rc or 0
    elseif a == "-i" then
      interactive, i = true, i + 1
    elseif a == "-v" or a == "--version" then
      print(wirelab.version .. " (" .. _VERSION .. ")")
      return 0
    elseif a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return 0
    elseif a == "test" and not ran then
      return require("wirelab.test").run(table.move(argv, i + 1, n, 1, {}), argv[0])
    elseif a == "--" then
      i = i + 1
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return die("unknown option '" .. a .. "'")
    else
      break
    end
  end
  if i <= n then
    local path = argv[i]
    local script = {[-1] = argv[0], [0] = path}
    table.move(argv, i + 1, n, 1, script)
    _G.arg = script
    local chunk, err
    if path == "-" then
      chunk, err = load(io.stdin:read("a"), "=stdin", "t")
    else
      chunk, err = loadfile(path, "t")
    end
    if not chunk then
      io.stderr:write("wirelab: ", err, "\n")
      return 1
    end
    -- an integer returned by the script is its exit status
    local rc = run_chunk(chunk, argv, i + 1)
    if math.type(rc) == "integer" and not interactive then return rc end
    ran = true
  end
  if interactive or not ran then
    local repl = require "wirelab.repl"
    -- the prompt for -i, or a terminal; otherwise a script on standard
    -- input, as lua does
    if interactive or repl.isatty() then return repl.run() end
    local chunk, err = load(io.stdin:read("a"), "=stdin", "t")
    if not chunk then error(err, 0) end
    chunk()
  end
  return 0
end
