-- netem.events: a proxy's event log: what it did to each datagram or
-- chunk, kept in memory (up to keep_events) for proxy:events() and written
-- as JSON lines to events_file, so a check can compare a program's counts
-- with what really happened. Times are seconds since the proxy started.
local wirelab = require "wirelab"
local errors = require "wirelab.error"

local now, type, pairs, ipairs, sort = wirelab.now, type, pairs, ipairs, table.sort

local M = {}

-- the keys of a JSON line come in this order (then any other, sorted),
-- so the same run writes the same bytes
local ORDER = {"t", "conn", "dir", "seq", "offset", "size", "what", "client"}
local FIXED = {}
for _, k in ipairs(ORDER) do FIXED[k] = true end

local Log = {}
Log.__index = Log

-- new(keep, path) -> log; log.on says whether anyone reads the events, so
-- a proxy with neither builds no event at all (the benchmarks' case)
function M.new(keep, path)
  local log = setmetatable({keep = keep, list = {}, n = 0, lost = 0, t0 = now()}, Log)
  if path then
    local f, _, code = io.open(path, "w")
    -- an I/O failure, raised as one: "open: ... (ENOENT): the path"
    if not f then errors.raise("open", -(code or 5), nil, nil, path) end
    f:setvbuf("line")       -- a check may read the file while the proxy runs
    log.file = f
    log.json = require("lab.report").json
    log.obj = require("lab.report").obj
  end
  log.on = keep > 0 or log.file ~= nil
  return log
end

local function line(log, ev)
  local kv = {}
  for _, k in ipairs(ORDER) do
    if ev[k] ~= nil then kv[#kv + 1] = k; kv[#kv + 1] = ev[k] end
  end
  local extra = {}
  for k in pairs(ev) do
    if not FIXED[k] and type(k) == "string" then extra[#extra + 1] = k end
  end
  sort(extra)
  for _, k in ipairs(extra) do kv[#kv + 1] = k; kv[#kv + 1] = ev[k] end
  return log.json(log.obj(table.unpack(kv)))
end

-- log:add(ev): stamps ev.t and records it
function Log:add(ev)
  ev.t = now() - self.t0
  if self.n < self.keep then
    self.n = self.n + 1
    self.list[self.n] = ev
  else
    self.lost = self.lost + 1
  end
  local f = self.file
  if f then f:write(line(self, ev), "\n") end
end

-- log:select([filter]) -> a new list of the kept events whose fields
-- equal every field of filter ({what = "drop", dir = "to_server"})
function Log:select(filter)
  local out, k = {}, 0
  for i = 1, self.n do
    local ev, ok = self.list[i], true
    if filter then
      for key, v in pairs(filter) do
        if ev[key] ~= v then ok = false; break end
      end
    end
    if ok then k = k + 1; out[k] = ev end
  end
  return out
end

function Log:close()
  if self.file then
    pcall(self.file.close, self.file)
    self.file = nil
  end
end

return M
