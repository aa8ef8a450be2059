-- wirelab.repl: the interactive prompt (`wirelab`, `wirelab -i SCRIPT`).
-- It reads in a task, so while it waits for a line the loop runs on:
-- servers started with :start() or wirelab.spawn keep serving. A line is
-- an expression (its values are printed, as lua 5.4 does) or statements;
-- an unfinished one is continued with ">> ". From a pipe it reads lines
-- without prompts, so a session can be scripted.
local rl = require "wirelab.readline"
local reader = require "wirelab.reader"
local pretty = require "wirelab.pretty"

local M = {}

M.isatty = rl.isatty

local pack, tostring = table.pack, tostring

-- load(src) as an expression first ("1 + 1" prints 2), then as statements
local function compile(src)
  local chunk = load("return " .. src, "=stdin", "t")
  if chunk then return chunk end
  return load(src, "=stdin", "t")
end

-- an error that only more lines can fix
local function incomplete(err)
  return err:find("<eof>$") ~= nil
end

-- the traceback of an error at the prompt, without the prompt's own frames
local function traceback(e)
  if type(e) ~= "string" and getmetatable(e) == nil then e = tostring(e) end
  local tb = debug.traceback(e, 2)
  if type(tb) ~= "string" then return tb end
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- the values of an expression, as wirelab.pretty prints them
local function show(res)
  local out = {}
  for i = 2, res.n do out[#out + 1] = pretty.show(res[i]) end
  io.stdout:write(table.concat(out, "\t"), "\n")
  io.stdout:flush()
end

-- The next line: edited on a terminal (libedit), else from the one reader
-- over stdin; nil at EOF.
local piped
local function read_line(prompt)
  if rl.isatty() then return rl.readline(prompt) end
  piped = piped or reader.new(rl.read)
  return piped:read("l")
end

-- One chunk from the prompt, run: false at EOF.
local function step(prompt, more)
  local line = read_line(prompt)
  if line == nil then return false end
  local src = line
  local chunk, err = compile(src)
  while not chunk and incomplete(err) do
    local next_line = read_line(more)
    if next_line == nil then break end
    src = src .. "\n" .. next_line
    chunk, err = compile(src)
  end
  if not chunk then
    io.stderr:write(err, "\n")
  else
    local res = pack(xpcall(chunk, traceback))
    if not res[1] then
      io.stderr:write(tostring(res[2]), "\n")
    elseif res.n > 1 then
      show(res)
    end
  end
  io.stderr:flush()
  return true
end

-- run(): until EOF (Ctrl-D); returns the exit status. Ctrl-C stops what
-- the prompt runs (a loop, a recv) or drops the line being typed; the
-- process and its servers go on.
function M.run()
  local tty = rl.isatty()
  local prompt, more = tty and "> " or "", tty and ">> " or ""
  if tty then
    io.stdout:write(require("wirelab").version or "wirelab", "  (Ctrl-D to leave)\n")
  end
  rl.catch_sigint(true)
  while true do
    local ok, going = pcall(step, prompt, more)
    if ok and not going then break end
    if not ok then            -- interrupted outside what the chunk ran
      io.stdout:write(tty and "\n" or "")
      io.stdout:flush()
    end
  end
  rl.catch_sigint(false)
  if tty then io.stdout:write("\n") end
  rl.close()
  return 0
end

return M
