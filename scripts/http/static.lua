-- http.static: Python's SimpleHTTPRequestHandler (API.md section 5), serving
-- a directory tree over http.server. Nothing outside `directory` is ever
-- served (RELIABILITY.md item 12): the request path is percent-decoded once,
-- a `..` segment, NUL or backslash is refused outright, and the real path of
-- what remains (symlinks resolved) must lie under the real path of the root.
--
-- File metadata comes from wirelab.fs (realpath, stat, listdir: one system
-- call each). Reading the file itself (io.open, 64 KiB reads) blocks the
-- loop, briefly, per chunk.
local server = require "http.server"
local core = require "http.core"
local fs = require "wirelab.fs"
local mime = require "http.mime"

local tonumber, tostring, ipairs, pcall, error = tonumber, tostring, ipairs, pcall, error
local concat, sort, lower, format, char = table.concat, table.sort, string.lower, string.format, string.char

local M = {}

-- ---- file system -----------------------------------------------------------

-- probe(root, path) -> {root=, real=, kind=, size=, mtime=} or nil when
-- either does not exist. kind: "file", "directory" or "other"; size and
-- mtime follow symlinks, and real is the path with every link resolved.
local function probe(root, path)
  local rroot, real = fs.realpath(root), fs.realpath(path)
  if not rroot or not real then return nil end
  local st = fs.stat(real)
  if not st then return nil end
  return {root = rroot, real = real,
          kind = (st.kind == "file" or st.kind == "directory") and st.kind or "other",
          size = st.size, mtime = st.mtime}
end

-- list(dir) -> {{name=, isdir=, islink=}...} or nil; dir is absolute
local function list(dir)
  return (fs.listdir(dir))
end

-- The process's working directory: wirelab has no chdir, so it is read once.
local cwd_cache
local function getcwd()
  if not cwd_cache then
    cwd_cache = fs.getcwd()
    if not cwd_cache then error("http.static: cannot read the current directory", 2) end
  end
  return cwd_cache
end

-- ---- URLs ------------------------------------------------------------------

