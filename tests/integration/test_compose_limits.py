"""The compose file's memory limits, as docker-compose 1.29 really applies them.

The stack's own compose files (copied to a scratch directory with a scratch
``.run/classhub.env``) are run under a project name of their own: each service once, with
``docker-compose run --no-deps`` and ``sleep`` instead of its server (nothing listens,
nothing is published, the shared stack is not touched). Every container must carry the
memory limit its ``CLASSHUB_*_MEM_LIMIT`` setting asks for, with no swap beyond it; the hub
gets CAP_SYS_ADMIN and the homes filesystem at the same path; and a hub container that
allocates past its limit is stopped by the kernel, alone.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess

import docker
import pytest

from harness.stack import REPO, free_port, throwaway_project

pytestmark = [pytest.mark.integration, pytest.mark.all_images]

LIMITS = {
    "hub": ("CLASSHUB_HUB_MEM_LIMIT", "300m", 300 << 20),
    "postgres": ("CLASSHUB_POSTGRES_MEM_LIMIT", "200m", 200 << 20),
    "redis": ("CLASSHUB_REDIS_MEM_LIMIT", "96m", 96 << 20),
    "mongo": ("CLASSHUB_MONGO_MEM_LIMIT", "250m", 250 << 20),
    "s3": ("CLASSHUB_S3_MEM_LIMIT", "260m", 260 << 20),
    "traefik": ("CLASSHUB_TRAEFIK_MEM_LIMIT", "64m", 64 << 20),
    "gate": ("CLASSHUB_GATE_MEM_LIMIT", "80m", 80 << 20),
}
OFFLINE_IMAGES = ["classhub/hub", "classhub/postgres", "classhub/redis", "classhub/mongo"]


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    client = docker.from_env(timeout=60)
    missing = [i for i in OFFLINE_IMAGES if not client.images.list(name=i)]
    if missing:
        client.close()
        pytest.skip(f"images not built (make images): {', '.join(missing)}")
    work = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "docker-compose.offline.yml"):
        shutil.copy(REPO / name, work / name)
    (work / ".run" / "seaweedfs").mkdir(parents=True)
    (work / ".run" / "seaweedfs" / "s3.json").write_text('{"identities": []}')
    homes = work / "homes"
    homes.mkdir()
    env = {
        "POSTGRES_PASSWORD": secrets.token_hex(8),
        "REDIS_PASSWORD": secrets.token_hex(8),
        "MONGO_ROOT_PASSWORD": secrets.token_hex(8),
        # the gate's (it only needs to start; nothing answers there)
        "CLASSHUB_REDIS_URL": "redis://127.0.0.1:1/0",
        "CLASSHUB_GATE_PORT": str(free_port()),
        "CLASSHUB_HOMES_DIR": str(homes),
        **{var: text for var, text, _ in LIMITS.values()},
    }
    env_file = work / ".run" / "classhub.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    (work / ".run" / "hub.env").write_text("")  # the hub's env_file (up.sh writes it)
    project = throwaway_project("lim")
    base = [
        "docker-compose",
        "-p",
        project,
        "--env-file",
        str(env_file),
        "-f",
        str(work / "docker-compose.yml"),
        "-f",
        str(work / "docker-compose.offline.yml"),
    ]

    def run(service: str, *command: str, detach: bool = True) -> subprocess.CompletedProcess:
        args = [*base, "run", "--no-deps", "-T"]
        if detach:
            args.append("-d")
        args += ["--entrypoint", command[0], service, *command[1:]]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=work)

    try:
        yield run, client, project, homes
    finally:
        for c in client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        ):
            c.remove(force=True)
        subprocess.run([*base, "down", "-v", "--remove-orphans"], capture_output=True, cwd=work)
        client.close()


def test_every_service_has_its_memory_limit_and_no_swap(compose):
    run, client, project, homes = compose
    for service, (_, _, expected) in LIMITS.items():
        done = run(service, "sleep", "120")
        assert done.returncode == 0, (service, done.stderr)
        container = client.containers.get(done.stdout.strip().splitlines()[-1])
        host = container.attrs["HostConfig"]
        assert host["Memory"] == expected, (service, host["Memory"])
        assert host["MemorySwap"] == expected, (service, host["MemorySwap"])
        if service == "hub":
            assert "SYS_ADMIN" in (host["CapAdd"] or []) or "CAP_SYS_ADMIN" in host["CapAdd"]
            binds = {(m["Source"], m["Destination"]) for m in container.attrs["Mounts"]}
            assert (str(homes), str(homes)) in binds, binds
        container.remove(force=True)


def test_a_hub_that_allocates_past_its_limit_is_stopped_alone(compose):
    run, client, project, _ = compose
    done = run("hub", "python3", "-c", "x = bytearray(600 << 20); print('survived')", detach=False)
    assert done.returncode == 137, (done.returncode, done.stdout, done.stderr)  # SIGKILL: OOM
    assert "survived" not in done.stdout
