"""Spawn benchmark: time from "start server" to the first 200 through Traefik.

Runs a real deployment (Traefik, JupyterHub with classhub's config on PostgreSQL, Redis,
Docker, the classhub/singleuser image) on random ports via harness/stack.py, then measures:

* one spawn, repeated: seconds from the start request to the first 200 of
  /user/<name>/api/status through Traefik, and how long after that the hub reported
  the server ready (target: at most 0.3 s);
* N concurrent spawns: seconds until every server answered 200 through Traefik.

Usage: .venv/bin/python bench/spawn_bench.py [--single 5] [--concurrent 10 30] [--sqlite]
Prints a Markdown table (paste it into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.stack import Stack  # noqa: E402

BENCH_CONFIG = """
# spawn requests block until the server is ready, so their return marks "hub ready"
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 300}
c.JupyterHub.concurrent_spawn_limit = 200
c.ClassroomSpawner.mem_limit = "512M"
"""
if os.environ.get("CLASSHUB_BENCH_START_CONCURRENCY"):
    _n = int(os.environ["CLASSHUB_BENCH_START_CONCURRENCY"])
    BENCH_CONFIG += f"c.ClassroomSpawner.start_concurrency = {_n}\n"


def first_200(stack: Stack, user: str, start: float, interval: float, stop_at: float) -> float:
    s = requests.Session()
    s.headers["Authorization"] = f"token {stack.token}"
    while time.monotonic() < stop_at:
        try:
            r = s.get(f"{stack.url}/user/{user}/api/status", allow_redirects=False, timeout=10)
            if r.status_code == 200 and "kernels" in r.text:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{user} never answered through Traefik")


def one_spawn(stack: Stack, user: str, interval: float) -> tuple[float, float]:
    """(seconds to first 200 through Traefik, seconds to hub-ready)."""
    stack.create_user(user)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        start = time.monotonic()
        poll = pool.submit(first_200, stack, user, start, interval, start + 300)
        r = stack.api("POST", stack.server_path(user), timeout=300)
        ready = time.monotonic() - start
        assert r.status_code == 201, (r.status_code, r.text)
        served = poll.result()
    return served, ready


def concurrent_spawns(stack: Stack, n: int, tag: str) -> tuple[float, int]:
    users = [f"{tag}{i:03d}" for i in range(n)]
    for u in users:
        stack.create_user(u)
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        start = time.monotonic()
        futures = [pool.submit(stack.api, "POST", stack.server_path(u), timeout=300) for u in users]
        for f in futures:
            if f.result().status_code != 201:
                failures += 1
        # hub-ready implies Traefik routes it; confirm each answers through Traefik
        checks = [pool.submit(first_200, stack, u, start, 0.1, start + 300) for u in users]
        done = max(c.result() for c in checks)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(stack.stop, users))
    return done, failures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", type=int, default=5, help="repetitions of one spawn")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[10, 30])
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="the hub's database on SQLite and no Redis, MongoDB or S3 (the setup of the "
        "figures before 2026-12-06 16:00); default: PostgreSQL and Redis as `make up` runs it",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        stack = Stack(
            Path(tmp),
            extra_config=BENCH_CONFIG,
            with_data_services=not args.sqlite,
            log_level="INFO",
        )
        try:
            stack.start()
            rows = []
            served, lags = [], []
            for i in range(args.single):
                s, r = one_spawn(stack, f"single{i}", 0.02)
                served.append(s)
                lags.append(r - s)
                stack.stop(f"single{i}")
            if served:
                rows.append(
                    (
                        f"1 spawn, p50 of {args.single}",
                        f"{statistics.median(served):.2f} s",
                        f"max {max(served):.2f} s",
                        f"hub ready {statistics.median(lags):.2f} s "
                        f"(max {max(lags):.2f} s) after first 200",
                    )
                )
            for n in args.concurrent:
                done, failures = concurrent_spawns(stack, n, f"c{n}u")
                rows.append(
                    (f"{n} concurrent", f"{done:.2f} s", "all answered", f"{failures} failures")
                )
                time.sleep(5)  # let the removals settle before the next round
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.close()
    print("| scenario | time to first 200 through Traefik | | notes |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
