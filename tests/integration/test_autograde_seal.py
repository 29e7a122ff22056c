"""The seal of autograding, tried for real: each attack is a submitted
notebook graded in a real sealed container (services/grades/autograde/sandbox.py) of an
image built FROM the real classhub/singleuser:latest with this branch's runner copied in
(the fixture builds ``classhub/singleuser:autograde-test`` and removes it afterwards).

The "student" cells are the attacks; the teacher's tests are the probes: a test passes
only if the attack failed the way it must, and the host side checks what it can see itself
(the listener for egress, the container gone, the frames verified). Network probes aim
only at this machine's own addresses (the Docker bridge's gateway, loopback, the host's
own addresses), never an outside one.
"""

import dataclasses
import io
import ipaddress
import secrets
import socket
import tarfile
import threading
import time
from pathlib import Path

import docker
import pytest

from services.grades.autograde import notebook, sandbox, scoring

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "images" / "singleuser" / "classhub_singleuser"
BASE = "classhub/singleuser:latest"
IMAGE = "classhub/singleuser:autograde-test"
LIMITS = sandbox.Limits(
    mem_limit="256m",
    pids_limit=64,
    cpu_limit=1.0,
    timeout=150.0,
    # slack for a loaded CI machine: a test cell that runs over its limit scores 0 as
    # "timed out" instead of being flagged, which would hide what a test checks
    cell_timeout=20.0,
    output_limit=1 << 20,
    tmpfs_size="32m",
    deployment="autograde-test",
)


