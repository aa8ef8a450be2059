-- pretty: how the prompt prints values (docs/cli.md, "Values at the
-- prompt"): sorted keys, cycles marked, long tables and strings cut, a
-- value's own __tostring honoured; checked on the module and through a
-- real `wirelab -i` session fed by a pipe.
local pretty = require "wirelab.pretty"
local process = require "process"
local support = require "support"

describe("the prompt's values (wirelab.pretty)", function()
  it("prints a table in Lua syntax: the array part, then the keys sorted", function()
    local t = {"x", "y", b = 2, a = {1, 2}, [true] = "t", ["not id"] = 1, ["end"] = 0, [10] = "ten"}
    assert.are.equal('{"x", "y", [10] = "ten", a = {1, 2}, b = 2, ["end"] = 0, ["not id"] = 1, [true] = "t"}',
      pretty.show(t))
  end)

  it("marks a cycle where it closes, and cuts deep nesting", function()
    local c = {}
    c.self, c.list = c, {c, 1}
    assert.are.equal("{list = {<cycle>, 1}, self = <cycle>}", pretty.show(c))
    assert.are.equal("{{{{{...}}}}}", pretty.show({{{{{{1}}}}}}))
    local shared = {1}
    assert.are.equal("{{1}, {1}}", pretty.show({shared, shared}), "a table seen twice is not a cycle")
  end)

  it("cuts long tables and long strings, saying how much is left out", function()
    local x = {}
    for i = 1, 100 do x[i] = i end
    assert.matches("^{1, 2, 3, .*, 30, %.%.%. %(70 more%)}$", pretty.show(x))
    assert.matches('%.%.%.%(300 bytes%)}$', pretty.show({("y"):rep(300)}))
    assert.are.equal(("y"):rep(300), pretty.show(("y"):rep(300)), "a result string prints as it is")
    assert.are.equal('"a\\nb"', pretty.repr("a\nb"))
  end)

  it("lets a value with __tostring print itself, even one whose __tostring fails", function()
    local s <close> = require("socket").socket()
    assert.are.equal("<tcp 0.0.0.0:0 CLOSE>", pretty.show(s))
    assert.are.equal("(a value that cannot be printed)",
      pretty.show(setmetatable({}, {__tostring = function() error("no") end})))
  end)

  it("is what `wirelab -i` prints for an expression", support.bounded(10, function()
    local r = process.run{support.wirelab, "-i", timeout = 8,
      stdin = 't = {b = 2, a = {1, 2}, "x"}\nt\nc = {}; c.me = c\nc\n"plain", 1.5, nil\n'}
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal('{"x", a = {1, 2}, b = 2}\n{me = <cycle>}\nplain\t1.5\tnil\n', r.stdout)
  end))
end)
