"""Swarm benchmark: what running classhub on a Swarm costs, on a real Swarm made here.

Builds a manager and two workers on this machine (harness/swarm.py, as ``make test-swarm``),
deploys the whole stack with scripts/swarm/deploy.sh, then, as people do it (JWT sign-in,
the hub API through Traefik, scripts/swarm/backup.sh on the manager), measures:

* cold spawns through the hub: one at a time (``--single N``), then ``--concurrent N`` at
  once: seconds from the start request until the hub reports the server ready;
* homes that follow their student (saved into the S3 store at stop, restored at a start on
  another node), for homes of ``--home-mb`` MB of random bytes (the worst case: nothing
  compresses): the stop that saves it, and the start on the other worker that restores it
  (the first worker drained for that start, as the admin guide drains one);
* backups: ``backup.sh backup`` of the stack, then ``--restores`` times ``backup.sh
  restore-home`` of one stopped student's home (target: under 60 s).

Usage: .venv/bin/python bench/swarm_bench.py [--single 3] [--concurrent 10]
       [--home-mb 10 100] [--restores 3]
Needs root, iproute2, iptables and the images (make images). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.stack import mint_token, wait_for  # noqa: E402
from harness.swarm import SwarmNodes, deploy_stack, env_value, stack_env  # noqa: E402

STACK = "classhub"
TIMEOUT = 600


class Person:
    """A browser signed in with a JWT, calling the hub API as the browser does."""

    def __init__(self, url: str, name: str, secret: str, role: str = "student"):
        self.url, self.name = url, name
        self.session = requests.Session()
        r = self.session.post(
            url + "/hub/login",
            data={"token": mint_token(name, role, key=secret)},
            allow_redirects=False,
            timeout=60,
        )
        if r.status_code != 302:
            raise RuntimeError(f"sign-in of {name}: {r.status_code} {r.text[:300]}")
        self.xsrf = next((c.value for c in self.session.cookies if c.name == "_xsrf"), "")

    def api(self, method: str, path: str) -> requests.Response:
        return self.session.request(
            method,
            self.url + "/hub/api" + path,
            headers={"X-XSRFToken": self.xsrf},
            timeout=60,
            allow_redirects=False,
        )

    def server(self) -> dict:
        return self.api("GET", f"/users/{self.name}").json().get("servers", {}).get("", {})

    def start(self) -> float:
        """Start the default server; seconds until the hub reports it ready."""
        t0 = time.monotonic()
        r = self.api("POST", f"/users/{self.name}/server")
        if r.status_code not in (201, 202):
            raise RuntimeError(f"start of {self.name}: {r.status_code} {r.text[:300]}")
        wait_for(lambda: self.server().get("ready"), TIMEOUT, 0.2, f"{self.name}'s server")
        return time.monotonic() - t0

    def stop(self) -> float:
        """Stop it; seconds until the hub reports it gone (the home saved by then)."""
        t0 = time.monotonic()
        r = self.api("DELETE", f"/users/{self.name}/server")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stop of {self.name}: {r.status_code} {r.text[:300]}")
        wait_for(lambda: not self.server(), TIMEOUT, 0.2, f"{self.name}'s server to stop")
        return time.monotonic() - t0


def node_of(swarm: SwarmNodes, name: str) -> tuple[str, str]:
    """``(node name, container id)`` of ``name``'s running server."""
    services = swarm.docker(
        "m", "service", "ls", "--filter", "label=classhub.managed=true", "--format", "{{.Name}}"
    ).split()
    (service,) = [s for s in services if f"-{name}" in s]
    ids = {v: k for k, v in swarm.node_ids().items()}
    task = swarm.docker(
        "m", "service", "ps", service, "--filter", "desired-state=running", "-q"
    ).split()[0]
    node = ids[swarm.docker("m", "inspect", "--format", "{{.NodeID}}", task)]
    container = swarm.docker(
        node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
    ).split()[0]
    return node, container


def backup_sh(env: dict, *args: str) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/swarm/backup.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"backup.sh {args[0]} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - t0


