-- capture.ladder: segments drawn as a ladder diagram, the picture of a
-- connection textbooks draw: one per connection, the client (the side
-- that sent the SYN) on the left, the server on the right, an arrow per
-- segment with its flags, relative seq/ack, window and length, the time
-- down the left, options under the arrow that carried them, and the
-- program's own marks (cap:mark) across, in time order. 80 columns.
-- Marks are drawn in every connection's ladder: they are moments, not
-- packets of one connection.
local endpoint = require("capture.packet").endpoint

local format, rep, concat = string.format, string.rep, table.concat

local M = {}

local WIDTH = 80
local TIME_W = 12                -- "%10.6f" and two spaces
local INNER = WIDTH - TIME_W - 2 -- between the two bars

local function center(text, fill, width)
  local room = width - #text
  if room < 2 then return text end
  local left = room // 2
  return rep(fill, left) .. text .. rep(fill, room - left)
end

-- an arrow of INNER columns with label in its middle
local function arrow(label, right)
  local body = " " .. label .. " "
  local room = INNER - 1 - #body           -- one column for the head
  if room < 2 then room = 2 end
  local left = room // 2
  local shaft_l, shaft_r = rep("-", left), rep("-", room - left)
  if right then return shaft_l .. body .. shaft_r .. ">" end
  return "<" .. shaft_l .. body .. shaft_r
end

local function options_text(o)
  if not o then return nil end
  local parts = {}
  if o.mss then parts[#parts + 1] = "MSS=" .. o.mss end
  if o.sack_perm then parts[#parts + 1] = "SACK_PERM" end
  if o.ts then parts[#parts + 1] = format("TSval=%d TSecr=%d", o.ts.val, o.ts.ecr) end
  if o.wscale then parts[#parts + 1] = "WS=" .. (1 << o.wscale) end
  if o.sack then
    for _, b in ipairs(o.sack) do parts[#parts + 1] = format("SACK=%d-%d", b[1], b[2]) end
  end
  if #parts == 0 then return nil end
  return concat(parts, " ")
end

-- the label of an arrow, in Wireshark's words
local function label(s)
  if s.proto == "tcp" then
    local parts = {s.flags ~= "" and s.flags or "<none>", "seq=" .. s.seq}
    if s.bits & 0x10 ~= 0 then parts[#parts + 1] = "ack=" .. s.ack end
    parts[#parts + 1] = "win=" .. (s.win_scaled or s.win)
    parts[#parts + 1] = "len=" .. s.len
    local text = concat(parts, " ")
    if s.retransmission then text = text .. " (retransmission)" end
    return text
  end
  return format("%s len=%d", s.proto:upper(), s.len)
end

local function time_col(t)
  if t == nil then return rep(" ", TIME_W) end
  return format("%10.6f  ", t)
end

local function row(t, inner)
  return time_col(t) .. "|" .. inner .. "|"
end

-- "client 127.0.0.1:40000" on the left, "server ..." on the right
local function heading(stream, proto, client, server)
  local l, r = "client " .. client, "server " .. server
  local gap = WIDTH - TIME_W - #l - #r
  local title = format("%s stream %d", proto, stream)
  return {title, rep(" ", TIME_W) .. l .. rep(" ", gap > 1 and gap or 1) .. r}
end

-- which segments get an options line: SYNs (MSS, window scale, SACK
-- permitted: what the handshake agrees on) and those with SACK blocks;
-- with opts.options every one that has options (timestamps on each)
local function shows_options(s, all)
  if not s.options then return false end
  return all or (s.bits & 0x02 ~= 0) or s.options.sack ~= nil
end

local function ladder(lines, stream, segs, marks, all)
  local first = segs[1]
  for _, l in ipairs(heading(stream, first.proto, first.client, first.server)) do lines[#lines + 1] = l end
  -- segments and marks merged by time (a mark after a segment of the same
  -- instant comes after it: it was made once the packet had passed)
  local mi = 1
  local function marks_until(t)
    while marks[mi] and (t == nil or marks[mi].time < t) do
      local m = marks[mi]
      lines[#lines + 1] = row(m.time, center(" " .. m.label .. " ", "=", INNER))
      mi = mi + 1
    end
  end
  for _, s in ipairs(segs) do
    marks_until(s.time)
    local right = endpoint(s.src, s.sport) == s.client
    lines[#lines + 1] = row(s.time, arrow(label(s), right))
    local o = shows_options(s, all) and options_text(s.options)
    if o then lines[#lines + 1] = row(nil, center(o, " ", INNER)) end
  end
  marks_until(nil)
end

-- format(segments[, {options=true}]) -> text
function M.format(segs, opts)
  if type(segs) ~= "table" then
    error(("bad argument #1 to 'format' (segments expected, got %s)"):format(type(segs)), 2)
  end
  local all = type(opts) == "table" and opts.options == true
  local streams, order, other = {}, {}, {}
  for _, s in ipairs(segs) do
    if s.stream then
      if not streams[s.stream] then
        streams[s.stream] = {}
        order[#order + 1] = s.stream
      end
      local list = streams[s.stream]
      list[#list + 1] = s
    else
      other[#other + 1] = s
    end
  end
  local marks = segs.marks or {}
  table.sort(marks, function(a, b) return a.time < b.time end)
  local lines = {}
  for i, id in ipairs(order) do
    if i > 1 then lines[#lines + 1] = "" end
    ladder(lines, id, streams[id], marks, all)
  end
  if #order == 0 then
    for _, m in ipairs(marks) do lines[#lines + 1] = time_col(m.time) .. "== " .. m.label .. " ==" end
  end
  if #other > 0 then
    if #lines > 0 then lines[#lines + 1] = "" end
    for _, s in ipairs(other) do
      lines[#lines + 1] = time_col(s.time) .. format("%s %s > %s len=%d", s.proto, s.src, s.dst, s.len)
    end
  end
  if #lines == 0 then lines[#lines + 1] = "(no packets captured)" end
  if segs.note then lines[#lines + 1] = "note: " .. segs.note end
  return concat(lines, "\n") .. "\n"
end

return M
