#!/usr/bin/env python3
"""run.py: runs wirelab's benchmarks against its peers and reports them.

Each server is a subprocess that prints its bound port as the first line of
stdout. The load comes from bench/build/loadgen (echo, UDP, idle) or wrk
(HTTP). For every run the server's CPU time (utime+stime+cutime+cstime from
/proc/PID/stat) is sampled before and after, giving CPU per operation.
Rates are medians of R runs taken round-robin across peers, so a noisy
neighbour hurts every peer alike; ratios are to the C reference measured in
the same session. Stdlib only. See README.md.
"""
import argparse
import datetime
import os
import platform
import re
import json
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build")
README = os.path.join(HERE, "README.md")
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"

GROUPS = ["startup", "tcp", "bulk", "udp", "idle", "http", "proxy"]

# group -> (title, targets). A target is checked against the wirelab row.
TITLES = {
    "startup": "Start-up time: an empty program, median of %(startup_runs)d",
    "tcp": "TCP echo: 50 connections x 64 B ping-pong",
    "bulk": "Bulk echo: 10 connections x 64 KiB ping-pong",
    "udp": "UDP echo: %(udp_inflight)d datagrams of 64 B in flight",
    "idle": "Idle connections: %(idle_conns)d, RSS per connection",
    "http": "HTTP hello world, keep-alive: wrk -t1 -c50",
    "proxy": "netem proxies, no impairment, in front of the C echo server",
}
TARGETS = {
    "tcp": "wirelab >= 0.9x C",
    "tcp-ss": "wirelab socketserver ThreadingTCPServer with a BaseRequestHandler subclass >= 0.9x C",
    "bulk": "wirelab >= 0.85x C",
    "bulk-ss": "wirelab socketserver ThreadingTCPServer with a BaseRequestHandler subclass >= 0.85x C",
    "udp": "wirelab >= 0.85x C",
    "udp-ss": "wirelab socketserver UDPServer with a plain function >= 0.85x C",
    "idle": "wirelab <= 1.5 KiB per connection, each with its own task",
    "startup": "wirelab < 5 ms",
    "http": "wirelab ThreadingHTTPServer with a BaseHTTPRequestHandler >= 0.85x C and above Node",
    "proxy": "UDP proxy >= 50,000 datagrams/s; TCP proxy >= 1 GB/s",
}
# issue 13's targets (the code users write); the earlier ones were
# tcp 0.8x, bulk 0.7x, udp 0.8x, idle < 3 KiB, http 0.6x
MIN_RATIO = {"tcp": 0.9, "bulk": 0.85, "udp": 0.85, "http": 0.85}
IDLE_MAX_KIB = 1.5
# further targets of a group: (target key, peer key, ratio to C)
MORE_TARGETS = {"tcp": [("tcp-ss", "wl-ss-class", 0.9)],
                "bulk": [("bulk-ss", "wl-ss-class", 0.85)],
                "udp": [("udp-ss", "wl-ss-function", 0.85)]}

PROCS = []          # every Popen we started, killed by PID at the end


class Skip(Exception):
    """A peer cannot be measured; the message goes in its row."""


# ---- processes -------------------------------------------------------------

