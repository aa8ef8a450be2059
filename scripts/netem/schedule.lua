-- netem.schedule: things to do at given times (a delayed datagram's
-- departure), served in time order by one task. A binary heap keyed on
-- (due, order of arrival), so two datagrams due at once leave in the order
-- they came; an event wakes the task early when something sooner arrives.
local wirelab = require "wirelab"

local now, floor = wirelab.now, math.floor

local M = {}

local Schedule = {}
Schedule.__index = Schedule

-- a timer wait is rounded to milliseconds: closer than this is now
local SLACK = 0.0005

local function less(a, b)
  return a.due < b.due or (a.due == b.due and a.n < b.n)
end

local function push(h, e)
  local i = #h + 1
  h[i] = e
  while i > 1 do
    local p = floor(i / 2)
    if not less(h[i], h[p]) then break end
    h[i], h[p] = h[p], h[i]
    i = p
  end
end

local function pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and less(h[l], h[m]) then m = l end
    if r <= n and less(h[r], h[m]) then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

-- serve(self): the task's loop; fire(item) runs for each item when due
local function serve(self)
  local heap, wake, fire = self.heap, self.wake, self.fire
  while not self.closed do
    local top = heap[1]
    if top == nil then
      wake:wait()
      wake:clear()
    else
      local left = top.due - now()
      if left > SLACK then
        wake:wait(left)
        wake:clear()
      else
        pop(heap)
        fire(top.item)
      end
    end
  end
end

-- new(fire) -> schedule; fire(item) is called in the schedule's task
function M.new(fire)
  local self = setmetatable({heap = {}, n = 0, wake = wirelab.event(), fire = fire}, Schedule)
  self.task = wirelab.spawn(serve, self)
  return self
end

-- schedule:at(due, item): fire(item) at wirelab.now() == due
function Schedule:at(due, item)
  self.n = self.n + 1
  local heap = self.heap
  local first = heap[1]
  push(heap, {due = due, n = self.n, item = item})
  if first == nil or due < first.due then self.wake:set() end
end

-- schedule:defer(due, item) -> whether item was queued: not when it is
-- due now and nothing waiting is due before it, so the caller can run it
-- at once (the unimpaired path never touches the heap)
function Schedule:defer(due, item)
  local first = self.heap[1]
  if due <= now() + SLACK and (first == nil or first.due > due) then return false end
  self:at(due, item)
  return true
end

-- schedule:size() -> how many items wait
function Schedule:size() return #self.heap end

function Schedule:close()
  if self.closed then return end
  self.closed = true
  self.heap = {}
  if self.task ~= wirelab.current() then self.task:cancel() end
end

return M
