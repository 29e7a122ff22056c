"""The kernel's report of an OOM kill in a container, for a failing test's output.

Docker says only that a container was OOM-killed (``State.OOMKilled``). The kernel's log
says which process it killed and how much memory each process of the container held
then (its "Tasks state" table), which tells a server that grew from a kernel that did.
Reading the kernel's log needs root (as the tests run); without it there is no report.
"""

from __future__ import annotations

import re
import subprocess

_STAMP = re.compile(r"^\[\s*[\d.]+\]\s?")


def kernel_log() -> str:
    """The kernel's ring buffer (``dmesg``), or "" when it cannot be read."""
    try:
        done = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def oom_reports(log: str, container_id: str) -> list[str]:
    """Each OOM kill of ``container_id``'s cgroup in ``log``: the report from "invoked
    oom-killer" to its "oom-kill:" line, without the call trace and the cgroup's stats."""
    reports: list[str] = []
    block: list[str] = []
    keep = mine = False
    for raw in log.splitlines():
        line = _STAMP.sub("", raw)
        if "invoked oom-killer" in line:
            block, keep = [line], False
            continue
        if not block:
            if mine and "Killed process" in line:
                reports[-1] += "\n" + line
            mine = False
            continue
        if line.startswith(("memory:", "memory+swap:", "kmem:")):
            block.append(line)
        elif line.startswith("Tasks state"):
            keep = True
        if keep:
            block.append(line)
        if line.startswith("oom-kill:"):
            if container_id in line:
                reports.append("\n".join(block))
            block = []
        mine = line.startswith("oom-kill:") and container_id in line
    return reports
