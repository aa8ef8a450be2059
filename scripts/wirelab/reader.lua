-- wirelab.reader: the one buffered reader behind every stream (socket
-- makefile, process pipes, socketserver's and http.server's rfile,
-- http.client's response, the prompt's piped input), so that read, readline
-- and lines mean the same everywhere (docs/streams.md).
--
-- A reader pulls chunks from a source function, source(ctx) -> a string,
-- or "" / nil at end of input; the source may wait (it runs in the caller's
-- task) and may raise, which the reader passes on. Chunks not yet returned
-- live in the reader itself (buf from pos, then the list parts), never on
-- the stack, so an error or a timeout in the middle of a read loses no
-- byte: the next read starts with them. Long lines gather their chunks in
-- parts and are joined once, so a line that arrives a byte at a time costs
-- linear time, and a line longer than max_line raises instead of growing.
local errors = require "wirelab.error"

local type, setmetatable, pairs = type, setmetatable, pairs
local math_type = math.type
local find, sub, byte, gsub = string.find, string.sub, string.byte, string.gsub
local concat = table.concat
local raise, argerror = errors.raise, errors.argerror

local M = {}

M.MAX_LINE = 1024 * 1024

local Reader = {}
Reader.__index = Reader
M.Reader = Reader
-- A new reader's state, as defaults in its class: an idle connection's
-- rfile (10,000 of them held) stores only its source, context and limit
-- until the first bytes come, a table of 4 slots where it had 16. The
-- list parts is made with the first chunk.
Reader.buf, Reader.pos, Reader.np, Reader.plen = "", 1, 0, 0
Reader.eof, Reader.closed, Reader.used = false, false, false

-- new(source, ctx[, {text=, max_line=}]) -> reader
function M.new(source, ctx, opts)
  local r = setmetatable({src = source, ctx = ctx, max_line = M.MAX_LINE}, Reader)
  if opts then
    r.text = opts.text or nil
    if opts.max_line ~= nil then
      if math_type(opts.max_line) ~= "integer" or opts.max_line < 1 then
        argerror(2, "reader", "max_line: positive integer expected", 3)
      end
      r.max_line = opts.max_line
    end
  end
  return r
end

