-- wirelab: tasks, time, events and queues (API.md section 1). The C core
-- gives tasks, sleep and wait queues; events, queues and timeout are built
-- here on the wait queue, the one primitive for "wait until notified".
local core = require "wirelab.core"
local errors = require "wirelab.error"
local fork = require "wirelab.fork"

local waitq, spawn, now = core.waitq, core.spawn, core.now
local setmetatable, type, error = setmetatable, type, error
local table_pack, table_unpack = table.pack, table.unpack

local M = {
  spawn = spawn, sleep = core.sleep, now = now, time = core.time,
  handles = core.handles, current = core.current, version = core.version,
  tasks = core.tasks,
  fork = fork.fork, waitpid = fork.waitpid, _exit = fork._exit,
}

-- a timeout argument: nil or seconds; refused with Lua's usual wording
local function check_timeout(t, level, argn, fname)
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    error(("bad argument #%d to '%s' (non-negative number of seconds or nil expected, got %s)")
      :format(argn, fname, t ~= t and "nan" or (type(t) == "number" and tostring(t) or type(t))),
      level + 1)
  end
end

-- timeout(seconds, fn, ...): fn's results, or ETIMEDOUT with fn cancelled.
function M.timeout(seconds, fn, ...)
  check_timeout(seconds, 2, 1, "timeout")
  if type(fn) ~= "function" then
    errors.argerror(2, "timeout", "function expected, got " .. type(fn))
  end
  local task = spawn(fn, ...)
  local res = table_pack(pcall(task.join, task, seconds))
  if res[1] then return table_unpack(res, 2, res.n) end
  -- late, or the caller itself was cancelled: fn must not outlive the call
  if not task:done() then
    task:cancel()
    if errors.is(res[2], "ETIMEDOUT") then errors.raise("timeout", "ETIMEDOUT") end
  end
  error(res[2], 0)
end

-- Event: Python's threading.Event.
local Event = {}
Event.__index = Event

function M.event()
  return setmetatable({_flag = false, _gen = 0, _q = waitq()}, Event)
end

function Event:set()
  self._flag = true
  self._gen = self._gen + 1
  self._q:notify_all()
end

function Event:clear() self._flag = false end
function Event:is_set() return self._flag end

-- wait([timeout]) -> true once set, false on timeout. A waiter released by
-- set() returns true even if clear() came before it ran, as in Python.
function Event:wait(timeout)
  check_timeout(timeout, 2, 1, "wait")
  if self._flag then return true end
  local gen = self._gen
  local deadline = timeout and now() + timeout
  while self._gen == gen do
    local left = deadline and deadline - now()
    if left and left <= 0 then return false end
    self._q:wait(left)
  end
  return true
end

-- Queue: Python's queue.Queue; maxsize 0 or nil means unbounded.
local Queue = {}
Queue.__index = Queue

function M.queue(maxsize)
  if maxsize ~= nil and (math.type(maxsize) ~= "integer" or maxsize < 0) then
    errors.argerror(1, "queue", "non-negative integer expected")
  end
  return setmetatable({_items = {}, _head = 1, _tail = 0, _max = maxsize or 0,
                       _getters = waitq(), _putters = waitq()}, Queue)
end

function Queue:size() return self._tail - self._head + 1 end
function Queue:empty() return self._tail < self._head end
function Queue:full() return self._max > 0 and self:size() >= self._max end

-- One wait for a slot or an item; the caller's loop re-checks, and a
-- wait past the deadline raises.
local function wait_on(q, deadline, op)
  local left = deadline and deadline - now()
  if left and left <= 0 then errors.raise(op, "ETIMEDOUT") end
  local ok, err = pcall(q.wait, q, left)
  if not ok then
    q:notify()      -- a wakeup meant for us goes to the next waiter
    error(err, 0)
  end
end

-- put(v[, timeout]): waits while the queue is full
function Queue:put(v, timeout)
  check_timeout(timeout, 2, 2, "put")
  local deadline = timeout and now() + timeout
  while self:full() do wait_on(self._putters, deadline, "put") end
  self._tail = self._tail + 1
  self._items[self._tail] = v
  self._getters:notify()
end

-- get([timeout]) -> v; raises ETIMEDOUT when nothing came in time
function Queue:get(timeout)
  check_timeout(timeout, 2, 1, "get")
  local deadline = timeout and now() + timeout
  while self._tail < self._head do wait_on(self._getters, deadline, "get") end
  local h = self._head
  local v = self._items[h]
  self._items[h] = nil
  self._head = h + 1
  if self._head > self._tail then self._head, self._tail = 1, 0 end
  self._putters:notify()
  return v
end

-- All of a task group: wait for every task, re-raising the first error.
function M.join_all(tasks, timeout)
  local deadline = timeout and now() + timeout
  local out = {}
  for i = 1, #tasks do
    local left = deadline and math.max(0, deadline - now())
    out[i] = table_pack(tasks[i]:join(left))
  end
  return out
end

-- status() -> everything open now: sockets, servers, tasks, processes
-- (wirelab.status, loaded on first use)
function M.status() return require("wirelab.status").rows() end

return M
