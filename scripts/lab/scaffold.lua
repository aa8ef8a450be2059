-- lab.scaffold: `wirelab lab new NAME [DIR]`, a new lab that works at once:
-- lab.lua with one example check, README.md for students, starter/ (which
-- fails the check) and solution/ (which passes it), so that `wirelab grade
-- DIR` gives full marks before the instructor has changed a line.
local fs = require "wirelab.fs"
local process = require "process"

local format = string.format

local M = {}

local LAB = [=[
-- %s: a lab for `wirelab grade`. The student writes a TCP server that
-- listens on 127.0.0.1 at the port given as its first argument and sends
-- back every line it receives. Change the description, the checks and
-- the files beside this one to make it your own lab.
--   wirelab grade %s               grades solution/: it must score full marks
--   wirelab grade %s SUBMISSION    grades a student's directory
--   wirelab lab pack %s            the Gradescope, student and GitHub
--                                  Classroom zips (docs/platforms.md)
-- The checks' `t` (start_submission, connect, same_bytes, score, log...)
-- and the lab format are described with the worked example,
-- labs/tcp-echo/lab.lua in wirelab's sources.
local lab = require "lab"

return lab.new{
  name = %q,
  description = "A TCP server that sends back every line a client sends it.",
  -- how a submission is started: the first of these whose file it has
  -- (server.lua as `wirelab server.lua PORT`, server.py as
  -- `python3 server.py PORT`, a Makefile or server.c built first, or an
  -- executable `server`), and the limits its processes run under
  submission = {"lua", "python", "make", "c", "executable",
                limits = {cpu = 10, memory = 256, nproc = 32, nofile = 64, fsize = 16, output = 1}},
  timeout = 10,
  checks = {
    {name = "echoes-a-line", points = 1,
     description = "listens on 127.0.0.1 at the port given as the first argument and sends a line back",
     hint = "bind 127.0.0.1 and the port in argv[1], listen, accept a connection, then recv " ..
            "and send back what you received until the client closes",
     -- visibility = "hidden" keeps a check's feedback (and, in the
     -- student zip, this file) from students; see docs/platforms.md
     run = function(t)
       local p = t:start_submission()
       t:wait_port(p.port, 5)
       local c = t:connect(p.port)
       local line = "hello " .. t.rng:random(1000, 9999) .. "\n"
       t:step("sent " .. lab.show(line))
       c:sendall(line)
       local got = ""
       while #got < #line do
         local d = c:recv(4096)
         if d == "" then break end
         got = got .. d
       end
       t:same_bytes(got, line, "the reply")
     end},
  },
}
]=]

local README = [=[
# %s: a line echo server

Write a server that listens on **127.0.0.1** at the **port given as its first argument** and
sends back every line a client sends it, until that client closes the connection.

Write it in any language. The grader starts it in the first way that fits your submission:

| file | started as |
|---|---|
| `server.lua` | `wirelab server.lua PORT` |
| `server.py` | `python3 server.py PORT` |
| `Makefile` | `make`, then `./server PORT` |
| `server.c` | `cc -O2 -o server server.c`, then `./server PORT` |
| `server` (executable) | `./server PORT` |

`starter/server.lua` is a start: it accepts connections but sends nothing back.

What is checked (1 point):

| check | points | what it checks |
|---|---:|---|
| echoes-a-line | 1 | listens on 127.0.0.1 at the port given as the first argument and sends a line back |

Every failure says what was expected, what your server did, a hint, and the command that runs
that check again.

Your server runs with limits: 10 s of CPU, 256 MiB of memory, 32 processes, 64 open files.
]=]

local STARTER = [=[
-- server.lua: the start of your server. Run it as `wirelab server.lua PORT`.
local socket = require "socket"

local port = tonumber(arg[1])
local srv = socket.create_server("127.0.0.1", port)
while true do
  local conn = srv:accept()
  -- TODO: read what the client sends (conn:recv) and send it back
  -- (conn:sendall) until recv returns "" (the client has closed)
  conn:close()
end
]=]

local SOLUTION = [=[
-- server.lua: the reference solution; `wirelab grade ..` must give it full marks.
local socket = require "socket"
local wirelab = require "wirelab"

local srv = socket.create_server("127.0.0.1", tonumber(arg[1]))
while true do
  local conn = srv:accept()
  -- a task per connection, so one slow client holds up no other
  wirelab.spawn(function()
    while true do
      local data = conn:recv(65536)
      if data == "" then break end
      conn:sendall(data)
    end
    conn:close()
  end)
end
]=]

local function write(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

-- new(name[, dir]) -> exit status
function M.new(name, dir)
  local cli = require "lab.cli"
  if not name:find("^[%w_][%w_.-]*$") then
    io.stderr:write("wirelab lab: new: a NAME of letters, digits, '_', '-' and '.' expected, got '",
      name, "'\ntry 'wirelab lab --help'\n")
    return 2
  end
  dir = (dir or name):gsub("(.)/+$", "%1")
  local st = fs.stat(dir)
  if st and st.kind ~= "directory" then return cli.failed(dir .. " exists and is not a directory") end
  if st and #(fs.listdir(dir) or {}) > 0 then return cli.failed(dir .. " exists and is not empty") end
  local r = process.run{"mkdir", "-p", "--", dir .. "/starter", dir .. "/solution", timeout = 10}
  if r.code ~= 0 then return cli.failed("cannot create " .. dir .. ": " .. r.stderr) end
  local files = {
    {"lab.lua", format(LAB, name, dir, dir, dir, name)},
    {"README.md", format(README, name)},
    {"starter/server.lua", STARTER},
    {"solution/server.lua", SOLUTION},
  }
  for _, f in ipairs(files) do
    local ok, err = write(dir .. "/" .. f[1], f[2])
    if not ok then return cli.failed("cannot write " .. dir .. "/" .. f[1] .. ": " .. tostring(err)) end
  end
  local lab, err = require("lab").load(dir)
  if not lab then return cli.failed("the new lab does not load (a bug of wirelab): " .. tostring(err)) end
  print(format("created %s: lab.lua, README.md, starter/server.lua, solution/server.lua", dir))
  print(format("next: wirelab grade %s  (grades solution/, which must score full marks)", dir))
  return 0
end

return M
