-- wirelab.help: the prompt's help(), read from the reference pages in
-- docs/ (compiled into the binary as wirelab.docs.*), so that help and the
-- reference cannot disagree. An entry is a `### signature` heading and the
-- one-line paragraph under it (docs/README.md fixes that format).
-- help() lists the modules; help(socket) the entries of its page;
-- help(socket.create_connection) or help(s.sendall) the entry of that
-- function; help(s) those of the object's kind; help("sendall") every
-- entry of that name.
local M = {}

local concat, sort, format = table.concat, table.sort, string.format
local class = require "wirelab.class"

-- The modules users require, the page each is written up in, and how its
-- classes' methods are written there (s:sendall, server:serve_forever).
local MODULES = {
  {name = "wirelab", page = "wirelab", prefix = "wirelab.",
   objects = {task = "task:", event = "event:", queue = "queue:"}},
  {name = "socket", page = "socket", prefix = "socket.", classes = {Socket = "s:"}},
  {name = "socketserver", page = "socketserver", prefix = "socketserver.",
   classes = {BaseServer = "server:", BaseRequestHandler = "handler:"}},
  {name = "http.server", page = "http", prefix = "http.server.",
   classes = {HTTPServer = "server:", BaseHTTPRequestHandler = "handler:"}},
  {name = "http.client", page = "http", prefix = "http.client.",
   classes = {HTTPConnection = "conn:", HTTPResponse = "resp:"}},
  {name = "http.headers", page = "http", prefix = "http.headers.", classes = {Headers = "headers:"}},
  {name = "http.url", page = "http", prefix = "http.url."},
  {name = "process", page = "process", prefix = "process.", classes = {Process = "p:"}},
  {name = "netem", page = "netem", prefix = "netem.",
   objects = {proxy = "proxy:", link = "link:", side = "side:"},
   more = {"link"}},
  {name = "netem.link", page = "link", prefix = "netem.", classes = {Link = "link:", Side = "side:"}},
  -- where the proxies' classes live, for help(proxy)
  {name = "netem.udp", page = "netem", prefix = "netem.", classes = {UDPProxy = "proxy:"}},
  {name = "netem.tcp", page = "netem", prefix = "netem.", classes = {TCPProxy = "proxy:"}},
  {name = "lab", page = "grading", prefix = "lab.", classes = {Lab = "lab:"}},
  {name = "capture", page = "capture", prefix = "capture.", objects = {cap = "cap:"}},
  {name = "wirelab.fs", page = "fs", prefix = "fs."},
  {name = "wirelab.error", page = "errors", prefix = "errors."},
  {name = "wirelab.reader", page = "streams", prefix = "reader.", classes = {Reader = "f:"}},
}
M.MODULES = MODULES

-- ---- the pages -------------------------------------------------------------------

local pages = {}        -- page name -> {title=, entries={...}}

