"""Home folders with a kernel-enforced size, tried from inside real student containers.

The harness gives this stack its own btrfs filesystem (a loop-mounted image in its work
directory), as ``make up`` does in production; homes here may hold 64 MiB. A student who
writes without end is stopped at the limit by the kernel, inside their own container, while
another student keeps writing and the hub, PostgreSQL and Redis keep answering; a
subvolume made inside the home to get around the limit counts against it all the same;
the student reads their use and limit from the hub API (their own token) and on My
classes; a home volume made before homes had a size is used as it was and moved into a
subvolume by ``classhub-homes migrate`` without losing a byte.
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import quote

import pytest
import requests

from common.naming import object_name
from harness.classes import Person, wait_healthy
from harness.stack import Stack, running_stack, wait_for
from spawner import btrfs, homesfs

pytestmark = pytest.mark.integration

QUOTA = 64 << 20

#: runs as the student (uid 1000) in their container: a subvolume inside the home (any
#: user may make one in a folder they own), then as much as fits into it
NESTED_ESCAPE = r"""
import fcntl, os, struct, subprocess
fd = os.open("/home/jovyan", os.O_RDONLY)
fcntl.ioctl(fd, 0x5000940E, bytearray(struct.pack("=q4088s", 0, b"escape")))
print("subvolume made")
r = subprocess.run(["dd", "if=/dev/zero", "of=/home/jovyan/escape/big", "bs=1M", "count=200"],
                   capture_output=True, text=True)
print(r.returncode, r.stderr)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    new = Stack(tmp_path_factory.mktemp("homes"), with_classes=True, home_quota="64M")
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


def server_container(stack: Stack, user: str):
    found = [c for c in stack.containers(all=False) if c.labels.get("classhub.user") == user]
    assert len(found) == 1, found
    return found[0]


def sh(container, script: str) -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", script], user="1000")
    return code, out.decode(errors="replace")


def fill(container, megabytes: int = 200) -> str:
    """Write ``megabytes`` of zeros into the home; the output of dd (it must fail)."""
    code, out = sh(container, f"dd if=/dev/zero of=/home/jovyan/fill bs=1M count={megabytes}")
    assert code != 0, out
    return out


