"""Container settings that treat a student's container as hostile."""

from __future__ import annotations

#: Nanoseconds per second (Docker's healthcheck units).
_NS = 1_000_000_000


def hardened_host_config(
    *,
    pids_limit: int,
    mem_limit: str | None,
    tmpfs_size: str = "256m",
) -> dict:
    """Host-config keyword arguments for ``docker.APIClient.create_host_config``.

    No capability, no privilege escalation (setuid binaries do nothing), bounded
    process count, no swap beyond the memory limit, a read-only root filesystem with
    private tmpfs for /tmp, and an init process that reaps zombies.
    """
    cfg: dict = {
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": int(pids_limit),
        "privileged": False,
        "read_only": True,
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,size={tmpfs_size},mode=1777",
            "/run": "rw,nosuid,nodev,size=16m,mode=755",
        },
        "init": True,
        "ipc_mode": "private",
    }
    if mem_limit:
        cfg["memswap_limit"] = mem_limit
    return cfg


def healthcheck(command: list[str], *, interval: float, start_timeout: float) -> dict:
    """Docker healthcheck for ``images/singleuser/healthcheck.sh``.

    The probe blocks until the server answers, so a short interval gives a prompt first
    result; ``timeout`` must outlast the probe's own wait and its steady-state sleep.
    """
    return {
        "test": ["CMD", *command],
        "interval": int(interval * _NS),
        "timeout": int((start_timeout + 10) * _NS),
        "retries": 3,
        "start_period": int((start_timeout + 10) * _NS),
    }


def check_no_host_paths(volumes: dict) -> None:
    """Refuse bind mounts of host paths: only named volumes may reach a student."""
    for source in volumes:
        if str(source).startswith(("/", ".", "~")) or "docker.sock" in str(source):
            raise ValueError(
                f"Host path {source!r} in ClassroomSpawner.volumes: student containers may "
                "only mount named Docker volumes. Remove it, or use a volume name such as "
                "'classhub-shared-data'."
            )
