"""A real Docker Swarm of several nodes on this machine, for the swarm tier.

:class:`SwarmNodes` drives ``scripts/swarm/nodes.sh``: one extra ``dockerd`` per node in a
network namespace of its own on a bridge of its own (the machine's own Docker engine is
never a node), images copied to every node with ``docker save | docker load``, and
everything removed again by :meth:`SwarmNodes.close` (dockerd stopped by its pid file,
namespaces, bridge, iptables rule, data directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jupyterhub

ROOT = Path(__file__).resolve().parent.parent
NODES = ROOT / "scripts" / "swarm" / "nodes.sh"


class SwarmNodes:
    """A manager ``m`` and workers ``w1``, ``w2``, ... under a random run id."""

    def __init__(self, workers: int = 2, run_id: str | None = None):
        self.id = run_id or "t" + secrets.token_hex(2)
        self.workers = workers
        self.env: dict[str, str] = {}

    def _run(self, *args: str, timeout: float = 600, env: dict | None = None) -> str:
        done = subprocess.run(
            ["bash", str(NODES), *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nodes.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> SwarmNodes:
        try:
            self._run("up", self.id, str(self.workers), timeout=300)
            for line in self._run("env", self.id).splitlines():
                key, _, value = line.partition("=")
                self.env[key] = value
        except BaseException:
            self.close()
            raise
        return self

    def attach(self) -> SwarmNodes:
        """Use a Swarm that ``nodes.sh up`` made before (and leave it up)."""
        for line in self._run("env", self.id).splitlines():
            key, _, value = line.partition("=")
            self.env[key] = value
        return self

    def load(self, *images: str, nodes: tuple[str, ...] = ()) -> None:
        """Copy ``images`` onto every node (or onto ``nodes`` only)."""
        env = {"CHSW_LOAD_NODES": " ".join(nodes)} if nodes else None
        self._run("load", self.id, *images, timeout=1200, env=env)

    def deploy(self, stack_file: Path, name: str) -> None:
        """``docker stack deploy`` on the manager."""
        self.docker("m", "stack", "deploy", "-c", str(stack_file), name, timeout=300)

    def close(self) -> None:
        self._run("down", self.id, timeout=300)

    @property
    def host_addr(self) -> str:
        """The host's address on the nodes' bridge (host services the nodes reach)."""
        return self.env["CHSW_HOST_ADDR"]

    def sock(self, node: str = "m") -> str:
        return self.env[f"CHSW_SOCK_{node.upper()}"]

    def docker(self, node: str, *args: str, timeout: float = 120) -> str:
        """``docker`` against one node's engine; its output (raises on failure)."""
        done = subprocess.run(
            ["docker", "-H", self.sock(node), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} on {node}: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def node_ids(self) -> dict[str, str]:
        """``{node name: Swarm node id}``."""
        names = ["m", *(f"w{k}" for k in range(1, self.workers + 1))]
        return {n: self.docker(n, "info", "--format", "{{.Swarm.NodeID}}") for n in names}


#: the cookie the stand-in owner gate lets through
GATE_COOKIE = "swarm-tier-owner=yes"


class _HubStub(BaseHTTPRequestHandler):
    """What a single-user server asks its hub while it starts and runs: the version
    check (``GET <hub>/api``, without an answer it never listens) and activity posts;
    and, at ``/check``, the owner gate's answer to Traefik (200 only with
    :data:`GATE_COOKIE`)."""

    def _reply(self, code: int, body: bytes = b"{}") -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/check":
            # the owner gate's stand-in: Traefik's forwardauth asks it before each request
            allowed = GATE_COOKIE in (self.headers.get("Cookie") or "")
            self._reply(200 if allowed else 401)
        elif path.endswith("/api"):
            self._reply(200, json.dumps({"version": jupyterhub.__version__}).encode())
        else:
            self._reply(403)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200 if self.path.endswith("/activity") else 403)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def hub_api_stub(host: str):
    """A stand-in for the hub's API on ``host`` (the nodes' bridge address of the host):
    the swarm tier drives the spawner itself, without a hub its servers could reach.
    Yields its URL (``http://host:port``)."""
    server = ThreadingHTTPServer((host, 0), _HubStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stack_env(swarm: SwarmNodes, run_dir: Path) -> dict[str, str]:
    """The environment of scripts/swarm/deploy.sh (and backup.sh) for the whole stack on
    ``swarm``, its settings in ``run_dir``; a first ``classhub.env`` there whose catalogue
    holds the one image the swarm tier copies to the nodes."""
    env_file = run_dir / "classhub.env"
    if not env_file.exists():
        env_file.write_text(
            'CLASSHUB_IMAGES=[{"name": "classhub/singleuser:latest", "display_name": "Python"}]\n'
        )
    return {
        **os.environ,
        "CLASSHUB_RUN_DIR": str(run_dir),
        "CLASSHUB_SKIP_BUILD": "1",
        "CLASSHUB_SWARM_MANAGER": swarm.sock("m"),
        "CLASSHUB_SWARM_WORKERS": " ".join(
            swarm.sock(f"w{k}") for k in range(1, swarm.workers + 1)
        ),
        "CLASSHUB_SWARM_ADDRESS": swarm.env["CHSW_ADDR_M"],
        "CLASSHUB_DOCKER_SOCKET": swarm.sock("m").removeprefix("unix://"),
        "CLASSHUB_STUDENT_DEFAULT_SERVER": "1",
        "CLASSHUB_UP_TIMEOUT": "420",
    }


def deploy_stack(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run scripts/swarm/deploy.sh with ``env`` (:func:`stack_env`); its result, whatever
    its exit status (the caller reports a failure its own way)."""
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "swarm" / "deploy.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def env_value(path: Path, name: str) -> str:
    """The last value of ``name`` in an env file such as ``classhub.env``."""
    value = ""
    for line in path.read_text().splitlines():
        if line.startswith(name + "="):
            value = line.split("=", 1)[1]
    return value