def user_token(stack: Stack, user: str) -> str:
    r = stack.api("POST", f"/users/{quote(user)}/tokens", json={"note": "homes test"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def home_usage(stack: Stack, user: str, token: str) -> requests.Response:
    return requests.get(
        f"{stack.url}/hub/api/classhub/homes/{quote(user)}",
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )


def cli_referenced(stack: Stack, volume: str) -> int:
    """The bytes btrfs-progs reports for the home's qgroup 1/<subvolume id> (an
    independent reading of what classhub's ioctls read)."""
    path = stack.homes_dir / volume
    shown = subprocess.run(
        ["btrfs", "subvolume", "show", str(path)], capture_output=True, text=True, check=True
    ).stdout
    subvolume = re.search(r"Subvolume ID:\s+(\d+)", shown).group(1)
    table = subprocess.run(
        ["btrfs", "qgroup", "show", "-re", "--raw", str(stack.homes_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in table.splitlines():
        fields = line.split()
        if fields and fields[0] == f"1/{subvolume}":
            assert fields[3] == str(QUOTA), line  # max referenced
            return int(fields[1])
    raise AssertionError(f"no qgroup 1/{subvolume} in\n{table}")


def test_filler_stops_at_the_quota_while_everyone_else_keeps_working(stack):
    for name in ("filler", "writer"):
        stack.create_user(name)
        stack.spawn(name)
    filler, writer = server_container(stack, "filler"), server_container(stack, "writer")

    out = fill(filler)
    assert "Disk quota exceeded" in out, out
    written = os.path.getsize(
        stack.homes_dir / object_name(stack.prefix, "home", "filler", "") / "fill"
    )
    assert QUOTA - (4 << 20) <= written <= QUOTA, written

    # the other student: 20 MiB written and read back
    code, out = sh(
        writer,
        # status=none: dd says nothing (its report once came after stat's line)
        "dd if=/dev/zero of=/home/jovyan/work bs=1M count=20 status=none"
        " && stat -c %s /home/jovyan/work",
    )
    assert code == 0, out
    assert out.strip().endswith(str(20 << 20)), out
    # the filler's own server still runs (and may delete to make room)
    assert stack.user_get("/user/filler/api/status").status_code == 200
    code, out = sh(filler, "rm /home/jovyan/fill && echo ok > /home/jovyan/after")
    assert code == 0, out

    # the hub, PostgreSQL and Redis answer
    assert requests.get(stack.url + "/hub/health", timeout=10).status_code == 200
    assert stack.api("GET", "/users/writer").status_code == 200
    assert stack.psql("SELECT 1") == [1]
    assert stack.redis_cli("PING") in (True, "PONG")


def test_homes_are_on_their_own_filesystem(stack):
    stack.create_user("where")
    stack.spawn("where")
    code, out = sh(server_container(stack, "where"), "stat -f -c %T /home/jovyan")
    assert (code, out.strip()) == (0, "btrfs")
    homes_dev = os.stat(stack.homes_dir).st_dev
    stores = [stack.pg.data_dir, stack.workdir / "redis", stack.workdir / "mongo"]
    for store in stores:
        assert os.stat(store).st_dev != homes_dev, store


def test_a_subvolume_inside_the_home_counts_against_it(stack):
    if btrfs.quota_mode(str(stack.homes_dir)) != "simple":
        pytest.skip("this kernel has no btrfs simple quotas (Linux 6.7+): nested subvolumes escape")
    stack.create_user("escaper")
    stack.spawn("escaper")
    code, out = server_container(stack, "escaper").exec_run(
        ["python3", "-c", NESTED_ESCAPE], user="1000"
    )
    out = out.decode(errors="replace")
    assert code == 0 and "subvolume made" in out, out
    assert "Disk quota exceeded" in out, out
    volume = object_name(stack.prefix, "home", "escaper", "")
    written = os.path.getsize(stack.homes_dir / volume / "escape" / "big")
    assert written <= QUOTA, written


def test_the_student_sees_use_and_limit(stack):
    stack.create_user("viewer")
    stack.create_user("nosy")
    stack.spawn("viewer")
    assert "Disk quota exceeded" in fill(server_container(stack, "viewer"))
    btrfs.sync(str(stack.homes_dir))
    volume = object_name(stack.prefix, "home", "viewer", "")
    token = user_token(stack, "viewer")

    def same_as_btrfs_progs():
        r = home_usage(stack, "viewer", token)
        assert r.status_code == 200, r.text
        (home,) = r.json()["homes"]
        assert (home["server"], home["volume"], home["limited"]) == ("", volume, True)
        assert home["quota"] == QUOTA
        return home if home["used"] == cli_referenced(stack, volume) else None

    home = wait_for(same_as_btrfs_progs, 20, interval=0.5, what="the API's use = btrfs-progs'")
    assert QUOTA - (4 << 20) <= home["used"] <= QUOTA

    # another student's token learns nothing about it
    assert home_usage(stack, "viewer", user_token(stack, "nosy")).status_code == 404

    # My classes (the classes service reads it from the hub for the student)
    person = Person(stack, "viewer")
    page = person.get("", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    section = page.text.split('id="homes-section"', 1)[1].split("</section>", 1)[0]
    assert "Your own server" in section and "64.0 MB" in section, section
    assert ">full<" in section, section


def test_a_home_from_before_keeps_its_files_and_is_moved_into_a_subvolume(stack):
    docker = stack.docker
    user = "oldtimer"
    volume = object_name(stack.prefix, "home", user, "")
    docker.volumes.create(volume)  # a plain volume, as the spawner made them before
    docker.containers.run(
        stack.image,
        ["sh", "-c", "mkdir -p /home/jovyan/w/deep && echo kept > /home/jovyan/w/deep/n.txt"],
        entrypoint=[],
        user="1000:100",
        network_mode="none",
        volumes={volume: {"bind": "/home/jovyan", "mode": "rw"}},
        remove=True,
    )
    # the spawner uses it as it is (no limit; the log says so) ...
    stack.create_user(user)
    stack.spawn(user)
    token = user_token(stack, user)
    (home,) = home_usage(stack, user, token).json()["homes"]
    assert home["limited"] is False and home["quota"] is None
    # ... migration leaves it alone while its server runs ...
    (result,) = [
        m for m in homesfs.migrate(str(stack.homes_dir), stack.prefix, QUOTA) if m.volume == volume
    ]
    assert result.status == "in use", result
    # ... and moves it once the server is stopped
    stack.stop(user)
    (result,) = [
        m for m in homesfs.migrate(str(stack.homes_dir), stack.prefix, QUOTA) if m.volume == volume
    ]
    assert result.status == "moved", result
    info = docker.api.inspect_volume(volume)
    assert info["Options"] == {"type": "none", "o": "bind", "device": str(stack.homes_dir / volume)}
    stack.spawn(user)
    c = server_container(stack, user)
    code, out = sh(c, "cat /home/jovyan/w/deep/n.txt && stat -c %U /home/jovyan/w/deep/n.txt")
    assert (code, out.split()) == (0, ["kept", "jovyan"]), out
    assert "Disk quota exceeded" in fill(c)
    (home,) = home_usage(stack, user, token).json()["homes"]
    assert home["limited"] is True and home["quota"] == QUOTA
