#!/usr/bin/env python3
"""Alternating timer for bench/lifecycle.sh (and by hand).

    ab.py ROUNDS WORKDIR NAME=COMMAND... [--pairs A:BASE ...] [--strace]

Each round runs every command once, in an order rotated by one per round, so the
load of other work on a shared machine spreads evenly over all of them (a benchmark
that runs all of A, then all of B, gives B whatever the machine was doing then).
Three warm-up rounds are dropped. Prints the median and p25/p75 per command and,
for each `--pairs A:BASE`, the ratio of the medians. With --strace each command is
also run once under `strace -f` and its syscalls and processes counted: work that
does not depend on the load.

Every command gets /dev/null as stdin and a file as stdout/stderr (crun 1.8 chowns
its stdio under a user namespace, which a pipe it does not own breaks).
"""
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_once(argv, out):
    with open(os.devnull, "rb") as i, open(out, "wb") as o:
        t = time.perf_counter()
        p = subprocess.run(argv, stdin=i, stdout=o, stderr=subprocess.STDOUT)
        dt = time.perf_counter() - t
    if p.returncode != 0:
        with open(out) as f:
            sys.exit(f"{argv[0]} failed ({p.returncode}): {f.read()[-500:]}")
    return dt * 1000


def main():
    args = sys.argv[1:]
    rounds, work = int(args[0]), args[1]
    cmds, pairs, trace = {}, [], False
    rest = iter(args[2:])
    for a in rest:
        if a == "--strace":
            trace = True
        elif a == "--pairs":
            continue
        elif "=" in a and ":" not in a.split("=", 1)[0]:
            name, cmd = a.split("=", 1)
            cmds[name] = shlex.split(cmd)
        else:
            pairs.append(tuple(a.split(":", 1)))
    out = os.path.join(work, "ab.out")
    names = list(cmds)
    times = {n: [] for n in names}
    warmup = 3
    for rnd in range(warmup + rounds):
        k = rnd % len(names)
        for n in names[k:] + names[:k]:
            dt = run_once(cmds[n], out)
            if rnd >= warmup:
                times[n].append(dt)
    med = {n: statistics.median(v) for n, v in times.items()}
    print(f"{'command':<22}{'median ms':>10}{'p25':>8}{'p75':>8}")
    for n in names:
        q = statistics.quantiles(times[n], n=4)
        print(f"{n:<22}{med[n]:>10.1f}{q[0]:>8.1f}{q[2]:>8.1f}")
    print(f"({rounds} alternating rounds after {warmup} warm-up rounds)")
    if pairs:
        print(f"{'ratio':<40}{'medians':>8}")
        for a, b in pairs:
            print(f"{a + ' / ' + b:<40}{med[a] / med[b]:>8.2f}")
    if trace:
        print(f"{'command':<22}{'syscalls':>10}{'processes':>10}")
        for n in names:
            log = os.path.join(work, "ab.strace")
            run_once(["strace", "-f", "-qq", "-o", log] + cmds[n], out)
            with open(log) as f:
                lines = [l for l in f.read().splitlines() if l.strip()]
            calls = sum(1 for l in lines if "(" in l and "resumed>" not in l)
            procs = len({l.split()[0] for l in lines})
            print(f"{n:<22}{calls:>10}{procs:>10}")


if __name__ == "__main__":
    main()
