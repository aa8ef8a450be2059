-- fs_spec: wirelab.fs, the file-system calls http.static relies on.
local fs = require "wirelab.fs"
local support = require "support"
local bounded = support.bounded

describe("wirelab.fs", function()
  local dir, remove
  before_each(function()
    dir, remove = support.tmpdir()
    assert(os.execute("mkdir '" .. dir .. "/sub' && printf 12345 > '" .. dir .. "/f.txt'"
      .. " && ln -s sub '" .. dir .. "/link' && ln -s /nonexistent '" .. dir .. "/dangling'"))
  end)
  after_each(function() remove() end)

  it("stats files and directories, following links unless asked not to", bounded(5, function()
    local st = fs.stat(dir .. "/f.txt")
    assert.are.equal("file", st.kind)
    assert.are.equal(5, st.size)
    assert.is_true(math.abs(st.mtime - os.time()) < 60)
    assert.are.equal("directory", fs.stat(dir .. "/link").kind)
    assert.are.equal("link", fs.stat(dir .. "/link", false).kind)
    local none, msg, code = fs.stat(dir .. "/dangling")
    assert.is_nil(none)
    assert.are.equal("ENOENT", code)
    assert.is_truthy(msg:find("dangling", 1, true))
  end))

  it("resolves real paths through symlinks", bounded(5, function()
    local real = fs.realpath(dir)
    assert.are.equal(real .. "/sub", fs.realpath(dir .. "/link"))
    assert.are.equal(real .. "/sub", fs.realpath(dir .. "/sub/../link/."))
    assert.is_nil(fs.realpath(dir .. "/dangling"))
  end))

  it("lists a directory without . and .., marking links and directories", bounded(5, function()
    local got = {}
    for _, e in ipairs(fs.listdir(dir)) do got[e.name] = e end
    assert.are.same({name = "f.txt", isdir = false, islink = false}, got["f.txt"])
    assert.are.same({name = "sub", isdir = true, islink = false}, got.sub)
    assert.are.same({name = "link", isdir = true, islink = true}, got.link)
    assert.are.same({name = "dangling", isdir = false, islink = true}, got.dangling)
    assert.is_nil(got["."])
    assert.is_nil(got[".."])
    local none, _, code = fs.listdir(dir .. "/f.txt")
    assert.is_nil(none)
    assert.are.equal("ENOTDIR", code)
  end))

  it("reads links as they are written, a socket's fd link too", bounded(5, function()
    assert.are.equal("sub", fs.readlink(dir .. "/link"))
    assert.are.equal("/nonexistent", fs.readlink(dir .. "/dangling"))
    local none, _, code = fs.readlink(dir .. "/f.txt")
    assert.is_nil(none)
    assert.are.equal("EINVAL", code)
    local s <close> = require("socket").socket()
    assert.matches("^socket:%[%d+%]$", fs.readlink("/proc/self/fd/" .. s:fileno()))
  end))

  it("reports the working directory", bounded(5, function()
    local p <close> = io.popen("pwd -P")
    assert.are.equal(p:read("l"), fs.getcwd())
  end))
end)
