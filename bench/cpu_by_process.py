"""Run a command and print how much CPU each kind of process used while it ran.

Samples /proc every 0.2 s and sums each process's user+system time by kind (single-user
servers, the hub, Traefik, Docker's daemons, ...). Used to see where a benchmark's CPU goes.

Usage:
    python3 bench/cpu_by_process.py .venv/bin/python bench/spawn_bench.py --concurrent 30
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def classify(comm: str, cmd: str) -> str:
    if "classhub-singleuser" in cmd or "jupyterhub-singleuser" in cmd:
        return "single-user servers"
    if "jupyterhub -f" in cmd:
        return "JupyterHub"
    if "spawn_bench" in cmd:
        return "benchmark client"
    if "classhub_singleuser.grader" in cmd:
        return "grading runner"
    if "ipykernel" in cmd:
        return "kernels"
    if "classhub-healthcheck" in cmd:
        return "health probes"
    for marker, name in (
        ("-m services.", "service "),
        ("-m authenticator.gate", "owner gate"),
        ("classhub-mongo", "MongoDB (classhub-mongo)"),
        ("pytest", "pytest (tests and workers)"),
        ("execnet", "pytest (tests and workers)"),
    ):
        if marker in cmd:
            rest = cmd.split(marker, 1)[1].split(" ", 1)[0] if name.endswith(" ") else ""
            return name + rest
    if "chrom" in comm:
        return "Chromium"
    if comm.startswith(("runc", "containerd-shim")) or comm == "exe":
        return "runc/shims"
    return comm


def main() -> int:
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    kind: dict[str, str] = {}
    proc = subprocess.Popen(sys.argv[1:])
    start = time.time()
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = open(f"/proc/{pid}/stat").read()
                comm = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                cpu = int(fields[11]) + int(fields[12])
                if pid not in kind:
                    cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
                    kind[pid] = classify(comm, cmd)
                    first[pid] = cpu if pid in before else 0
                last[pid] = cpu
            except (OSError, ValueError):
                continue
        time.sleep(0.2)
    totals: collections.Counter[str] = collections.Counter()
    for pid, k in kind.items():
        totals[k] += (last[pid] - first[pid]) / HZ
    print(f"wall {time.time() - start:.1f} s, CPU {sum(totals.values()):.1f} s")
    print("| process | CPU-s |\n|---|---|")
    for k, v in totals.most_common(24):
        print(f"| {k} | {v:.1f} |")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