def popen(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    PROCS.append(p)
    return p


def stop(p, grace=2.0):
    """Ends one process we started: SIGTERM, then SIGKILL, by its PID."""
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass
    for f in (p.stdin, p.stdout):
        if f:
            try:
                f.close()
            except OSError:
                pass


def stop_all():
    for p in PROCS:
        try:
            stop(p)
        except Exception as e:  # keep going: every process must be ended
            print("run.py: could not stop pid %d: %s" % (p.pid, e),
                  file=sys.stderr)


def last_line(text, default=""):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else default


class Server:
    """A peer server: started, its port read, its CPU and memory sampled."""

    def __init__(self, name, argv):
        self.name, self.argv = name, argv
        self.proc = None
        self.port = None
        self.err = tempfile.TemporaryFile()
        self.lines = []

    def start(self, timeout=15.0):
        self.proc = popen(self.argv, cwd=HERE, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=self.err, bufsize=0)
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Skip("no port line on stdout within %.0f s" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(2)
                    raise Skip("server exited (status %s) before printing "
                               "its port: %s" % (self.proc.returncode,
                                                 self.stderr_tail()))
                buf += chunk
        first, rest = buf.split(b"\n", 1)
        try:
            self.port = int(first.strip())
        except ValueError:
            raise Skip("first stdout line is not a port: %r" % first[:60])
        self.lines = rest.decode(errors="replace").splitlines()
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        # a server blocked on a full stdout pipe would measure the pipe
        try:
            for line in self.proc.stdout:
                self.lines.append(line.decode(errors="replace").rstrip())
                del self.lines[:-50]
        except (OSError, ValueError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self):
        """The first line on stderr: the error, not the traceback's end."""
        self.err.seek(0)
        text = self.err.read(8192).decode(errors="replace")
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        return (lines[0] if lines else "(nothing on stderr)")[:200]

    def cpu(self):
        """Seconds of CPU used by the server and its reaped children."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            stat = f.read()
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] is field 3 (state); utime is field 14
        return sum(int(x) for x in fields[11:15]) / CLK_TCK

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Skip("no VmRSS for pid %d" % self.proc.pid)

    def nfds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def stop(self):
        if self.proc:
            stop(self.proc)


# ---- configuration ---------------------------------------------------------

def which(cmd):
    return shutil.which(cmd)


def peer_list(args, group):
    """(key, label, argv or Skip message) for each peer of a group."""
    py = sys.executable
    wl = args.wirelab
    wl_missing = None
    if not (os.path.isfile(wl) and os.access(wl, os.X_OK)):
        wl_missing = "wirelab binary not found at %s (run make)" % wl
    node = which("node")

    def c(binary, *rest):
        path = os.path.join(BUILD, binary)
        if not os.access(path, os.X_OK):
            return "%s not built (make -C bench)" % os.path.relpath(path)
        return [path] + list(rest)

    def script(interp, name, *rest):
        if interp is None:
            return "interpreter not installed"
        return [interp, os.path.join(HERE, name)] + list(rest)

    def wirelab(name, *rest):
        return wl_missing or [wl, os.path.join(HERE, name)] + list(rest)

    # Lua + luv: Debian's lua5.4 and lua-luv (its module for every Lua)
    def luv(name, *rest):
        lua = which("lua5.4")
        if lua is None:
            return "lua5.4 not installed (apt-get install lua5.4 lua-luv)"
        probe = subprocess.run([lua, "-e", "require 'luv'"],
                               capture_output=True, timeout=10)
        if probe.returncode != 0:
            return "luv not installed (apt-get install lua-luv)"
        return [lua, os.path.join(HERE, name)] + list(rest)

    # --baseline: the same wirelab script under another build (an older
    # commit), in the same runs, so "no slower than before" is one table
    def baseline(name, *rest):
        if not args.baseline:
            return None
        return [args.baseline, os.path.join(HERE, name)] + list(rest)

    if group in ("tcp", "bulk", "udp"):
        m = "udp" if group == "udp" else "tcp"
        ss, ss_server = (("wl_ss_udp.lua", "UDPServer") if m == "udp" else
                         ("wl_ss_tcp.lua", "ThreadingTCPServer"))
        ss_class = "DatagramRequestHandler" if m == "udp" else "BaseRequestHandler"
        peers = [
            ("c", "C (libuv)", c("c_echo", m, "0")),
            ("wirelab", "wirelab, raw socket loop",
             wirelab("wl_echo.lua", m, "0")),
            # the servers as a socketserver user writes them, beside the
            # raw loop: the difference is what socketserver costs
            ("wl-ss-class", "wirelab socketserver (%s, %s subclass)" %
             (ss_server, ss_class), wirelab(ss, "class", "0")),
            ("wl-ss-function", "wirelab socketserver (%s, plain function)" %
             ss_server, wirelab(ss, "function", "0")),
            ("luv", "Lua 5.4 + luv", luv("luv_echo.lua", m, "0")),
            ("node", "Node", script(node, "node_echo.js", m, "0")),
            ("asyncio", "Python asyncio",
             script(py, "py_echo_asyncio.py", m, "0")),
            ("socketserver", "Python socketserver (%s)" %
             ("UDPServer" if m == "udp" else "ThreadingTCPServer"),
             script(py, "py_echo_socketserver.py", m, "0")),
        ]
    elif group == "idle":
        peers = [
            ("c", "C (libuv)", c("c_echo", "tcp", "0")),
            ("wirelab", "wirelab (wl_idle.lua)",
             wirelab("wl_idle.lua", "0")),
            ("node", "Node", script(node, "node_echo.js", "tcp", "0")),
            ("asyncio", "Python asyncio",
             script(py, "py_echo_asyncio.py", "tcp", "0")),
            ("socketserver", "Python socketserver (a thread each)",
             script(py, "py_echo_socketserver.py", "tcp", "0")),
        ]
    elif group == "http":
        peers = [
            ("c", "C (libuv + llhttp)", c("c_http", "0")),
            ("wirelab", "wirelab http.server (Threading)",
             wirelab("wl_http.lua", "0")),
            ("node", "Node http", script(node, "node_http.js", "0")),
            ("socketserver", "Python http.server (Threading)",
             script(py, "py_http.py", "0")),
        ]
    else:
        raise ValueError(group)
    if args.peers:
        peers = [p for p in peers if p[0] in args.peers or p[0] == "c"]
    # every wirelab row gets its baseline row just after it
    if args.baseline:
        out = []
        for key, label, argv in peers:
            out.append((key, label, argv))
            if key.startswith("wirelab") or key.startswith("wl-"):
                if isinstance(argv, list):
                    out.append(("baseline-" + key, "%s, baseline (%s)" % (label, args.baseline),
                                baseline(os.path.basename(argv[1]), *argv[2:])))
        peers = out
    return peers


# ---- load ------------------------------------------------------------------

def load_argv(args, group, port, secs):
    loadgen = os.path.join(BUILD, "loadgen")
    if group == "tcp":
        return [loadgen, "tcp", HOST, str(port), "50", "64", "%g" % secs]
    if group == "bulk":
        return [loadgen, "tcp", HOST, str(port), "10", "65536", "%g" % secs]
    if group == "udp":
        return [loadgen, "udp", HOST, str(port), str(args.udp_inflight), "64",
                "%g" % secs]
    if group == "proxy-udp":
        return [loadgen, "udp", HOST, str(port), "50", "64", "%g" % secs]
    if group == "http":
        return ["wrk", "-t1", "-c50", "-d%ds" % max(1, round(secs)),
                "--latency", "http://%s:%d/" % (HOST, port)]
    raise ValueError(group)


def parse_loadgen(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            d = dict(kv.split("=", 1) for kv in line.split()[1:])
            return {"rate": float(d["rate"]), "ops": int(d["msgs"]),
                    "bytes": int(d["bytes"]), "secs": float(d["secs"])}
    raise Skip("no RESULT line from loadgen")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def parse_wrk(out):
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    n = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not m or not n:
        raise Skip("could not parse wrk output: %s" % last_line(out))
    res = {"rate": float(m.group(1)), "ops": int(n.group(1))}
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if p99:
        res["p99_ms"] = float(p99.group(1)) * UNITS[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+),"
                     r" timeout (\d+)", out)
    if bad and int(bad.group(1)) > 0:
        raise Skip("%s non-2xx responses" % bad.group(1))
    if errs:
        c, r, w, t = (int(x) for x in errs.groups())
        # a read error or two at the end is wrk closing; more is a problem
        if c or w or t or r > 50:
            raise Skip("wrk: " + errs.group(0))
    if res["ops"] == 0:
        raise Skip("no requests completed")
    return res


def run_load(args, group, server, secs):
    """One measured run: returns the load result plus CPU per operation."""
    if not server.alive():
        raise Skip("server died: %s" % server.stderr_tail())
    argv = load_argv(args, group, server.port, secs)
    cpu0 = server.cpu()
    try:
        p = popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=secs + 30)
    except subprocess.TimeoutExpired:
        stop(p)
        raise Skip("load client did not finish within %.0f s" % (secs + 30))
    except OSError as e:
        raise Skip("cannot run %s: %s" % (argv[0], e))
    cpu1 = server.cpu() if server.alive() else None
    if p.returncode != 0:
        raise Skip("%s: %s" % (os.path.basename(argv[0]),
                               last_line(err, last_line(out, "exit %d" %
                                                        p.returncode))))
    res = parse_wrk(out) if group == "http" else parse_loadgen(out)
    if cpu1 is None:
        raise Skip("server died during the run: %s" % server.stderr_tail())
    res["cpu_us"] = (cpu1 - cpu0) * 1e6 / res["ops"]
    return res


# ---- groups ----------------------------------------------------------------

class Budget:
    def __init__(self, planned):
        self.start = time.monotonic()
        self.limit = planned * 2 + 120

    def check(self):
        if time.monotonic() - self.start > self.limit:
            raise Skip("time budget of %.0f s used up" % self.limit)


def bench_rates(args, group, budget):
    """Runs one rate group; returns rows of dicts keyed as the table needs."""
    rows, live = [], []
    try:
        for key, label, argv in peer_list(args, group):
            row = {"key": key, "label": label, "runs": [], "errors": []}
            rows.append(row)
            if isinstance(argv, str):
                row["skip"] = argv
                continue
            row["server"] = Server(label, argv)   # stopped in finally
            try:
                row["server"].start()
                live.append(row)
            except (Skip, OSError) as e:
                row["skip"] = str(e)
        # warm-up (JITs, caches, thread pools), discarded
        for row in live:
            try:
                budget.check()
                run_load(args, group, row["server"], min(1.0, args.secs))
            except Skip as e:
                row["skip"] = "failed in warm-up: %s" % e
        live = [r for r in live if "skip" not in r]
        for i in range(args.runs):
            # rotate the order so no peer always runs first or last
            order = live[i % len(live):] + live[:i % len(live)] if live else []
            for row in order:
                try:
                    budget.check()
                    row["runs"].append(
                        run_load(args, group, row["server"], args.secs))
                except Skip as e:
                    row["errors"].append(str(e))
            sys.stderr.write("  %s: round %d of %d done\n" %
                             (group, i + 1, args.runs))
    finally:
        for row in rows:
            if "server" in row:
                row["server"].stop()
    for row in rows:
        if not row["runs"] and "skip" not in row:
            row["skip"] = "failed: " + (row["errors"] or ["no runs"])[0]
    return rows


def bench_startup(args, budget):
    wl = args.wirelab
    lua = which("lua5.4")
    node = which("node")
    cmds = [
        ("wirelab", "wirelab -e ''", [wl, "-e", ""] if os.access(wl, os.X_OK)
         else "wirelab binary not found at %s (run make)" % wl),
        ("lua", "lua5.4 -e ''", [lua, "-e", ""] if lua
         else "lua5.4 not installed (apt-get install lua5.4)"),
        ("python", "python3 -c '' (%s)" % platform.python_version(),
         [sys.executable, "-c", ""]),
        ("node", "node -e '' (%s)" % node_version(),
         [node, "-e", ""] if node else "node not installed"),
        ("true", "/bin/true (cost of spawning and waiting)",
         ["/bin/true"]),
    ]
    rows = []
    for key, label, argv in cmds:
        row = {"key": key, "label": label, "times": []}
        if isinstance(argv, str):
            row["skip"] = argv
        rows.append(row)

    def once(argv):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=10)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise Skip("exit status %d: %s" % (r.returncode, last_line(
                r.stderr.decode(errors="replace"))))
        return dt

    live = []
    for row, (_, _, argv) in zip(rows, cmds):
        if "skip" in row:
            continue
        try:
            once(argv)               # does it run at all?
            live.append((row, argv))
        except (Skip, OSError, subprocess.TimeoutExpired) as e:
            row["skip"] = "failed: %s" % e
    budget.check()
    if which("hyperfine") and not args.no_hyperfine:
        # hyperfine -N execs directly: less spawning overhead than Python's
        # subprocess, which adds ~1-2 ms to every figure
        with tempfile.NamedTemporaryFile(suffix=".json") as js:
            argv = ["hyperfine", "-N", "--style", "none", "--warmup", "3",
                    "--runs", str(args.startup_runs), "--export-json",
                    js.name] + [" ".join(shlex.quote(a) for a in a_)
                                for _, a_ in live]
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               timeout=60 + 2 * len(live) * args.startup_runs)
            if r.returncode != 0:
                raise Skip("hyperfine: " + last_line(r.stderr))
            results = json.load(open(js.name))["results"]
        for (row, _), res in zip(live, results):
            row["times"] = [t * 1e3 for t in res["times"]]
        return rows, "hyperfine -N, %d runs after 3 warm-up runs" % (
            args.startup_runs)
    for i in range(args.startup_runs + 3):
        budget.check()
        for row, argv in live:
            if "skip" in row:
                continue
            try:
                dt = once(argv)
            except (Skip, OSError, subprocess.TimeoutExpired) as e:
                row["skip"] = "failed: %s" % e
                continue
            if i >= 3:               # the first three warm the page cache
                row["times"].append(dt * 1e3)
    return rows, ("time.perf_counter around subprocess.run, %d runs "
                  "interleaved after 3 warm-up runs" % args.startup_runs)


def wl_stat(port):
    """Asks wl_idle.lua for its own view: conns, rss_kb, lua_kb."""
    try:
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(b"stat\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return dict(kv.split("=") for kv in data.decode().split())
    except (OSError, ValueError):
        return None


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def settled_rss(server, timeout=5.0):
    """RSS once two readings 0.25 s apart agree within 1% (or timeout)."""
    prev = server.rss_kb()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = server.rss_kb()
        if abs(cur - prev) <= max(64, prev // 100):
            return cur
        prev = cur
    return prev


def bench_idle(args, budget):
    n = args.idle_conns
    rows = []
    for key, label, argv in peer_list(args, "idle"):
        row = {"key": key, "label": label}
        rows.append(row)
        if isinstance(argv, str):
            row["skip"] = argv
            continue
        server = client = None
        try:
            budget.check()
            server = Server(label, argv)
            server.start()
            before = settled_rss(server, 2.0)
            fds0 = server.nfds()
            client = popen([os.path.join(BUILD, "loadgen"), "idle", HOST,
                            str(server.port), str(n), "120"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, bufsize=0)
            line = b""
            fd = client.stdout.fileno()
            deadline = time.monotonic() + 70
            while not line.startswith(b"established"):
                r, _, _ = select.select([fd], [], [],
                                        max(0, deadline - time.monotonic()))
                if not r:
                    raise Skip("loadgen idle did not establish %d "
                               "connections in time" % n)
                line = client.stdout.readline()
                if not line:
                    client.wait(5)
                    raise Skip("loadgen idle: " + last_line(
                        client.stderr.read().decode(errors="replace")))
            if not wait_until(lambda: not server.alive() or
                              server.nfds() - fds0 >= n, 30):
                raise Skip("server accepted only %d of %d connections" %
                           (server.nfds() - fds0, n))
            if not server.alive():
                raise Skip("server died: %s" % server.stderr_tail())
            after = settled_rss(server)
            row.update(before=before, after=after,
                       per_kib=(after - before) / n)
            if key == "wirelab":
                st = wl_stat(server.port)
                if st:
                    row["note"] = ("its own count: %s conns; Lua heap %s KiB" %
                                   (st.get("conns"), st.get("lua_kb")))
        except (Skip, OSError) as e:
            row["skip"] = str(e)
        finally:
            if client:
                try:
                    client.stdin.write(b"\n")
                    client.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                stop(client)
            if server:
                server.stop()
    return rows


# (mode, load group, label): the proxy benchmark's two loads, the UDP and
# the bulk TCP echo loads, each run straight at the C echo server and
# through a netem proxy in front of it
PROXY_LOADS = [("udp", "proxy-udp", "UDP, 50 x 64 B in flight"),
               ("tcp", "bulk", "TCP, 10 x 64 KiB ping-pong")]


def bench_proxy(args, budget):
    """The netem proxies' forwarding cost: every load straight at c_echo
    and through bench/wl_proxy.lua, runs interleaved; the CPU sampled is
    the proxy's (for the direct rows, c_echo's)."""
    rows, servers = [], []
    try:
        for mode, group, label in PROXY_LOADS:
            direct = {"key": "direct", "mode": mode, "group": group,
                      "label": label, "path": "C echo, direct",
                      "runs": [], "errors": []}
            via = {"key": "proxy", "mode": mode, "group": group,
                   "label": label, "path": "through netem.%s_proxy" % mode,
                   "runs": [], "errors": []}
            rows += [direct, via]
            echo = os.path.join(BUILD, "c_echo")
            if not os.access(echo, os.X_OK):
                direct["skip"] = via["skip"] = "c_echo not built (make -C bench)"
                continue
            try:
                direct["server"] = Server("c_echo", [echo, mode, "0"]).start()
                servers.append(direct["server"])
            except (Skip, OSError) as e:
                direct["skip"] = via["skip"] = str(e)
                continue
            if not os.access(args.wirelab, os.X_OK):
                via["skip"] = "wirelab binary not found at %s (run make)" % args.wirelab
                continue
            try:
                via["server"] = Server("proxy", [
                    args.wirelab, os.path.join(HERE, "wl_proxy.lua"), mode,
                    str(direct["server"].port)]).start()
                servers.append(via["server"])
            except (Skip, OSError) as e:
                via["skip"] = str(e)
        live = [r for r in rows if "skip" not in r]
        for row in live:
            try:
                budget.check()
                run_load(args, row["group"], row["server"], min(1.0, args.secs))
            except Skip as e:
                row["skip"] = "failed in warm-up: %s" % e
        live = [r for r in live if "skip" not in r]
        for i in range(args.runs):
            order = live[i % len(live):] + live[:i % len(live)] if live else []
            for row in order:
                try:
                    budget.check()
                    row["runs"].append(run_load(args, row["group"], row["server"],
                                                args.secs))
                except Skip as e:
                    row["errors"].append(str(e))
            sys.stderr.write("  proxy: round %d of %d done\n" % (i + 1, args.runs))
    finally:
        for srv in servers:
            srv.stop()
    for row in rows:
        if not row["runs"] and "skip" not in row:
            row["skip"] = "failed: " + (row["errors"] or ["no runs"])[0]
    return rows


def proxy_table(rows):
    out = ["| load | path | round trips/s (median) | min - max | through the proxy "
           "| CPU us per round trip | of which |",
           "|---|---|---:|---:|---:|---:|---|"]
    result = {}
    for row in rows:
        if row.get("skip"):
            out.append("| %s | %s | skipped: %s | | | | |" % (
                row["label"], row["path"], row["skip"].replace("|", "/")))
            continue
        rates = [r["rate"] for r in row["runs"]]
        m = med(rates)
        cpu = med([r["cpu_us"] for r in row["runs"]])
        if row["mode"] == "udp":
            # each round trip is two datagrams through the proxy
            fwd = 2 * m
            through = "%s datagrams/s" % fmt_int(fwd)
        else:
            # bytes echoed per second; each byte crosses the proxy both ways
            mbs = med([r["bytes"] / r["secs"] / 1e6 for r in row["runs"]])
            fwd = mbs
            through = "%s MB/s echoed, %s MB/s both ways" % (fmt_int(mbs), fmt_int(2 * mbs))
        if row["key"] == "direct":
            through = "(no proxy)"
        else:
            result[row["mode"]] = (m, fwd)
        label = row["path"]
        if row["errors"]:
            label += " (%d of %d runs failed: %s)" % (
                len(row["errors"]), len(row["errors"]) + len(row["runs"]),
                row["errors"][0].replace("|", "/"))
        out.append("| %s | %s | %s | %s - %s | %s | %.1f | %s |" % (
            row["label"], label, fmt_int(m), fmt_int(min(rates)), fmt_int(max(rates)),
            through, cpu, "c_echo" if row["key"] == "direct" else "the proxy"))
    parts, ok = [], True
    if "udp" in result:
        m, fwd = result["udp"]
        parts.append("UDP %s datagrams/s forwarded (%s round trips/s)" % (
            fmt_int(fwd), fmt_int(m)))
        ok = ok and fwd >= 50000
    else:
        parts.append("UDP not measured")
        ok = False
    if "tcp" in result:
        _, mbs = result["tcp"]
        # judged on the bytes echoed, one way, not on the sum of both ways
        parts.append("TCP %.2f GB/s each way (%.2f GB/s both ways)" % (mbs / 1e3, 2 * mbs / 1e3))
        ok = ok and mbs >= 1000
    else:
        parts.append("TCP not measured")
        ok = False
    target = "Target: %s; measured %s: **%s**." % (
        TARGETS["proxy"], ", ".join(parts), "met" if ok else "NOT met")
    return out, target


# ---- reporting -------------------------------------------------------------

def fmt_int(x):
    return "{:,}".format(int(round(x)))


def med(xs):
    return statistics.median(xs) if xs else None


def rate_table(group, rows, args):
    unit = {"http": "req/s", "udp": "msgs/s"}.get(group, "msgs/s")
    op = "req" if group == "http" else "msg"
    extra = {"bulk": "MB/s", "http": "p99 latency"}.get(group)
    head = ["server", "%s (median)" % unit, "min - max",
            "server CPU us/%s" % op, "CPU/%s x C" % op, "x C"]
    if extra:
        head.insert(3, extra)
    out = ["| " + " | ".join(head) + " |",
           "|---|" + "---:|" * (len(head) - 1)]
    ref = next((med([r["rate"] for r in row["runs"]]) for row in rows
                if row["key"] == "c" and row.get("runs")), None)
    ref_cpu = next((med([r["cpu_us"] for r in row["runs"]]) for row in rows
                    if row["key"] == "c" and row.get("runs")), None)
    for row in rows:
        if row.get("skip"):
            out.append("| %s | skipped: %s |%s" % (
                row["label"], row["skip"].replace("|", "/"),
                " |" * (len(head) - 2)))
            continue
        rates = [r["rate"] for r in row["runs"]]
        m = med(rates)
        row["median"] = m
        row["ratio"] = m / ref if ref else None
        cpu = med([r["cpu_us"] for r in row["runs"]])
        row["cpu"] = cpu
        cells = [row["label"], fmt_int(m),
                 "%s - %s" % (fmt_int(min(rates)), fmt_int(max(rates))),
                 "%.1f" % cpu,
                 "%.2f" % (cpu / ref_cpu) if ref_cpu else "n/a",
                 "%.2f" % row["ratio"] if ref else "n/a"]
        if group == "bulk":
            cells.insert(3, "%.0f" % med([r["bytes"] / r["secs"] / 1e6
                                          for r in row["runs"]]))
        elif group == "http":
            p = [r["p99_ms"] for r in row["runs"] if "p99_ms" in r]
            cells.insert(3, "%.2f ms" % med(p) if p else "n/a")
        if row["errors"]:
            cells[0] += " (%d of %d runs failed: %s)" % (
                len(row["errors"]), len(row["errors"]) + len(row["runs"]),
                row["errors"][0].replace("|", "/"))
        out.append("| " + " | ".join(cells) + " |")
    lines = [target_line(group, rows)] + [
        ratio_target(TARGETS[t], next((r for r in rows if r["key"] == key), None), ratio)
        for t, key, ratio in MORE_TARGETS.get(group, [])]
    if group == "bulk":
        lines.append(cpu_per_gb_target(rows))
    return out, "\n\n".join(lines)


BULK_MAX_MS_PER_GB = 330


def cpu_per_gb_target(rows):
    """Issue 13's bulk CPU target: server CPU per GB echoed, as a user
    writes the server (64 KiB a message, so 10^9 / 65536 messages a GB)."""
    t = ("wirelab socketserver ThreadingTCPServer with a BaseRequestHandler subclass "
         "<= %d ms of server CPU per GB echoed" % BULK_MAX_MS_PER_GB)
    row = next((r for r in rows if r["key"] == "wl-ss-class"), None)
    if row is None or row.get("cpu") is None:
        return "Target: %s (not run)." % t
    ms = row["cpu"] * 1e9 / 65536 / 1000
    c = next((r for r in rows if r["key"] == "c" and r.get("cpu") is not None), None)
    ref = " (C: %.0f ms/GB)" % (c["cpu"] * 1e9 / 65536 / 1000) if c else ""
    return "Target: %s; measured %.0f ms/GB%s: **%s**." % (
        t, ms, ref, "met" if ms <= BULK_MAX_MS_PER_GB else "NOT met")


def ratio_target(t, row, ratio):
    """The line for a target of one row's rate over C's."""
    if row is None:
        return "Target: %s (not run)." % t
    if row.get("skip"):
        return "Target: %s; not measured (%s)." % (t, row["skip"])
    if row.get("ratio") is None:
        return "Target: %s; no C reference to compare with." % t
    return "Target: %s; measured %.3fx C: **%s**." % (
        t, row["ratio"], "met" if row["ratio"] >= ratio else "NOT met")


def target_line(group, rows):
    wl = next((r for r in rows if r["key"] == "wirelab"), None)
    t = TARGETS[group]
    if wl is None:
        return "Target: %s (not run)." % t
    if wl.get("skip"):
        return "Target: %s; not measured (%s)." % (t, wl["skip"])
    if group in MIN_RATIO:
        if wl.get("ratio") is None:
            return "Target: %s; no C reference to compare with." % t
        ok = wl["ratio"] >= MIN_RATIO[group]
        msg = "%.3fx C" % wl["ratio"]
        if group == "http":
            node = next((r for r in rows if r["key"] == "node"
                         and r.get("median")), None)
            if node:
                ok = ok and wl["median"] > node["median"]
                msg += ", %.3fx Node" % (wl["median"] / node["median"])
        return "Target: %s; measured %s: **%s**." % (
            t, msg, "met" if ok else "NOT met")
    if group == "idle":
        return "Target: %s; measured %.2f KiB: **%s**." % (
            t, wl["per_kib"], "met" if wl["per_kib"] <= IDLE_MAX_KIB else "NOT met")
    if group == "startup":
        m = med(wl["times"])
        return "Target: %s; measured %.2f ms: **%s**." % (
            t, m, "met" if m < 5 else "NOT met")
    return "Target: %s." % t


def startup_table(rows):
    out = ["| command | median ms | min ms | max ms |", "|---|---:|---:|---:|"]
    for row in rows:
        if row.get("skip") or not row["times"]:
            out.append("| %s | skipped: %s | | |" % (
                row["label"], row.get("skip", "no runs").replace("|", "/")))
            continue
        t = row["times"]
        out.append("| %s | %.2f | %.2f | %.2f |" % (
            row["label"], med(t), min(t), max(t)))
    return out, target_line("startup", rows)


def idle_table(rows, n):
    out = ["| server | RSS before (KiB) | RSS with %s idle (KiB) | "
           "KiB per connection |" % fmt_int(n), "|---|---:|---:|---:|"]
    for row in rows:
        if row.get("skip"):
            out.append("| %s | skipped: %s | | |" % (
                row["label"], row["skip"].replace("|", "/")))
            continue
        label = row["label"]
        if row.get("note"):
            label += " (%s)" % row["note"]
        out.append("| %s | %s | %s | %.2f |" % (
            label, fmt_int(row["before"]), fmt_int(row["after"]),
            row["per_kib"]))
    return out, target_line("idle", rows)


def cpu_busy(interval=0.5):
    """Fraction of all CPUs busy (other processes) over a short interval."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]), idle
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d x %s, Linux %s" % (os.cpu_count() or 0, model,
                                  platform.release())