@pytest.fixture(scope="module")
def client():
    c = docker.from_env(timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(client):
    """The real single-user image with this branch's runner and guard copied in."""
    build_image(client, BASE, IMAGE)
    yield IMAGE
    for c in client.containers.list(all=True, filters={"label": sandbox.RUN_LABEL}):
        if c.labels.get(sandbox.RUN_LABEL) == LIMITS.deployment:
            c.remove(force=True, v=True)
    client.images.remove(IMAGE, force=True)


def build_image(client, base, tag):
    """``tag``: ``base`` with this checkout's runner and guard copied in."""
    client.images.get(base)  # the shared image must exist; it is never rebuilt here
    buffer = io.BytesIO()
    names = ("grader.py", "grader_guard.py", "nodump.py")
    dockerfile = (
        f"FROM {base}\nCOPY {' '.join(names)}"
        " /opt/venv/lib/python3.11/site-packages/classhub_singleuser/\n"
    ).encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [("Dockerfile", dockerfile)] + [
            (n, (PACKAGE / n).read_bytes()) for n in names
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, forcerm=True)
    return tag


def code(source, **nbgrader):
    metadata = {"nbgrader": nbgrader} if nbgrader else {}
    return {"cell_type": "code", "source": source, "metadata": metadata, "outputs": []}


def grade(client, image, student_cells, tests, limits=LIMITS):
    """Grade ``student_cells`` (sources) against ``tests`` ({id: source}, 1 point each)."""
    source = {
        "nbformat": 4,
        "cells": [code(s) for s in student_cells]
        + [code(t, grade_id=i, grade=True, locked=True, points=1) for i, t in tests.items()],
    }
    submitted = {"nbformat": 4, "cells": [code(s) for s in student_cells]}
    plan = notebook.make_plan(source, submitted)
    started = time.monotonic()
    run = sandbox.run_sealed(client, image, limits, plan)
    elapsed = time.monotonic() - started
    result = scoring.score_run(plan, run.frames, run.facts)
    left = client.containers.list(all=True, filters={"label": f"{sandbox.RUN_LABEL}.run"})
    assert not [c for c in left if c.labels.get(sandbox.RUN_LABEL) == limits.deployment]
    return result, run, elapsed


def by_id(result):
    return {t.id: t for t in result.tests}


def test_an_honest_notebook_scores_every_point(client, image):
    result, run, _ = grade(
        client,
        image,
        ["def add(a, b):\n    return a + b"],
        {"visible": "assert add(1, 2) == 3", "hidden": "assert add(-1, 1) == 0"},
    )
    assert result.complete, result.reason
    assert (result.score, result.points) == (2.0, 2.0)
    assert result.flags == []
    assert run.facts.exit_code == 0 and not run.facts.problem


# ----- infrastructure attacks: each must be blocked


@pytest.fixture
def listener():
    """A TCP listener on every address of this machine, counting connections."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(peer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def own_addresses(client):
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    # A freshly started dockerd may not list the default bridge's gateway; Docker gives
    # it the subnet's first address.
    gateway = config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    addresses = {gateway, "127.0.0.1"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:  # the address of the default route's interface (no packet is sent)
            s.connect((gateway, 9))
            addresses.add(s.getsockname()[0])
        except OSError:
            pass
    return gateway, sorted(addresses)


PROBE_CONNECT = """
import socket
reached, errors = [], []
for host in {targets!r}:
    try:
        with socket.create_connection((host, {port}), timeout=2):
            reached.append(host)
    except OSError as e:
        errors.append(type(e).__name__)
interfaces = sorted(name for _, name in socket.if_nameindex())
"""


def test_no_network_egress_to_this_machine(client, image, listener):
    port, accepted = listener
    gateway, targets = own_addresses(client)
    # control: from an ordinary container on Docker's bridge the listener is reachable
    control = client.containers.run(
        image,
        ["python3", "-c", f"import socket; socket.create_connection(({gateway!r}, {port}), 5)"],
        network_mode="bridge",
        remove=True,
        user="1000:100",
    )
    assert control == b""
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(accepted) == 1, "the control connection never arrived: the probe proves nothing"
    result, _, _ = grade(
        client,
        image,
        [PROBE_CONNECT.format(targets=targets, port=port)],
        {"no_egress": "assert reached == []", "only_loopback": "assert interfaces == ['lo']"},
    )
    assert result.complete, result.reason
    assert {t.id: t.status for t in result.tests} == {"no_egress": "pass", "only_loopback": "pass"}
    assert len(accepted) == 1  # nothing more arrived from the sealed run


PROBE_SECRETS = r"""
import os, re
MARK = "HIDDEN" + "-MARK-" + "4217"
# OTHER (another student's submission, graded just before) and OWN (this one's, written
# to ~/answer.txt and /tmp/answer.txt by the first cell) are set by the first cell
found, other_found, own_found, denied = [], [], [], {}
# the hidden test's text and the other submission's mark anywhere they could be left
# (hidden files included: os.walk, not glob), and anything that looks like a secret
PACKAGE = "/opt/venv/lib/python3.11/site-packages/classhub_singleuser"
ROOTS = ("/tmp", "/home", PACKAGE, "/etc", "/run", "/var/tmp", "/dev/shm", "/mnt", "/srv",
         "/media", "/data")
for root in ROOTS:
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.path.isfile(path) and os.path.getsize(path) < 5_000_000:
                    data = open(path, "rb").read()
                    if MARK.encode() in data:
                        found.append(path)
                    if OTHER.encode() in data:
                        other_found.append(path)
                    if OWN.encode() in data:
                        own_found.append(path)
            except OSError:
                pass
for path in ("/proc/1/mem", "/proc/1/environ", "/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/maps"):
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        found.append(path)
        if MARK.encode() in data:
            found.append(path + ": the mark")
    except OSError as e:
        denied[path] = type(e).__name__
try:
    os.listdir("/proc/1/fd")
    found.append("/proc/1/fd listed")
except OSError as e:
    denied["/proc/1/fd"] = type(e).__name__
env_keys = sorted(os.environ)
WORDS = "TOKEN|KEY|SECRET|PASS|GRAD|JUPYTERHUB|S3|DB|DOCKER"
suspicious = [k for k in os.environ if re.search(WORDS, k, re.I)]
mounts = [line.split()[1] for line in open("/proc/self/mounts")]
home = sorted(os.listdir(os.path.expanduser("~")))
docker_socket = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
cmdline = open("/proc/1/cmdline", "rb").read()
"""

#: a submission's first cell: its answer, with its mark, in the work folder and in /tmp
ANSWER = """
import os
for path in (os.path.expanduser("~/answer.txt"), "/tmp/answer.txt"):
    with open(path, "w") as f:
        f.write("the answer of " + {mark})
"""


def test_hidden_tests_secrets_and_other_work_are_out_of_reach(client, image):
    # another student's submission, graded just before in the same way: its mark must be
    # nowhere in the next one's container
    other = "OTHER-SUBMISSION-" + secrets.token_hex(8)
    earlier, _, _ = grade(
        client,
        image,
        [ANSWER.format(mark=repr(other))],
        {"written": "assert os.path.exists(os.path.expanduser('~/answer.txt'))"},
    )
    assert earlier.complete, earlier.reason
    assert by_id(earlier)["written"].status == "pass"
    # the marks are split in the probe's source, so that the kernel's own history (in
    # /tmp/.ipython) never holds them whole: only a file written with them does
    own = "OWN-SUBMISSION-" + secrets.token_hex(8)
    split = f"OTHER = {other[:8]!r} + {other[8:]!r}\nOWN = {own[:8]!r} + {own[8:]!r}"
    result, _, _ = grade(
        client,
        image,
        [split, ANSWER.format(mark="OWN"), PROBE_SECRETS],
        {
            "nothing_found": "assert found == []  # HIDDEN-MARK-4217",
            "proc_1_closed": "assert set(denied.values()) == {'PermissionError'}"
            " and len(denied) == 6",
            "no_credentials": "assert suspicious == []",
            "no_socket": "assert docker_socket is False",
            "no_volumes": "assert not [m for m in mounts if m.startswith(('/mnt', '/srv',"
            " '/data', '/var/lib/docker'))]",
            "secret_not_in_argv": "assert b'CHAG' not in cmdline and len(cmdline) < 80",
            # the work folder holds this submission's file and nothing planted there
            "only_this_work": "assert home == ['answer.txt'], home",
            # the scan does read the work folder and /tmp: it finds this submission's mark
            "scan_sees_own": "assert sorted(own_found) =="
            " ['/home/jovyan/answer.txt', '/tmp/answer.txt'], own_found",
            "no_other_work": "assert other_found == [], other_found",
        },
    )
    assert result.complete, result.reason
    assert {t.id: (t.status, t.message) for t in result.tests if t.status != "pass"} == {}


PROBE_PRIVILEGES = r"""
import errno, os
def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
# the kernel (this process) and the runner (PID 1)
kernel, runner = status("self"), status(1)
ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
CAPS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
caps = {p: {c: int(s[c], 16) for c in CAPS} for p, s in (("kernel", kernel), ("runner", runner))}
def cgroup_limits():
    def read(name):
        with open("/sys/fs/cgroup/" + name) as f:
            return f.read().strip()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2
        quota, period = read("cpu.max").split()
        memory, swap = read("memory.max"), read("memory.swap.max")
        memsw = "max" if "max" in (memory, swap) else int(memory) + int(swap)
        pids, version = read("pids.max"), 2
    else:
        quota, period = read("cpu/cpu.cfs_quota_us"), read("cpu/cpu.cfs_period_us")
        memory = read("memory/memory.limit_in_bytes")
        memsw = read("memory/memory.memsw.limit_in_bytes")
        pids, version = read("pids/pids.max"), 1
    number = lambda v: v if v == "max" else int(v)
    cpu = None if quota in ("max", "-1") else int(quota) / int(period)
    return {"version": version, "cpu": cpu, "memory": number(memory),
            "memsw": number(memsw), "pids": number(pids)}
try:
    limits = cgroup_limits()
except OSError as e:
    limits = {"error": repr(e)}
# the root is mounted read-only; writing a new file anywhere on it is EROFS (a uid-1000
# EACCES would not prove it), while the work folder and /tmp are writable tmpfs
options = {}
for line in open("/proc/self/mounts"):
    _, point, kind, opts = line.split()[:4]
    options[point] = (kind, set(opts.split(",")))
root_ro = "ro" in options["/"][1]
written = {}
for path in ("/probe", "/usr/probe", "/opt/venv/probe", "/etc/probe", "/var/probe",
             os.path.expanduser("~/probe"), "/tmp/probe"):
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        written[path] = "written"
    except OSError as e:
        written[path] = errno.errorcode[e.errno]
tmpfs = {p: (options[p][0], {"nosuid", "nodev", "noexec"} <= options[p][1])
         for p in ("/tmp", os.path.expanduser("~"))}
"""

#: not the defaults: each value inside the container must be the one passed to the sandbox
PROBED = dataclasses.replace(LIMITS, mem_limit="320m", pids_limit=80, cpu_limit=1.5)


def test_the_sealed_container_is_unprivileged_and_limited_as_seen_from_inside(client, image):
    memory = docker.utils.parse_bytes(PROBED.mem_limit)
    zero = dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    root = ("/probe", "/usr/probe", "/opt/venv/probe", "/etc/probe", "/var/probe")
    written = dict.fromkeys(root, "EROFS")
    written.update({f"{sandbox.WORKDIR}/probe": "written", "/tmp/probe": "written"})
    result, _, _ = grade(
        client,
        image,
        [PROBE_PRIVILEGES],
        {
            "uid_1000": "assert ids == (1000, 1000, 100, 100), ids",
            "all_uids": "assert [kernel['Uid'].split(), kernel['Gid'].split()]"
            " == [['1000'] * 4, ['100'] * 4], (kernel['Uid'], kernel['Gid'])",
            "no_root_group": "assert 0 not in os.getgroups(), os.getgroups()",
            "no_capabilities": f"assert caps == {{'kernel': {zero!r}, 'runner': {zero!r}}}, caps",
            "no_new_privileges": "assert (kernel['NoNewPrivs'], runner['NoNewPrivs'])"
            " == ('1', '1'), (kernel['NoNewPrivs'], runner['NoNewPrivs'])",
            "cpu": f"assert limits.get('cpu') == {PROBED.cpu_limit!r}, limits",
            "memory": f"assert limits.get('memory') == {memory}, limits",
            "no_swap": f"assert limits.get('memsw') == limits.get('memory') == {memory}, limits",
            "pids": f"assert limits.get('pids') == {PROBED.pids_limit}, limits",
            "root_mounted_ro": "assert root_ro, options['/']",
            "root_not_writable": f"assert written == {written!r}, written",
            "tmpfs_only": "assert tmpfs == {p: ('tmpfs', True) for p in tmpfs}, tmpfs",
        },
        limits=PROBED,
    )
    assert result.complete, result.reason
    assert {t.id: (t.status, t.message) for t in result.tests if t.status != "pass"} == {}
    assert len(result.tests) == 12


def test_processes_are_bounded_by_the_pids_limit(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "import subprocess\nstarted = 0\nprocs = []\n"
            "for _ in range(500):\n"
            "    try:\n"
            "        procs.append(subprocess.Popen(['sleep', '600']))\n"
            "        started += 1\n"
            "    except OSError:\n"
            "        break",
        ],
        {"bounded": f"assert 0 < started < {LIMITS.pids_limit}"},
    )
    assert result.complete, result.reason
    assert by_id(result)["bounded"].status == "pass"
    # the sleeping processes were killed before the tests, from outside the kernel
    assert any(f.startswith("background processes killed: ") for f in result.flags)


#: for the attacks that end by their cell's time limit: a short one (nothing honest runs long)
SHORT_CELLS = dataclasses.replace(LIMITS, cell_timeout=6.0)


def test_fork_bomb_ends_with_its_cell_and_scores_zero(client, image):
    result, run, elapsed = grade(
        client,
        image,
        [
            "def add(a, b):\n    return a + b",
            "import os\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass",
        ],
        {"add": "assert add(1, 2) == 3"},
        limits=SHORT_CELLS,
    )
    assert result.cells[1].status in ("timeout", "died", "error")
    assert elapsed < LIMITS.timeout
    add = by_id(result)["add"]
    # the kernel that forked itself is stopped: its tests score 0 with the reason (a
    # kernel that survived the interrupt would run the test honestly)
    assert add.status in ("pass", "died", "not-run")
    if add.status != "pass":
        assert add.score == 0 and "kernel" in add.message
    assert result.complete, result.reason


def test_memory_bomb_stops_at_the_limit(client, image):
    result, run, _ = grade(
        client,
        image,
        ["hog = []\nwhile True:\n    hog.append(bytearray(16 << 20))"],
        {"never": "assert len(hog) * 16 < 256"},
    )
    cell = result.cells[0]
    assert cell.status in ("error", "died"), cell
    # the kernel (the largest process) is what the OOM killer ends: the runner reports
    assert result.complete, result.reason
    assert run.facts.oom_killed or cell.status == "error"
    if cell.status == "error":
        assert "MemoryError" in cell.error
    never = by_id(result)["never"]
    if cell.status == "error":  # the kernel lived on: what it holds stayed under the limit
        assert never.status == "pass"
    else:  # the OOM killer ended the kernel: its tests score 0 with the reason
        assert (never.status, never.score) == ("died", 0.0) and never.message


def test_disk_bomb_fills_only_its_tmpfs(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "import os, errno\nwritten = 0\nfull = None\n"
            "try:\n"
            "    with open(os.path.expanduser('~/big'), 'wb') as f:\n"
            "        while True:\n"
            "            f.write(b'x' * (1 << 20))\n"
            "            f.flush()\n"
            "            written += 1 << 20\n"
            "except OSError as e:\n"
            "    full = e.errno\n"
            "try:\n"
            "    open('/opt/venv/evil.py', 'w')\n"
            "    root = 'writable'\n"
            "except OSError as e:\n"
            "    root = e.errno",
        ],
        {
            "tmpfs_full": "assert full == errno.ENOSPC and written <= 32 << 20",
            # EROFS only: a uid-1000 EACCES would pass on a writable root too
            "root_read_only": "assert root == errno.EROFS, root",
        },
    )
    assert result.complete, result.reason
    assert {t.id: t.status for t in result.tests} == {
        "tmpfs_full": "pass",
        "root_read_only": "pass",
    }


def test_output_flood_never_reaches_the_channel(client, image):
    result, run, _ = grade(
        client,
        image,
        [
            "import os, sys\n"
            "chunk = 'x' * (1 << 20) + '\\n'\n"
            "for _ in range(100):\n"
            "    print(chunk, end='')\n"
            "    sys.__stdout__.write(chunk)\n"
            "for _ in range(100):\n"
            "    os.write(1, chunk.encode())\n"
            "    os.write(2, chunk.encode())\n"
            "flooded = True",
        ],
        {"flooded": "assert flooded is True"},
    )
    # 100 MB each way; the service reads at most 1 MiB and would have been stopped
    assert not run.facts.output_capped
    assert not run.facts.problem
    assert result.complete, result.reason
    assert by_id(result)["flooded"].status == "pass"


def test_infinite_loop_in_try_finally_is_stopped_and_scores_zero(client, image):
    result, _, elapsed = grade(
        client,
        image,
        [
            "def add(a, b):\n    return a + b",
            "while True:\n    try:\n        while True:\n            pass\n"
            "    finally:\n        continue",
        ],
        {"add": "assert add(1, 2) == 3"},
        limits=SHORT_CELLS,
    )
    assert result.cells[1].status == "timeout"
    add = by_id(result)["add"]
    assert (add.status, add.score) in (("died", 0.0), ("not-run", 0.0))
    assert "kernel" in add.message
    assert result.complete, result.reason
    assert elapsed < LIMITS.timeout


FORGE = r"""
import os, sys, json, hmac, hashlib
def forged(seq, payload, key=b"0" * 32):
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    mac = hmac.new(key, f"{seq} {body}".encode(), hashlib.sha256).hexdigest()
    return f"CHAG1 {seq} {mac} {body}\n"
PASS = {"type": "test", "id": "right", "status": "pass", "message": "", "flags": []}
lines = "".join(forged(n, PASS) for n in range(20))
print(lines)
sys.__stdout__.write(lines); sys.__stdout__.flush()
os.write(1, lines.encode()); os.write(2, lines.encode())
opened = {}
for path in ("/proc/1/fd/1", "/dev/stdout", "/proc/self/fd/1", "/proc/1/fd/2"):
    try:
        with open(path, "w") as f:
            f.write(lines)
        opened[path] = "written"
    except OSError as e:
        opened[path] = type(e).__name__
def answer():
    return 41
"""


def test_forged_result_frames_are_refused_or_never_arrive(client, image):
    result, run, _ = grade(
        client,
        image,
        [FORGE],
        {
            "right": "assert answer() == 42",
            "proc_1_closed": "assert opened['/proc/1/fd/1'] == 'PermissionError'"
            " and opened['/proc/1/fd/2'] == 'PermissionError'",
        },
    )
    right = by_id(result)["right"]
    assert (right.status, right.score) == ("fail", 0.0), right.message
    closed = by_id(result)["proc_1_closed"]
    assert closed.status == "pass", closed.message
    assert not run.facts.problem  # not one forged line even reached the service
    assert result.complete, result.reason


@pytest.mark.parametrize(
    "exit_code, expected",
    [
        ("import sys\nsys.exit(0)", {"error"}),
        ("import os\nos._exit(0)", {"died"}),
        ("raise SystemExit(0)", {"error"}),
    ],
)
def test_exiting_early_never_passes(client, image, exit_code, expected):
    result, _, _ = grade(
        client,
        image,
        [exit_code + "\ndef add(a, b):\n    return a + b"],
        {"add": "assert add(1, 2) == 3"},
    )
    assert result.cells[0].status in expected
    add = by_id(result)["add"]
    assert add.score == 0.0
    assert add.status in ("fail", "error", "died", "not-run")
    assert add.message
    # the reason shown: the cell, named as the notebook shows it, and what stopped it
    (stopped,) = scoring.cell_problems(result.cells)
    assert stopped["label"] == "cell 1"
    if "died" in expected:
        assert "kernel ended" in stopped["error"]
        assert add.message == "not run: the kernel ended during cell 1"
    else:
        assert stopped["error"] == "SystemExit: 0"


def test_os_exit_after_a_correct_answer_scores_zero_with_the_reason(client, image):
    result, _, _ = grade(
        client,
        image,
        ["def add(a, b):\n    return a + b", "import os\nos._exit(0)"],
        {"add": "assert add(1, 2) == 3"},
    )
    add = by_id(result)["add"]
    assert (add.status, add.score) == ("died", 0.0)
    assert add.message == "not run: the kernel ended during cell 2"


# ----- in-kernel tricks: no undeserved point, or flagged


PATCHES = r"""
import math, builtins, unittest, sys
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0
unittest.TestCase.assertEqual = lambda self, a, b, msg=None: None
sys.settrace(lambda *a: None)
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ["pass\n"])
import ast
class Strip(ast.NodeTransformer):
    def visit_Assert(self, node):
        return None
