-- wirelab.status: everything this process has open, as `ss -tanp` would
-- show it for this process: sockets (addresses, TCP state from TCP_INFO,
-- bytes in and out, queued bytes), servers (handler, clients), tasks (what
-- each waits in) and child processes. rows() is wirelab.status(), for lab
-- scripts and checks; show() is the prompt's status().
local wirelab = require "wirelab"

local M = {}

local sort, concat = table.sort, table.concat

-- rows() -> {sockets = {...}, servers = {...}, tasks = {...}, processes = {...}}
function M.rows()
  local socket = require "socket"
  local out = {sockets = socket._open(), servers = {}, tasks = {}, processes = {}}
  sort(out.sockets, function(a, b) return a.fd < b.fd end)
  local ss = package.loaded.socketserver
  for srv in pairs(ss and ss._servers or {}) do
    local ok, info = pcall(srv.info, srv)
    if ok and not info.closed then
      info.fd = srv.socket:fileno()
      info.server = srv
      out.servers[#out.servers + 1] = info
    end
  end
  sort(out.servers, function(a, b) return a.fd < b.fd end)
  for _, t in ipairs(wirelab.tasks()) do
    local state, id, waiting = t:state()
    out.tasks[#out.tasks + 1] = {id = id, state = state, waiting = waiting, task = t}
  end
  local process = package.loaded.process
  for p in pairs(process and process._processes or {}) do
    local state, ended = p:state()
    if state ~= "closed" then
      out.processes[#out.processes + 1] = {pid = p.pid, command = concat(p._argv, " "),
                                           state = state, ended = ended, process = p}
    end
  end
  sort(out.processes, function(a, b) return a.pid < b.pid end)
  return out
end

-- a table as aligned columns: the header, then a line per row
local function columns(header, lines)
  local width = {}
  for _, line in ipairs({header, table.unpack(lines)}) do
    for i, cell in ipairs(line) do width[i] = math.max(width[i] or 0, #cell) end
  end
  local out = {}
  for _, line in ipairs({header, table.unpack(lines)}) do
    local cells = {}
    for i, cell in ipairs(line) do
      cells[i] = i == #line and cell or cell .. (" "):rep(width[i] - #cell)
    end
    out[#out + 1] = "  " .. concat(cells, "  ")
  end
  return concat(out, "\n")
end

local function n(v) return v and tostring(v) or "-" end

-- text(rows) -> the readable table status() prints
function M.text(r)
  r = r or M.rows()
  local parts = {}
  local lines = {}
  for _, s in ipairs(r.sockets) do
    lines[#lines + 1] = {tostring(s.fd), s.proto, s.laddr or "-", s.raddr or "*",
                         s.state or "-", n(s.recv_q), n(s.send_q), n(s.bytes_in), n(s.bytes_out)}
  end
  parts[#parts + 1] = #lines == 0 and "sockets: none" or "sockets:\n" .. columns(
    {"fd", "proto", "local", "peer", "state", "recv-q", "send-q", "bytes-in", "bytes-out"}, lines)
  lines = {}
  for _, s in ipairs(r.servers) do
    lines[#lines + 1] = {tostring(s.fd), s.class, s.address, s.handler, n(s.clients)}
  end
  if #lines > 0 then
    parts[#parts + 1] = "servers:\n" .. columns({"fd", "class", "address", "handler", "clients"}, lines)
  end
  lines = {}
  for _, t in ipairs(r.tasks) do
    lines[#lines + 1] = {tostring(t.id), t.state .. (t.waiting and " in " .. t.waiting or "")}
  end
  parts[#parts + 1] = "tasks:\n" .. columns({"id", "state"}, lines)
  lines = {}
  for _, p in ipairs(r.processes) do
    lines[#lines + 1] = {tostring(p.pid), p.state == "exited" and p.ended or p.state, p.command}
  end
  if #lines > 0 then
    parts[#parts + 1] = "processes:\n" .. columns({"pid", "state", "command"}, lines)
  end
  return concat(parts, "\n")
end

-- show(): prints text() (the prompt's status())
function M.show()
  io.stdout:write(M.text(), "\n")
  io.stdout:flush()
end

return M
