"""The CPU a single-user server takes to start, per image (no hub, no Traefik).

Starts ``jupyter lab`` in each image as the spawner starts a server (read-only root, tmpfs
/tmp and home, uid 1000, no capabilities, no new privileges), alternating between the
images, and reports for each: seconds until its API first answers and the CPU-seconds the
container used by then (from its cgroup). The CPU figure depends far less on the load of a
shared machine than spawn times do, so it tells whether an image makes a server slower to
start (for example ``classhub/datascience`` against ``classhub/singleuser``,
docs/performance.md).

Usage: .venv/bin/python bench/image_start_bench.py [--rounds 4]
       [--image classhub/singleuser:latest classhub/datascience:latest]
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import docker
import requests

PREFIX = "/user/bench/"


def cgroup_cpu_seconds(container_id: str) -> float:
    """CPU-seconds the container used so far (cgroup v1 cpuacct or cgroup v2)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat")
    for line in v2.read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise LookupError(f"no CPU accounting found for container {container_id}")


def one_start(client: docker.DockerClient, image: str, timeout: float = 120) -> tuple[float, float]:
    """(seconds to the first 200 of the server's API, CPU-seconds used by then)."""
    start = time.monotonic()
    box = client.containers.run(
        image,
        [
            "jupyter",
            "lab",
            "--ServerApp.ip=0.0.0.0",
            "--ServerApp.port=8888",
            f"--ServerApp.base_url={PREFIX}",
            "--IdentityProvider.token=",
            "--no-browser",
        ],
        detach=True,
        read_only=True,
        tmpfs={"/tmp": "", "/run": "", "/home/jovyan": "uid=1000,gid=100"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        user="1000:100",
        network="bridge",
        labels={"classhub.bench": "image-start"},
    )
    try:
        box.reload()
        ip = box.attrs["NetworkSettings"]["IPAddress"]
        while True:
            try:
                if requests.get(f"http://{ip}:8888{PREFIX}api", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{image} did not answer within {timeout} s")
            time.sleep(0.05)
        return time.monotonic() - start, cgroup_cpu_seconds(box.id)
    finally:
        box.remove(force=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4, help="starts of each image")
    parser.add_argument(
        "--image",
        nargs="+",
        default=["classhub/singleuser:latest", "classhub/datascience:latest"],
    )
    args = parser.parse_args()
    client = docker.from_env(timeout=60)
    results: dict[str, list[tuple[float, float]]] = {i: [] for i in args.image}
    for _ in range(args.rounds):
        for image in args.image:
            results[image].append(one_start(client, image))
    first = statistics.median(cpu for _, cpu in results[args.image[0]])
    print("| image | starts | seconds to the API, p50 | CPU-s to the API, p50 | CPU vs first |")
    print("|---|---|---|---|---|")
    for image, runs in results.items():
        cpu = statistics.median(c for _, c in runs)
        print(
            f"| {image} | {len(runs)} | {statistics.median(s for s, _ in runs):.2f} s "
            f"| {cpu:.2f} | {(cpu / first - 1) * 100:+.0f}% |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
