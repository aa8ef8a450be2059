-- lab.report: a grading result in the formats people and platforms read:
-- text (a terminal), json (wirelab's own), gradescope (results.json),
-- github (GitHub Classroom's autograding reporter), junit (CI runners),
-- tap (version 13). Student output goes into every one of them, so every
-- writer escapes for its format: invalid UTF-8 becomes U+FFFD, XML gets no
-- control byte and no unescaped markup, TAP diagnostics are one quoted
-- line each; keys come in a fixed order, so the same grading gives the
-- same bytes (RELIABILITY items 29, 40).
local format, concat, byte = string.format, table.concat, string.byte
local ipairs, pairs, type, tostring, floor = ipairs, pairs, type, tostring, math.floor

local M = {}

M.FORMATS = {"text", "json", "gradescope", "github", "junit", "tap"}
M.EXTENSION = {text = "txt", json = "json", gradescope = "json", github = "json", junit = "xml", tap = "tap"}

-- ---- text that is safe to embed ---------------------------------------------

-- valid UTF-8: every invalid sequence becomes U+FFFD
local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8.len(s, i)
    if len then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
  end
  return concat(out)
end
M.utf8_clean = utf8_clean

-- ---- JSON with keys in a given order ------------------------------------------

local JSON_ESC = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}

local function json_string(s)
  s = utf8_clean(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    return JSON_ESC[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

-- An object is {key, value, key, value...} (ordered), marked by `obj`;
-- a list is a plain array. nil values are left out.
local OBJ = {}
local function obj(...) return setmetatable({...}, OBJ) end
M.obj = obj

local function json_number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == floor(x) and math.abs(x) < 2^53 then return format("%d", x) end
  return (format("%.6f", x):gsub("0+$", ""):gsub("%.$", ""))
end

local function encode(v, out, indent, depth)
  local t = type(v)
  if v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif t == "number" then out[#out + 1] = json_number(v)
  elseif t == "string" then out[#out + 1] = json_string(v)
  elseif t == "table" then
    local nl = indent and ("\n" .. (" "):rep(indent * (depth + 1))) or ""
    local close = indent and ("\n" .. (" "):rep(indent * depth)) or ""
    local sep = indent and ": " or ":"
    if getmetatable(v) == OBJ then
      out[#out + 1] = "{"
      local first = true
      for i = 1, #v, 2 do
        if v[i + 1] ~= nil then
          out[#out + 1] = (first and "" or ",") .. nl .. json_string(v[i]) .. sep
          first = false
          encode(v[i + 1], out, indent, depth + 1)
        end
      end
      out[#out + 1] = (first and "" or close) .. "}"
    else
      out[#out + 1] = "["
      for i = 1, #v do
        out[#out + 1] = (i > 1 and "," or "") .. nl
        encode(v[i], out, indent, depth + 1)
      end
      out[#out + 1] = (#v > 0 and close or "") .. "]"
    end
  else
    error("cannot encode a " .. t .. " as JSON")
  end
end

function M.json(v, indent)
  local out = {}
  encode(v, out, indent, 0)
  return concat(out)
end

-- ---- what a check says ---------------------------------------------------------

local MARK = {passed = "✓", failed = "✗", skipped = "-", error = "!"}

-- a number of points as people write it: 2, 1.5
local function pts(x)
  if x == floor(x) then return format("%d", x) end
  return (format("%.2f", x):gsub("0+$", ""))
end
M.pts = pts

-- feedback(c, reveal) -> the text a student reads about a check
local function feedback(c, reveal)
  if c.status == "passed" then return c.log ~= "" and c.log or nil end
  if c.visibility == "hidden" and not reveal then
    return "hidden check: " .. c.outcome
  end
  local parts = {}
  if c.outcome and c.outcome ~= "skipped" then parts[#parts + 1] = c.outcome .. ": " .. (c.message or "") end
  if c.outcome == "skipped" then parts[#parts + 1] = c.message end
  if c.log and c.log ~= "" then parts[#parts + 1] = "log:\n" .. c.log end
  if c.hint then parts[#parts + 1] = "hint: " .. c.hint end
  if c.reproduce and c.status ~= "skipped" then parts[#parts + 1] = "reproduce: " .. c.reproduce end
  return concat(parts, "\n")
end
M.feedback = feedback

local function indent_lines(s, pad)
  return pad .. s:gsub("\n", "\n" .. pad)
end

-- ---- the formats ------------------------------------------------------------

local writers = {}

function writers.text(r, opts)
  local color = opts.color
  local function paint(code, s) return color and ("\27[" .. code .. "m" .. s .. "\27[0m") or s end
  local lines = {format("%s: %s (seed %s)", r.lab, r.submission, tostring(r.seed))}
  for _, c in ipairs(r.checks) do
    local mark = MARK[c.status] or "?"
    local col = c.status == "passed" and "32" or (c.status == "skipped" and "33" or "31")
    local line = format("  %s %s (%s/%s)", paint(col, mark), c.name, pts(c.score), pts(c.max_score))
    if c.status == "skipped" then line = line .. " skipped" end
    lines[#lines + 1] = line
    local fb = feedback(c, opts.reveal)
    if fb and c.status ~= "passed" then lines[#lines + 1] = indent_lines(utf8_clean(fb), "      ") end
  end
  lines[#lines + 1] = format("score: %s/%s", pts(r.score), pts(r.max_score))
  return concat(lines, "\n") .. "\n"
end

local function sandbox_obj(s)
  if type(s) ~= "table" then return nil end
  local keys = {}
  for k in pairs(s) do keys[#keys + 1] = k end
  table.sort(keys)
  local o = obj()
  for _, k in ipairs(keys) do
    local v = s[k]
    if type(v) == "table" then v = sandbox_obj(v) end
    o[#o + 1] = k
    o[#o + 1] = v
  end
  return o
end

function writers.json(r, opts)
  local checks = {}
  for i, c in ipairs(r.checks) do
    checks[i] = obj("name", c.name, "status", c.status, "score", c.score, "max_score", c.max_score,
      "outcome", c.outcome, "output", feedback(c, opts.reveal) or "", "visibility", c.visibility,
      "duration", c.duration, "reproduce", c.reproduce)
  end
  return M.json(obj("lab", r.lab, "submission", r.submission, "seed", r.seed, "score", r.score,
    "max_score", r.max_score, "execution_time", r.execution_time, "sandbox", sandbox_obj(r.sandbox),
    "checks", checks), 2) .. "\n"
end

-- Gradescope's results.json (gradescope-autograders.readthedocs.io, specs)
function writers.gradescope(r, opts)
  local tests = {}
  for i, c in ipairs(r.checks) do
    tests[i] = obj("name", c.name, "score", c.score, "max_score", c.max_score,
      "status", c.status == "passed" and "passed" or "failed",
      "output", feedback(c, opts.reveal) or "", "visibility", c.visibility)
  end
  local summary = format("%s: %s of %s points (seed %s)", r.lab, pts(r.score), pts(r.max_score), tostring(r.seed))
  return M.json(obj("score", r.score, "execution_time", r.execution_time, "output", summary,
    "visibility", "visible", "stdout_visibility", "hidden", "tests", tests), 2) .. "\n"
end

-- GitHub Classroom's autograding reporter reads {version: 1, status, max_score, tests}
function writers.github(r, opts)
  local tests, status = {}, "pass"
  for i, c in ipairs(r.checks) do
    local st = c.status == "passed" and "pass" or (c.status == "error" and "error" or "fail")
    if st ~= "pass" and status == "pass" then status = "fail" end
    if st == "error" then status = "error" end
    tests[i] = obj("name", c.name, "status", st, "score", c.score, "max_score", c.max_score,
      "message", feedback(c, opts.reveal) or "", "test_code", c.reproduce or "",
      "filename", "", "line_no", 0, "execution_time", c.duration and format("%.2fs", c.duration) or "0s")
  end
  return M.json(obj("version", 1, "status", status, "max_score", r.max_score, "tests", tests), 2) .. "\n"
end

-- XML 1.0 text: markup escaped, and the bytes XML cannot carry at all
-- (controls other than tab, newline, return) as U+FFFD
local XML_ESC = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;"}
local function xml(s)
  s = utf8_clean(tostring(s))
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", "\239\191\189")
  s = s:gsub("\239\191[\190\191]", "\239\191\189")                -- U+FFFE, U+FFFF
  return (s:gsub("[&<>\"']", XML_ESC))
end
M.xml_escape = xml

function writers.junit(r, opts)
  local failures, errors_n, skipped = 0, 0, 0
  for _, c in ipairs(r.checks) do
    if c.status == "failed" then failures = failures + 1
    elseif c.status == "error" then errors_n = errors_n + 1
    elseif c.status == "skipped" then skipped = skipped + 1 end
  end
  local suite = xml(r.lab)
  local out = {'<?xml version="1.0" encoding="UTF-8"?>',
    format('<testsuites name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">', suite,
      #r.checks, failures, errors_n, skipped, r.execution_time or 0),
    format('  <testsuite name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">', suite,
      #r.checks, failures, errors_n, skipped, r.execution_time or 0),
    format('    <properties><property name="submission" value="%s"/><property name="seed" value="%s"/>' ..
      '<property name="score" value="%s"/><property name="max_score" value="%s"/></properties>',
      xml(r.submission), xml(tostring(r.seed)), pts(r.score), pts(r.max_score))}
  for _, c in ipairs(r.checks) do
    local head = format('    <testcase classname="%s" name="%s" time="%.3f">', suite, xml(c.name), c.duration or 0)
    local fb = feedback(c, opts.reveal) or ""
    if c.status == "passed" then
      out[#out + 1] = head .. "</testcase>"
    elseif c.status == "skipped" then
      out[#out + 1] = head .. format('<skipped message="%s"/></testcase>', xml(c.message or "skipped"))
    else
      local tag = c.status == "error" and "error" or "failure"
      out[#out + 1] = head
      out[#out + 1] = format('      <%s message="%s" type="%s">%s</%s>', tag, xml(c.outcome or tag),
        xml(c.outcome or tag), xml(fb), tag)
      out[#out + 1] = "    </testcase>"
    end
  end
  out[#out + 1] = "  </testsuite>"
  out[#out + 1] = "</testsuites>"
  return concat(out, "\n") .. "\n"
end

-- TAP version 13; a diagnostic is a YAML block whose values are JSON
-- strings (valid YAML), one line each, so no student text starts a line
function writers.tap(r, opts)
  local out = {"TAP version 13", "1.." .. #r.checks}
  for i, c in ipairs(r.checks) do
    local name = utf8_clean(c.name)
    if c.status == "passed" then
      out[#out + 1] = format("ok %d - %s", i, name)
    elseif c.status == "skipped" then
      out[#out + 1] = format("ok %d - %s # SKIP %s", i, name,
        (utf8_clean(c.message or ""):gsub("[%c#]", " ")))
    else
      out[#out + 1] = format("not ok %d - %s", i, name)
      out[#out + 1] = "  ---"
      out[#out + 1] = "  outcome: " .. json_string(c.outcome or "")
      out[#out + 1] = "  score: " .. json_number(c.score) .. "/" .. json_number(c.max_score)
      out[#out + 1] = "  message: " .. json_string(feedback(c, opts.reveal) or "")
      out[#out + 1] = "  ..."
    end
  end
  out[#out + 1] = format("# score %s/%s seed %s", pts(r.score), pts(r.max_score), tostring(r.seed))
  return concat(out, "\n") .. "\n"
end

-- write(result, fmt[, {reveal=, color=}]) -> the report text
function M.write(result, fmt, opts)
  local w = writers[fmt]
  if not w then error("unknown report format '" .. tostring(fmt) .. "'", 2) end
  return w(result, opts or {})
end

-- summary(results) -> a table of every submission's score (text)
function M.summary(results)
  local lines = {"", "submission                              score"}
  for _, r in ipairs(results) do
    local name = r.submission
    if #name > 38 then name = "..." .. name:sub(-35) end
    lines[#lines + 1] = format("%-38s  %s/%s%s", name, pts(r.score or 0), pts(r.max_score or 0),
      r.error and ("  (" .. r.error .. ")") or "")
  end
  return concat(lines, "\n") .. "\n"
end

return M
