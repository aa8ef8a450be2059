-- http_static_spec: SimpleHTTPRequestHandler (API.md section 5) and the
-- static-file items of RELIABILITY.md item 12, served from a real directory
-- tree on loopback and checked with raw sockets, curl, and the
-- `wirelab -m http.server` command line as a subprocess.
local wirelab = require "wirelab"
local socket = require "socket"
local process = require "process"
local core = require "http.core"
local hs = require "http.server"
local static = require "http.static"

local support = require "support"
local bounded, defer = support.bounded, support.defer

local Simple = static.SimpleHTTPRequestHandler

local tmp, root            -- root is served; tmp/secret.txt sits just outside it
local SECRET = "TOP SECRET, outside the root\n"
local HELLO = "hello, world\n"
local HELLO_MTIME = 1000000000            -- Sun, 09 Sep 2001 01:46:40 GMT
local big                                  -- 1 MiB of binary bytes

local function sh(argv)
  argv.timeout = 5
  local r = process.run(argv)
  assert(r.code == 0, table.concat(argv, " ") .. " failed: " .. r.stderr)
  return r.stdout
end

local function write(rel, data)
  local f = assert(io.open(root .. "/" .. rel, "wb"))
  f:write(data)
  f:close()
end


-- The test server joins its handler tasks on server_close, so the count
-- of open handles is exact once it returns.
local Server = hs.ThreadingHTTPServer:extend({daemon_threads = false})
local Handler = Simple:extend({log_message = function() end})

-- A body running against a fresh server on the directory tree, bounded in
-- time, and leaving no handle open behind it.
local function serving(fn, cls)
  return bounded(10, function()
    local srv = Server({"127.0.0.1", 0}, cls or Handler:extend({directory = root}))
    srv:start()
    defer(function()
      srv:shutdown()
      srv:server_close()
    end)
    fn(srv.server_address[2], srv)
  end)
end

