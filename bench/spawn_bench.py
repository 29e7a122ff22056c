"""Spawn benchmark: time from "start server" to the first 200 through Traefik.

Runs a real deployment (Traefik, JupyterHub with classhub's config on PostgreSQL, Redis,
Docker, the classhub/singleuser image) on random ports via harness/stack.py, then measures:

* one spawn, repeated: seconds from the start request to the first 200 of
  /user/<name>/api/status through Traefik, and how long after that the hub reported
  the server ready (target: at most 0.3 s);
* N concurrent spawns: seconds until every server answered 200 through Traefik.

Usage: .venv/bin/python bench/spawn_bench.py [--single 5] [--concurrent 10 30] [--sqlite]
       [--kernel-pool N]
       [--image classhub/singleuser:latest classhub/datascience:latest]
With several images the stack's catalogue holds them all and the rounds alternate
between them (one spawn of each in turn, then each concurrent round per image), so a
machine whose load changes during the run weighs on every image alike; each image gets
its own rows, and the last column compares it to the first image's (``--concurrent 10 10``
runs two rounds of 10, each image in turn).
Prints a Markdown table (paste it into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
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


#: the image of a bench user: the stack's pre_spawn_hook reads it from the user's name
#: (``i<index>-...``), the documented hook the integration tests use as well
IMAGE_HOOK = """
BENCH_IMAGES = {images!r}

def _bench_image(spawner):
    prefix = spawner.user.name.split("-", 1)[0]
    if prefix.startswith("i") and prefix[1:].isdigit():
        spawner.image = BENCH_IMAGES[int(prefix[1:])]

c.Spawner.pre_spawn_hook = _bench_image
"""


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
        "--kernel-pool",
        type=int,
        default=None,
        help="kernels each server starts ahead (CLASSHUB_KERNEL_POOL; default: the product's)",
    )
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="the hub's database on SQLite and no Redis, MongoDB or S3 (the setup of the "
        "figures before 2026-12-06 16:00); default: PostgreSQL and Redis as `make up` runs it",
    )
    parser.add_argument(
        "--image",
        nargs="+",
        default=["classhub/singleuser:latest"],
        help="the image(s) to spawn; several: alternated on one stack, compared to the first",
    )
    args = parser.parse_args()
    images = args.image
    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        stack = Stack(
            Path(tmp),
            image=images[0],
            extra_config=BENCH_CONFIG + IMAGE_HOOK.format(images=images),
            with_data_services=not args.sqlite,
            log_level="INFO",
            env={
                "CLASSHUB_IMAGES": json.dumps([{"name": i} for i in images]),
                **(
                    {}
                    if args.kernel_pool is None
                    else {"CLASSHUB_KERNEL_POOL": str(args.kernel_pool)}
                ),
            },
        )
        try:
            stack.start()
            for image in images[1:]:
                stack.docker.images.get(image)  # fail early with a clear error
            served = {i: [] for i in range(len(images))}
            lags = {i: [] for i in range(len(images))}
            for n in range(args.single):
                for i in range(len(images)):
                    user = f"i{i}-single{n}"
                    s, r = one_spawn(stack, user, 0.02)
                    served[i].append(s)
                    lags[i].append(r - s)
                    stack.stop(user)
            concurrent = {}
            for k, n in enumerate(args.concurrent):
                for i in range(len(images)):
                    concurrent[(k, i)] = concurrent_spawns(stack, n, f"i{i}-c{k}n{n}u")
                    time.sleep(5)  # let the removals settle before the next round
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.close()

    def versus(i: int, value: float, first: float) -> str:
        return "" if i == 0 or not first else f"{(value / first - 1) * 100:+.0f}% vs {images[0]}"

    rows = []
    if args.single:
        first = statistics.median(served[0])
        for i, image in enumerate(images):
            median = statistics.median(served[i])
            rows.append(
                (
                    image,
                    f"1 spawn, p50 of {args.single}",
                    f"{median:.2f} s",
                    f"max {max(served[i]):.2f} s",
                    f"hub ready {statistics.median(lags[i]):.2f} s "
                    f"(max {max(lags[i]):.2f} s) after first 200",
                    versus(i, median, first),
                )
            )
    for k, n in enumerate(args.concurrent):
        first = concurrent[(k, 0)][0]
        for i, image in enumerate(images):
            done, failures = concurrent[(k, i)]
            rows.append(
                (
                    image,
                    f"{n} concurrent",
                    f"{done:.2f} s",
                    "all answered",
                    f"{failures} failures",
                    versus(i, done, first),
                )
            )
    print("| image | scenario | time to first 200 through Traefik | | notes | compared |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
