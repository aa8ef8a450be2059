#!/usr/bin/env python3
"""http_cost.py: what one HTTP request costs wirelab's http.server, counted
rather than timed, so that a busy machine does not change the answer.

Runs a server script (default bench/wl_http.lua) and drives it with a small
keep-alive client (CONNS connections, one request in flight on each), first
WARM requests, then N more, and reports for those N:

  --mode callgrind   user-space instructions per request (valgrind's
                     callgrind, zeroed after the warm-up and dumped after
                     the N), with the functions that cost the most
  --mode vm          Lua VM instructions per request (a debug.sethook count
                     hook in every connection's task)
  --mode syscalls    system calls per request (strace -c -f)

Usage: python3 bench/http_cost.py [--wirelab ./wirelab] [--mode callgrind]
       [--requests 20000] [--conns 50] [--top 25] [--script bench/wl_http.lua]
"""
import argparse
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: http_cost\r\n\r\n"

# The Lua VM count: a hook every HOOK_EVERY instructions in each handler
# task; the total is read back from a side listener after each phase.
VM_WRAPPER = r"""
local socket = require "socket"
local wirelab = require "wirelab"
local socketserver = require "socketserver"
local EVERY = %d
local count = 0
local function hook() count = count + 1 end
-- setup, not init: socketserver's task for a stock handler class makes the
-- instance itself and calls setup, handle and finish (init is not called)
local hs = require "http.server"
local setup = hs.BaseHTTPRequestHandler.setup
hs.BaseHTTPRequestHandler.setup = function(...)
  debug.sethook(hook, "", EVERY)
  return setup(...)
end
local side = socket.create_server("127.0.0.1", 0)
io.stderr:write("VMPORT ", select(2, side:getsockname()), "\n")
wirelab.spawn(function()
  while true do
    local c = side:accept()
    c:sendall(tostring(count * EVERY) .. "\n")
    c:close()
  end
end)
arg = {[0] = "%s", "%s"}
dofile("%s")
"""
HOOK_EVERY = 100


def drive(port, conns, total):
    """total requests over conns keep-alive connections; returns seconds"""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    sent = done = 0
    state = {}
    t0 = time.time()
    for s in socks:
        if sent < total:
            s.send(REQUEST)
            sent += 1
            state[s] = b""
            sel.register(s, selectors.EVENT_READ)
    while done < total:
        events = sel.select(timeout=60)
        if not events:
            raise SystemExit("http_cost: the server stopped answering")
        for key, _ in events:
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise SystemExit("http_cost: the server closed a connection")
            buf = state[s] + data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[:end])
                if not buf.startswith(b"HTTP/1.1 200 ") or not m:
                    raise SystemExit("http_cost: unexpected response %r" % buf[:200])
                n = end + 4 + int(m.group(1))
                if len(buf) < n:
                    break
                buf = buf[n:]
                done += 1
                if sent < total:
                    s.send(REQUEST)
                    sent += 1
            state[s] = buf
    for s in socks:
        sel.unregister(s)
        s.close()
    return time.time() - t0


def start(cmd, env=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    line = p.stdout.readline()
    if not line.strip().isdigit():
        p.kill()
        raise SystemExit("http_cost: no port from %s: %r %s" %
                         (cmd, line, p.stderr.read(2000)))
    return p, int(line)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run_callgrind(a):
    out = tempfile.mkdtemp(prefix="http_cost.")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s/cg.%%p" % out,
           a.wirelab, a.script, "0"]
    p, port = start(cmd)
    drive(port, a.conns, a.warm)
    subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True,
                   stdout=subprocess.DEVNULL)
    drive(port, a.conns, a.requests)
    subprocess.run(["callgrind_control", "-d", "measured", str(p.pid)],
                   check=True, stdout=subprocess.DEVNULL)
    stop(p)
    dumps = sorted(f for f in os.listdir(out) if f.endswith(".1"))
    if not dumps:
        raise SystemExit("http_cost: no callgrind dump in %s" % out)
    path = os.path.join(out, dumps[0])
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    print("callgrind: %d instructions per request (%d requests, %d connections)"
          % (total / a.requests, a.requests, a.conns))
    for incl in ("no", "yes"):
        ann = subprocess.run(["callgrind_annotate", "--inclusive=" + incl,
                              "--threshold=100", path], capture_output=True,
                             text=True).stdout
        print("\n%s, per request:" % ("inclusive" if incl == "yes" else "self"))
        rows = 0
        for line in ann.splitlines():
            m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)", line)
            if not m or "PROGRAM TOTALS" in line:
                continue
            n = int(m.group(1).replace(",", ""))
            print("%8d  %5.1f%%  %s" % (n / a.requests, float(m.group(2)),
                                       m.group(3)[:100]))
            rows += 1
            if rows >= a.top:
                break
    print("\n(dump: %s)" % path)


def vm_count(vmport):
    with socket.create_connection(("127.0.0.1", vmport)) as c:
        return int(c.makefile().readline())


def run_vm(a):
    wrapper = VM_WRAPPER % (HOOK_EVERY, a.script, "0", a.script)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(wrapper)
    try:
        p, port = start([a.wirelab, f.name])
        line = p.stderr.readline().decode()
        vmport = int(line.split()[1])
        drive(port, a.conns, a.warm)
        before = vm_count(vmport)
        drive(port, a.conns, a.requests)
        after = vm_count(vmport)
        stop(p)
    finally:
        os.unlink(f.name)
    print("Lua VM: %.0f instructions per request (%d requests, %d connections;"
          " counted in blocks of %d)" % ((after - before) / a.requests,
                                          a.requests, a.conns, HOOK_EVERY))


def run_syscalls(a):
    out = tempfile.mktemp(prefix="http_cost.strace.")
    p, port = start([a.wirelab, a.script, "0"])
    drive(port, a.conns, a.warm)
    tr = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(p.pid)],
                          stderr=subprocess.DEVNULL)
    time.sleep(1)
    drive(port, a.conns, a.requests)
    tr.send_signal(signal.SIGINT)
    tr.wait()
    stop(p)
    print("system calls per request (%d requests, %d connections):" %
          (a.requests, a.conns))
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                print("%8.2f  %s" % (int(m.group(1)) / a.requests, m.group(2)))
    os.unlink(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wirelab", default=os.path.join(HERE, "..", "wirelab"))
    ap.add_argument("--script", default=os.path.join(HERE, "wl_http.lua"))
    ap.add_argument("--mode", choices=["callgrind", "vm", "syscalls"],
                    default="callgrind")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    a.wirelab = os.path.abspath(a.wirelab)
    a.script = os.path.abspath(a.script)
    {"callgrind": run_callgrind, "vm": run_vm, "syscalls": run_syscalls}[a.mode](a)


if __name__ == "__main__":
    main()