-- One raw request on its own connection, read to EOF.
-- -> status, headers (lower-case names), body, the raw response
local function raw(port, request)
  local c <close> = socket.create_connection("127.0.0.1", port, 5)
  c:settimeout(5)
  c:sendall(request)
  local parts = {}
  while true do
    local d = c:recv(65536)
    if d == "" then break end
    parts[#parts + 1] = d
  end
  local resp = table.concat(parts)
  local head, body = resp:match("^(.-)\r\n\r\n(.*)$")
  assert(head, "no complete response head in " .. string.format("%q", resp:sub(1, 200)))
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do headers[k:lower()] = v end
  return status, headers, body, resp
end

local function request(port, method, target, extra)
  return raw(port, method .. " " .. target .. " HTTP/1.1\r\nHost: test\r\n" .. (extra or "") ..
    "Connection: close\r\n\r\n")
end

local function get(port, target, extra) return request(port, "GET", target, extra) end

-- curl URL -> status, content type, body (from a file, so binary is exact)
local function curl(url, ...)
  local out = tmp .. "/curl.out"
  os.remove(out)
  local argv = {"curl", "-sS", "--path-as-is", "-o", out, "-w", "%{http_code} %{content_type}",
                timeout = 8}
  for i = 1, select("#", ...) do argv[#argv + 1] = select(i, ...) end
  argv[#argv + 1] = url
  local r = process.run(argv)
  assert(r.code == 0, "curl failed: " .. r.stderr)
  local status, ctype = r.stdout:match("^(%d+) ?(.*)$")
  local f = io.open(out, "rb")
  local body = f and f:read("a") or ""
  if f then f:close() end
  return tonumber(status), ctype, body
end

describe("http.static SimpleHTTPRequestHandler", function()
  local remove_tmp
  setup(function()
    wirelab.timeout(10, function()
      tmp, remove_tmp = support.tmpdir()
      root = tmp .. "/root"
      sh{"mkdir", "-p", root .. "/sub/deeper", root .. "/site", root .. "/<b>dir",
         root .. "/evil.example/dir", root .. "/a dir"}
      local f = assert(io.open(tmp .. "/secret.txt", "wb"))
      f:write(SECRET)
      f:close()
      write("hello.txt", HELLO)
      sh{"touch", "-d", "@" .. HELLO_MTIME, root .. "/hello.txt"}
      write("with space.txt", "spaced\n")
      write("a&b <script>alert(1).html", "<p>scripted</p>\n")
      write("apple.txt", "a\n")
      write("Banana.txt", "b\n")
      write("cherry.txt", "c\n")
      write("pct%41.txt", "percent\n")
      write("UPPER.PNG", "\x89PNG\r\n")
      write("sub/inner.json", '{"inner": true}\n')
      write("site/index.html", "<h1>index</h1>\n")
      write("site/other.css", "h1 {}\n")
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char((i * 7 + 3) % 256) end
      local block = table.concat(bytes)
      local parts = {}
      for i = 1, 4096 do parts[i] = block:sub(i % 256 + 1) .. block:sub(1, i % 256) end
      big = table.concat(parts)
      assert(#big == 1024 * 1024)
      write("big.bin", big)
      sh{"ln", "-s", "/etc", root .. "/etc_link"}
      sh{"ln", "-s", "/etc/passwd", root .. "/passwd_link"}
      sh{"ln", "-s", "../secret.txt", root .. "/secret_link"}
      sh{"ln", "-s", "..", root .. "/up_link"}
      sh{"ln", "-s", "hello.txt", root .. "/inside_link.txt"}
      sh{"ln", "-s", "hello.txt", root .. "/song_link.mp3"}
    end)
  end)

  teardown(function() if remove_tmp then remove_tmp() end end)

  describe("files", function()
    it("serves a file with its type, length and Last-Modified", serving(function(port)
      local status, h, body = get(port, "/hello.txt")
      assert.are.equal(200, status)
      assert.are.equal(HELLO, body)
      assert.are.equal("text/plain", h["content-type"])
      assert.are.equal(tostring(#HELLO), h["content-length"])
      assert.are.equal("Sun, 09 Sep 2001 01:46:40 GMT", h["last-modified"])
      assert.matches("^SimpleHTTP/0%.6 ", h["server"])
      assert.is_nil(h["transfer-encoding"])
    end))

    it("HEAD sends the headers of GET and no body", serving(function(port)
      local status, h, body = request(port, "HEAD", "/big.bin")
      assert.are.equal(200, status)
      assert.are.equal("", body)
      assert.are.equal("1048576", h["content-length"])
      assert.are.equal("application/octet-stream", h["content-type"])
      local s2, h2, b2 = request(port, "HEAD", "/")
      assert.are.equal(200, s2)
      assert.are.equal("", b2)
      assert.are.equal("text/html; charset=utf-8", h2["content-type"])
      local s3, _, b3 = request(port, "HEAD", "/missing")
      assert.are.equal(404, s3)
      assert.are.equal("", b3)
    end))

    it("serves names with spaces and markup, percent-decoded once", serving(function(port)
      local status, _, body = get(port, "/with%20space.txt")
      assert.are.equal(200, status)
      assert.are.equal("spaced\n", body)
      status, _, body = get(port, "/a%26b%20%3Cscript%3Ealert(1).html")
      assert.are.equal(200, status)
      assert.are.equal("<p>scripted</p>\n", body)
      -- "%2F" decodes to "/" and splits the name: that file does not exist
      assert.are.equal(404, (get(port, "/a%26b%20%3Cscript%3E%2Falert(1).html")))
      status, _, body = get(port, "/pct%2541.txt")       -- the file "pct%41.txt"
      assert.are.equal(200, status)
      assert.are.equal("percent\n", body)
      status = get(port, "/pct%41.txt")                  -- "pctA.txt": no such file
      assert.are.equal(404, status)
      status = get(port, "/with%2520space.txt")          -- never decoded twice
      assert.are.equal(404, status)
    end))

    it("ignores the query string and fragment for the lookup", serving(function(port)
      for _, target in ipairs{"/hello.txt?x=1", "/hello.txt?../../secret.txt", "/hello.txt#frag",
                              "/hello.txt?a=b#c", "/sub/inner.json?%00"} do
        local status, _, body = get(port, target)
        assert.are.equal(200, status, target)
        assert.is_truthy(body == HELLO or body == '{"inner": true}\n', target)
      end
      assert.are.equal(404, (get(port, "/hello.txt%3Fx=1")))  -- an encoded "?" is part of the name
    end))

    it("follows a symlink that stays inside the directory", serving(function(port)
      local status, h, body = get(port, "/inside_link.txt")
      assert.are.equal(200, status)
      assert.are.equal(HELLO, body)
      assert.are.equal("text/plain", h["content-type"])
    end))

    it("types a symlink by the name asked for, as Python does, not by its target", serving(function(port)
      local status, h, body = get(port, "/song_link.mp3")
      assert.are.equal(200, status)
      assert.are.equal(HELLO, body)
      assert.are.equal("audio/mpeg", h["content-type"])
    end))

    it("streams a 1 MiB binary file in 64 KiB chunks, byte for byte", serving(function(port)
      local status, ctype, body = curl(("http://127.0.0.1:%d/big.bin"):format(port))
      assert.are.equal(200, status)
      assert.are.equal("application/octet-stream", ctype)
      assert.are.equal(#big, #body)
      assert.is_true(body == big)
    end, nil))

    it("reads the file in bounded chunks (copyfile)", bounded(10, function()
      local sizes = {}
      local Spy = Handler:extend({directory = root})
      function Spy:copyfile(source, out)
        local wrapped = {read = function(_, n)
          local c = source:read(n)
          if c then sizes[#sizes + 1] = #c end
          return c
        end}
        return Simple.copyfile(self, wrapped, out)
      end
      serving(function(port)
        local status, _, body = get(port, "/big.bin")
        assert.are.equal(200, status)
        assert.is_true(body == big)
      end, Spy)()
      assert.are.equal(16, #sizes)
      for _, n in ipairs(sizes) do assert.are.equal(65536, n) end
    end))

    it("keeps the connection alive between files (curl reuses it)", serving(function(port)
      local base = ("http://127.0.0.1:%d/"):format(port)
      local out = tmp .. "/curl2.out"
      local r = process.run{"curl", "-sS", "-o", out, "-o", out .. "2", "-w", "%{num_connects}\n",
                            base .. "hello.txt", base .. "big.bin", timeout = 8}
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("1\n0\n", r.stdout)        -- the second transfer made no new connection
      assert.are.equal(HELLO, support.read(out))
      assert.is_true(support.read(out .. "2") == big)
    end))

    it("serves two pipelined requests on one connection", serving(function(port)
      local _, _, _, resp = raw(port, "GET /apple.txt HTTP/1.1\r\nHost: t\r\n\r\n" ..
        "GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
      local first, second = resp:match("^(HTTP/1%.1 200 .-\r\n\r\na\n)(HTTP/1%.1 200 .*)$")
      assert.is_truthy(first, resp)
      assert.matches("\r\n\r\n" .. HELLO .. "$", second)
    end))
  end)

  it("is http.server's SimpleHTTPRequestHandler too", bounded(10, function()
    assert.are.equal(Simple, hs.SimpleHTTPRequestHandler)
    assert.are.equal(hs.BaseHTTPRequestHandler, Simple.super)
  end))

  describe("MIME types", function()
    -- Python's SimpleHTTPRequestHandler.guess_type is the reference, run
    -- as a real peer: both read the system's /etc/mime.types
    it("guesses what Python's SimpleHTTPRequestHandler guesses", bounded(10, function()
      local names = {"a.html", "a.htm", "a.css", "a.js", "a.json", "a.txt", "a.png", "a.jpg", "a.gif",
        "a.svg", "a.pdf", "a.wasm", "a.mp4", "a.mp3", "a.webp", "a.xyz", "a.xml", "a.py", "a.c", "a.h",
        "a.md", "a.csv", "a.zip", "a.tar", "a.gz", "a.tar.gz", "a.tgz", "a.svgz", "a.js.br", "a.bz2",
        "a.xz", "a.Z", "A.MP3", "FILE.PNG", "a.Txt", "README", "a.unknownext", "x.d/noext", "favicon.ico",
        "a.lua", "a.tar.bz2", "a.tbz2", ".hidden", "a.", "dir.d/f.JSON"}
      local py = process.run{"python3", "-c", [[
import sys
from http.server import SimpleHTTPRequestHandler as H
for name in sys.stdin.read().split("\n"):
    print(H.guess_type(H, "/srv/" + name))
]], stdin = table.concat(names, "\n"), timeout = 10}
      assert.are.equal(0, py.code, py.stderr)
      local h = setmetatable({}, {__index = Simple})
      local i = 0
      for want in py.stdout:gmatch("[^\n]+") do
        i = i + 1
        assert.are.equal(want, h:guess_type("/srv/" .. names[i]), names[i])
      end
      assert.are.equal(#names, i)
    end))

    it("extensions_map overrides the system table, keys with or without the dot", bounded(10, function()
      local h = setmetatable({extensions_map = {lua = "text/x-lua", [".log"] = "text/plain"}},
                             {__index = Simple})
      assert.are.equal("text/x-lua", h:guess_type("/x/a.lua"))
      assert.are.equal("text/plain", h:guess_type("/x/a.LOG"))
      assert.are.equal("audio/mpeg", h:guess_type("/x/a.mp3"))
    end))

    it("sends them over the wire", serving(function(port)
      local cases = {["/UPPER.PNG"] = "image/png", ["/sub/inner.json"] = "application/json",
                     ["/site/other.css"] = "text/css", ["/site/index.html"] = "text/html",
                     ["/big.bin"] = "application/octet-stream"}
      for target, t in pairs(cases) do
        local status, h = request(port, "HEAD", target)
        assert.are.equal(200, status, target)
        assert.are.equal(t, h["content-type"], target)
      end
    end))
  end)

  describe("directories", function()
    it("lists a directory like Python, escaped, quoted and sorted", serving(function(port)
      local status, h, body = get(port, "/")
      assert.are.equal(200, status)
      assert.are.equal("text/html; charset=utf-8", h["content-type"])
      assert.are.equal(tostring(#body), h["content-length"])
      assert.matches("<title>Directory listing for /</title>", body, 1, true)
      assert.matches("<h1>Directory listing for /</h1>", body, 1, true)
      -- the name with markup: escaped as text, percent-quoted as a link
      assert.matches('<li><a href="a%26b%20%3Cscript%3Ealert%281%29.html">' ..
        "a&amp;b &lt;script&gt;alert(1).html</a></li>", body, 1, true)
      assert.is_nil(body:find("<script>", 1, true))
      assert.matches('<li><a href="with%20space.txt">with space.txt</a></li>', body, 1, true)
      assert.matches('<li><a href="sub/">sub/</a></li>', body, 1, true)
      assert.matches('<li><a href="%3Cb%3Edir/">&lt;b&gt;dir/</a></li>', body, 1, true)
      assert.matches('<li><a href="pct%2541.txt">pct%41.txt</a></li>', body, 1, true)
      -- symlinks show "@"; one to a directory still links with "/"
      assert.matches('<li><a href="etc_link/">etc_link@</a></li>', body, 1, true)
      assert.matches('<li><a href="inside_link.txt">inside_link.txt@</a></li>', body, 1, true)
      -- sorted without regard to case
      local a, b, c = body:find("apple.txt", 1, true), body:find("Banana.txt", 1, true),
                      body:find("cherry.txt", 1, true)
      assert.is_true(a < b and b < c)
      assert.is_nil(body:find("secret.txt\"", 1, true))   -- only the root's own entries
    end))

    it("titles a subdirectory listing with its unquoted, escaped path", serving(function(port)
      local status, _, body = get(port, "/%3Cb%3Edir/")
      assert.are.equal(200, status)
      assert.matches("<title>Directory listing for /&lt;b&gt;dir/</title>", body, 1, true)
      status, _, body = get(port, "/a%20dir/?q=1")
      assert.are.equal(200, status)
      assert.matches("<title>Directory listing for /a dir/</title>", body, 1, true)
      status, _, body = get(port, "/sub/")
      assert.are.equal(200, status)
      assert.matches('<li><a href="deeper/">deeper/</a></li>', body, 1, true)
      assert.matches('<li><a href="inner.json">inner.json</a></li>', body, 1, true)
    end))

    it("serves index.html for a directory", serving(function(port)
      local status, h, body = get(port, "/site/")
      assert.are.equal(200, status)
      assert.are.equal("<h1>index</h1>\n", body)
      assert.are.equal("text/html", h["content-type"])
    end))

    it("redirects a directory without its trailing slash (301)", serving(function(port)
      local cases = {["/sub"] = "/sub/", ["/site"] = "/site/", ["/sub?x=1&y"] = "/sub/?x=1&y",
                     ["/sub/deeper"] = "/sub/deeper/", ["/a%20dir"] = "/a%20dir/"}
      for target, location in pairs(cases) do
        local status, h, body = get(port, target)
        assert.are.equal(301, status, target)
        assert.are.equal(location, h["location"], target)
        assert.are.equal("0", h["content-length"])
        assert.are.equal("", body)
      end
      local status, _, body = curl(("http://127.0.0.1:%d/site"):format(port), "-L")
      assert.are.equal(200, status)
      assert.are.equal("<h1>index</h1>\n", body)
    end))

    it("never redirects to another host (CVE-2021-28861)", serving(function(port)
      local targets = {"//evil.example", "//evil.example/dir", "///evil.example/dir",
                       "//evil.example/..%2f..%2f../dir", "//evil.example/..%2f..%2f..%2fsub",
                       "/\\evil.example/%2e%2e%2f", "/\\evil.example/dir", "/%2f%2fevil.example",
                       "/%5c%5cevil.example", "//%2fevil.example/dir", "/%09/evil.example"}
      for _, target in ipairs(targets) do
        local status, h = get(port, target)
        assert.is_true(status == 301 or status == 400 or status == 404, target .. " -> " .. status)
        local loc = h["location"]
        if loc then
          assert.are.equal("/", loc:sub(1, 1), target)
          assert.is_falsy(loc:find("^/[/\\%c]"), target .. " -> Location " .. loc)
        end
      end
      local _, h = get(port, "//evil.example/dir")
      assert.are.equal("/evil.example/dir/", h["location"])
      _, h = get(port, "http://test/sub")            -- absolute-form target
      assert.are.equal("/sub/", h["location"])
    end))
  end)

  describe("conditional requests", function()
    local ims_old = "Sat, 08 Sep 2001 01:46:40 GMT"
    local ims_same = "Sun, 09 Sep 2001 01:46:40 GMT"
    local ims_new = core.httpdate(HELLO_MTIME + 86400)

    it("answers 304 when the file is not newer than If-Modified-Since", serving(function(port)
      for _, ims in ipairs{ims_same, ims_new, "Sunday, 09-Sep-01 01:46:40 GMT"} do
        local status, h, body = get(port, "/hello.txt", "If-Modified-Since: " .. ims .. "\r\n")
        assert.are.equal(304, status, ims)
        assert.are.equal("", body)
        assert.is_nil(h["content-length"])
      end
    end))

    it("sends the file when it is newer, the date ill-formed, or If-None-Match is present",
      serving(function(port)
        local cases = {"If-Modified-Since: " .. ims_old .. "\r\n",
                       "If-Modified-Since: yesterday\r\n",
                       "If-Modified-Since: " .. ims_same .. "\r\nIf-None-Match: \"x\"\r\n"}
        for _, extra in ipairs(cases) do
          local status, _, body = get(port, "/hello.txt", extra)
          assert.are.equal(200, status, extra)
          assert.are.equal(HELLO, body)
        end
        local status = curl(("http://127.0.0.1:%d/hello.txt"):format(port), "-z", ims_same)
        assert.are.equal(304, status)
      end))
  end)

  describe("errors and containment", function()
    it("answers 404 File not found for a missing file", serving(function(port)
      local status, h, body = get(port, "/no/such/file.txt")
      assert.are.equal(404, status)
      assert.matches("File not found", body, 1, true)
      assert.are.equal("text/html;charset=utf-8", h["content-type"])
      status = get(port, "/hello.txt/")             -- a file is not a directory
      assert.are.equal(404, status)
    end))

    it("never serves a file outside the directory", serving(function(port)
      local targets = {
        "/../secret.txt", "/../../../../../../etc/passwd", "/sub/../../secret.txt",
        "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/%2e./secret.txt",
        "/..%2fsecret.txt", "/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/sub/..%2f..%2fsecret.txt",
        "/..%20/secret.txt", "/sub/..%20/..%20/secret.txt", "/%20..%20/secret.txt",
        "/..%09/secret.txt", "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt",
        "/hello.txt%00", "/hello.txt%00.png", "/%00/../secret.txt", "/..%00/secret.txt",
        "/..\\secret.txt", "/%5c..%5csecret.txt", "/sub\\..\\..\\secret.txt", "/..%5csecret.txt",
        "/etc_link/passwd", "/etc_link/", "/etc_link", "/passwd_link", "/secret_link",
        "/up_link/secret.txt", "/up_link/", "/sub/deeper/../../../secret.txt",
        "http://test/../secret.txt",
      }
      for _, target in ipairs(targets) do
        local status, h, body = get(port, target)
        assert.is_true(status == 404 or status == 403 or status == 400, target .. " -> " .. status)
        assert.is_nil(body:find("TOP SECRET", 1, true), target)
        assert.is_nil(body:find("root:", 1, true), target)
        assert.is_nil(h["location"], target)
      end
      -- the same with a real client that sends the path as typed
      for _, path in ipairs{"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                            "/etc_link/passwd", "/secret_link"} do
        local status, _, body = curl(("http://127.0.0.1:%d%s"):format(port, path))
        assert.are.equal(404, status, path)
        assert.is_nil(body:find("TOP SECRET", 1, true), path)
        assert.is_nil(body:find("root:", 1, true), path)
      end
    end))

    it("refuses a raw NUL or control byte in the path", serving(function(port)
      for _, target in ipairs{"/hello.txt\0.png", "/\0/../secret.txt", "/..\1/secret.txt"} do
        local status, _, body = get(port, target)
        assert.is_true(status == 400 or status == 404, ("%q -> %d"):format(target, status))
        assert.is_nil(body:find("TOP SECRET", 1, true))
        assert.is_nil(body:find(HELLO, 1, true))
      end
    end))

    it("translate_path maps inside the directory or refuses", bounded(10, function()
      local h = setmetatable({directory = "/srv/www"}, {__index = Simple})
      assert.are.equal("/srv/www/a/b.txt", h:translate_path("/a/./b.txt?x#y"))
      assert.are.equal("/srv/www/a/", h:translate_path("/a//"))
      assert.are.equal("/srv/www/", h:translate_path("/"))     -- as Python: the slash kept
      assert.are.equal("/srv/www/a b", h:translate_path("/a%20b"))
      assert.are.equal("/srv/www/%41", h:translate_path("/%2541"))
      for _, bad in ipairs{"/../x", "/%2e%2e/x", "/..%2fx", "/..%20/x", "/x%00", "/a\\b", "/a%5cb"} do
        assert.is_nil(h:translate_path(bad), bad)
      end
    end))

    it("defaults directory to the current directory", bounded(10, function()
      local pwd = sh{"pwd", "-P"}:gsub("\n$", "")
      local seen
      local Probe = Simple:extend({log_message = function() end})
      function Probe:do_GET()
        seen = self.directory
        self:send_error(404)
      end
      serving(function(port)
        assert.are.equal(404, (get(port, "/")))
      end, Probe)()
      assert.are.equal(pwd, seen)
    end))
  end)

  describe("wirelab -m http.server", function()
    -- spawn the command line (stopped when the test ends); -> p, its first line
    local function start(argv, cwd)
      local full = {support.wirelab, "-m", "http.server", cwd = cwd}
      for _, a in ipairs(argv) do full[#full + 1] = a end
      local p = support.spawn(full)
      return p, p.stdout:read("l")
    end

    -- ends p with SIGTERM, as a user's Ctrl-C would; -> what it logged
    local function finish(p)
      p:kill(15)
      p:wait(5)
      return p.stderr:read("a")
    end

    it("serves a directory like python3 -m http.server", bounded(10, function()
      local p, line = start{"0", "-b", "127.0.0.1", "-d", root}
      local port = tonumber(line and line:match(
        "^Serving HTTP on 127%.0%.0%.1 port (%d+) %(http://127%.0%.0%.1:%d+/%) %.%.%.$"))
      assert.is_truthy(port, line)
      assert.are.equal(("http://127.0.0.1:%d/"):format(port), line:match("%((.-)%)"))
      local status, ctype, body = curl(("http://127.0.0.1:%d/hello.txt"):format(port))
      assert.are.equal(200, status)
      assert.are.equal("text/plain", ctype)
      assert.are.equal(HELLO, body)
      status, ctype, body = curl(("http://127.0.0.1:%d/"):format(port))
      assert.are.equal(200, status)
      assert.matches("Directory listing for /", body, 1, true)
      status = curl(("http://127.0.0.1:%d/../secret.txt"):format(port))
      assert.are.equal(404, status)
      -- a request line with an ESC byte: refused, and no raw ESC reaches
      -- the terminal (the parser keeps the line only up to the bad byte,
      -- so the "\x1b" of RELIABILITY.md item 12 is not in the log yet)
      local st = get(port, "/\27[31mred")
      assert.is_true(st == 400 or st == 404)
      local log = finish(p)
      assert.matches('"GET /hello.txt HTTP/1.1" 200 -', log, 1, true)
      assert.matches('"GET / HTTP/1.1" 200 -', log, 1, true)
      assert.matches('" 400 -', log, 1, true)          -- the ESC request, refused
      assert.is_nil(log:find("\27", 1, true))
    end))

    it("serves the current directory without -d, on all addresses without -b", bounded(10, function()
      local _, line = start({"0"}, root .. "/sub")
      local port = tonumber(line and line:match(
        "^Serving HTTP on 0%.0%.0%.0 port (%d+) %(http://0%.0%.0%.0:%d+/%) %.%.%.$"))
      assert.is_truthy(port, line)
      local status, ctype, body = curl(("http://127.0.0.1:%d/inner.json"):format(port))
      assert.are.equal(200, status)
      assert.are.equal("application/json", ctype)
      assert.are.equal('{"inner": true}\n', body)
    end))

    it("resolves a relative -d against the current directory", bounded(10, function()
      local _, line = start({"-d", "sub", "-b", "127.0.0.1", "0"}, root)
      local port = tonumber(line and line:match("port (%d+) "))
      assert.is_truthy(port, line)
      local status, _, body = curl(("http://127.0.0.1:%d/deeper/"):format(port))
      assert.are.equal(200, status)
      assert.matches("Directory listing for /deeper/", body, 1, true)
      assert.are.equal(404, (curl(("http://127.0.0.1:%d/hello.txt"):format(port))))
    end))

    it("lists directories byte for byte as python3 -m http.server does", bounded(10, function()
      local v = process.run{"python3", "-c", "import sys; print(sys.version_info >= (3, 11))",
                            timeout = 5}
      -- the listing's format is Python 3.11's: an older one is not the reference
      if v.code ~= 0 or not v.stdout:find("True", 1, true) then
        pending(support.skip("python3 older than 3.11 lists directories differently: " ..
                             (v.stdout .. v.stderr):gsub("%s+$", "")))
      end
      local py = support.spawn{"python3", "-u", "-m", "http.server", "0", "-b", "127.0.0.1",
                               "-d", root}
      local _, line = start{"0", "-b", "127.0.0.1", "-d", root}
      local pyport = tonumber(py.stdout:read("l"):match("port (%d+) "))
      local wlport = tonumber(line:match("port (%d+) "))
      for _, path in ipairs{"/", "/sub/", "/%3Cb%3Edir/", "/a%20dir/", "/evil.example/"} do
        local s1, t1, b1 = curl(("http://127.0.0.1:%d%s"):format(pyport, path))
        local s2, t2, b2 = curl(("http://127.0.0.1:%d%s"):format(wlport, path))
        assert.are.equal(200, s1, path)
        assert.are.same({s1, t1, b1}, {s2, t2, b2}, path)
      end
    end))

    it("answers errors and HTTP/1.2 as python3 -m http.server does, page for page", function()
      wirelab.timeout(10, function()
        local before = wirelab.handles()
        local py = process.spawn{"python3", "-u", "-m", "http.server", "0", "-b", "127.0.0.1",
                                 "-d", root}
        local wl, line = start{"0", "-b", "127.0.0.1", "-d", root}
        local ok, err = pcall(function()
          local pyport = tonumber(py.stdout:read("l"):match("port (%d+) "))
          local wlport = tonumber(line:match("port (%d+) "))
          for _, req in ipairs{
            "GET /no-such-file HTTP/1.1",         -- 404: "Nothing matches the given URI"
            "BREW /pot HTTP/1.1",                 -- 501: unsupported method
            "GET /hello.txt HTTP/1.2",            -- RFC 9112 2.3: served as HTTP/1.1
            "GET /hello.txt HTTP/1.9",
            "GET /sub HTTP/1.1",                  -- 301 to the slash
          } do
            local r = req .. "\r\nHost: test\r\nConnection: close\r\n\r\n"
            local s1, h1, b1 = raw(pyport, r)
            local s2, h2, b2 = raw(wlport, r)
            assert.are.same({s1, h1["content-type"], h1["location"], b1},
                            {s2, h2["content-type"], h2["location"], b2}, req)
          end
        end)
        for _, p in ipairs{py, wl} do
          p:kill(15)
          p:wait(5)
          p:close()
        end
        if not ok then error(err, 0) end
        collectgarbage()
        assert.are.equal(before, wirelab.handles())
      end)
    end)

    it("speaks HTTP/1.0 by default and -p/--protocol's version when asked, as Python", function()
      wirelab.timeout(15, function()
        for _, case in ipairs{{{}, "HTTP/1.0", "close"}, {{"-p", "HTTP/1.1"}, "HTTP/1.1", nil},
                              {{"--protocol=HTTP/1.1"}, "HTTP/1.1", nil}} do
          local argv = {"0", "-b", "127.0.0.1", "-d", root}
          for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
          local p, line = start(argv)
          local ok, err = pcall(function()
            local port = tonumber(line:match("port (%d+) "))
            local c <close> = socket.create_connection("127.0.0.1", port, 5)
            c:sendall("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            local f = c:makefile("rb")
            local status = f:read("l")
            assert.are.equal(case[2] .. " 200 OK", status, table.concat(case[1], " "))
            local conn
            for l in f:lines() do
              if l == "" then break end
              conn = conn or l:match("^[Cc]onnection: (%S+)")
            end
            assert.are.equal(case[3], conn)
          end)
          p:kill(15)
          p:wait(5)
          p:close()
          if not ok then error(err, 0) end
        end
      end)
    end)

    it("Ctrl-C prints Python's message and exits 0", function()
      wirelab.timeout(15, function()
        local p, line = start{"0", "-b", "127.0.0.1", "-d", root}
        assert.matches("^Serving HTTP on 127.0.0.1 port %d+", line)
        p:kill(2)
        assert.are.equal(0, (p:wait(5)))
        assert.are.equal("\nKeyboard interrupt received, exiting.\n", p.stdout:read("a"))
        p:close()
      end)
    end)

    it("prints its usage for -h and refuses a bad argument with status 2", bounded(10, function()
      local r = process.run{support.wirelab, "-m", "http.server", "-h", timeout = 5}
      assert.are.equal(0, r.code)
      assert.matches("usage: wirelab -m http.server", r.stdout, 1, true)
      for _, bad in ipairs{"--bogus", "1.5", "0x10", "70000", "-d", "-b"} do
        r = process.run{support.wirelab, "-m", "http.server", bad, timeout = 5}
        assert.are.equal(2, r.code, bad)
        assert.matches(bad, r.stderr, 1, true)
        assert.are.equal("", r.stdout, bad)
      end
    end))
  end)
end)
