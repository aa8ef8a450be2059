#!/usr/bin/env python3
"""grade.py: how long `wirelab grade` takes, and how much memory the grader holds.

1. The tcp-echo reference (labs/tcp-echo/solution), graded alone R times
   (default 3): seconds per submission, the median.
2. N submissions (default 20): copies of the Lua and Python references and
   of a few broken ones from tests/labs/tcp-echo, graded by one
   `wirelab grade --jobs J` (default 2): wall time, and wall time per
   submission.

For every run the grader's peak RSS is VmHWM of /proc/PID/status, sampled
every 10 ms while it runs (the grader alone: VmHWM only grows, so the last
sample is its peak to within the last 10 ms), and ru_maxrss from wait4
(the largest of the grader and the programs it started and waited for).
Every score is checked against the one the submission must get, so a
broken grader cannot make a fast benchmark. Stdlib only; see README.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
README = os.path.join(HERE, "README.md")
LAB = os.path.join(ROOT, "labs", "tcp-echo")
BROKEN = os.path.join(ROOT, "tests", "labs", "tcp-echo")

# (source directory, the score it must get): the references, and broken
# submissions that fail at different depths of the lab
SUBMISSIONS = [
    (os.path.join(LAB, "solution"), 18),     # the Lua reference (server.lua first)
    ("python-reference", 18),                 # made below: server.py alone
    (os.path.join(BROKEN, "transforms"), 1),
    (os.path.join(BROKEN, "one-recv"), 9),
    (os.path.join(BROKEN, "serial"), 13.3),
    (os.path.join(BROKEN, "crash-on-reset"), 16),
    (os.path.join(BROKEN, "fd-leak"), 14),
]


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def run_grader(argv, limit):
    """Runs argv; returns (seconds, VmHWM KiB, ru_maxrss KiB, stdout)."""
    out = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
    hwm = 0
    deadline = t0 + limit
    try:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            h = vm_hwm_kib(p.pid)
            if h:
                hwm = max(hwm, h)
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise SystemExit("grade.py: %s ran past %d s" % (" ".join(argv), limit))
            time.sleep(0.01)
    except BaseException:
        if p.poll() is None:
            p.kill()
            p.wait()
        raise
    secs = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("grade.py: %s exited with %d" % (" ".join(argv), p.returncode))
    out.seek(0)
    return secs, hwm, ru.ru_maxrss, out.read().decode()


def check_score(report, want, what):
    got = report["score"]
    if abs(got - want) > 0.05:
        raise SystemExit("grade.py: %s scored %s, expected %s: the grader is broken" % (what, got, want))


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = "%d x %s" % (len(names), names[0]) if names else "?"
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return "%s, Linux %s, load average %s at the start" % (cpu, platform.release(), load)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wirelab", default=os.path.join(ROOT, "wirelab"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="rewrite the results in README.md")
    a = ap.parse_args()
    wl = os.path.abspath(a.wirelab)
    if not os.access(wl, os.X_OK):
        raise SystemExit("grade.py: no wirelab at %s (make it first)" % wl)
    where = machine()
    print("grading benchmark: %d runs of the reference, %d submissions with --jobs %d (%s)"
          % (a.runs, a.subs, a.jobs, where), flush=True)

    # 1. the reference, alone
    single = []
    for i in range(a.runs):
        secs, hwm, maxrss, out = run_grader([wl, "grade", LAB, "--format", "json", "--seed", str(a.seed)], 300)
        check_score(json.loads(out), 18, "the reference")
        single.append((secs, hwm, maxrss))
        print("  reference run %d: %.2f s, grader VmHWM %d KiB, ru_maxrss %d KiB" % (i + 1, secs, hwm, maxrss),
              flush=True)

    # 2. a class of submissions
    tmp = tempfile.mkdtemp(prefix="wirelab-bench-grade.")
    try:
        subs, want = os.path.join(tmp, "subs"), {}
        os.mkdir(subs)
        for i in range(a.subs):
            src, score = SUBMISSIONS[i % len(SUBMISSIONS)]
            name = "s%02d" % (i + 1)
            dst = os.path.join(subs, name)
            if src == "python-reference":
                os.mkdir(dst)
                shutil.copy(os.path.join(LAB, "solution", "server.py"), dst)
            else:
                shutil.copytree(src, dst)
            want[name] = score
        reports = os.path.join(tmp, "reports")
        secs, hwm, maxrss, _ = run_grader([wl, "grade", LAB, subs, "--format", "json", "--output", reports,
                                           "--jobs", str(a.jobs), "--seed", str(a.seed)], 1800)
        for name, score in want.items():
            with open(os.path.join(reports, name + ".json")) as f:
                check_score(json.load(f), score, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("  %d submissions, --jobs %d: %.1f s, grader VmHWM %d KiB, ru_maxrss %d KiB"
          % (a.subs, a.jobs, secs, hwm, maxrss), flush=True)

    med = statistics.median(s[0] for s in single)
    kinds = "%d Lua and Python references, %d broken" % (
        sum(1 for n in want.values() if n == 18), sum(1 for n in want.values() if n != 18))
    text = "\n".join([
        "### Grading: the tcp-echo lab",
        "",
        "_Measured %s on %s: `bench/grade.py`, seed %d._"
        % (datetime.date.today().isoformat(), where, a.seed),
        "",
        "| run | wall time | per submission | grader peak RSS (VmHWM) | largest process (ru_maxrss) |",
        "|---|---:|---:|---:|---:|",
        "| the reference alone, median of %d (min %.2f, max %.2f) | %.2f s | %.2f s | %s KiB | %s KiB |"
        % (a.runs, min(s[0] for s in single), max(s[0] for s in single), med, med,
           format(max(s[1] for s in single), ","), format(max(s[2] for s in single), ",")),
        "| %d submissions (%s), `--jobs %d` | %.1f s | %.2f s | %s KiB | %s KiB |"
        % (a.subs, kinds, a.jobs, secs, secs / a.subs, format(hwm, ","), format(maxrss, ",")),
        "",
    ])
    print()
    print(text)
    if a.write:
        with open(README) as f:
            readme = f.read()
        block = "<!-- results:grade -->\n" + text + "<!-- /results:grade -->"
        new, n = re.subn(r"<!-- results:grade -->.*?<!-- /results:grade -->", lambda m: block, readme, flags=re.S)
        if n == 0:
            raise SystemExit("grade.py: README.md has no <!-- results:grade --> block")
        with open(README, "w") as f:
            f.write(new)
        print("wrote", README)


if __name__ == "__main__":
    main()
