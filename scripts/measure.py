#!/usr/bin/env python3
"""Runs a command several times with stdout to /dev/null; prints one JSON line with the best
wall time, the CPU time (user + system, all threads) of that run, and the peak RSS over runs.
Wall and CPU are read to the microsecond (`perf_counter`, the children's rusage), not to the
10 ms `/usr/bin/time` prints: runs of 0.1 to 0.3 s need the finer reading. Both include the
~1 ms of `/usr/bin/time` itself, which is there for the peak RSS.

    measure.py RUNS -- COMMAND...
"""
import json
import os
import resource
import subprocess
import sys
import time


def run_once(argv):
    # Through /usr/bin/time: a child forked from Python would count Python's own pages in its
    # peak RSS until exec.
    with open(os.devnull, "wb") as null:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=null,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{argv[0]} exited with status {done.returncode}: {done.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss_kib = done.stderr.strip().splitlines()[-1]
    return wall, cpu, int(rss_kib) * 1024


def main():
    runs = int(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    results = [run_once(argv) for _ in range(runs)]
    best = min(results, key=lambda r: r[0])
    print(json.dumps({"wall_s": round(best[0], 4), "cpu_s": round(best[1], 4),
                      "peak_rss_bytes": max(r[2] for r in results)}))


if __name__ == "__main__":
    main()
