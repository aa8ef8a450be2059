#!/usr/bin/env python3
"""link.py: how fast netem.link forwards, and how exactly it delays.

1. Throughput: python3 sends MiB megabytes over TCP from side a to side b
   of a link with no impairment (log off), R times; MB/s the receiver saw,
   the median, and the link's CPU (wirelab's utime+stime, which includes
   the receiving kernel's work done inside its TUN writes) per packet.
   Beside it the same transfer over one namespace's loopback (the kernel
   alone, 64 KiB MTU), and over a link with a tap on.
2. Delay: N UDP pings 10 ms apart across a link of D ms each way, timed
   by python3 on side a: the RTT's median, p90, p99 and max, less 2 D.
3. Goodput under loss: wirelab sends MiB megabytes over a link of 50 ms
   each way at 0, 2 and 10% loss (both ways, seed 1): seconds, MB/s, and
   the sender's tcp_info total_retrans against the link's drops.

Needs root or user namespaces, /dev/net/tun and python3. Stdlib only; see
README.md (`make -C bench link`).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
README = os.path.join(HERE, "README.md")
SCRIPT = os.path.join(HERE, "wl_link.lua")


def run(wl, *args, timeout=300):
    r = subprocess.run([wl, SCRIPT] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit("link.py: wl_link.lua %s failed: %s" % (" ".join(map(str, args)), r.stderr))
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        names = re.findall(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        cpu = "%d x %s" % (len(names), names[0]) if names else "?"
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return "%s, Linux %s, load average %s at the start" % (cpu, platform.release(), load)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wirelab", default=os.path.join(ROOT, "wirelab"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=512, help="MiB per throughput run")
    ap.add_argument("--delay", type=int, default=50, help="ms each way")
    ap.add_argument("--pings", type=int, default=300)
    ap.add_argument("--loss-mib", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="rewrite the results in README.md")
    a = ap.parse_args()
    wl = os.path.abspath(a.wirelab)
    where = machine()
    print("netem.link benchmark: %d runs (%s)" % (a.runs, where), flush=True)

    rates = {"loopback": [], "link": [], "link+tap": []}
    cpu_pkt = {"link": [], "link+tap": []}
    for i in range(a.runs):
        for tap in ([], ["tap"]):
            for r in run(wl, "bulk", a.mib, *tap):
                if tap and r["case"] == "loopback":
                    continue
                rates[r["case"]].append(r["bytes"] / r["secs"] / 1e6)
                if "cpu" in r:
                    cpu_pkt[r["case"]].append(r["cpu"] / r["packets"] * 1e6)
        print("  throughput run %d: %s" % (i + 1, ", ".join("%s %.0f MB/s" % (k, v[-1]) for k, v in rates.items())),
              flush=True)
    d = run(wl, "delay", a.delay, a.pings)[0]
    print("  delay: median RTT %.3f ms" % (d["median"] * 1000), flush=True)
    losses = run(wl, "loss", a.loss_mib)

    def row(name, what):
        v = rates[name]
        cpu = ("%.2f" % statistics.median(cpu_pkt[name])) if name in cpu_pkt else "-"
        return "| %s | %.0f | %.0f - %.0f | %s |" % (what, statistics.median(v), min(v), max(v), cpu)

    two_d = 2 * a.delay / 1000
    tput = statistics.median(rates["link"])
    late = (d["median"] - two_d) * 1000
    text = "\n".join([
        "### netem.link: throughput, delay, goodput under loss",
        "",
        "_Measured %s on %s: `bench/link.py`, %d runs of %d MiB._"
        % (datetime.date.today().isoformat(), where, a.runs, a.mib),
        "",
        "| TCP bulk, python3 to python3 | MB/s (median) | min - max | link CPU us/packet |",
        "|---|---:|---:|---:|",
        row("loopback", "one namespace's loopback (the kernel alone, MTU 65536)"),
        row("link", "across a link, no impairment (MTU 1500)"),
        row("link+tap", "across a link with a tap on"),
        "",
        "| %d UDP pings, %d ms each way | min | median | p90 | p99 | max |" % (d["n"], a.delay),
        "|---|---:|---:|---:|---:|---:|",
        "| RTT - %d ms | %+.3f ms | %+.3f ms | %+.3f ms | %+.3f ms | %+.3f ms |"
        % (2 * a.delay, *[(d[k] - two_d) * 1000 for k in ("min", "median", "p90", "p99", "max")]),
        "",
        "| %d MiB, 50 ms each way, loss both ways | seconds | MB/s | sender's total_retrans | link drops (data way) |"
        % a.loss_mib,
        "|---|---:|---:|---:|---:|",
    ] + ["| %g%% | %.2f | %.2f | %d | %d |" % (r["loss"] * 100, r["secs"], r["bytes"] / r["secs"] / 1e6,
                                               r["retrans"], r["dropped"]) for r in losses] + [
        "",
        "Targets: at least 100 MB/s with no delay, measured %.0f MB/s: **%s**; a %d ms delay within 1 ms "
        "at the median, measured %+.3f ms per round trip: **%s**."
        % (tput, "met" if tput >= 100 else "not met", a.delay, late, "met" if abs(late) / 2 <= 1 else "not met"),
        "",
    ])
    print()
    print(text)
    if a.write:
        with open(README) as f:
            readme = f.read()
        block = "<!-- results:link -->\n" + text + "<!-- /results:link -->"
        new, n = re.subn(r"<!-- results:link -->.*?<!-- /results:link -->", lambda m: block, readme, flags=re.S)
        if n == 0:
            raise SystemExit("link.py: README.md has no <!-- results:link --> block")
        with open(README, "w") as f:
            f.write(new)
        print("wrote", README)


if __name__ == "__main__":
    main()