def write_readme(blocks):
    with open(README) as f:
        text = f.read()
    for group, body in blocks.items():
        begin = "<!-- results:%s -->" % group
        end = "<!-- /results:%s -->" % group
        i, j = text.find(begin), text.find(end)
        if i < 0 or j < i:
            print("run.py: README.md has no %s ... %s markers; %s not "
                  "written" % (begin, end, group), file=sys.stderr)
            continue
        text = text[:i + len(begin)] + "\n" + body + "\n" + text[j:]
    tmp = README + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, README)


# ---- main ------------------------------------------------------------------

def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def planned_seconds(args, groups):
    total = 0.0
    for g in groups:
        if g == "startup":
            total += (args.startup_runs + 3) * 0.2
        elif g == "idle":
            total += len(peer_list(args, g)) * (4 + args.idle_conns / 2000)
        elif g == "proxy":
            total += 2 * len(PROXY_LOADS) * (args.runs * (args.secs + 0.3) +
                                              min(1.0, args.secs) + 1.5)
        else:
            n = len(peer_list(args, g))
            per = args.secs + (1.2 if g == "http" else 0.3)
            total += n * (args.runs * per + min(1.0, args.secs) + 1.5)
    return total


def on_term(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wirelab", default=os.environ.get(
        "WIRELAB", os.path.join(os.path.dirname(HERE), "wirelab")),
        help="path of the wirelab binary (default: ../wirelab)")
    ap.add_argument("--only", default=",".join(g for g in GROUPS
                                               if g != "http"),
                    help="comma-separated groups out of " + ",".join(GROUPS)
                    + " (default: all but http)")
    ap.add_argument("--baseline", default="", metavar="WIRELAB",
                    help="another wirelab binary run beside it (e.g. an older build)")
    ap.add_argument("--peers", default="",
                    help="comma-separated peer keys to run besides the C "
                    "reference: wirelab,wl-ss-class,wl-ss-function,luv,node,asyncio,socketserver "
                    "(default: all)")
    ap.add_argument("--runs", type=int, default=5, help="runs per peer (5)")
    ap.add_argument("--secs", type=float, default=3.0,
                    help="seconds per run (3)")
    ap.add_argument("--startup-runs", type=int, default=30)
    ap.add_argument("--no-hyperfine", action="store_true",
                    help="time start-up with time.perf_counter instead")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--udp-inflight", type=int, default=32,
                    help="datagrams in flight in the udp group (32)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 1 s, 10 start-ups, 2000 idle conns")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECS",
                    help="before each benchmark, wait up to SECS for other "
                    "processes to leave the CPUs idle (default 0)")
    ap.add_argument("--write", action="store_true",
                    help="rewrite the results sections of README.md")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.secs, args.startup_runs = 1, 1.0, 10
        args.idle_conns = min(args.idle_conns, 2000)
    args.wirelab = os.path.abspath(args.wirelab)
    args.peers = [p for p in args.peers.split(",") if p]
    groups = [g for g in args.only.split(",") if g]
    for g in groups:
        if g not in GROUPS:
            ap.error("unknown group %r (choose from %s)" % (g, GROUPS))
    if args.runs < 1 or args.secs < 0.1 or args.runs * args.secs > 600:
        ap.error("--runs and --secs out of range")
    if "http" in groups and not which("wrk"):
        ap.error("wrk is not installed")
    if not os.access(os.path.join(BUILD, "loadgen"), os.X_OK) and (
            set(groups) & {"tcp", "bulk", "udp", "idle", "proxy"}):
        ap.error("bench/build/loadgen is missing: run make -C bench")

    signal.signal(signal.SIGTERM, on_term)
    nofile = raise_nofile(args.idle_conns + 1024)
    if "idle" in groups and nofile < args.idle_conns + 100:
        print("run.py: open files limited to %d; idle connections lowered"
              % nofile, file=sys.stderr)
        args.idle_conns = nofile - 100
    planned = planned_seconds(args, groups) + args.wait_quiet * len(groups)
    budget = Budget(planned)
    print("# wirelab benchmarks: %s" % ", ".join(groups))
    print("\nPlanned duration about %.0f s (hard limit %.0f s); %d runs x "
          "%g s per peer, %s." % (planned, budget.limit, args.runs,
                                  args.secs, machine()))
    print("wirelab: %s\n" % args.wirelab)
    sys.stdout.flush()

    stamp = "_Measured %s on %s: %s._" % (
        datetime.date.today().isoformat(), machine(), "%s")
    blocks = {}
    try:
        for g in groups:
            sys.stderr.write("run.py: %s...\n" % g)
            title = TITLES[g] % vars(args)
            busy = cpu_busy()
            waited = time.monotonic()
            while busy > 0.15 and time.monotonic() - waited < args.wait_quiet:
                sys.stderr.write("run.py: machine %.0f%% busy, waiting for "
                                 "quiet (--wait-quiet %g)\n" %
                                 (busy * 100, args.wait_quiet))
                time.sleep(4.5)
                busy = cpu_busy()
            note = ""
            if busy > 0.15:
                note = "; other processes kept %.0f%% of the CPUs busy " \
                    "just before, so expect noise" % (busy * 100)
                sys.stderr.write("run.py: warning: the machine is %.0f%% "
                                 "busy; rates will be noisy\n" % (busy * 100))
            try:
                if g == "startup":
                    rows, how = bench_startup(args, budget)
                    table, target = startup_table(rows)
                elif g == "proxy":
                    table, target = proxy_table(bench_proxy(args, budget))
                    how = "median of %d runs of %g s, direct and proxied runs interleaved" % (
                        args.runs, args.secs)
                elif g == "idle":
                    table, target = idle_table(bench_idle(args, budget),
                                               args.idle_conns)
                    how = "RSS of the server process from /proc"
                else:
                    table, target = rate_table(
                        g, bench_rates(args, g, budget), args)
                    how = "median of %d runs of %g s, peers interleaved" % (
                        args.runs, args.secs)
            except Skip as e:
                table, target, how = ["skipped: %s" % e], "", "not run"
            body = "\n".join(["### " + title, "", stamp % (how + note),
                              ""] + table + ["", target])
            print(body + "\n")
            sys.stdout.flush()
            blocks[g] = body
    finally:
        stop_all()
    if args.write:
        write_readme(blocks)
        print("README.md results updated: %s" % ", ".join(blocks))


if __name__ == "__main__":
    main()
