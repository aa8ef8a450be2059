-- reliability/connect_spec: RELIABILITY.md item 18 where it needs a network
-- of its own. In a network namespace this spec creates, with documentation
-- addresses only: a connect to a network without a route raises
-- ENETUNREACH at once, naming the address; a connect with a timeout to an
-- address whose packets vanish raises ETIMEDOUT within timeout + 100 ms.
-- The black hole needs no device type a container may lack: a prefix
-- routed to lo that is not local comes back in on lo, and a namespace
-- that does not forward drops it without an ICMP error. IPv4 and IPv6, through
-- connect, connect_ex and create_connection. The namespace goes away even
-- when a check fails. (Refused connects and DNS failures need no namespace:
-- socket_spec has them.)
local process = require "process"
local support = require "support"

local NS = "wl-connect-" .. support.PID
local TIMEOUT = 0.5

-- ip(...) -> the result of ip(8); an error unless it succeeded
local function ip(...)
  local argv = {"ip", ...}
  argv.timeout = 10
  local r = process.run(argv)
  if r.code ~= 0 then
    error(("ip %s: %s"):format(table.concat({...}, " "), r.stderr), 2)
  end
  return r
end

-- what runs inside the namespace: one line per case,
-- "name ok|fail code seconds message"
local PROBE = ([[
local socket = require "socket"
local wirelab = require "wirelab"
local TIMEOUT = %g
local function case(name, fn)
  local t0 = wirelab.now()
  local ok, err = pcall(fn)
  local dt = wirelab.now() - t0
  if ok and err ~= nil and err ~= 0 then        -- connect_ex's errno name
    ok, err = false, setmetatable({code = err}, {__tostring = function(e) return "connect_ex: " .. e.code end})
  end
  print(("%%s %%s %%s %%.4f %%s"):format(name, ok and "ok" or "fail",
    type(err) == "table" and tostring(err.code) or "-", dt, tostring(err)))
end
local function sock(family, timeout)
  local s = socket.socket(family)
  if timeout then s:settimeout(timeout) end
  return s
end
case("noroute4", function() sock(socket.AF_INET):connect("198.51.100.7", 80) end)
case("noroute6", function() sock(socket.AF_INET6):connect("2001:db8:2::7", 80) end)
case("noroute_ex", function() return sock(socket.AF_INET):connect_ex("198.51.100.7", 80) end)
case("noroute_cc", function() socket.create_connection("198.51.100.7", 80, 5) end)
case("noroute_timeout", function() sock(socket.AF_INET, 5):connect("198.51.100.7", 80) end)
case("blackhole4", function() sock(socket.AF_INET, TIMEOUT):connect("192.0.2.2", 80) end)
case("blackhole6", function() sock(socket.AF_INET6, TIMEOUT):connect("2001:db8:1::2", 80) end)
case("blackhole_cc", function() socket.create_connection("192.0.2.2", 80, TIMEOUT) end)
]]):format(TIMEOUT)

describe("reliability: connect errors in a network namespace (item 18)", function()
  it("no route raises ENETUNREACH at once; a connect timeout to a black hole raises ETIMEDOUT " ..
     "within timeout + 100 ms", support.bounded(30, function()
    local add = process.run{"ip", "netns", "add", NS, timeout = 10}
    if add.code ~= 0 then
      pending(support.skip("network namespaces unavailable here: " .. add.stderr:gsub("%s+$", "")))
    end
    support.defer(function() process.run{"ip", "netns", "del", NS, timeout = 10} end)
    ip("-n", NS, "link", "set", "lo", "up")
    -- black holes: 192.0.2.0/24 and 2001:db8:1::/64 routed to lo, where
    -- only .1 and ::1 are local (an IPv4 /24 on lo would be local whole)
    ip("-n", NS, "addr", "add", "192.0.2.1/32", "dev", "lo")
    ip("-n", NS, "route", "add", "192.0.2.0/24", "dev", "lo", "src", "192.0.2.1")
    ip("-n", NS, "addr", "add", "2001:db8:1::1/64", "dev", "lo", "nodad")
    assert.are.equal("0\n", ip("netns", "exec", NS, "cat", "/proc/sys/net/ipv4/ip_forward").stdout)
    -- and nothing else: no default route, so 198.51.100.0/24 and
    -- 2001:db8:2::/48 have none
    local routes = ip("-n", NS, "route", "show").stdout .. ip("-n", NS, "-6", "route", "show").stdout
    assert.is_nil(routes:find("default", 1, true), routes)

    local r = process.run{"ip", "netns", "exec", NS, support.wirelab, "-e", PROBE, timeout = 15}
    assert.are.equal(0, r.code, r.stderr)
    support.note("connect in %s:\n%s", NS, r.stdout)
    local got = {}
    for name, status, code, secs, msg in r.stdout:gmatch("(%S+) (%S+) (%S+) (%S+) ([^\n]*)\n") do
      got[name] = {status = status, code = code, secs = tonumber(secs), msg = msg}
    end

    local function no_route(name, address)
      local g = got[name]
      assert.is_not_nil(g, name .. " did not run: " .. r.stdout .. r.stderr)
      assert.are.equal("fail", g.status, name)
      assert.are.equal("ENETUNREACH", g.code, name .. ": " .. g.msg)
      assert.is_true(g.secs < 0.1, ("%s: took %.3f s, not at once"):format(name, g.secs))
      if address then
        assert.are.equal("connect " .. address .. ": network is unreachable (ENETUNREACH)", g.msg, name)
      end
    end
    no_route("noroute4", "198.51.100.7:80")
    no_route("noroute6", "[2001:db8:2::7]:80")
    no_route("noroute_ex")
    no_route("noroute_cc")
    no_route("noroute_timeout", "198.51.100.7:80")

    for _, name in ipairs{"blackhole4", "blackhole6", "blackhole_cc"} do
      local g = got[name]
      assert.is_not_nil(g, name .. " did not run: " .. r.stdout .. r.stderr)
      assert.are.equal("fail", g.status, name)
      assert.are.equal("ETIMEDOUT", g.code, name .. ": " .. g.msg)
      assert.matches("timed out (ETIMEDOUT)", g.msg, 1, true)
      assert.is_true(g.secs >= TIMEOUT - 0.01 and g.secs < TIMEOUT + 0.1,
        ("%s: ETIMEDOUT after %.3f s, timeout %g s"):format(name, g.secs, TIMEOUT))
    end
  end))
end)