-- one pass, so "%252e" stays "%2e" and never becomes "."
local function unquote(s)
  return (s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end
M.unquote = unquote

-- Python's urllib.parse.quote(s, safe="/")
local function quote(s)
  return (s:gsub("[^%w_.~/-]", function(c) return format("%%%02X", c:byte()) end))
end
M.quote = quote

-- html.escape(s, quote=False), as Python's listing uses
local function escape(s) return server.html_escape(s, false) end

-- The path and query of a request target; an absolute-form target
-- ("http://host/p") loses its scheme and authority first.
local function split_target(target)
  target = target:gsub("^%a[%w+.-]*://[^/?#]*", "", 1)
  local path, query = target:match("^([^?#]*)%??([^#]*)")
  return path, target:find("?", 1, true) and query or nil
end

-- ---- the handler -------------------------------------------------------------

local Base = server.BaseHTTPRequestHandler
local Simple = Base:extend()
M.SimpleHTTPRequestHandler = Simple
Simple.server_version = "SimpleHTTP/0.6"
Simple.index_pages = {"index.html", "index.htm"}
Simple.default_type = "application/octet-stream"
Simple.read_size = 65536            -- a file leaves in reads of this size
-- Python's: what the handler decides before asking the media-type table
-- (http.mime); keys with or without the dot
Simple.extensions_map = {
  gz = "application/gzip", Z = "application/octet-stream", bz2 = "application/x-bzip2",
  xz = "application/x-xz",
}

-- SimpleHTTPRequestHandler(request, client_address, server[, directory]):
-- `directory` comes from the argument, else the class field (set it with
-- Simple:extend({directory = ...})), else the current directory.
function Simple:init(request, client_address, srv, directory)
  if directory ~= nil then self.directory = directory
  elseif self.directory == nil then self.directory = getcwd() end
  Base.init(self, request, client_address, srv)
end

function Simple:do_GET()
  local source = self:send_head()
  if source then
    local ok, err = pcall(self.copyfile, self, source, self.wfile)
    source:close()
    if not ok then error(err, 0) end
    -- the file shrank while it was sent: the body is shorter than its
    -- Content-Length, and only closing the connection tells the client
    if source.short then self.close_connection = true end
  end
end

function Simple:do_HEAD()
  local source = self:send_head()
  if source then source:close() end
end

-- copyfile(source, outputfile): chunk by chunk, never the whole file
function Simple:copyfile(source, outputfile)
  local n = self.read_size
  while true do
    local chunk = source:read(n)
    if not chunk then break end
    outputfile:write(chunk)
  end
end

-- translate_path(path) -> the file-system path under self.directory, or nil
-- for a path that tries to leave it (or that no file can have)
function Simple:translate_path(path)
  path = split_target(path)
  local trailing_slash = path:find("/%s*$") ~= nil
  path = unquote(path)
  if path:find("\0", 1, true) or path:find("\\", 1, true) then return nil end
  local words = {}
  for word in path:gmatch("[^/]+") do
    -- ".. " is ".." to some file systems and tools: refused as well
    if word:match("^%s*(.-)%s*$") == ".." then return nil end
    if word ~= "." then words[#words + 1] = word end
  end
  local dir = self.directory
  path = #words > 0 and (dir:gsub("/+$", "") .. "/" .. concat(words, "/")) or dir
  if trailing_slash and path:sub(-1) ~= "/" then path = path .. "/" end
  return path
end

-- stat(path) -> the probe of path, or nil unless it exists inside the root
function Simple:stat(path)
  local info = probe(self.directory, path)
  if not info then return nil end
  local root, real = info.root, info.real
  if real ~= root and real:sub(1, #root + 1) ~= (root == "/" and "/" or root .. "/") then
    return nil                         -- a symlink (or the root's) leads outside
  end
  return info
end

-- guess_type(path): Python's order: extensions_map, then the system's
-- media types (/etc/mime.types), then default_type
function Simple:guess_type(path)
  local ext = path:match("%.([^./]+)$")
  if ext then
    local map = self.extensions_map
    local t = map[ext] or map["." .. ext]
    if t then return t end
    local l = lower(ext)
    t = map[l] or map["." .. l]
    if t then return t end
  end
  return (mime.guess(path)) or self.default_type
end

-- A source for copyfile: at most `size` bytes of f; `short` once it ended early.
local FileSource = {}
FileSource.__index = FileSource
function FileSource:read(n)
  if self.left <= 0 then return nil end
  local chunk = self.f:read(math.min(n, self.left))
  if not chunk then self.short = true; return nil end
  self.left = self.left - #chunk
  return chunk
end
function FileSource:close() self.f:close() end

local StringSource = {}
StringSource.__index = StringSource
function StringSource:read(n)
  if self.pos > #self.s then return nil end
  local chunk = self.s:sub(self.pos, self.pos + n - 1)
  self.pos = self.pos + n
  return chunk
end
function StringSource:close() end

-- send_head() -> a source with the body (the head is sent), or nil when the
-- whole response (error, redirect, 304, HEAD...) has been sent
function Simple:send_head()
  local path = self:translate_path(self.path)
  local info = path and self:stat(path)
  if not info then
    self:send_error(404, "File not found")
    return nil
  end
  if info.kind == "directory" then
    local upath, query = split_target(self.path)
    if upath:sub(-1) ~= "/" then
      -- a leading "//" or "/\" would make the Location another host
      -- (CVE-2021-28861): collapse it to one "/", with any tab or control
      -- byte among the slashes, which browsers drop before resolving
      local rest = upath:gsub("^[/\\%c]+", "", 1)
      local location = rest == "" and "/" or "/" .. rest .. "/"
      if query then location = location .. "?" .. query end
      self:send_response(301)
      self:send_header("Location", location)
      self:send_header("Content-Length", "0")
      self:end_headers()
      return nil
    end
    local index
    for _, name in ipairs(self.index_pages) do
      local i = self:stat(info.real .. "/" .. name)
      if i and i.kind == "file" then index = i; i.name = name; break end
    end
    if not index then return self:list_directory(info.real) end
    info, path = index, path .. (path:sub(-1) == "/" and "" or "/") .. index.name
  elseif path:sub(-1) == "/" then
    -- "file.txt/" is not the file (Python's issue 17324)
    self:send_error(404, "File not found")
    return nil
  end
  -- regular files only: a FIFO or device would block the loop on open
  if info.kind ~= "file" then
    self:send_error(404, "File not found")
    return nil
  end
  local f = io.open(info.real, "rb")
  if not f then
    self:send_error(404, "File not found")
    return nil
  end

  local ims = self.headers:get("If-Modified-Since")
  if ims and not self.headers:get("If-None-Match") then
    local t = core.parse_httpdate(ims)            -- nil when ill-formed: ignored
    if t and info.mtime <= t then
      f:close()
      self:send_response(304)
      self:end_headers()
      return nil
    end
  end
  self:send_response(200)
  -- the type of the name asked for, as Python: a link's target may differ
  self:send_header("Content-type", self:guess_type(path))
  self:send_header("Content-Length", tostring(info.size))
  self:send_header("Last-Modified", self:date_time_string(info.mtime))
  self:end_headers()
  return setmetatable({f = f, left = info.size}, FileSource)
end

-- list_directory(path) -> a source with Python's HTML listing of path
function Simple:list_directory(path)
  local entries = list(path)
  if not entries then
    self:send_error(404, "No permission to list directory")
    return nil
  end
  sort(entries, function(a, b)
    local la, lb = lower(a.name), lower(b.name)
    if la ~= lb then return la < lb end
    return a.name < b.name
  end)
  local title = "Directory listing for " .. escape(unquote((split_target(self.path))))
  local r = {
    "<!DOCTYPE HTML>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    "<title>" .. title .. "</title>\n</head>",
    "<body>\n<h1>" .. title .. "</h1>",
    "<hr>\n<ul>",
  }
  for _, e in ipairs(entries) do
    local display, link = e.name, e.name
    if e.isdir then display, link = e.name .. "/", e.name .. "/" end
    if e.islink then display = e.name .. "@" end   -- a link to a directory still links with "/"
    r[#r + 1] = format('<li><a href="%s">%s</a></li>', quote(link), escape(display))
  end
  r[#r + 1] = "</ul>\n<hr>\n</body>\n</html>\n"
  local body = concat(r, "\n")
  self:send_response(200)
  self:send_header("Content-type", "text/html; charset=utf-8")
  self:send_header("Content-Length", tostring(#body))
  self:end_headers()
  return setmetatable({s = body, pos = 1}, StringSource)
end

return require("wirelab.class").named(M)  -- classes know their names
