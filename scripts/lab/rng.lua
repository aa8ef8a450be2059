-- lab.rng: the seeded random numbers of a check (t.rng). One stream per
-- check, derived from the grading seed and the check's name, so a check
-- sees the same payloads whatever ran before it and in whatever order:
-- the same seed reproduces a failure (LABS.md, "reproduce"). xoshiro256**
-- seeded through splitmix64, on Lua 5.4's 64-bit integers.
local pack, byte, concat = string.pack, string.byte, table.concat
local tointeger, floor = math.tointeger, math.floor

local M = {}

local Rng = {}
Rng.__index = Rng
M.Rng = Rng

local function rotl(x, k) return (x << k) | (x >> (64 - k)) end

local function splitmix(state)
  state = state + 0x9e3779b97f4a7c15
  local z = state
  z = (z ~ (z >> 30)) * -4658895280553007687       -- 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * -7723592293110705685       -- 0x94d049bb133111eb
  return state, z ~ (z >> 31)
end

-- FNV-1a over a string: a name becomes part of the seed
local function hash(s)
  local h = -3750763034362895579                   -- 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ byte(s, i)) * 1099511628211 end
  return h
end
M.hash = hash

-- new(seed[, name]) -> rng; seed an integer or a string
function M.new(seed, name)
  local s = tointeger(seed) or hash(tostring(seed))
  if name then s = s ~ hash(name) end
  local r = setmetatable({}, Rng)
  local x
  s, x = splitmix(s); r[1] = x
  s, x = splitmix(s); r[2] = x
  s, x = splitmix(s); r[3] = x
  s, x = splitmix(s); r[4] = x
  return r
end

-- next64() -> a 64-bit integer
function Rng:next64()
  local s0, s1, s2, s3 = self[1], self[2], self[3], self[4]
  local result = rotl(s1 * 5, 7) * 9
  local t = s1 << 17
  s2 = s2 ~ s0
  s3 = s3 ~ s1
  s1 = s1 ~ s2
  s0 = s0 ~ s3
  s2 = s2 ~ t
  s3 = rotl(s3, 45)
  self[1], self[2], self[3], self[4] = s0, s1, s2, s3
  return result
end

-- random() -> a float in [0, 1); random(n) -> 1..n; random(a, b) -> a..b
function Rng:random(a, b)
  local f = (self:next64() >> 11) * (1.0 / 9007199254740992.0)
  if a == nil then return f end
  if b == nil then a, b = 1, a end
  return a + floor(f * (b - a + 1))
end

-- bytes(n) -> n random bytes (every byte value appears in a long run)
function Rng:bytes(n)
  local parts, k = {}, 0
  for _ = 1, n // 8 do
    k = k + 1
    parts[k] = pack("<i8", self:next64())
  end
  local rest = n % 8
  if rest > 0 then parts[k + 1] = pack("<i8", self:next64()):sub(1, rest) end
  return concat(parts)
end

-- shuffle(list) -> list, shuffled in place
function Rng:shuffle(list)
  for i = #list, 2, -1 do
    local j = self:random(i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

return M