def row(what: str, values: list[float]) -> str:
    if len(values) == 1:
        return f"| {what} | 1 | {values[0]:.1f} | | |"
    return (
        f"| {what} | {len(values)} | {statistics.median(values):.1f} | {min(values):.1f} "
        f"| {max(values):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--home-mb", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--restores", type=int, default=3)
    args = parser.parse_args()

    rows = []
    t_all = time.monotonic()
    # a kill still removes the nodes (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    swarm = SwarmNodes(workers=2, run_id="b" + os.urandom(2).hex()).start()
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
            run_dir = Path(tmp) / "run"
            run_dir.mkdir()
            t0 = time.monotonic()
            env = stack_env(swarm, run_dir)
            done = deploy_stack(env)
            if done.returncode != 0:
                raise RuntimeError(f"deploy.sh failed:\n{done.stderr[-4000:]}")
            rows.append(
                row(
                    "deploy.sh (images onto the nodes, the stack, the stores' identities)",
                    [time.monotonic() - t0],
                )
            )
            url = f"http://{swarm.env['CHSW_ADDR_M']}:8000"
            secret = env_value(run_dir / "classhub.env", "CLASSHUB_JWT_SECRET")

            people = [Person(url, f"bench{i}", secret) for i in range(max(args.single, 1))]
            singles = []
            for p in people[: args.single]:
                singles.append(p.start())
                p.stop()
            rows.append(row("one cold spawn through the hub (start to ready)", singles))

            crowd = [Person(url, f"crowd{i}", secret) for i in range(args.concurrent)]
            t0 = time.monotonic()
            for p in crowd:
                r = p.api("POST", f"/users/{p.name}/server")
                if r.status_code not in (201, 202):
                    raise RuntimeError(f"start of {p.name}: {r.status_code}")
            wait_for(lambda: all(p.server().get("ready") for p in crowd), TIMEOUT, 0.5, "the crowd")
            rows.append(
                row(
                    f"{args.concurrent} spawns at once through the hub, all ready",
                    [time.monotonic() - t0],
                )
            )
            for p in crowd:
                p.api("DELETE", f"/users/{p.name}/server")
            wait_for(lambda: not any(p.server() for p in crowd), TIMEOUT, 0.5, "the crowd to stop")

            ids = swarm.node_ids()
            for mb in args.home_mb:
                p = Person(url, f"home{mb}mb", secret)
                p.start()
                node, container = node_of(swarm, p.name)
                swarm.docker(
                    node,
                    "exec",
                    container,
                    "python3",
                    "-c",
                    "import os; f = open(os.path.join(os.environ['HOME'], 'fill.bin'), 'wb');"
                    f"[f.write(os.urandom(1 << 20)) for _ in range({mb})]",
                    timeout=300,
                )
                saved = p.stop()
                swarm.docker("m", "node", "update", "--availability", "drain", ids[node])
                try:
                    restored = p.start()
                    other, container = node_of(swarm, p.name)
                    size = swarm.docker(
                        other,
                        "exec",
                        container,
                        "python3",
                        "-c",
                        "import os; print(os.path.getsize(os.path.expanduser('~/fill.bin')))",
                    )
                    if other == node or int(size) != mb << 20:
                        raise RuntimeError(f"the home did not follow: {node} -> {other}, {size}")
                finally:
                    swarm.docker("m", "node", "update", "--availability", "active", ids[node])
                rows.append(row(f"stop that saves a home of {mb} MB into the store", [saved]))
                rows.append(
                    row(f"start on the other worker that restores those {mb} MB", [restored])
                )
                p.stop()

            backups = Path(tmp) / "backups"
            env = {**env, "CLASSHUB_BACKUP_DIR": str(backups)}
            running = crowd[: min(5, len(crowd))]
            for p in running:
                p.start()
            rows.append(
                row(
                    f"backup.sh backup ({len(running)} servers running, every home saved first)",
                    [backup_sh(env, "backup")],
                )
            )
            for p in running:
                p.stop()
            restores = [
                backup_sh(env, "restore-home", "latest", "--user", running[k % len(running)].name)
                for k in range(args.restores)
            ]
            rows.append(
                row("backup.sh restore-home of one stopped home (target: under 60 s)", restores)
            )
    finally:
        swarm.close()
    print(f"\nSwarm benchmark: 3 nodes on this machine, {time.monotonic() - t_all:.0f} s in all\n")
    print("| measure | n | median s | min s | max s |")
    print("|---|---|---|---|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
