-- http_core_spec.lua: the C HTTP/1.1 pull parser (http.core) and its helpers.
-- Every hostile input of RELIABILITY items 1-6 and 8 is fed whole and cut at
-- every byte offset (sampled for the 64 KiB limit cases): the events, and the
-- status of a refusal, must not depend on how the bytes arrive.
local core = require "http.core"
local bounded = require("support").bounded

-- Feeds `chunks` as a server's read loop does: unconsumed bytes are kept and
-- the next recv appended. Returns the events, consecutive bodies merged.
local function drive(p, chunks, finish)
  local events, buf, pos = {}, "", 1
  local function push(ev, x)
    local last = events[#events]
    if ev == "body" and last and last[1] == "body" then
      last[2] = last[2] .. x
    else
      events[#events + 1] = {ev, x}
    end
  end
  for _, chunk in ipairs(chunks) do
    buf, pos = buf:sub(pos) .. chunk, 1
    while true do
      local ev, a, b = p:feed(buf, pos)
      if ev == "error" then
        events[#events + 1] = {"error", a, b}
        return events
      end
      assert(math.type(a) == "integer" and a >= pos and a <= #buf + 1,
             "bad nextpos")
      pos = a
      if ev == "more" then
        assert(a == #buf + 1, "more must consume everything")
        break
      end
      push(ev, b)
    end
  end
  if finish then
    local ev, a, b = p:finish()
    if ev == "error" then
      events[#events + 1] = {"error", a, b}
    elseif ev ~= "more" then
      push(ev, b)
    end
  end
  return events
end

local function parse(s, kind, opts, finish)
  return drive(core.parser(kind or "request", opts), {s}, finish)
end

-- Refusals compare by status: the reason may name either llhttp's or our
-- finding, but the status may not change with the split.
local function strip_reasons(events)
  for _, e in ipairs(events) do
    if e[1] == "error" then e[3] = nil end
  end
  return events
end

-- Every offset of a short input; for a long one the first and last 64 and
-- 256 spread between (every offset of 64 KiB would take minutes under ASan).
local function offsets(n)
  local t = {}
  for i = 1, n - 1 do
    if n <= 4096 or i <= 64 or i >= n - 64 or i % (n // 256) == 0 then
      t[#t + 1] = i
    end
  end
  return t
end

-- The error status of `s` (nil if none), after checking that two-piece
-- splits give the same events. Also returns the events.
local function status_of(s, opts, kind)
  local whole = strip_reasons(parse(s, kind, opts))
  for _, i in ipairs(offsets(#s)) do
    local split = strip_reasons(drive(core.parser(kind or "request", opts),
                                      {s:sub(1, i), s:sub(i + 1)}))
    assert.are.same(whole, split, "split at " .. i)
  end
  local last = whole[#whole]
  return last and last[1] == "error" and last[2] or nil, whole
end

local function heads(events)
  local t = {}
  for _, e in ipairs(events) do
    if e[1] == "head" then t[#t + 1] = e[2].target end
  end
  return t
end

local H = "POST / HTTP/1.1\r\nHost: a\r\n"

describe("http.core request parsing", function()
  -- RFC 9112 2.3, and Python: a later minor version is served as HTTP/1.1;
  -- the request keeps the version it sent
  it("takes HTTP/1.2 to 1.9 as HTTP/1.1, split anywhere, CRLF or bare LF", function()
    for _, s in ipairs{"GET /a HTTP/1.2\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
                       "GET /a HTTP/1.9\nHost: a\n\nGET /b HTTP/1.1\nHost: a\n\n"} do
      local _, events = status_of(s)
      assert.are.same({"/a", "/b"}, heads(events))
      local v = s:match("HTTP/1%.(%d)")
      assert.are.equal("HTTP/1." .. v, events[1][2].version)
      assert.is_true(events[1][2].keep_alive)
      assert.are.equal("HTTP/1.1", events[3][2].version)
    end
    assert.are.equal(400, (status_of("GET / HTTP/1.10\r\nHost: a\r\n\r\n")))
    assert.are.equal(400, (status_of("GET / HTTP/1.2x\r\nHost: a\r\n\r\n")))
    assert.are.equal(505, (status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n")))
    -- a version-like target is a target
    local _, events = status_of("GET /HTTP/1.2 HTTP/1.0\r\n\r\n")
    assert.are.same({"/HTTP/1.2"}, heads(events))
    assert.are.equal("HTTP/1.0", events[1][2].version)
  end)

  it("parses a simple GET", bounded(30, function()
    local p = core.parser("request")
    local s = "GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-Y:  b c \r\nx-y: d\r\n\r\n"
    local ev, pos, head = p:feed(s)
    assert.are.equal("head", ev)
    assert.are.equal(#s + 1, pos)
    assert.are.same({method = "GET", target = "/x?y=1", version = "HTTP/1.1",
                     major = 1, minor = 1, keep_alive = true, chunked = false,
                     expect_continue = false, upgrade = false,
                     headers = {{"Host", "a"}, {"X-Y", "b c"}, {"x-y", "d"}}},
                    head)
    assert.are.equal("GET /x?y=1 HTTP/1.1", p:request_line())
    local ev2, pos2, trailers = p:feed(s, pos)
    assert.are.equal("end", ev2)
    assert.are.equal(pos, pos2)
    assert.is_nil(trailers)
    assert.are.same({"more", #s + 1}, {p:feed(s, pos2)})
    assert.are.equal("more", p:finish())
    -- an ended message leaves nothing in the parser: its buffers went back
    -- (an idle kept-alive connection holds none), the line with them
    assert.are.equal("", (p:request_line()))
  end))

  local pipeline =
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" ..
    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" ..
    "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" ..
    "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nContent-Length: 99\r\nX-T: t\r\n\r\n" ..
    "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n"

  local function check_pipeline(events)
    assert.are.same({"/1", "/2", "/3", "/4"}, heads(events))
    local kinds = {}
    for i, e in ipairs(events) do kinds[i] = e[1] end
    assert.are.same({"head", "end", "head", "body", "end", "head", "body",
                     "end", "head", "end"}, kinds)
    assert.are.equal("hello", events[4][2])
    assert.are.equal("abcdefg", events[7][2])
    assert.are.same({{"Content-Length", "99"}, {"X-T", "t"}}, events[8][2])
    -- a Content-Length in the trailer is neither framing nor a header
    assert.are.same({{"Host", "a"}, {"Transfer-Encoding", "chunked"}},
                    events[6][2].headers)
    assert.is_true(events[6][2].chunked)
    assert.are.equal(5, events[3][2].content_length)
  end

  it("returns pipelined requests one at a time", bounded(30, function()
    local events = parse(pipeline)
    check_pipeline(events)
    -- bytes after a head are left alone until asked for
    local p = core.parser("request")
    local ev, pos = p:feed(pipeline)
    assert.are.equal("head", ev)
    assert.are.equal(#"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" + 1, pos)
  end))

  it("gives identical events at every split offset and byte by byte",
     bounded(30, function()
    local whole = parse(pipeline)
    for i = 0, #pipeline do
      local split = drive(core.parser("request"),
                          {pipeline:sub(1, i), pipeline:sub(i + 1)})
      assert.are.same(whole, split, "split at " .. i)
    end
    local bytes = {}
    for i = 1, #pipeline do bytes[i] = pipeline:sub(i, i) end
    assert.are.same(whole, drive(core.parser("request"), bytes))
  end))

  it("accepts bare LF line endings and HTTP/1.0 without Host", bounded(30, function()
    local ev = parse("GET /nc HTTP/1.1\nHost: a\nX:  b \n\n")
    assert.are.equal("head", ev[1][1])
    assert.are.same({{"Host", "a"}, {"X", "b"}}, ev[1][2].headers)
    assert.are.equal("end", ev[2][1])
    ev = parse("\r\n\nGET / HTTP/1.0\n\n")
    assert.are.equal("HTTP/1.0", ev[1][2].version)
    assert.is_false(ev[1][2].keep_alive)
    assert.are.equal("end", ev[2][1])
    local st = status_of("GET /a HTTP/1.1\r\nHost: a\nX: b\r\n\n" ..
                         "GET /b HTTP/1.1\nHost: a\r\n\r\n")
    assert.is_nil(st)
  end))

  it("reports keep-alive, Expect and Upgrade", bounded(30, function()
    local ev = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" ..
                     "GET /after-close HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.is_false(ev[1][2].keep_alive)
    assert.are.same({"/"}, heads(ev))   -- nothing after Connection: close
    ev = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert.is_true(ev[1][2].keep_alive)
    ev = parse(H .. "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")
    assert.is_true(ev[1][2].expect_continue)
    ev = parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n" ..
               "Connection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert.is_true(ev[1][2].upgrade)
    assert.are.same({"/", "/next"}, heads(ev))
    ev = parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")
    assert.are.equal("CONNECT", ev[1][2].method)
    assert.are.equal("h:443", ev[1][2].target)
  end))

  it("answers 501 for unknown methods and 505 for HTTP/2+", bounded(30, function()
    assert.are.equal(501, status_of("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert.are.equal(501, status_of("get / HTTP/1.1\r\n\r\n"))
    local _, ev = status_of("BREW / HTTP/1.1\r\n\r\n")
    assert.are.equal("Unsupported method ('BREW')", parse("BREW / x")[1][3])
    assert.are.equal(1, #ev)
    assert.are.equal(400, status_of("\22\3\1\0\1\1\0\0"))       -- TLS hello
    assert.are.equal(505, status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"))
    assert.are.equal(505, status_of("GET / HTTP/3.1\r\nHost: a\r\n\r\n"))
    assert.are.equal(505, status_of("GET /\r\n\r\n"))            -- HTTP/0.9
    assert.are.equal(505, status_of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
    assert.are.equal(400, status_of("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"))
  end))

  it("keeps the raw request line for the log", bounded(30, function()
    local p = core.parser("request")
    local ev, status = p:feed("GET /\27[31m HTTP/1.1\r\n\r\n")
    assert.are.same({"error", 400}, {ev, status})
    assert.are.equal("GET /", p:request_line())
    assert.are.equal("GET /\\x1b", core.escape_log("GET /\27"))
  end))
end)

describe("http.core hostile requests (RELIABILITY 1-6)", function()
  local cases = {
    -- item 1: CL/TE conflicts
    {"CL then TE", H .. "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE then CL", H .. "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"two equal CL", H .. "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
    {"two different CL", H .. "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
    {"CL 3, 3", H .. "Content-Length: 3, 3\r\n\r\nabc", 400},
    {"CL +3", H .. "Content-Length: +3\r\n\r\nabc", 400},
    {"CL -1", H .. "Content-Length: -1\r\n\r\nabc", 400},
    {"CL 1e3", H .. "Content-Length: 1e3\r\n\r\nabc", 400},
    {"CL empty", H .. "Content-Length: \r\n\r\nabc", 400},
    {"CL 10^23", H .. "Content-Length: 100000000000000000000000\r\n\r\nabc", 400},
    -- item 2: TE obfuscation
    {"TE chunked, identity", H .. "Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE xchunked", H .. "Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"two TE lines", H .. "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE gzip + TE chunked", H .. "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE obs-fold", H .. "Transfer-Encoding: chunked\r\n , identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE eee, chunked + CL", H .. "Transfer-Encoding: eee, chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"TE eee, chunked", H .. "Transfer-Encoding: eee, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
    {"chunk-ext smuggling 2;\\nxx", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" ..
       "2;\nxx\r\n4c\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"bytes other than CRLF after chunk data", H .. "Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400},
    {"bare LF after chunk size", H .. "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
    {"chunk size overflow", H .. "Transfer-Encoding: chunked\r\n\r\n100000000000000000\r\n", 400},
    {"bare LF in trailers", H .. "Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", 400},
    {"obs-fold in trailers", H .. "Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n", 400},
    -- item 3: bare CR
    {"bare CR ends the head", "GET / HTTP/1.1\r\nHost: a\r\n\rGET /smug HTTP/1.1\r\n\r\n", 400},
    {"bare CR in a header line", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
    {"bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    -- item 4: header syntax
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400},
    {"name with space", "GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", 400},
    {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400},
    {"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400},
    {"0x01 in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\1b\r\n\r\n", 400},
    {"line without colon", "GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", 400},
    {"control byte in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    -- item 5: Host
    {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400},
    {"two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " -> " .. c[3], bounded(30, function()
      local status, events = status_of(c[2])
      assert.are.equal(c[3], status)
      for _, t in ipairs(heads(events)) do
        assert.are_not.equal("/admin", t)
        assert.are_not.equal("/smug", t)
      end
      local last = parse(c[2])
      assert.are.equal("string", type(last[#last][3]))
      -- dead: the same error again, nothing parsed after it
      local p = core.parser("request")
      drive(p, {c[2]})
      local ev, st = p:feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
      assert.are.same({"error", c[3]}, {ev, st})
    end))
  end
end)

describe("http.core limits (RELIABILITY 6)", function()
  local function line(n)   -- a request line of exactly n bytes
    return "GET /" .. ("a"):rep(n - 14) .. " HTTP/1.1"
  end

  it("414 above max_line", bounded(30, function()
    assert.is_nil(status_of(line(8192) .. "\r\nHost: a\r\n\r\n"))
    assert.are.equal(414, status_of(line(8193) .. "\r\nHost: a\r\n\r\n"))
    assert.are.equal(414, status_of(("A"):rep(9000)))
    assert.are.equal(414, status_of(line(101) .. "\r\n", {max_line = 100}))
  end))

  it("431 above max_header_bytes and max_headers", bounded(30, function()
    local function head_of(bytes)  -- header section of exactly `bytes`
      local filler = bytes - #"Host: a\r\nX: \r\n\r\n"
      return "GET / HTTP/1.1\r\nHost: a\r\nX: " .. ("v"):rep(filler) ..
             "\r\n\r\n"
    end
    assert.is_nil(status_of(head_of(65536)))
    assert.are.equal(431, status_of(head_of(65537)))
    assert.are.equal(431, status_of(head_of(301), {max_header_bytes = 300}))
    local fields = {"GET / HTTP/1.1\r\nHost: a\r\n"}
    for i = 2, 100 do fields[#fields + 1] = "X-" .. i .. ": v\r\n" end
    local hundred = table.concat(fields)
    local ev = parse(hundred .. "\r\n")
    assert.are.equal(100, #ev[1][2].headers)
    assert.are.equal(431, status_of(hundred .. "X-101: v\r\n\r\n"))
    assert.are.equal(431, status_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n",
                                    {max_headers = 1}))
  end))

  it("413 as soon as Content-Length is known, before any body byte",
     bounded(30, function()
    local p = core.parser("request")
    local ev, st = p:feed(H .. "Content-Length: 104857601\r\n\r\n")
    assert.are.same({"error", 413}, {ev, st})
    assert.is_nil(status_of(H .. "Content-Length: 10\r\n\r\n0123456789",
                            {max_body = 10}))
    assert.are.equal(413, status_of(H .. "Content-Length: 11\r\n\r\n",
                                    {max_body = 10}))
  end))

  it("413 when a chunked body passes max_body", bounded(30, function()
    local te = H .. "Transfer-Encoding: chunked\r\n\r\n"
    assert.is_nil(status_of(te .. "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
                            {max_body = 10}))
    local st, ev = status_of(te .. "5\r\n01234\r\n6\r\n567890\r\n0\r\n\r\n",
                             {max_body = 10})
    assert.are.equal(413, st)
    assert.are.equal("01234", ev[2][2])  -- refused before the 2nd chunk
    local p = core.parser("request")
    local buf = te .. "fffffffff\r\n"
    local e, pos = p:feed(buf)
    assert.are.equal("head", e)
    local e2, st2 = p:feed(buf, pos)
    assert.are.same({"error", 413}, {e2, st2})
  end))

  it("400 for chunk extensions above max_chunk_ext", bounded(30, function()
    local te = H .. "Transfer-Encoding: chunked\r\n\r\n"
    local ext = ";" .. ("e"):rep(16383)        -- 16384 bytes with the ';'
    assert.is_nil(status_of(te .. "1" .. ext .. "\r\nx\r\n0\r\n\r\n"))
    assert.are.equal(400, status_of(te .. "1" .. ext .. "e\r\nx\r\n0\r\n\r\n"))
  end))
end)

describe("http.core responses", function()
  it("parses Content-Length and chunked responses", bounded(30, function()
    local ev = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" ..
                     "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                     "2\r\nno\r\n0\r\n\r\n", "response")
    assert.are.equal(200, ev[1][2].status)
    assert.are.equal("OK", ev[1][2].reason)
    assert.is_nil(ev[1][2].method)
    assert.are.same({"body", "hi"}, ev[2])
    assert.are.equal("end", ev[3][1])
    assert.are.equal(404, ev[4][2].status)
    assert.are.equal("Not Found", ev[4][2].reason)
    assert.are.same({"body", "no"}, ev[5])
    assert.are.equal("end", ev[6][1])
  end))

  it("ends a close-delimited body at finish()", bounded(30, function()
    local p = core.parser("response")
    local ev = drive(p, {"HTTP/1.0 200 OK\r\n\r\nsome", " body"}, true)
    assert.is_false(ev[1][2].keep_alive)
    assert.are.same({"body", "some body"}, ev[2])
    assert.are.equal("end", ev[3][1])
    assert.are.equal("more", p:finish())
  end))

  it("skips the body of HEAD, 1xx, 204 and 304 responses", bounded(30, function()
    local p = core.parser("response")
    p:set_head_response(true)
    local ev = drive(p, {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" ..
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"})
    assert.are.equal(10, ev[1][2].content_length)
    assert.are.same({"head", "end", "head", "end"},
                    {ev[1][1], ev[2][1], ev[3][1], ev[4][1]})
    ev = parse("HTTP/1.1 100 Continue\r\n\r\n" ..
               "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n" ..
               "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n" ..
               "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "response")
    local seq = {}
    for i, e in ipairs(ev) do seq[i] = e[1] .. (e[1] == "head" and e[2].status or "") end
    assert.are.same({"head100", "end", "head204", "end", "head304", "end",
                     "head200", "body", "end"}, seq)
  end))

  it("accepts bare LF in a response head", bounded(30, function()
    local ev = parse("HTTP/1.1 200 OK\nContent-Length: 2\nX: y\n\nhi", "response")
    assert.are.same({{"Content-Length", "2"}, {"X", "y"}}, ev[1][2].headers)
    assert.are.same({"body", "hi"}, ev[2])
  end))

  it("refuses truncated and malformed responses", bounded(30, function()
    local ev = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                     "response", nil, true)
    assert.are.equal("error", ev[#ev][1])
    assert.are.equal(400, status_of("HTTP/1.1 200 OK\r\nX: a\r\n\rY: b\r\n\r\n",
                                    nil, "response"))
    assert.are.equal(400, status_of("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" ..
                                    "Content-Length: 3\r\n\r\nabc", nil, "response"))
    local st, ev = status_of("HTTP/1.1 200 OK\r\n\r\n01234567890",
                             {max_body = 10}, "response")
    assert.are.equal(413, st)
    assert.are.same({"body", "0123456789"}, ev[2])
  end))
end)

describe("http.core parser object", function()
  it("finish() at EOF", bounded(30, function()
    local p = core.parser("request")
    assert.are.equal("more", p:finish())
    p = core.parser("request")
    assert.are.same({"more", 4}, {p:feed("GET")})
    local ev, st = p:finish()
    assert.are.same({"error", 400}, {ev, st})
    p = core.parser("request")
    drive(p, {H .. "Content-Length: 5\r\n\r\nab"})
    assert.are.equal("error", (p:finish()))
    p = core.parser("request")
    drive(p, {"GET / HTTP/1.1\r\nHost: a\r\n\r\n"})
    assert.are.equal("more", p:finish())
  end))

  it("ignores bytes after a message that closes the connection", bounded(30, function()
    local p = core.parser("response")
    local ev = drive(p, {"HTTP/1.0 200 OK\r\n\r\nbody"}, true)
    assert.are.equal("end", ev[#ev][1])
    assert.are.same({"more", 4}, {p:feed("xyz")})
    assert.are.equal("more", p:finish())
    p = core.parser("request")
    ev = drive(p, {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" ..
                   "\r\rgarbage that is never parsed"})
    assert.are.equal("end", ev[#ev][1])
  end))

  it("limits trailer sections like header sections", bounded(30, function()
    local te = H .. "Transfer-Encoding: chunked\r\n\r\n0\r\n"
    assert.are.equal(431, status_of(te .. "A: 1\r\nB: 2\r\n\r\n",
                                    {max_headers = 1}))
    -- the head section here is 39 bytes; the trailer section 7 + #value
    local lim = {max_header_bytes = 39}
    assert.is_nil(status_of(te .. "A: " .. ("v"):rep(32) .. "\r\n\r\n", lim))
    assert.are.equal(431, status_of(te .. "A: " .. ("v"):rep(33) .. "\r\n\r\n",
                                    lim))
  end))

  it("reset() makes a dead parser usable again", bounded(30, function()
    local p = core.parser("request")
    assert.are.equal("error", (p:feed("GET / HTTP/1.1\r\nHost: a\r\n\rX")))
    p:reset()
    assert.are.equal("head", (p:feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n")))
  end))

  it("raises only for wrong arguments, naming the argument", bounded(30, function()
    -- each refusal is Lua's usual message for that argument, not any error
    local function refuses(msg, fn)
      local ok, err = pcall(fn)
      assert.is_false(ok, "accepted: " .. msg)
      assert.are.equal("string", type(err), tostring(err))
      assert.matches(msg, err, 1, true)
    end
    refuses("bad argument #1 to 'parser' (invalid option 'both')",
            function() core.parser("both") end)
    refuses("bad argument #2 to 'parser' (max_line must be an integer in 0..",
            function() core.parser("request", {max_line = -1}) end)
    refuses("bad argument #2 to 'parser' (max_body must be an integer in 0..",
            function() core.parser("request", {max_body = "x"}) end)
    refuses("bad argument #2 to 'parser' (table expected, got number)",
            function() core.parser("request", 5) end)
    local p = core.parser("request")
    refuses("bad argument #1 to 'feed' (string expected, got nil)", function() p:feed(nil) end)
    refuses("bad argument #2 to 'feed' (position out of range)", function() p:feed("abc", 0) end)
    refuses("bad argument #2 to 'feed' (position out of range)", function() p:feed("abc", 5) end)
    refuses("bad argument #1 to 'feed' (http.parser expected, got table)",
            function() p.feed({}, "x") end)
    -- none of them hurt the parser: it goes on as if they never came
    assert.are.same({"more", 4}, {p:feed("abc", 4)})
    assert.matches("^http.parser %(request%)", tostring(p))
  end))
end)

describe("http.core helpers", function()
  it("checks header names and values, methods and targets", bounded(30, function()
    assert.is_true(core.valid_header_name("X-Custom_1.a!"))
    assert.is_false(core.valid_header_name(""))
    assert.is_false(core.valid_header_name("X Y"))
    assert.is_false(core.valid_header_name("X:Y"))
    assert.is_false(core.valid_header_name("X\r\nY"))
    assert.is_true(core.valid_header_value("text/html; q=0.9\tx \200"))
    assert.is_true(core.valid_header_value(""))
    assert.is_false(core.valid_header_value("a\r\nSet-Cookie: x"))
    assert.is_false(core.valid_header_value("a\nb"))
    assert.is_false(core.valid_header_value("a\rb"))
    assert.is_false(core.valid_header_value("a\0b"))
    assert.is_false(core.valid_header_value("a\1b"))
    assert.is_true(core.valid_method("GET"))
    assert.is_true(core.valid_method("M-SEARCH"))
    assert.is_false(core.valid_method("GET /"))
    assert.is_false(core.valid_method(""))
    assert.is_true(core.valid_target("/a?b=c#d"))
    assert.is_false(core.valid_target("/a b"))
    assert.is_false(core.valid_target("/a\r\nX: y"))
    assert.is_false(core.valid_target("/a\127"))
    assert.is_false(core.valid_target(""))
    local ok, err = pcall(function() return core.valid_header_name() end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'valid_header_name' (string expected, got no value)", err, 1, true)
  end))

  it("escapes log lines like Python's http.server", bounded(30, function()
    assert.are.equal("GET / HTTP/1.1", core.escape_log("GET / HTTP/1.1"))
    assert.are.equal("\\x1b[31m\\x00\\x7f\\\\ \\xc3\\xa9",
                     core.escape_log("\27[31m\0\127\\ \195\169"))
  end))

  it("knows Python's reason phrases", bounded(30, function()
    assert.are.equal("OK", core.status_reason(200))
    assert.are.equal("Not Found", core.status_reason(404))
    assert.are.equal("I'm a Teapot", core.status_reason(418))
    assert.are.equal("Request Header Fields Too Large", core.status_reason(431))
    assert.are.equal("HTTP Version Not Supported", core.status_reason(505))
    assert.is_nil(core.status_reason(299))
  end))

  it("formats and parses HTTP dates", bounded(30, function()
    assert.are.equal("Sun, 06 Nov 1994 08:49:37 GMT", core.httpdate(784111777))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", core.httpdate(0))
    assert.are.equal("Tue, 29 Feb 2000 23:59:59 GMT", core.httpdate(951868799.9))
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$",
                   core.httpdate())
    assert.are.equal(784111777, core.parse_httpdate("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.are.equal(784111777, core.parse_httpdate("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.are.equal(784111777, core.parse_httpdate("Sun Nov  6 08:49:37 1994"))
    assert.are.equal(951868799, core.parse_httpdate("Tue, 29 Feb 2000 23:59:59 GMT"))
    assert.is_nil(core.parse_httpdate("Mon, 29 Feb 2100 00:00:00 GMT"))
    assert.is_nil(core.parse_httpdate("Sun, 06 Nov 1994 08:49:37"))
    assert.is_nil(core.parse_httpdate("Sun, 06 Nov 1994 24:00:00 GMT"))
    assert.is_nil(core.parse_httpdate("yesterday"))
    assert.is_nil(core.parse_httpdate(""))
    for _, t in ipairs({0, 1, 86399, 951782400, 1700000000, 4102444800}) do
      assert.are.equal(t, core.parse_httpdate(core.httpdate(t)))
    end
  end))
end)
