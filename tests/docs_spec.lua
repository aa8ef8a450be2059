-- docs_spec: the documentation in docs/ stays true to the code. Every
-- relative link in README.md and docs/*.md leads to a file inside the
-- repository (and a #fragment to a heading of it); every public function
-- and method of the modules users require has its `###` heading in docs/,
-- in the format docs/README.md states (help() at the prompt reads them).
-- A function added without its entry fails here: that is the point.
local fs = require "wirelab.fs"
local wirelab = require "wirelab"
local process = require "process"

-- The repository root: this file is <root>/tests/docs_spec.lua.
local ROOT = (function()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local real = assert(fs.realpath(src))
  return assert(real:match("^(.*)/tests/[^/]+$"), "docs_spec is not in tests/")
end)()

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- docs/*.md and the top-level README, as paths relative to ROOT
local function markdown_files()
  local list = {"README.md"}
  for _, e in ipairs(assert(fs.listdir(ROOT .. "/docs"))) do
    if e.name:match("%.md$") then list[#list + 1] = "docs/" .. e.name end
  end
  table.sort(list)
  return list
end

-- The lines of a markdown text outside fenced code blocks, and the
-- number of each in the file.
local function prose_lines(text)
  local out, numbers, fenced, n = {}, {}, false, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("^%s*```") then fenced = not fenced
    elseif not fenced then
      out[#out + 1] = line
      numbers[#out] = n
    end
  end
  return out, numbers
end

-- GitHub's anchor for a heading: lower case, punctuation dropped, spaces
-- to hyphens; a repeated heading gets -1, -2...
local function anchors(text)
  local set, seen = {}, {}
  for _, line in ipairs(prose_lines(text)) do
    local h = line:match("^#+%s+(.-)%s*#*%s*$")
    if h then
      local slug = h:lower():gsub("[^%w%s_-]", ""):gsub("%s", "-")
      if seen[slug] then
        seen[slug] = seen[slug] + 1
        slug = slug .. "-" .. seen[slug]
      else
        seen[slug] = 0
      end
      set[slug] = true
    end
  end
  return set
end

-- "a/b/../c" -> "a/c"; nil when the path climbs above its start
local function normalize(path)
  local parts = {}
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts, "/")
end

-- Every problem with the relative links of the file rel of the tree at
-- root (the repository, or a probe tree).
local function link_problems(root, rel)
  local problems = {}
  local dir = rel:match("^(.*)/[^/]*$") or ""
  local lines, numbers = prose_lines(read_file(root .. "/" .. rel))
  for i, line in ipairs(lines) do
    line = line:gsub("`[^`]*`", "")          -- code spans hold no links
    for target in line:gmatch("%]%(([^%s%)]+)%)") do
      if not target:match("^%a[%w+.-]*:") then   -- http:, mailto: are not checked
        local path, frag = target:match("^([^#]*)#?(.*)$")
        local where = ("%s, line %d: (%s)"):format(rel, numbers[i], target)
        local resolved = path == "" and rel or normalize((dir ~= "" and dir .. "/" or "") .. path)
        if not resolved then
          problems[#problems + 1] = where .. " leads outside the repository"
        elseif not fs.stat(root .. "/" .. resolved) then
          problems[#problems + 1] = where .. " leads to a missing file"
        elseif frag ~= "" and resolved:match("%.md$")
            and not anchors(read_file(root .. "/" .. resolved))[frag] then
          problems[#problems + 1] = where .. " names no heading of " .. resolved
        end
      end
    end
  end
  return problems
end

-- ---- the reference headings -----------------------------------------------

-- Every `###` heading of docs/*.md: name -> "file: heading", where name is
-- what comes before the "(" (e.g. "s:sendall", "socket.create_connection").
local function reference_headings()
  local names, malformed = {}, {}
  for _, rel in ipairs(markdown_files()) do
    if rel:match("^docs/") then
      for _, line in ipairs(prose_lines(read_file(ROOT .. "/" .. rel))) do
        local h = line:match("^###%s+(.-)%s*$")
        if h then
          -- the format of docs/README.md: a call, then optionally "-> results"
          local name = h:match("^([%a_][%w_.:]*)%(.*%)$") or h:match("^([%a_][%w_.:]*)%(.*%) %-> .+$")
          if name then names[name] = rel .. ": " .. h
          else malformed[#malformed + 1] = rel .. ": ### " .. h end
        end
      end
    end
  end
  return names, malformed
end

-- Private methods, called only by their own module: no entry. A new
-- `_name` that is really private goes here, deliberately.
local PRIVATE = {
  ["socketserver.BaseServer._handle_request_noblock"] = true,
  ["socketserver.BaseServer._serve_datagrams"] = true,   -- serve_forever's, for UDP
  ["http.server.BaseHTTPRequestHandler._fail"] = true,
  ["http.client.HTTPConnection._host_header"] = true,
  ["http.client.HTTPConnection._drop"] = true,
  ["http.client.HTTPConnection._reusable"] = true,
  ["http.client.HTTPConnection._fill"] = true,
  ["http.client.HTTPConnection._settle"] = true,
  ["http.client.HTTPConnection._send"] = true,
  ["http.client.HTTPConnection._put"] = true,
  ["http.client.HTTPConnection._read_head"] = true,
  ["http.client.HTTPResponse._complete"] = true,
  ["http.client.HTTPResponse._error"] = true,
  ["http.client.HTTPResponse._next"] = true,
  ["http.client.HTTPResponse._drain"] = true,
  ["lab.context.Context._ended_early"] = true,
  ["lab.context.Context._log_text"] = true,
  ["lab.context.Context._normalise"] = true,
  ["lab.context.Context._partial"] = true,
  ["lab.context.Context._settle"] = true,
  ["lab.context.Context._stop_all"] = true,
  ["lab.context.Context._limits_reached"] = true,
  ["process.Process._result"] = true,
  ["process.NetNS._socket"] = true,
  ["netem.link.Link._tap"] = true,          -- for the capture module
  ["socket._connect_with"] = true,           -- for process.netns's sockets
  ["socket._serve_with"] = true,
  ["socket._open"] = true,                   -- the rows behind wirelab.status
  ["netem.udp_proxy._state"] = true,         -- what tostring(proxy) shows
  ["netem.tcp_proxy._state"] = true,
}

-- The method table of an object: its metatable's __index table, or the
-- metatable itself (classes of wirelab.class are their own __index).
local function methods_of(obj)
  local mt = getmetatable(obj)
  if type(mt) ~= "table" then return nil end
  -- a wirelab.class class lists its own fields (its __index holds the
  -- inherited ones too)
  if require("wirelab.class").is_class(mt) then return mt end
  return type(mt.__index) == "table" and mt.__index or mt
end

local SERVER, HANDLER = {"server:"}, {"handler:"}

-- For each module: the prefix of its functions in the docs, and each
-- table it exports: a class (with the prefixes its methods are written
-- with, and whether it has a constructor entry), or plain data.
local function modules()
  local socket = require "socket"
  local ss = require "socketserver"
  local hs = require "http.server"
  local hc = require "http.client"
  local _ = hs.SimpleHTTPRequestHandler           -- loaded on first use
  return {
    {name = "wirelab", mod = wirelab, prefix = "wirelab."},
    {name = "socket", mod = socket, prefix = "socket.", tables = {
      Socket = {prefixes = {"s:"}},
      SocketFile = {prefixes = {"f:"}},
    }},
    {name = "socketserver", mod = ss, prefix = "socketserver.", tables = {
      BaseServer = {prefixes = SERVER, ctor = true},
      TCPServer = {prefixes = SERVER, ctor = true},
      UDPServer = {prefixes = SERVER, ctor = true},
      ThreadingTCPServer = {prefixes = SERVER, ctor = true},
      ThreadingUDPServer = {prefixes = SERVER, ctor = true},
      ForkingTCPServer = {prefixes = SERVER, ctor = true},
      ForkingUDPServer = {prefixes = SERVER, ctor = true},
      ThreadingMixIn = {prefixes = SERVER},      -- mixins: no constructor
      ForkingMixIn = {prefixes = SERVER},
      BaseRequestHandler = {prefixes = HANDLER, ctor = true},
      StreamRequestHandler = {prefixes = HANDLER, ctor = true},
      DatagramRequestHandler = {prefixes = HANDLER, ctor = true},
      _servers = {data = true},
    }},
    {name = "http.server", mod = hs, prefix = "http.server.", tables = {
      HTTPServer = {prefixes = SERVER, ctor = true},
      ThreadingHTTPServer = {prefixes = SERVER, ctor = true},
      BaseHTTPRequestHandler = {prefixes = HANDLER, ctor = true},
      SimpleHTTPRequestHandler = {prefixes = HANDLER, ctor = true},
      Headers = {prefixes = {"headers:"}},
      explanations = {data = true},
    }},
    {name = "http.client", mod = hc, prefix = "http.client.", tables = {
      HTTPConnection = {prefixes = {"conn:"}, ctor = true},
      HTTPResponse = {prefixes = {"resp:"}},     -- made by conn:getresponse()
      Headers = {prefixes = {"headers:"}},
      responses = {data = true},
    }},
    {name = "http.headers", mod = require "http.headers", prefix = "http.headers.", tables = {
      Headers = {prefixes = {"headers:"}},
    }},
    {name = "http.url", mod = require "http.url", prefix = "http.url."},
    {name = "process", mod = process, prefix = "process.", tables = {
      Process = {prefixes = {"p:"}},
      NetNS = {prefixes = {"ns:"}},
      SIGNALS = {data = true}, _processes = {data = true},
    }},
    {name = "capture", mod = require "capture", prefix = "capture.", tables = {
      Capture = {prefixes = {"cap:"}},
    }},
    {name = "netem.link", mod = require "netem.link", prefix = "netem.", tables = {
      Link = {prefixes = {"link:"}},
      Side = {prefixes = {"side:"}},
      A = {data = true}, B = {data = true},
    }},
    {name = "wirelab.error", mod = require "wirelab.error", prefix = "errors.", tables = {
      codes = {data = true},
    }},
    {name = "wirelab.fs", mod = fs, prefix = "fs."},
    {name = "netem", mod = require "netem", prefix = "netem."},
    {name = "wirelab.pretty", mod = require "wirelab.pretty", prefix = "pretty."},
    {name = "lab", mod = require "lab", prefix = "lab.", tables = {
      Lab = {prefixes = {"lab:"}},
      VISIBILITY = {data = true}, STARTS = {data = true},
    }},
    -- of lab.context only `t` is a lab author's API; the rest is the runner's
    {name = "lab.context", mod = {Context = require("lab.context").Context}, prefix = "context.", tables = {
      Context = {prefixes = {"t:"}},
    }},
    {name = "wirelab.reader", mod = require "wirelab.reader", prefix = "reader.", tables = {
      Reader = {prefixes = {"f:"}},
    }},
    {name = "wirelab.class", mod = require "wirelab.class", prefix = "class.", tables = {
      Object = {prefixes = {"Class:", "obj:"}},
    }},
  }
end

-- Objects whose methods live in no module table: tasks, events, queues,
-- and every stream kind (docs/streams.md writes them f:).
local function objects()
  local list = {}
  local s = require("socket").socket()
  local p = process.spawn{"true", stdout = true, stderr = true}
  list[#list + 1] = {name = "task", obj = wirelab.current(), prefixes = {"task:"}}
  list[#list + 1] = {name = "event", obj = wirelab.event(), prefixes = {"event:"}}
  list[#list + 1] = {name = "queue", obj = wirelab.queue(), prefixes = {"queue:"}}
  list[#list + 1] = {name = "makefile('rb')", obj = s:makefile("rb"), prefixes = {"f:"}}
  list[#list + 1] = {name = "makefile('w')", obj = s:makefile("w"), prefixes = {"f:"}}
  list[#list + 1] = {name = "p.stdout", obj = p.stdout, prefixes = {"f:"}}
  -- the netem proxies: objects of functions, whose classes are not exported
  local netem = require "netem"
  local udp = netem.udp_proxy{target = {"127.0.0.1", 9}}
  local tcp = netem.tcp_proxy{target = {"127.0.0.1", 9}}
  list[#list + 1] = {name = "netem.udp_proxy", obj = udp, prefixes = {"proxy:"}}
  list[#list + 1] = {name = "netem.tcp_proxy", obj = tcp, prefixes = {"proxy:"}}
  udp:close()
  tcp:close()
  p:wait(5)
  p:close()
  s:close()
  return list
end

-- Each missing entry of table t's own functions; where names the table.
-- Metamethods are not called by name, and `init` is the constructor,
-- whose entry (`### module.Class(...)`) the caller checks.
local function missing_methods(t, where, prefixes, headings, out)
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:match("^__")
       and k ~= "init" and not PRIVATE[where .. "." .. k] then
      local found = false
      for _, pre in ipairs(prefixes) do
        if headings[pre .. k] then found = true end
      end
      if not found then
        out[#out + 1] = ("%s.%s: no heading `### %s%s(...)`"):format(where, k, prefixes[1], k)
      end
    end
  end
end

describe("docs", function()
  it("every relative link in README.md and docs/*.md leads to a file in the repository", function()
    local problems = {}
    for _, rel in ipairs(markdown_files()) do
      for _, p in ipairs(link_problems(ROOT, rel)) do problems[#problems + 1] = p end
    end
    assert.are.same({}, problems)
  end)

  it("the link check finds a link that leaves the repository or leads nowhere", function()
    -- the checker itself must be able to fail: a probe tree of bad links
    local r = process.run{"mktemp", "-d", timeout = 5}
    local tmp = assert(r.stdout:match("^(%S+)"), "mktemp -d failed")
    assert(process.run{"mkdir", tmp .. "/docs", timeout = 5}.code == 0)
    local f = assert(io.open(tmp .. "/docs/probe.md", "w"))
    f:write("[a](../../outside.md) [b](nosuch.md) [c](probe.md#no-such-heading) [d](probe.md#a-heading)\n",
            "`[e](in-a-code-span.md)`\n```\n[f](in-a-code-block.md)\n```\n## A heading\n")
    f:close()
    local ok, problems = pcall(link_problems, tmp, "docs/probe.md")
    process.run{"rm", "-r", tmp, timeout = 5}
    assert.is_true(ok, problems)
    assert.are.equal(3, #problems, table.concat(problems, "\n"))
    assert.truthy(problems[1]:find("outside the repository", 1, true))
    assert.truthy(problems[2]:find("missing file", 1, true))
    assert.truthy(problems[3]:find("no heading", 1, true))
  end)

  it("every ### heading is a call signature, as docs/README.md states", function()
    local _, malformed = reference_headings()
    assert.are.same({}, malformed)
  end)

  it("every public function of the modules has a ### heading", function()
    local handles = wirelab.handles()
    local headings = reference_headings()
    local missing = {}
    for _, m in ipairs(modules()) do
      for k, v in pairs(m.mod) do
        if type(v) == "function" then
          if not headings[m.prefix .. k] and not PRIVATE[m.name .. "." .. k] then
            missing[#missing + 1] = ("%s.%s: no heading `### %s%s(...)`"):format(m.name, k, m.prefix, k)
          end
        elseif type(v) == "table" then
          local spec = m.tables and m.tables[k]
          if not spec then
            missing[#missing + 1] = ("%s.%s: a table docs_spec does not know: list it as a class or as data")
              :format(m.name, k)
          elseif not spec.data then
            local where = m.name .. "." .. k
            if spec.ctor and not headings[m.prefix .. k] then
              missing[#missing + 1] = ("%s: no constructor heading `### %s%s(...)`"):format(where, m.prefix, k)
            end
            missing_methods(v, where, spec.prefixes, headings, missing)
          end
        end
      end
    end
    for _, o in ipairs(objects()) do
      local t = methods_of(o.obj)
      assert.is_table(t, o.name .. " has no method table")
      missing_methods(t, o.name, o.prefixes, headings, missing)
    end
    table.sort(missing)
    assert.are.same({}, missing)
    assert.are.equal(handles, wirelab.handles(), "the socket or process of objects() was left open")
  end)

  it("the mixins, which have no constructor, are named in a heading", function()
    local text = read_file(ROOT .. "/docs/socketserver.md")
    for _, name in ipairs({"ThreadingMixIn", "ForkingMixIn"}) do
      local found = false
      for _, line in ipairs(prose_lines(text)) do
        if line:match("^##") and line:find(name, 1, true) then found = true end
      end
      assert.is_true(found, name .. " is named in no heading of docs/socketserver.md")
    end
  end)

  it("docs/cli.md quotes `wirelab --help` as it is", function()
    local bin = os.getenv("WIRELAB") or arg[-1] or "./wirelab"
    local r = process.run{bin, "--help", timeout = 5}
    assert.are.equal(0, r.code)
    local quoted = read_file(ROOT .. "/docs/cli.md"):match("```\n(usage:.-)```")
    assert.is_string(quoted, "docs/cli.md has no fenced block starting with 'usage:'")
    assert.are.equal(r.stdout, quoted)
  end)

  it("the files the man page names exist", function()
    local page = read_file(ROOT .. "/docs/wirelab.1")
    local n = 0
    for path in page:gmatch("(docs/[%w_.-]+%.%w+)") do
      n = n + 1
      assert.truthy(fs.stat(ROOT .. "/" .. path), "docs/wirelab.1 names " .. path .. ", which does not exist")
    end
    assert.is_true(n >= 10, "docs/wirelab.1 names only " .. n .. " docs files")
  end)
end)
