"""What every student container must be, whatever its image: the one hardening check the
spawn tests share (tests/integration/test_spawn.py, test_images.py)."""

from __future__ import annotations


def assert_hardened(container, stack, *, memory: int = 1024**3, pids: int = 512) -> None:
    """``container`` (a docker SDK container of a running server) is hardened, as Docker
    reports it and as seen from inside, and holds no secret of the deployment."""
    hc = container.attrs["HostConfig"]
    assert hc["CapDrop"] == ["ALL"]
    assert not hc.get("CapAdd")
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    assert hc["PidsLimit"] == pids
    assert hc["Memory"] == memory
    assert hc["NanoCpus"] or hc["CpuQuota"] == 100_000
    assert hc["Privileged"] is False
    assert hc["ReadonlyRootfs"] is True
    assert not hc.get("Binds")
    for m in container.attrs["Mounts"]:
        assert m["Type"] == "volume", m
    assert container.attrs["Config"]["User"] == "1000:100"
    # checked from inside: uid, capabilities, no-new-privs, no docker socket
    code, out = container.exec_run(
        [
            "bash",
            "-c",
            "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status;"
            " ls /var/run/docker.sock 2>&1; touch /etc/x 2>&1",
        ],
    )
    text = out.decode()
    assert text.splitlines()[0] == "1000"
    assert "CapEff:\t0000000000000000" in text
    assert "CapBnd:\t0000000000000000" in text
    assert "NoNewPrivs:\t1" in text
    assert "No such file" in text
    assert "Read-only file system" in text
    # secrets of the deployment never reach the container's environment
    env = "\n".join(container.attrs["Config"]["Env"])
    assert "CRYPT_KEY" not in env and "DB_URL" not in env and stack.token not in env
