"""How many threads numerical libraries start in a container with a CPU limit.

OpenBLAS (numpy's, scipy's), OpenMP (scikit-learn's) and MKL start one thread per core
they see, and a container sees every core of the machine whatever its CPU limit. With a
limit of 1 CPU on a 2-core machine numpy's matrix products then ran at half speed (a
300x300 product loop: 0.99 s and 1.09 CPU-s with the default threads, 0.55 s and 0.60
CPU-s with one; docs/performance.md): the threads wait for each other under the limit.
Student servers and grading containers get these variables set to their limit, rounded
up. Not a tell of grading: a student's own server has the same ones.
"""

from __future__ import annotations

import math
import os

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_env(cpu_limit: float | None) -> dict[str, str]:
    """The variables for a container limited to ``cpu_limit`` CPUs ({} without a limit)."""
    if not cpu_limit or cpu_limit <= 0:
        return {}
    threads = str(max(1, math.ceil(round(cpu_limit, 6))))
    return dict.fromkeys(VARIABLES, threads)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; not every core of the machine
    when it is pinned to some), at least 1."""
    return max(1, len(os.sched_getaffinity(0)))
