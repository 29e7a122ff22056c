"""A throwaway classhub deployment for the end-to-end tier, made by the project's own scripts.

``scripts/up.sh`` and ``scripts/down.sh`` run exactly as an admin runs them, but under a
compose project of their own (``CLASSHUB_PROJECT``), with their settings and secrets in a
scratch folder (``CLASSHUB_RUN_DIR``) and every port, the student network and its bridge,
the homes filesystem and the container prefix chosen for this run. A stack that `make up`
started on the same machine is never restarted, changed or stopped: nothing here names it.
:meth:`Throwaway.destroy` removes everything the run made (containers, volumes, the
network, its firewall chain, the homes filesystem).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import docker

from harness.stack import free_port, throwaway_project
from hub.stores.hubenv import read_env_file

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now (harness.stack.free_port: outside the
    kernel's range for outgoing connections, never the same one twice)."""
    return [free_port() for _ in range(count)]


class Throwaway:
    """One deployment of the whole compose stack, for one test session."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.project = throwaway_project("e2e")
        self.run_dir = workdir / "run"
        self.bridge = self.project[:14] + "0"
        self.network_name = f"{self.project}-students"
        (http, hub, api, gate, pg, redis, mongo, s3, classes, files, grades) = free_ports(11)
        self.script_env = {
            "CLASSHUB_PROJECT": self.project,
            "CLASSHUB_RUN_DIR": str(self.run_dir),
            "CLASSHUB_SKIP_BUILD": "1",
            "CLASSHUB_HTTP_PORT": str(http),
            "CLASSHUB_HUB_PORT": str(hub),
            "CLASSHUB_TRAEFIK_API_PORT": str(api),
            "CLASSHUB_GATE_PORT": str(gate),
            "CLASSHUB_PG_PORT": str(pg),
            "CLASSHUB_REDIS_PORT": str(redis),
            "CLASSHUB_MONGO_PORT": str(mongo),
            "CLASSHUB_S3_PORT": str(s3),
            "CLASSHUB_CLASSES_PORT": str(classes),
            "CLASSHUB_FILES_PORT": str(files),
            "CLASSHUB_GRADES_PORT": str(grades),
            "CLASSHUB_STUDENT_NETWORK": self.network_name,
            "CLASSHUB_STUDENT_BRIDGE": self.bridge,
            "CLASSHUB_CONTAINER_PREFIX": self.project,
            "CLASSHUB_HOMES_DIR": str(workdir / "homes"),
            "CLASSHUB_HOMES_IMAGE": str(workdir / "homes.img"),
            "CLASSHUB_HOMES_SIZE": "3G",
            "CLASSHUB_UP_TIMEOUT": "300",
            # the e2e tests use a person's default server as "a student's container"
            "CLASSHUB_STUDENT_DEFAULT_SERVER": "1",
        }
        self.up_output = ""

    # ----- the project's own scripts -----

    def _script(self, name: str, timeout: float) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSHUB_")}
        env.update(self.script_env)
        return subprocess.run(
            ["bash", f"scripts/{name}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self) -> subprocess.CompletedProcess:
        return self._script("up.sh", 900)

    def down(self) -> subprocess.CompletedProcess:
        return self._script("down.sh", 300)

    def create(self) -> None:
        """The student network first (Docker picks a free subnet), then ``scripts/up.sh``."""
        client = docker.from_env(timeout=60)
        try:
            net = client.networks.create(
                self.network_name,
                driver="bridge",
                options={
                    "com.docker.network.bridge.enable_icc": "false",
                    "com.docker.network.bridge.name": self.bridge,
                },
                labels={"classhub.network": "students", "classhub.deployment": self.project},
            )
            net.reload()
            self.script_env["CLASSHUB_STUDENT_SUBNET"] = net.attrs["IPAM"]["Config"][0]["Subnet"]
        finally:
            client.close()
        r = self.up()
        self.up_output = r.stdout + r.stderr
        if r.returncode != 0:
            raise RuntimeError("scripts/up.sh failed:\n" + self.up_output[-6000:])

    @property
    def env(self) -> dict[str, str]:
        """The deployment's settings and secrets, as up.sh wrote them."""
        return read_env_file((self.run_dir / "classhub.env").read_text())

    def compose(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        files = ["-f", "docker-compose.yml"]
        if (REPO / ".run" / "mode").read_text().strip() == "offline":
            files += ["-f", "docker-compose.offline.yml"]
        return subprocess.run(
            [
                "docker-compose",
                "--env-file",
                str(self.run_dir / "classhub.env"),
                *files,
                *args,
            ],
            cwd=REPO,
            env={
                **os.environ,
                "COMPOSE_PROJECT_NAME": self.project,
                "CLASSHUB_RUN_DIR": str(self.run_dir),
            },
            capture_output=True,
            text=True,
            input=input,
            timeout=300,
        )

    # ----- clean-up -----

    def destroy(self) -> None:
        """Everything this run made goes: containers, volumes, network, firewall, homes.
        Killed, not stopped (its data is thrown away; ``scripts/down.sh`` has a test of its
        own in test_stack_lifecycle.py): a graceful stop took 18 s, the S3 store alone 10."""
        if (self.run_dir / "classhub.env").exists():
            self.compose("down", "-v", "--remove-orphans", "--timeout", "0")
        client = docker.from_env(timeout=60)
        try:
            for c in client.containers.list(
                all=True, filters={"label": f"classhub.deployment={self.project}"}
            ):
                c.remove(force=True, v=True)
            for c in client.containers.list(
                all=True, filters={"label": f"classhub.homes-helper={self.project}"}
            ):
                c.remove(force=True, v=True)
            for v in client.volumes.list():
                if v.name.startswith(self.project):
                    try:
                        v.remove(force=True)
                    except docker.errors.APIError:
                        pass
            for net in client.networks.list(names=[self.network_name]):
                try:
                    net.remove()
                except docker.errors.APIError:
                    pass
        finally:
            client.close()
        subprocess.run(
            [str(VENV_BIN / "classhub-firewall"), "--bridge", self.bridge, "--remove"],
            check=False,
            capture_output=True,
        )
        homes = self.script_env["CLASSHUB_HOMES_DIR"]
        subprocess.run(
            [
                str(VENV_BIN / "classhub-homes"),
                "unmount",
                "--dir",
                homes,
                "--image",
                self.script_env["CLASSHUB_HOMES_IMAGE"],
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