-- reset(r, ctx): a fresh stream over a new context, reusing r (the HTTP
-- server's body reader, once per request)
function M.reset(r, ctx)
  r.ctx, r.buf, r.pos, r.eof, r.closed, r.used = ctx, "", 1, false, false, false
  if r.np > 0 then r.parts, r.np, r.plen = {}, 0, 0 end
  r.cr = nil
end

-- One chunk from the source into parts; false at end of input. In text
-- mode "\r\n" becomes "\n"; a chunk ending in "\r" keeps it back until the
-- next chunk shows what follows.
local function pull(r)
  if r.eof then return false end
  local d = r.src(r.ctx)
  if d == nil or d == "" then
    r.eof = true
    if not r.cr then return false end
    r.cr, d = nil, "\r"
  elseif r.text then
    if r.cr then d, r.cr = "\r" .. d, nil end
    if byte(d, -1) == 13 then r.cr, d = true, sub(d, 1, -2) end
    d = gsub(d, "\r\n", "\n")
    if d == "" then return pull(r) end
  end
  local np, parts = r.np + 1, r.parts
  if parts == nil then
    parts = {}
    r.parts = parts
  end
  parts[np], r.np, r.plen = d, np, r.plen + #d
  return true
end

-- Joins buf (from pos) and parts into buf.
local function merge(r)
  local np = r.np
  if np == 0 then return end
  local parts = r.parts
  if r.pos <= #r.buf then
    table.insert(parts, 1, r.pos == 1 and r.buf or sub(r.buf, r.pos))
    np = np + 1
  end
  r.buf = np == 1 and parts[1] or concat(parts, "", 1, np)
  r.pos, r.parts, r.np, r.plen = 1, {}, 0, 0
end

local function avail(r) return #r.buf - r.pos + 1 + r.plen end

-- The first n buffered bytes (n <= avail). Bytes that reach into the parts
-- are joined from just the parts they reach, and the part they end in
-- becomes buf, read from where they stop: a body streamed through read(n)
-- holds the one piece it is in, not a join of everything pulled (memory,
-- and what a collection finds still alive).
local function take(r, n)
  local pos, buf = r.pos, r.buf
  local s
  if pos + n - 1 <= #buf then
    s = (pos == 1 and n == #buf) and buf or sub(buf, pos, pos + n - 1)
    pos = pos + n
  else
    local parts, np = r.parts, r.np
    local got, j, m = {}, 0, #buf - pos + 1
    if m > 0 then j = 1; got[1] = pos == 1 and buf or sub(buf, pos) end
    local i, used = 0, 0
    while true do                    -- m < n: the end is in a later part
      i = i + 1
      local p = parts[i]
      used = used + #p
      j = j + 1
      if m + #p >= n then
        local want = n - m
        got[j] = want == #p and p or sub(p, 1, want)
        buf, pos = p, want + 1
        break
      end
      got[j], m = p, m + #p
    end
    s = j == 1 and got[1] or concat(got, "", 1, j)
    table.move(parts, i + 1, np + 1, 1)   -- np + 1 is nil: ends the list
    for k = np - i + 2, np do parts[k] = nil end
    r.np, r.plen = np - i, r.plen - used
  end
  if pos > #buf then r.buf, r.pos = "", 1 else r.buf, r.pos = buf, pos end
  return s
end

-- every read goes through here: `used` tells the HTTP server the reader
-- needs a reset before the next request
local function check_open(r, op)
  if r.closed then raise(op, "EBADF") end
  r.used = true
end

local function too_long(r, op)
  merge(r)
  raise(op, "EMSGSIZE", nil, nil, ("line longer than the limit of %d bytes (max_line)"):format(r.max_line))
end

-- The next line with its "\n" (at most limit bytes), nil at end of input.
local function line(r, op, limit)
  local i = find(r.buf, "\n", r.pos, true)
  if not i then
    -- search only the chunks that arrive, each once
    local k = 1
    while true do
      while k <= r.np do
        if find(r.parts[k], "\n", 1, true) then break end
        k = k + 1
      end
      if k <= r.np then break end
      local have = avail(r)
      if limit and have >= limit then break end
      if have > r.max_line then too_long(r, op) end
      if not pull(r) then break end
    end
    merge(r)
    i = find(r.buf, "\n", r.pos, true)
  end
  local n = i and i - r.pos + 1 or #r.buf - r.pos + 1
  if limit and n > limit then n = limit
  elseif n - (i and 1 or 0) > r.max_line then too_long(r, op) end
  if n == 0 then return nil end
  return take(r, n)
end

local function read_all(r)
  while pull(r) do end
  return take(r, avail(r))
end

local function read_n(r, n)
  while avail(r) < n and pull(r) do end
  local have = avail(r)
  return take(r, have < n and have or n)
end

-- read([n | "a" | "l" | "L"]): n bytes (fewer only at end of input, "" at
-- the end), everything, or a line without / with its end (nil at the end).
function Reader:read(fmt)
  check_open(self, "read")
  if fmt == nil or fmt == "a" or fmt == "*a" then return read_all(self) end
  if math_type(fmt) == "integer" then
    if fmt < 0 then return read_all(self) end
    return read_n(self, fmt)
  end
  if fmt == "l" or fmt == "*l" then
    local s = line(self, "read")
    if s and byte(s, -1) == 10 then
      s = sub(s, 1, byte(s, -2) == 13 and -3 or -2)
    end
    return s
  elseif fmt == "L" or fmt == "*L" then
    return line(self, "read")
  end
  argerror(1, "read", "integer or format 'a', 'l', 'L' expected, got "
    .. (type(fmt) == "string" and ("'" .. fmt .. "'") or (math_type(fmt) or type(fmt))))
end

-- readline([limit]): Python's: the line with its "\n", "" at end of input.
function Reader:readline(limit)
  check_open(self, "readline")
  if limit ~= nil then
    if math_type(limit) ~= "integer" then
      argerror(1, "readline", "integer expected, got " .. (math_type(limit) or type(limit)))
    end
    if limit < 0 then limit = nil elseif limit == 0 then return "" end
  end
  return line(self, "readline", limit) or ""
end

function Reader:lines(fmt)
  check_open(self, "lines")
  fmt = fmt or "l"
  return function() return self:read(fmt) end
end

-- read1(n): Python's: buffered bytes, or else one read of the source.
function Reader:read1(n)
  check_open(self, "read1")
  if n ~= nil and math_type(n) ~= "integer" then
    argerror(1, "read1", "integer expected, got " .. (math_type(n) or type(n)))
  end
  if avail(self) == 0 then pull(self) end
  local have = avail(self)
  if n == nil or n < 0 or n > have then n = have end
  return take(self, n)
end

-- peek([n]): buffered bytes without consuming them (one read if none).
function Reader:peek(n)
  check_open(self, "peek")
  if avail(self) == 0 then pull(self) end
  merge(self)
  local s = sub(self.buf, self.pos)
  if n and n >= 0 and n < #s then s = sub(s, 1, n) end
  return s
end

-- buffered() -> bytes read from the source but not yet returned
function Reader:buffered() return avail(self) end

-- at_eof() -> true once the source has ended and nothing is buffered
function Reader:at_eof()
  return self.eof and avail(self) == 0
end

function Reader:close()
  if self.closed then return end
  self.closed, self.used = true, true
  self.buf, self.pos, self.parts, self.np, self.plen = "", 1, {}, 0, 0
end
Reader.__close = Reader.close

function Reader:__tostring()
  return ("<reader%s, %d bytes buffered>"):format(self.closed and " closed" or (self.eof and " at end" or ""),
    avail(self))
end

-- extend(methods): a reader type with more methods (a socket file's write
-- side, a response's headers...), reads unchanged.
function M.extend(methods)
  local cls = {}
  for k, v in pairs(Reader) do cls[k] = v end
  for k, v in pairs(methods or {}) do cls[k] = v end
  cls.__index = cls
  return cls
end

-- new_of(cls, source, ctx, opts): M.new for a type made by extend.
function M.new_of(cls, source, ctx, opts)
  return setmetatable(M.new(source, ctx, opts), cls)
end

local function no_source() return nil end

-- from_string(s) -> reader: the bytes of s, then the end, with no source
-- to call (a datagram handler's rfile, once per datagram)
function M.from_string(s)
  if type(s) ~= "string" then argerror(1, "from_string", "string expected, got " .. type(s), 2) end
  local r = M.new(no_source, nil)
  r.buf, r.eof = s, true
  return r
end

return M
