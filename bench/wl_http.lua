-- wl_http.lua: HTTP hello-world on wirelab's http.server, as API.md §5
-- shows it: a BaseHTTPRequestHandler under ThreadingHTTPServer (a task per
-- connection), HTTP/1.1 keep-alive, "hello world" with Content-Length.
-- Usage: wirelab bench/wl_http.lua PORT. The first line on stdout is the
-- bound port.
local hs = require "http.server"

local BODY = "hello world"

local Hello = hs.BaseHTTPRequestHandler:extend()

function Hello:do_GET()
  self:send_response(200)
  self:send_header("Content-Type", "text/plain")
  self:send_header("Content-Length", #BODY)
  self:end_headers()
  self.wfile:write(BODY)
end

-- a line on stderr per request would measure the terminal (the Python peer
-- silences it too)
function Hello:log_message() end

-- 50 connections arrive at once: a Python-sized backlog of 5 drops SYNs
local Server = hs.ThreadingHTTPServer:extend({request_queue_size = 1024})

local server = Server({"127.0.0.1", tonumber(arg[1] or "0")}, Hello)
io.stdout:write(server.server_address[2], "\n")
io.stdout:flush()
server:serve_forever()
