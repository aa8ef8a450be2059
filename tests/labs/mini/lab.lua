-- A small lab for the grader's own specs: one check of every kind, fast.
-- The submission is an executable `server` that prints what it is given
-- in MODE, so one program can play well or badly.
local lab = require "lab"
local wirelab = require "wirelab"

local function run(t, mode)
  local p = t:start_submission{mode}
  local deadline = wirelab.now() + 2
  while p:alive() and wirelab.now() < deadline do wirelab.sleep(0.01) end
  return p
end

return lab.new{
  name = "mini",
  submission = {"executable"},
  timeout = 5,
  checks = {
    {name = "passes", points = 1, run = function(t) t:log("fine") end},
    {name = "fails", points = 2, hint = "the hint: <b>&\"'",
     run = function(t)
       local p = run(t, "crash")
       t:eq(p:stdout(), "expected", "what the program printed")
     end},
    {name = "partial", points = 3, run = function(t) t:score(1, 3) end},
    {name = "depends-on-fails", points = 1, depends = "fails", run = function() end},
    {name = "hidden-fails", points = 1, visibility = "hidden",
     run = function(t) t:fail("the secret input was 42") end},
    {name = "times-out", points = 1, timeout = 0.5,
     run = function(t)
       t:step("waiting for something that never comes")
       wirelab.sleep(10)
     end},
    {name = "lab-bug", points = 1, run = function() local x = nil; return x.y end},
    {name = "crashes", points = 1,
     run = function(t)
       local p = t:start_submission{"crash"}
       t:wait_port(p.port, 2)
     end},
  },
}