ip.ast_transformers.append(Strip())
ip.events.register("pre_run_cell", lambda *a: None)
def area(r):
    return 3
"""


def test_monkeypatched_helpers_and_ipython_hooks_are_restored_and_flagged(client, image):
    result, _, _ = grade(
        client,
        image,
        [PATCHES],
        {
            "isclose": "import math\nassert math.isclose(area(1), math.pi)",
            "abs": "assert abs(area(1) - 3.14159) < 0.01",
            "unittest": "import unittest\nunittest.TestCase().assertEqual(area(1), 3.14)",
        },
    )
    assert result.complete, result.reason
    assert {t.id: t.score for t in result.tests} == {"isclose": 0.0, "abs": 0.0, "unittest": 0.0}
    flags = " ".join(result.flags)
    for expected in (
        "patched: math.isclose",
        "patched: builtins.abs",
        "patched: TestCase.assertEqual",
        "patched: sys.settrace",
        "patched: IPython input_transformers_post",
        "patched: IPython ast_transformers",
        "patched: IPython event pre_run_cell",
    ):
        assert expected in flags


def test_an_object_equal_to_everything_gets_no_point(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "class Anything:\n"
            "    def __eq__(self, other):\n        return True\n"
            "    def __bool__(self):\n        return True\n"
            "class Number(float):\n"
            "    def __eq__(self, other):\n        return True\n"
            "def area(r):\n    return Anything()\n"
            "def double(x):\n    return Number(0)\n"
            "def pairs():\n    return [1, Anything()]",
        ],
        {
            "area": "assert area(1) == 3.14159",
            "double": "assert double(2) == 4",
            "pairs": "assert pairs() == [1, 2]",
            "truthy": "assert area(0)",
        },
    )
    assert result.complete, result.reason
    assert all(t.score == 0 for t in result.tests), result.tests
    assert all("untrusted" in t.message for t in result.tests), [t.message for t in result.tests]
    assert all(any("untrusted" in f for f in t.flags) for t in result.tests)


def test_code_that_notices_grading_gains_nothing(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "import os, socket\n"
            "graded = any('GRAD' in k.upper() for k in os.environ)"
            " or socket.if_nameindex() == [(1, 'lo')]\n"
            "marker = sorted(k for k in os.environ if 'GRAD' in k.upper() or 'NBGRADER' in k)\n"
            "if graded:\n"
            "    import math\n"
            "    math.isclose = lambda *a, **k: True\n"
            "def area(r):\n    return 3",
        ],
        {
            "area": "import math\nassert math.isclose(area(1), math.pi)",
            "no_marker": "assert marker == []",
        },
    )
    assert result.complete, result.reason
    tests = by_id(result)
    assert tests["no_marker"].status == "pass"  # the environment names no grading
    assert tests["area"].score == 0
    assert "patched: math.isclose" in result.flags


def test_background_process_is_killed_before_the_tests(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "import subprocess, sys\n"
            "loop = 'import time\\nwhile True: time.sleep(1)'\n"
            "spy = subprocess.Popen([sys.executable, '-c', loop])\n"
            "spy_pid = spy.pid",
        ],
        {
            "gone": "import os\nassert not os.path.exists(f'/proc/{spy_pid}/cmdline') or"
            " open(f'/proc/{spy_pid}/stat').read().split()[2] == 'Z'"
        },
    )
    assert result.complete, result.reason
    assert by_id(result)["gone"].status == "pass"
    assert "background processes killed: 1" in result.flags


# ----- the service side's own limits


def test_the_runs_wall_clock_limit_kills_it_and_scores_zero(client, image):
    limits = dataclasses.replace(LIMITS, timeout=10.0, cell_timeout=8.0)
    result, run, elapsed = grade(
        client,
        image,
        ["def add(a, b):\n    return a + b", *["import time\ntime.sleep(6)"] * 4],
        {"add": "assert add(1, 2) == 3"},
        limits=limits,
    )
    assert run.facts.timed_out
    assert elapsed < limits.timeout + 2 * limits.docker_timeout
    add = by_id(result)["add"]
    assert (add.status, add.score) == ("not-run", 0.0)
    assert "time limit" in add.message
    assert not result.complete


def test_output_over_the_cap_stops_the_run_and_is_flagged(client, image):
    limits = dataclasses.replace(LIMITS, output_limit=300)
    result, run, _ = grade(
        client,
        image,
        ["def add(a, b):\n    return a + b", "x = 1", "y = 2"],
        {"add": "assert add(1, 2) == 3"},
        limits=limits,
    )
    assert run.facts.output_capped
    assert by_id(result)["add"].score == 0
    assert "over the cap" in result.reason


async def test_the_async_autograder_scores_and_reports_a_missing_image(image):
    autograder = sandbox.Autograder(LIMITS, concurrency=1)
    try:
        source = {
            "nbformat": 4,
            "cells": [
                code(
                    "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n"
                    "    ### END SOLUTION",
                    grade_id="add",
                    solution=True,
                ),
                code("assert add(1, 2) == 3", grade_id="t", grade=True, locked=True, points=2),
            ],
        }
        submitted = {
            "nbformat": 4,
            "cells": [code("def add(a, b):\n    return b + a", grade_id="add", solution=True)],
        }
        plan = notebook.make_plan(source, submitted)
        result = await autograder.grade(image, plan)
        assert (result.score, result.points, result.complete) == (2.0, 2.0, True)
        assert [(f.grade_id, f.kind) for f in result.cell_flags] == [("t", "deleted")]
        missing = await autograder.grade("classhub/no-such-image:none", plan)
        assert missing.score == 0 and not missing.complete
        assert "not on this server" in missing.tests[0].message
    finally:
        autograder.close()


def test_a_thread_that_patches_during_the_tests_is_flagged(client, image):
    result, _, _ = grade(
        client,
        image,
        [
            "import _thread, threading, time, math\n"
            "def repatch():\n"
            "    while True:\n"
            "        math.isclose = lambda *a, **k: True\n"
            "        time.sleep(0.01)\n"
            "_thread.start_new_thread(repatch, ())\n"
            "threading.Thread(target=repatch, daemon=True).start()\n"
            "def area(r):\n    return 3",
        ],
        {"area": "import math\nassert math.isclose(area(1), math.pi)"},
    )
    assert result.complete, result.reason
    area = by_id(result)["area"]
    # the patch comes back after the guard restored it: the point may be lost or won,
    # but never silently
    assert area.score == 0 or any(f.startswith("background threads: 2") for f in result.flags)
    assert any(f.startswith("background threads: ") for f in result.flags)


DATASCIENCE = "classhub/datascience:latest"


@pytest.fixture(scope="module")
def datascience(client):
    """A class image (numpy, pandas) built FROM classhub/singleuser, with this runner."""
    try:
        client.images.get(DATASCIENCE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{DATASCIENCE} is not built on this machine (images/build.sh datascience)")
    tag = build_image(client, DATASCIENCE, "classhub/datascience:autograde-test")
    yield tag
    client.images.remove(tag, force=True)


@pytest.mark.all_images  # run after the other images are built (Makefile test-integration-rest)
def test_a_class_image_grades_numpy_and_pandas_and_refuses_their_impostors(client, datascience):
    result, _, _ = grade(
        client,
        datascience,
        [
            "import numpy as np\nimport pandas as pd\n"
            "def f(x):\n    return np.asarray(x) * 2\n"
            "df = pd.DataFrame({'a': [1, 2]})\n"
            "class Liar(np.ndarray):\n"
            "    def __eq__(self, other):\n        return np.ones(np.shape(other), bool)\n"
            "class Anything:\n    def __eq__(self, other):\n        return True\n"
            "def g(x):\n    return np.zeros(2).view(Liar)\n"
            "def h(x):\n    return np.array([Anything(), Anything()], dtype=object)",
        ],
        {
            "allclose": "assert np.allclose(f([1, 2]), [2, 4])",
            "eq_all": "assert (f([1, 2]) == np.array([2, 4])).all()",
            "testing": "np.testing.assert_allclose(f([1.0]), [2.0])",
            "scalar": "assert f(3) == 6",
            "pandas": "assert (df['a'] == pd.Series([1, 2])).all()",
            "pandas_testing": "pd.testing.assert_frame_equal(df, pd.DataFrame({'a': [1, 2]}))",
            "subclass": "assert (g(1) == np.array([2, 4])).all()",
            "object_array": "assert (h(1) == np.array([2, 4])).all()",
        },
    )
    assert result.complete, result.reason
    status = {t.id: t.status for t in result.tests}
    honest = ("allclose", "eq_all", "testing", "scalar", "pandas", "pandas_testing")
    assert {k: status[k] for k in honest} == dict.fromkeys(honest, "pass")
    impostors = {t.id: t for t in result.tests if t.id in ("subclass", "object_array")}
    assert all(t.score == 0 and "untrusted" in t.message for t in impostors.values())