-- parse(text) -> {title, entries}: each entry {signature, summary, callee,
-- key}, callee being what the heading calls (s:sendall) and key its last
-- name (sendall)
local function parse(page, text)
  local out = {title = text:match("^#%s+([^\n]*)") or page, entries = {}}
  local lines, i = {}, 1
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local fenced = false
  while i <= #lines do
    local line = lines[i]
    if line:match("^```") then fenced = not fenced end
    local sig = not fenced and line:match("^###%s+(.-)%s*$")
    if sig then
      local para, j = {}, i + 1
      while j <= #lines and lines[j]:match("^%s*$") do j = j + 1 end
      while j <= #lines and not lines[j]:match("^%s*$") and not lines[j]:match("^#") do
        para[#para + 1] = lines[j]
        j = j + 1
      end
      local callee = sig:match("^([%w_.:]+)") or sig
      out.entries[#out.entries + 1] = {
        signature = sig, summary = concat(para, " "), callee = callee,
        key = callee:match("([%w_]+)$") or callee, page = page,
      }
    end
    i = i + 1
  end
  return out
end

local function page(name)
  if pages[name] == nil then
    local ok, text = pcall(require, "wirelab.docs." .. name)
    pages[name] = ok and type(text) == "string" and parse(name, text) or false
  end
  return pages[name] or nil
end

-- every entry of every page, in page order: gathered once, as the pages
-- are compiled in and never change
local everything
local function all_entries()
  if everything then return everything end
  local names = {}
  for k in pairs(package.preload) do
    local p = type(k) == "string" and k:match("^wirelab%.docs%.(.+)$")
    if p then names[#names + 1] = p end
  end
  sort(names)
  local out = {}
  for _, n in ipairs(names) do
    local p = page(n)
    for _, e in ipairs(p and p.entries or {}) do out[#out + 1] = e end
  end
  everything = out
  return out
end

-- ---- from a value to its name in the docs ----------------------------------------

-- the module entry a loaded module table is, or nil
local function module_of(v)
  for _, m in ipairs(MODULES) do
    if package.loaded[m.name] ~= nil and package.loaded[m.name] == v then return m end
  end
  return nil
end

-- the prefix the docs write the methods of class c with ("server:"):
-- that of c or of the nearest class it extends that the table names
local function class_prefix(c)
  local seen = {}
  while type(c) == "table" and not seen[c] do
    seen[c] = true
    for _, m in ipairs(MODULES) do
      local mod = package.loaded[m.name]
      for cname, prefix in pairs(m.classes or {}) do
        if type(mod) == "table" and rawget(mod, cname) == c then return prefix end
      end
    end
    c = class.own(c, "super")
  end
  return nil
end

-- the prefix the docs write a kind of object's methods with ("s:"), or nil
local function prefix_of(v)
  local t = type(v)
  if t ~= "table" and t ~= "userdata" then return nil end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local prefix = class_prefix(mt) or class_prefix(rawget(mt, "__index"))
  if prefix then return prefix end
  -- a C object indexes its methods with a function (a socket): the class
  -- whose close it finds is its own
  if t == "userdata" then
    local ok, close = pcall(function() return v.close end)
    for _, m in ipairs(MODULES) do
      local mod = package.loaded[m.name]
      for cname, p in pairs(m.classes or {}) do
        local c = type(mod) == "table" and rawget(mod, cname)
        if ok and close ~= nil and type(c) == "table" and class.own(c, "close") == close then return p end
      end
    end
  end
  -- tasks, events and queues have no class in a module: compare metatables
  local wirelab = require "wirelab"
  local probes = {["task:"] = wirelab.current(), ["event:"] = wirelab.event(),
                  ["queue:"] = wirelab.queue()}
  for p, probe in pairs(probes) do
    if probe ~= nil and getmetatable(probe) == mt then return p end
  end
  return nil
end

-- the names a function is documented under, {callee, page} each
-- (socket.create_connection on socket), looked for in the loaded modules
-- and in their classes
local function names_of(fn)
  local out = {}
  for _, m in ipairs(MODULES) do
    local mod = package.loaded[m.name]
    if type(mod) == "table" then
      for k, v in pairs(mod) do
        if v == fn then out[#out + 1] = {m.prefix .. k, m.page} end
        local prefix = type(v) == "table" and class_prefix(v)
        if prefix then
          for mk, mv in pairs(v) do
            if mv == fn and type(mk) == "string" then out[#out + 1] = {prefix .. mk, m.page} end
          end
        end
      end
    end
  end
  -- an inherited method is found on each class: once is enough
  local seen, uniq = {}, {}
  for _, n in ipairs(out) do
    local k = n[1] .. " " .. n[2]
    if not seen[k] then seen[k] = true; uniq[#uniq + 1] = n end
  end
  return uniq
end

-- ---- what help prints -------------------------------------------------------------

local function entry_text(e)
  local s = e.summary ~= "" and ("\n    " .. e.summary) or ""
  return e.signature .. s
end

local function entries_text(list)
  local out = {}
  for _, e in ipairs(list) do out[#out + 1] = entry_text(e) end
  return concat(out, "\n")
end

-- the entries of names ({callee, page} each)
local function by_callee(names)
  local out = {}
  for _, n in ipairs(names) do
    local p = page(n[2])
    for _, e in ipairs(p and p.entries or {}) do
      if e.callee == n[1] then out[#out + 1] = e end
    end
  end
  return out
end

-- the table of modules in docs/README.md: {{name, page, what}...}
local function module_table()
  local ok, text = pcall(require, "wirelab.docs.README")
  local rows = {}
  for name, pg, what in (ok and text or ""):gmatch("\n| `([%w_.]+)` | ([^|\n]-) | ([^\n]-) |") do
    rows[#rows + 1] = {name = name, page = pg, what = what}
  end
  return rows
end

local function overview()
  local out = {"wirelab: Lua 5.4 with Python-style networking on an event loop.",
               "", "Modules (require \"name\"; help(name) lists what each has):"}
  local rows, width = module_table(), 0
  for _, r in ipairs(rows) do width = math.max(width, #r.name) end
  for _, r in ipairs(rows) do
    out[#out + 1] = format("  %-" .. width .. "s  %s", r.name, r.what:gsub("`", ""))
  end
  out[#out + 1] = ""
  out[#out + 1] = "At the prompt: help(x) for a module, function or object; help(\"name\") to"
  out[#out + 1] = "search; status() for the sockets, servers, tasks and processes open now."
  out[#out + 1] = "The full reference is in docs/ (docs/README.md)."
  return concat(out, "\n")
end

-- text(x) -> what help(x) prints
function M.text(x, ...)
  if select("#", ...) == 0 and x == nil then return overview() end
  local m = module_of(x)
  if m == nil and type(x) == "string" then
    for _, mm in ipairs(MODULES) do
      if mm.name == x then m = mm end
    end
  end
  if m then
    local p = page(m.page)
    local list, entries = {}, {}
    for _, pg in ipairs({m.page, table.unpack(m.more or {})}) do
      local pp = page(pg)
      for _, e in ipairs(pp and pp.entries or {}) do entries[#entries + 1] = e end
    end
    for _, e in ipairs(entries) do
      local own = e.callee:sub(1, #m.prefix) == m.prefix
      for _, prefix in pairs(m.classes or {}) do
        own = own or e.callee:sub(1, #prefix) == prefix
      end
      for _, prefix in pairs(m.objects or {}) do
        own = own or e.callee:sub(1, #prefix) == prefix
      end
      if own then list[#list + 1] = e end
    end
    return format("%s (docs/%s.md)\n\n%s", p and p.title or m.name, m.page, entries_text(list))
  end
  if type(x) == "function" then
    local list = by_callee(names_of(x))
    if #list > 0 then return entries_text(list) end
    for lib, t in pairs{_G = _G, string = string, table = table, math = math, io = io,
                        os = os, coroutine = coroutine, utf8 = utf8, debug = debug} do
      for k, v in pairs(t) do
        if v == x then
          return format("%s%s is Lua's own: see the Lua 5.4 reference manual, section 6",
                        lib == "_G" and "" or lib .. ".", k)
        end
      end
    end
    local info = debug.getinfo(x, "S")
    return format("no entry in the reference for this function (%s)",
                  info.short_src .. (info.linedefined > 0 and ":" .. info.linedefined or ""))
  end
  if type(x) == "string" then
    local list = {}
    for _, e in ipairs(all_entries()) do
      if e.key == x or e.callee == x then list[#list + 1] = e end
    end
    if #list == 0 then
      for _, e in ipairs(all_entries()) do
        if e.callee:find(x, 1, true) then list[#list + 1] = e end
      end
    end
    if #list == 0 then return format("nothing in the reference is called %q", x) end
    return entries_text(list)
  end
  local prefix = prefix_of(x)
  if prefix then
    local list = {}
    for _, e in ipairs(all_entries()) do
      if e.callee:sub(1, #prefix) == prefix then list[#list + 1] = e end
    end
    return format("%s\n\n%s", tostring(x), entries_text(list))
  end
  return format("no entry in the reference for %s", tostring(x))
end

-- help([x]): prints text(x)
function M.show(...)
  io.stdout:write(M.text(...), "\n")
  io.stdout:flush()
end

return M
