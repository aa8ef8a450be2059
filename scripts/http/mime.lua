-- http.mime: a file name's media type, as Python's mimetypes guesses it
-- for SimpleHTTPRequestHandler: the system's table (/etc/mime.types, from
-- Debian's media-types) read once, over a small table of our own that
-- stands alone where the system has none. Compression suffixes are peeled
-- first (a.tar.gz is a tar file, gzip-encoded; .tgz means .tar.gz).
local lower, match = string.lower, string.match
local open = io.open

local M = {}

M.files = {"/etc/mime.types"}

-- Used where no system table can be read; the system's entries win.
local FALLBACK = {
  html = "text/html", htm = "text/html", css = "text/css", js = "text/javascript",
  mjs = "text/javascript", json = "application/json", txt = "text/plain", csv = "text/csv",
  md = "text/markdown", xml = "application/xml", png = "image/png", jpg = "image/jpeg",
  jpeg = "image/jpeg", gif = "image/gif", svg = "image/svg+xml", webp = "image/webp",
  ico = "image/vnd.microsoft.icon", pdf = "application/pdf", wasm = "application/wasm",
  mp3 = "audio/mpeg", wav = "audio/x-wav", mp4 = "video/mp4", webm = "video/webm",
  py = "text/x-python", c = "text/x-csrc", h = "text/x-chdr", zip = "application/zip",
  tar = "application/x-tar", sh = "application/x-sh",
}

-- Python's suffix_map and encodings_map, the rules (not its table)
local SUFFIX = {tgz = ".tar.gz", taz = ".tar.gz", tz = ".tar.gz", tbz2 = ".tar.bz2",
                txz = ".tar.xz", svgz = ".svg.gz"}
local ENCODING = {gz = "gzip", Z = "compress", bz2 = "bzip2", xz = "xz", br = "br"}

local types                           -- extension -> type, on first use

-- read(path, into): the "type ext ext..." lines of a mime.types file
local function read(path, into)
  local f = open(path, "r")
  if not f then return false end
  for line in f:lines() do
    line = line:gsub("#.*", "")
    local t, exts = match(line, "^%s*(%S+)%s+(.-)%s*$")
    if t and exts ~= "" then
      for ext in exts:gmatch("%S+") do into[ext] = t end
    end
  end
  f:close()
  return true
end

function M.table()
  if not types then
    types = {}
    for k, v in pairs(FALLBACK) do types[k] = v end
    for _, path in ipairs(M.files) do read(path, types) end
  end
  return types
end

-- guess(name) -> type or nil, encoding or nil (Python's guess_type)
function M.guess(name)
  local map = M.table()
  local base, ext = match(name, "^(.-)%.([^./]+)$")
  if not ext then return nil, nil end
  local s = SUFFIX[ext] or SUFFIX[lower(ext)]
  if s then
    base, ext = match(base .. s, "^(.-)%.([^./]+)$")
  end
  local enc = ENCODING[ext] or ENCODING[lower(ext)]
  if enc then
    base, ext = match(base, "^(.-)%.([^./]+)$")
    if not ext then return nil, enc end
  end
  return map[ext] or map[lower(ext)], enc
end

return M
