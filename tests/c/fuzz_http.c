/*
** fuzz_http.c: libFuzzer harness for http.core (RELIABILITY item 13). Each
** input is parsed whole and again cut at pseudo-random points, through the
** Lua API as the server uses it; the two event lists must be identical
** (bodies merged, error reasons aside), so beyond crashes and leaks the
** fuzzer also finds framing that depends on how bytes arrive.
**
** Build: clang -g -O1 -fsanitize=fuzzer,address,undefined with
** -I/usr/include/lua5.4 -I/usr/share/include/llhttp, over this file,
** bindings/http.c, http_parse.c, http_check.c, http_out.c, runtime/endpoint.c
** and llhttp's api.c, http.c and
** llhttp.c from /usr/share/llhttp, linked with -llua5.4.
** Requests are also driven through take_head, as http.server does: the
** heads it returns and what follows must match feed()'s. `make fuzz` builds and runs it.
** Input: byte 0 flags (1 response, 2 HEAD response, 4 small limits),
** bytes 1-2 the seed of the cuts, then the bytes to parse.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_http_core(lua_State *L);

static const char oracle[] =
  "local core, data, flags, seed = ...\n"
  "local small = {max_line = 64, max_header_bytes = 256, max_headers = 8,\n"
  "               max_body = 64, max_chunk_ext = 16}\n"
  "local kind = flags & 1 == 1 and 'response' or 'request'\n"
  "-- take_head, as the server drives it: the heads and what follows must\n"
  "-- be those feed() gives (ends aside: take_head ends bodiless messages)\n"
  "local function norm(events)\n"
  "  local n = {}\n"
  "  for _, e in ipairs(events) do\n"
  "    if e:sub(1, 4) ~= 'end:' then n[#n + 1] = e end\n"
  "  end\n"
  "  return n\n"
  "end\n"
  "local function head_line(x)\n"
  "  local t = {tostring(x.method or x.command or x.status), x.version or x.request_version}\n"
  "  local hs = x.headers\n"
  "  if hs[1] and type(hs[1]) == 'table' then\n"
  "    for _, f in ipairs(hs) do t[#t + 1] = f[1] .. ':' .. f[2] end\n"
  "  else\n"
  "    for i = 1, #hs, 2 do t[#t + 1] = hs[i] .. ':' .. hs[i + 1] end\n"
  "  end\n"
  "  return 'head:' .. table.concat(t, '|')\n"
  "end\n"
  "local function drive(chunks)\n"
  "  local p = core.parser(kind, flags & 4 == 4 and small or nil)\n"
  "  p:set_head_response(flags & 2 == 2)\n"
  "  local out, buf, pos = {}, '', 1\n"
  "  local function push(ev, x)\n"
  "    if ev == 'body' and out[#out] and out[#out]:sub(1, 5) == 'body:' then\n"
  "      out[#out] = out[#out] .. x\n"
  "    elseif ev == 'head' then\n"
  "      out.heads = out.heads or {}\n"
  "      out.heads[#out.heads + 1] = head_line(x)\n"
  "      local h = {}\n"
  "      for k, v in pairs(x) do\n"
  "        if k ~= 'headers' then h[#h + 1] = k .. '=' .. tostring(v) end\n"
  "      end\n"
  "      for _, f in ipairs(x.headers) do h[#h + 1] = f[1] .. ':' .. f[2] end\n"
  "      table.sort(h)\n"
  "      out[#out + 1] = 'head:' .. table.concat(h, '|')\n"
  "    elseif ev == 'end' then\n"
  "      local t = {}\n"
  "      for _, f in ipairs(x or {}) do t[#t + 1] = f[1] .. ':' .. f[2] end\n"
  "      out[#out + 1] = 'end:' .. table.concat(t, '|')\n"
  "    else\n"
  "      out[#out + 1] = ev .. ':' .. tostring(x)\n"
  "    end\n"
  "  end\n"
  "  for _, c in ipairs(chunks) do\n"
  "    buf, pos = buf:sub(pos) .. c, 1\n"
  "    while true do\n"
  "      local ev, a, b = p:feed(buf, pos)\n"
  "      if ev == 'error' then\n"
  "        assert(type(b) == 'string' and a >= 400 and a < 600)\n"
  "        push('error', a)\n"
  "        return out\n"
  "      end\n"
  "      assert(a >= pos and a <= #buf + 1, 'nextpos out of range')\n"
  "      pos = a\n"
  "      if ev == 'more' then assert(a == #buf + 1) break end\n"
  "      push(ev, b)\n"
  "    end\n"
  "  end\n"
  "  local ev, a, b = p:finish()\n"
  "  if ev == 'error' then push('error', a)\n"
  "  elseif ev ~= 'more' then push(ev, b) end\n"
  "  p:reset()\n"
  "  assert(p:feed('GET / HTTP/1.0\\r\\n\\r\\n') ~= nil)\n"
  "  return out\n"
  "end\n"
  "local function drive_take(chunks)\n"
  "  local p = core.parser('request', flags & 4 == 4 and small or nil)\n"
  "  local out, buf, pos, h, in_body = {}, '', 1, nil, false\n"
  "  local function push(ev, x)\n"
  "    if ev == 'body' and out[#out] and out[#out]:sub(1, 5) == 'body:' then\n"
  "      out[#out] = out[#out] .. x\n"
  "    else out[#out + 1] = ev .. ':' .. tostring(x) end\n"
  "  end\n"
  "  for _, c in ipairs(chunks) do\n"
  "    buf, pos = buf:sub(pos) .. c, 1\n"
  "    while true do\n"
  "      local ev, a, b\n"
  "      if in_body then ev, a, b = p:feed(buf, pos)\n"
  "      else\n"
  "        local r = table.pack(p:take_head(buf, pos))\n"
  "        ev, a, b = r[1], r[2], r[3]\n"
  "        if ev == 'head' then\n"
  "          h = {command = r[3], path = r[4], request_version = r[5], requestline = r[6], headers = r[7]}\n"
  "          -- the line as sent (Python's requestline): method, target, version\n"
  "          assert(r[6]:sub(1, #r[3]) == r[3] and r[6]:sub(-#r[5]) == r[5]\n"
  "                 and r[6]:find(r[4], #r[3] + 1, true), 'requestline')\n"
  "          b = r[9]\n"
  "        end\n"
  "      end\n"
  "      if ev == 'error' then push('error', a) return out end\n"
  "      assert(a >= pos and a <= #buf + 1, 'nextpos out of range')\n"
  "      pos = a\n"
  "      if ev == 'more' then assert(a == #buf + 1) break end\n"
  "      if ev == 'head' then\n"
  "        out[#out + 1] = head_line(h)\n"
  "        in_body = b\n"
  "      elseif ev == 'body' then push('body', b)\n"
  "      elseif ev == 'end' then in_body = false end\n"
  "    end\n"
  "  end\n"
  "  local ev, a = p:finish()\n"
  "  if ev == 'error' then push('error', a) end\n"
  "  return out\n"
  "end\n"
  "local whole = drive({data})\n"
  "local chunks, last = {}, 0\n"
  "for _ = 1, 1 + seed % 7 do\n"
  "  seed = (seed * 1103515245 + 12345) % 2147483648\n"
  "  local cut = #data > 0 and seed % (#data + 1) or 0\n"
  "  if cut > last then chunks[#chunks + 1] = data:sub(last + 1, cut) last = cut end\n"
  "end\n"
  "chunks[#chunks + 1] = data:sub(last + 1)\n"
  "local split = drive(chunks)\n"
  "if kind == 'request' then\n"
  "  -- the feed events, heads in take_head's form, ends dropped\n"
  "  local want, hi = {}, 0\n"
  "  for _, e in ipairs(norm(whole)) do\n"
  "    if e:sub(1, 5) == 'head:' then hi = hi + 1 want[#want + 1] = whole.heads[hi]\n"
  "    else want[#want + 1] = e end\n"
  "  end\n"
  "  local got = norm(drive_take(chunks))\n"
  "  local w, g = table.concat(want, '\\n'), table.concat(got, '\\n')\n"
  "  if w ~= g then\n"
  "    error(('take_head differs from feed\\n%q\\nfeed: %s\\ntake_head: %s')\n"
  "          :format(data, w, g))\n"
  "  end\n"
  "end\n"
  "local a, b = table.concat(whole, '\\n'), table.concat(split, '\\n')\n"
  "if a ~= b then\n"
  "  error(('split changed the events\\n%q\\nwhole: %s\\nsplit: %s')\n"
  "        :format(data, a, b))\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L;
  if (size < 3)
    return 0;
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadbuffer(L, oracle, sizeof oracle - 1, "=oracle") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  luaL_requiref(L, "http.core", luaopen_http_core, 0);
  lua_pushlstring(L, (const char *)data + 3, size - 3);
  lua_pushinteger(L, data[0]);
  lua_pushinteger(L, data[1] << 8 | data[2]);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();                   /* a finding: libFuzzer saves the input */
  }
  lua_close(L);
  return 0;
}
