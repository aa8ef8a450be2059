-- wirelab_spec: the execution model of API.md sections 1 and 2 -- tasks,
-- join and cancel, sleep and time, timeout, events, queues, and the error
-- object. Runs in the main task, so blocking calls are made directly.
local wirelab = require "wirelab"
local errors = require "wirelab.error"
local process = require "process"

local support = require "support"
local bounded = support.bounded

-- A to-be-closed value that records that it was closed.
local function closer(log, name)
  return setmetatable({}, {__close = function() log[#log + 1] = name end})
end

describe("wirelab tasks", function()
  it("spawn passes arguments and join returns every result", bounded(5, function()
    local t = wirelab.spawn(function(a, b, c)
      wirelab.sleep(0.01)
      return a + b, c, nil, "last"
    end, 1, 2, "x")
    local n = select("#", t:join())
    local sum, c, none, last = t:join()
    assert.are.equal(4, n)
    assert.are.equal(3, sum)
    assert.are.equal("x", c)
    assert.is_nil(none)
    assert.are.equal("last", last)
  end))

  it("join of a task that returns nothing returns nothing", bounded(5, function()
    local t = wirelab.spawn(function() end)
    assert.are.equal(0, select("#", t:join()))
  end))

  it("join of a finished task returns the results again", bounded(5, function()
    local t = wirelab.spawn(function() return 1, 2 end)
    assert.are.same({1, 2}, {t:join()})
    assert.is_true(t:done())
    assert.are.same({1, 2}, {t:join()})
  end))

  it("many tasks join one task", bounded(5, function()
    local ev = wirelab.event()
    local target = wirelab.spawn(function() ev:wait(); return "r" end)
    local joiners = {}
    for i = 1, 5 do joiners[i] = wirelab.spawn(function() return target:join() end) end
    ev:set()
    for i = 1, 5 do assert.are.equal("r", joiners[i]:join()) end
  end))

  it("join re-raises the task's error object itself", bounded(5, function()
    local obj = errors.new("recv", "ECONNRESET", "127.0.0.1", 80)
    local t = wirelab.spawn(function() wirelab.sleep(0); error(obj) end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal(obj, err)           -- the same table, not a copy
    assert.are.equal("ECONNRESET", err.code)
    assert.is_true(t:done())
    -- and again on a second join
    local ok2, err2 = pcall(t.join, t)
    assert.is_false(ok2)
    assert.are.equal(obj, err2)
  end))

  it("join re-raises a plain table and a string error", bounded(5, function()
    local tbl = {code = "EMINE"}
    local t = wirelab.spawn(function() error(tbl) end)
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal(tbl, err)
    local s = wirelab.spawn(function() error("plain failure") end)
    local ok2, err2 = pcall(s.join, s)
    assert.is_false(ok2)
    assert.matches("plain failure", err2)
  end))

  it("join with a timeout raises ETIMEDOUT and leaves the task running", bounded(5, function()
    local ev = wirelab.event()
    local t = wirelab.spawn(function() ev:wait(); return "late" end)
    local t0 = wirelab.now()
    local ok, err = pcall(t.join, t, 0.05)
    local took = wirelab.now() - t0
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ETIMEDOUT"))
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(took >= 0.04 and took < 1, "join(0.05) took " .. took)
    assert.is_false(t:done())
    ev:set()
    assert.are.equal("late", t:join())
  end))

  it("join with a zero timeout ends at once, even while a later timer is pending", bounded(5, function()
    local sleeper = wirelab.spawn(wirelab.sleep, 3)
    wirelab.sleep(0)
    local t0 = wirelab.now()
    local ok, err = pcall(sleeper.join, sleeper, 0)
    local took = wirelab.now() - t0
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(took < 0.5, "join(0) took " .. took .. " s: it waited for the sleeper's timer")
    sleeper:cancel()
    assert.is_false(pcall(sleeper.join, sleeper))
  end))

  it("join with a timeout returns the results when the task ends in time", bounded(5, function()
    local t = wirelab.spawn(function() wirelab.sleep(0.01); return "on time" end)
    assert.are.equal("on time", t:join(2))
  end))

  it("join checks its timeout argument", bounded(5, function()
    local t = wirelab.spawn(function() end)
    local ok, err = pcall(function() t:join("soon") end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'join'", err, 1, true)
    t:join()
  end))

  it("cancel wakes a sleeping task: join raises ECANCELED and cleanup runs", bounded(5, function()
    local log = {}
    local started = wirelab.event()
    local t = wirelab.spawn(function()
      local ok, err = pcall(function()
        local c <close> = closer(log, "inner close")
        started:set()
        wirelab.sleep(100)
      end)
      log[#log + 1] = ok and "no error" or err.code
      error(err, 0)
    end)
    started:wait()
    assert.is_false(t:done())
    t:cancel()
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
    assert.are.same({"inner close", "ECANCELED"}, log)
    assert.is_true(t:done())
  end))

  it("cancel closes the task's own <close> variables", bounded(5, function()
    -- no pcall in the task: the error ends the task, and Lua only closes
    -- pending to-be-closed variables if the scheduler closes the thread
    local log = {}
    local started = wirelab.event()
    local t = wirelab.spawn(function()
      local c <close> = closer(log, "closed")
      started:set()
      wirelab.sleep(100)
    end)
    started:wait()
    t:cancel()
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
    assert.are.same({"closed"}, log)
  end))

  it("a task that fails closes its <close> variables", bounded(5, function()
    local log = {}
    local t = wirelab.spawn(function()
      local c <close> = closer(log, "closed")
      error("boom")
    end)
    assert.is_false(pcall(t.join, t))
    assert.are.same({"closed"}, log)
  end))

  it("a task that returns closes its <close> variables", bounded(5, function()
    local log = {}
    local t = wirelab.spawn(function()
      local c <close> = closer(log, "closed")
      wirelab.sleep(0)
      return 1
    end)
    assert.are.equal(1, t:join())
    assert.are.same({"closed"}, log)
  end))

  it("cancel of a task that has not started: it never runs", bounded(5, function()
    local ran = false
    local t = wirelab.spawn(function() ran = true end)
    t:cancel()
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
    assert.is_false(ran)
    assert.is_true(t:done())
  end))

  it("cancel of a finished task is a no-op", bounded(5, function()
    local t = wirelab.spawn(function() return "fine" end)
    assert.are.equal("fine", t:join())
    t:cancel()
    assert.are.equal("fine", t:join())
  end))

  it("cancel twice is harmless", bounded(5, function()
    local t = wirelab.spawn(function() wirelab.sleep(100) end)
    wirelab.sleep(0)
    t:cancel()
    t:cancel()
    local ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
  end))

  -- in a process of its own: the bug this guards against was a wake-up
  -- that looped for ever in C, which no timer of this one could end
  it("a cancelled task that catches ECANCELED and waits again leaves no waiter behind",
     bounded(20, function()
    local r = process.run{support.wirelab, "-e", [[
      local wirelab, process = require "wirelab", require "process"
      local p = process.spawn{"sleep", "0.3"}
      local q = require("wirelab.core").waitq()
      local codes = {}
      local t = wirelab.spawn(function()
        for _ = 1, 3 do                -- each wait raises at once once cancelled
          codes[#codes + 1] = select(2, pcall(p.wait, p)).code
          codes[#codes + 1] = select(2, pcall(q.wait, q)).code
        end
      end)
      wirelab.sleep(0.01)
      t:cancel()
      wirelab.sleep(0.01)
      collectgarbage()                 -- the ended task's waiter is freed
      print(table.concat(codes, " "), t:done(), q:notify(), (p:wait(5)))
    ]], timeout = 10}
    assert.is_false(r.timed_out, "the process hung: " .. r.stderr)
    assert.are.equal("ECANCELED ECANCELED ECANCELED ECANCELED ECANCELED ECANCELED\ttrue\t0\t0\n",
                     r.stdout, r.stderr)
  end))

  it("done() is false while running and true after the end", bounded(5, function()
    local ev = wirelab.event()
    local t = wirelab.spawn(function() ev:wait() end)
    assert.is_false(t:done())
    wirelab.sleep(0)
    assert.is_false(t:done())
    ev:set()
    t:join()
    assert.is_true(t:done())
    local f = wirelab.spawn(function() error("x") end)
    pcall(f.join, f)
    assert.is_true(f:done())
  end))

  it("a task cannot join itself", bounded(5, function()
    local t = wirelab.spawn(function()
      local me = wirelab.current()
      local ok, err = pcall(me.join, me)
      return ok, err
    end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("cannot join itself", err, 1, true)
  end))

  it("sleep(0) lets other ready tasks run", bounded(5, function()
    local ran = false
    local t = wirelab.spawn(function() ran = true end)
    wirelab.sleep(0)
    assert.is_true(ran)
    t:join()
  end))

  it("sleep(0) round-robins between tasks", bounded(5, function()
    local log = {}
    local function worker(name)
      for i = 1, 3 do
        log[#log + 1] = name .. i
        wirelab.sleep(0)
      end
    end
    local a, b = wirelab.spawn(worker, "a"), wirelab.spawn(worker, "b")
    a:join(); b:join()
    assert.are.same({"a1", "b1", "a2", "b2", "a3", "b3"}, log)
  end))

  it("a bare coroutine.yield() in a task behaves like sleep(0)", bounded(5, function()
    local log = {}
    local function worker(name)
      log[#log + 1] = name .. "1"
      coroutine.yield()
      log[#log + 1] = name .. "2"
      return name
    end
    local a, b = wirelab.spawn(worker, "a"), wirelab.spawn(worker, "b")
    assert.are.equal("a", a:join())
    assert.are.equal("b", b:join())
    assert.are.same({"a1", "b1", "a2", "b2"}, log)
  end))

  it("a blocking call inside a plain coroutine raises a clear error", bounded(5, function()
    local co = coroutine.wrap(function() wirelab.sleep(0.01) end)
    local ok, err = pcall(co)
    assert.is_false(ok)
    assert.matches("wirelab task", err, 1, true)
    -- the enclosing task is unharmed
    wirelab.sleep(0)
    local q = wirelab.queue()
    local co2 = coroutine.wrap(function() return q:get() end)
    local ok2, err2 = pcall(co2)
    assert.is_false(ok2)
    assert.matches("wirelab task", tostring(err2), 1, true)
  end))

  it("10,000 tasks spawn and join quickly", bounded(10, function()
    local t0 = wirelab.now()
    local tasks = {}
    for i = 1, 10000 do
      tasks[i] = wirelab.spawn(function(x) wirelab.sleep(0); return x * 2 end, i)
    end
    local sum = 0
    for i = 1, 10000 do sum = sum + tasks[i]:join() end
    assert.are.equal(10000 * 10001, sum)
    local took = wirelab.now() - t0
    assert.is_true(took < 3, "10,000 tasks took " .. took .. " s")
  end))

  it("a task woken while another sends without ever waiting gets its turn, not just a yield",
     bounded(30, function()
    -- the sender's 1-byte sends never wait (the kernel takes them all), so
    -- it yields only when its slice is over; the other task, woken by its
    -- timer, must then do its whole exchange in its own turn rather than
    -- find the slice spent and yield again until the sender has finished
    local socket = require "socket"
    local srv <close> = socket.create_server("127.0.0.1", 0)
    local a <close> = socket.create_connection("127.0.0.1", select(2, srv:getsockname()), 5)
    local peer <close> = srv:accept()
    local N, got = 200000, 0
    local drain = wirelab.spawn(function()
      while got < N do got = got + #peer:recv(65536) end
    end)
    local other_done, other_done_first = false, nil
    local sender = wirelab.spawn(function()
      for _ = 1, N do a:send("x") end
      other_done_first = other_done
    end)
    local other = wirelab.spawn(function()
      wirelab.sleep(0.01)
      local x, y = socket.socketpair()
      local xc <close> = x
      local yc <close> = y
      x:settimeout(5); y:settimeout(5)
      x:sendall("ping")
      assert.are.equal("ping", y:recv(4))
      y:sendall("pong")
      assert.are.equal("pong", x:recv(4))
      other_done = true
    end)
    wirelab.join_all({sender, other, drain}, 25)
    assert.are.equal(N, got)
    assert.is_true(other_done_first, "the exchange waited until the sender had sent all it had")
  end))

  it("tostring of a task names its state", bounded(5, function()
    local t = wirelab.spawn(function() end)
    assert.matches("^<task %d+ ready>$", tostring(t))
    t:join()
    assert.matches("^<task %d+ done>$", tostring(t))
  end))
end)

describe("wirelab task:interrupt and join_all", function()
  -- a task that has parked in `wait` (started is set just before it parks)
  local function waiting(wait)
    local started = wirelab.event()
    local t = wirelab.spawn(function()
      started:set()
      local ok, err = pcall(wait)
      return ok, errors.is(err) and err.code or tostring(err), errors.is(err) and err.op
    end)
    started:wait()
    return t
  end

  it("interrupt wakes a waiting task with EINTR, true only for a task that waits", bounded(5, function()
    local t = waiting(function() wirelab.sleep(10) end)
    local t0 = wirelab.now()
    assert.is_true(t:interrupt())
    assert.are.same({false, "EINTR", "sleep"}, {t:join()})
    assert.is_true(wirelab.now() - t0 < 1)
    assert.is_false(t:interrupt())                     -- done
    local ready = wirelab.spawn(function() return "ran" end)
    assert.is_false(ready:interrupt())                 -- not started, so not waiting
    assert.are.equal("ran", ready:join())              -- and unharmed
    assert.is_false(wirelab.current():interrupt())     -- running
  end))

  it("interrupt is not sticky: the task waits again afterwards, unlike cancel", bounded(5, function()
    local started = wirelab.event()
    local t = wirelab.spawn(function()
      started:set()
      local ok, err = pcall(wirelab.sleep, 10)
      local t1 = wirelab.now()
      wirelab.sleep(0.05)                              -- a second wait, undisturbed
      return ok, err.code, wirelab.now() - t1
    end)
    started:wait()
    assert.is_true(t:interrupt())
    local ok, code, slept = t:join()
    assert.is_false(ok)
    assert.are.equal("EINTR", code)
    assert.is_true(slept >= 0.04, "the second sleep lasted " .. slept .. " s")
  end))

  it("interrupt ends an event wait, a queue get and a join, leaving them usable", bounded(5, function()
    local ev, q = wirelab.event(), wirelab.queue()
    local other = wirelab.spawn(wirelab.sleep, 10)
    for _, wait in ipairs{function() ev:wait() end, function() q:get() end,
                          function() other:join() end} do
      local t = waiting(wait)
      assert.is_true(t:interrupt())
      local ok, code = t:join()
      assert.is_false(ok)
      assert.are.equal("EINTR", code)
    end
    q:put("still works")
    assert.are.equal("still works", q:get(0))
    ev:set()
    assert.is_true(ev:wait(0))
    assert.is_false(other:done())                      -- interrupting its joiner left it alone
    other:cancel()
    assert.is_false(pcall(other.join, other))
  end))

  it("join_all returns every task's results in order, each packed", bounded(5, function()
    local tasks = {
      wirelab.spawn(function() wirelab.sleep(0.02); return 1, nil, 3 end),
      wirelab.spawn(function() end),
      wirelab.spawn(function() wirelab.sleep(0.01); return "c" end),
    }
    assert.are.same({{1, nil, 3, n = 3}, {n = 0}, {"c", n = 1}}, wirelab.join_all(tasks))
    assert.are.same({}, wirelab.join_all({}))
  end))

  it("join_all re-raises the error of the first failing task in the list", bounded(5, function()
    local ev = wirelab.event()
    local obj = errors.new("recv", "ECONNRESET")
    local a = wirelab.spawn(function() wirelab.sleep(0.01); return "a" end)
    local b = wirelab.spawn(function() wirelab.sleep(0.02); error(obj) end)
    local c = wirelab.spawn(function() wirelab.sleep(0); error("c fails first, but comes later") end)
    local c_seen = wirelab.spawn(function() return pcall(c.join, c) end)   -- (not printed)
    local d = wirelab.spawn(function() ev:wait(); return "d" end)
    local ok, err = pcall(wirelab.join_all, {a, b, c, d})
    assert.is_false(ok)
    assert.are.equal(obj, err)
    assert.is_false((c_seen:join()))
    assert.is_true(a:done())
    assert.is_false(d:done())                          -- not waited for, still running
    ev:set()
    assert.are.equal("d", d:join())
  end))

  it("join_all with a timeout bounds the whole group, not each task", bounded(5, function()
    local ev = wirelab.event()
    local tasks = {}
    for i = 1, 3 do tasks[i] = wirelab.spawn(function() wirelab.sleep(0.06 * i); return i end) end
    tasks[4] = wirelab.spawn(function() ev:wait(); return 4 end)
    local t0 = wirelab.now()
    local ok, err = pcall(wirelab.join_all, tasks, 0.3)
    local took = wirelab.now() - t0
    assert.is_false(ok)
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(took >= 0.28 and took < 0.6, "join_all(tasks, 0.3) took " .. took .. " s")
    assert.is_true(tasks[3]:done())
    assert.is_false(tasks[4]:done())                   -- a timeout leaves the tasks running
    ev:set()
    local out = wirelab.join_all(tasks, 2)
    for i = 1, 4 do assert.are.equal(i, out[i][1]) end
  end))
end)

describe("wirelab time", function()
  it("sleep(0.1) takes about 0.1 s", bounded(5, function()
    local t0 = wirelab.now()
    wirelab.sleep(0.1)
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.09 and took < 0.5, "sleep(0.1) took " .. took)
  end))

  it("tasks sleeping 0.03, 0.01 and 0.02 wake in order of their deadlines", bounded(5, function()
    local order = {}
    local tasks = {}
    for _, d in ipairs({0.03, 0.01, 0.02}) do
      tasks[#tasks + 1] = wirelab.spawn(function()
        wirelab.sleep(d)
        order[#order + 1] = d
      end)
    end
    for _, t in ipairs(tasks) do t:join() end
    assert.are.same({0.01, 0.02, 0.03}, order)
  end))

  it("sleepers do not hold each other up", bounded(5, function()
    local t0 = wirelab.now()
    local tasks = {}
    for i = 1, 50 do tasks[i] = wirelab.spawn(wirelab.sleep, 0.1) end
    for i = 1, 50 do tasks[i]:join() end
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.09 and took < 0.5, "50 parallel sleep(0.1) took " .. took)
  end))

  it("sleep rejects a wrong argument with Lua's usual message", bounded(5, function()
    local ok, err = pcall(function() wirelab.sleep("soon") end)
    assert.is_false(ok)
    assert.is_string(err)
    assert.matches("bad argument #1 to 'sleep'", err, 1, true)
    ok, err = pcall(function() wirelab.sleep(-1) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'sleep'", err, 1, true)
    ok, err = pcall(function() wirelab.sleep(0 / 0) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'sleep'", err, 1, true)
  end))

  it("now() is monotonic and advances", bounded(5, function()
    local prev = wirelab.now()
    assert.are.equal("float", math.type(prev))
    for _ = 1, 10000 do
      local n = wirelab.now()
      assert(n >= prev, "now() went backwards")
      prev = n
    end
    local a = wirelab.now()
    wirelab.sleep(0.02)
    assert.is_true(wirelab.now() > a)
  end))

  it("time() is the wall clock, near os.time()", bounded(5, function()
    local t = wirelab.time()
    assert.is_number(t)
    assert.is_true(math.abs(t - os.time()) < 2, "time() " .. t .. " vs os.time() " .. os.time())
  end))
end)

describe("wirelab.timeout", function()
  it("returns fn's results and passes its arguments", bounded(5, function()
    local a, b, c = wirelab.timeout(1, function(x, y)
      wirelab.sleep(0.01)
      return x + y, "two", nil
    end, 20, 22)
    assert.are.equal(42, a)
    assert.are.equal("two", b)
    assert.is_nil(c)
  end))

  it("raises ETIMEDOUT when fn is late and cancels fn", bounded(5, function()
    local cancelled = wirelab.event()
    local seen
    local t0 = wirelab.now()
    local ok, err = pcall(wirelab.timeout, 0.05, function()
      local ok2, e = pcall(wirelab.sleep, 10)
      seen = not ok2 and e.code
      cancelled:set()
      error(e, 0)
    end)
    local took = wirelab.now() - t0
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ETIMEDOUT"))
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(took >= 0.04 and took < 1, "timeout(0.05) took " .. took)
    assert.is_true(cancelled:wait(2), "fn was not cancelled")
    assert.are.equal("ECANCELED", seen)
  end))

  it("cancelling the task that called timeout() cancels fn too", bounded(5, function()
    local started, finished = wirelab.event(), wirelab.event()
    local seen
    local outer = wirelab.spawn(function()
      wirelab.timeout(10, function()
        started:set()
        local ok, e = pcall(wirelab.sleep, 1)
        seen = ok and "fn slept on after its caller was cancelled" or e.code
        finished:set()
      end)
    end)
    started:wait()
    outer:cancel()
    local ok, err = pcall(outer.join, outer)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
    assert.is_true(finished:wait(2))
    assert.are.equal("ECANCELED", seen)
  end))

  it("re-raises fn's own error unchanged", bounded(5, function()
    local obj = {code = "EMINE"}
    local ok, err = pcall(wirelab.timeout, 1, function() error(obj) end)
    assert.is_false(ok)
    assert.are.equal(obj, err)
  end))

  it("checks its arguments", bounded(5, function()
    for _, bad in ipairs{-1, 0 / 0, "soon"} do
      local ok, err = pcall(wirelab.timeout, bad, function() end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'timeout' (non-negative number of seconds or nil expected",
                     err, 1, true)
    end
    local ok, err = pcall(wirelab.timeout, 1, "not a function")
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'timeout'", err, 1, true)
  end))
end)

describe("wirelab.event", function()
  it("set, clear and is_set", bounded(5, function()
    local ev = wirelab.event()
    assert.is_false(ev:is_set())
    ev:set()
    assert.is_true(ev:is_set())
    assert.is_true(ev:wait())           -- already set: at once
    assert.is_true(ev:wait(0))
    ev:clear()
    assert.is_false(ev:is_set())
  end))

  it("wait(timeout) returns false when nobody sets it", bounded(5, function()
    local ev = wirelab.event()
    local t0 = wirelab.now()
    assert.is_false(ev:wait(0.05))
    local took = wirelab.now() - t0
    assert.is_true(took >= 0.04 and took < 1, "wait(0.05) took " .. took)
    assert.is_false(ev:wait(0))
  end))

  it("wait returns true when another task sets it", bounded(5, function()
    local ev = wirelab.event()
    local setter = wirelab.spawn(function() ev:set() end)
    assert.is_true(ev:wait())
    setter:join()
    local ev2 = wirelab.event()
    local setter2 = wirelab.spawn(function() wirelab.sleep(0.01); ev2:set() end)
    assert.is_true(ev2:wait(2))
    setter2:join()
  end))

  it("one set wakes every waiter", bounded(5, function()
    local ev = wirelab.event()
    local waiters = {}
    for i = 1, 100 do
      waiters[i] = wirelab.spawn(function() return ev:wait(3) end)
    end
    wirelab.sleep(0)                     -- all of them now wait
    for i = 1, 100 do assert.is_false(waiters[i]:done()) end
    ev:set()
    for i = 1, 100 do assert.is_true(waiters[i]:join()) end
  end))

  it("a waiter woken by set returns true even if clear comes first", bounded(5, function()
    -- Python's threading.Event and asyncio.Event: a set()/clear() pulse
    -- still releases the tasks that were waiting
    local ev = wirelab.event()
    local waiters = {}
    for i = 1, 3 do waiters[i] = wirelab.spawn(function() return ev:wait() end) end
    wirelab.sleep(0)
    ev:set()
    ev:clear()
    for i = 1, 3 do
      local ok, res = pcall(waiters[i].join, waiters[i], 1)
      assert.is_true(ok, "a waiter missed the set/clear pulse")
      assert.is_true(res)
    end
  end))

  it("wait rejects a bad timeout", bounded(5, function()
    local ev = wirelab.event()
    for _, bad in ipairs{"x", -1, 0 / 0} do
      local ok, err = pcall(function() return ev:wait(bad) end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'wait' (non-negative number of seconds or nil expected",
                     err, 1, true)
    end
    ev:set()
    assert.is_true(ev:wait(nil))           -- nil is no timeout, not a bad one
  end))
end)

describe("wirelab.queue", function()
  it("is FIFO", bounded(5, function()
    local q = wirelab.queue()
    for i = 1, 5 do q:put(i) end
    assert.are.equal(5, q:size())
    local got = {}
    for i = 1, 5 do got[i] = q:get() end
    assert.are.same({1, 2, 3, 4, 5}, got)
    assert.are.equal(0, q:size())
  end))

  it("carries items between tasks in order", bounded(5, function()
    local q = wirelab.queue()
    local producer = wirelab.spawn(function()
      for i = 1, 100 do
        q:put(i)
        if i % 7 == 0 then wirelab.sleep(0) end
      end
      q:put("end")
    end)
    local got = {}
    while true do
      local v = q:get()
      if v == "end" then break end
      got[#got + 1] = v
    end
    producer:join()
    assert.are.equal(100, #got)
    for i = 1, 100 do assert.are.equal(i, got[i]) end
  end))

  it("get waits for a put from another task", bounded(5, function()
    local q = wirelab.queue()
    local t = wirelab.spawn(function() q:put("hello") end)
    assert.are.equal("hello", q:get(2))
    t:join()
  end))

  it("get with a timeout raises ETIMEDOUT on an empty queue", bounded(5, function()
    local q = wirelab.queue()
    local t0 = wirelab.now()
    local ok, err = pcall(q.get, q, 0.05)
    local took = wirelab.now() - t0
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ETIMEDOUT"))
    assert.are.equal("ETIMEDOUT", err.code)
    assert.is_true(took >= 0.04 and took < 1, "get(0.05) took " .. took)
    -- still usable afterwards
    q:put(1)
    assert.are.equal(1, q:get(0))
  end))

  it("a bounded queue's put blocks until a get makes room", bounded(5, function()
    local q = wirelab.queue(1)
    q:put("first")
    local putter = wirelab.spawn(function() q:put("second"); return "put done" end)
    for _ = 1, 3 do wirelab.sleep(0) end
    assert.is_false(putter:done(), "put on a full queue returned")
    assert.are.equal(1, q:size())
    assert.are.equal("first", q:get())
    assert.are.equal("put done", putter:join())
    assert.are.equal("second", q:get())
  end))

  it("a getter cancelled after a put woke it passes the item on", bounded(5, function()
    local q = wirelab.queue()
    local a = wirelab.spawn(function() return q:get() end)
    local b = wirelab.spawn(function() return q:get() end)
    wirelab.sleep(0)                     -- both wait, a first
    q:put("item")                        -- wakes a
    a:cancel()                           -- before a ran
    local ok, err = pcall(a.join, a)
    assert.is_false(ok)
    assert.are.equal("ECANCELED", err.code)
    local ok2, v = pcall(b.join, b, 1)
    assert.is_true(ok2, "the other getter was never woken: " .. tostring(v))
    assert.are.equal("item", v)
  end))

  it("a putter cancelled after a get woke it passes the slot on", bounded(5, function()
    local q = wirelab.queue(1)
    q:put("first")
    local a = wirelab.spawn(function() q:put("from a") end)
    local b = wirelab.spawn(function() q:put("from b") end)
    wirelab.sleep(0)                     -- both wait for room, a first
    assert.are.equal("first", q:get())   -- wakes a
    a:cancel()                           -- before a ran
    assert.is_false(pcall(a.join, a))
    local ok = pcall(b.join, b, 1)
    assert.is_true(ok, "the other putter was never woken")
    assert.are.equal("from b", q:get(0))
  end))

  it("rejects a bad maxsize and a bad timeout", bounded(5, function()
    for _, bad in ipairs{-1, 1.5, "2"} do
      local ok, err = pcall(wirelab.queue, bad)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'queue' (non-negative integer expected)", err, 1, true)
    end
    assert.are.equal(0, wirelab.queue(0):size())  -- 0: unbounded, as in Python
    local q = wirelab.queue()
    local ok, err = pcall(function() return q:get(-1) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'get' (non-negative number of seconds", err, 1, true)
    ok, err = pcall(function() return q:put("v", "later") end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'put' (non-negative number of seconds", err, 1, true)
    assert.are.equal(0, q:size())          -- the refused put left nothing behind
  end))
end)

describe("wirelab.error", function()
  it("new builds the object of API section 2", bounded(5, function()
    local e = errors.new("connect", "ECONNREFUSED", "127.0.0.1", 9)
    assert.are.equal("ECONNREFUSED", e.code)
    assert.are.equal("connect", e.op)
    assert.is_string(e.message)
    assert.matches("connect 127.0.0.1:9", e.message, 1, true)
    assert.are.equal("connect 127.0.0.1:9: connection refused (ECONNREFUSED)", tostring(e))
  end))

  it("formats IPv6 addresses in brackets and timeouts as 'timed out'", bounded(5, function()
    assert.are.equal("connect [::1]:80: connection refused (ECONNREFUSED)",
      tostring(errors.new("connect", "ECONNREFUSED", "::1", 80)))
    assert.are.equal("recv: timed out (ETIMEDOUT)", tostring(errors.new("recv", "ETIMEDOUT")))
  end))

  it("raise raises the object", bounded(5, function()
    local ok, err = pcall(errors.raise, "bind", "EADDRINUSE", "0.0.0.0", 8080)
    assert.is_false(ok)
    assert.are.equal("table", type(err))
    assert.are.equal("EADDRINUSE", err.code)
    assert.are.equal("bind", err.op)
    assert.matches("^bind 0%.0%.0%.0:8080: .+ %(EADDRINUSE%)$", tostring(err))
  end))

  it("is tells wirelab errors and their codes apart", bounded(5, function()
    local e = errors.new("recv", "ECONNRESET")
    assert.is_true(errors.is(e))
    assert.is_true(errors.is(e, "ECONNRESET"))
    assert.is_false(errors.is(e, "EPIPE"))
    assert.is_false(errors.is({code = "ECONNRESET"}, "ECONNRESET"))
    assert.is_false(errors.is("ECONNRESET"))
    assert.is_false(errors.is(nil))
  end))

  it("rejects an unknown code", bounded(5, function()
    local ok, err = pcall(errors.new, "x", "ENOSUCHTHING")
    assert.is_false(ok)
    assert.matches("ENOSUCHTHING", err, 1, true)
  end))

  it("timeouts and cancels raise the same kind of object", bounded(5, function()
    local t = wirelab.spawn(function() wirelab.sleep(100) end)
    local ok, err = pcall(t.join, t, 0.01)
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ETIMEDOUT"))
    assert.matches("timed out (ETIMEDOUT)", tostring(err), 1, true)
    t:cancel()
    ok, err = pcall(t.join, t)
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ECANCELED"))
  end))
end)
