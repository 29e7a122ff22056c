"""No power enters a student's container, against the real hub,
Traefik, PostgreSQL, SeaweedFS, nx-27017 and real student containers.

The student servers here run a test image built FROM classhub/singleuser:latest with one
more server extension (``classhub_recorder``) that appends every request's Authorization
header, ``token`` parameters and cookies to a file in the container, before any handler
sees the request: what really reaches the server.

1. During submit, collect, push, release and feedback every credential the servers
   receive is recorded; each is then tried on another student's server and on the hub API
   (listing users, starting another's server) and refused. The files and grades services
   now work from helper containers that mount the homes, so the servers receive nothing
   from them: the only credentials recorded are those of the student's own browser, which
   the test sends itself during the window (the control that proves the recorder works).
   Neither service's hub token appears anywhere.
2. A stopped server's assignment folder is snapshotted without starting it (no container
   of the student is created meanwhile).
3. A hostile home (links out of the folder, a FIFO, a sitecustomize.py, usercustomize.py
   and a .pth in ~/.local, a fake classhub_singleuser package in the home, a feedback
   folder that is a link) neither makes the helper follow a link nor run the student's
   code, and does not hang it.
4. The server process is non-dumpable: as uid 1000 in the running container (what a
   student's terminal is), /proc/<server pid>/mem and environ cannot be read, while a
   kernel and a terminal still work and the kernel (a separate program) stays the
   student's to inspect.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import secrets
import tarfile
import time
import zipfile
from pathlib import Path

import docker
import pytest
import requests

from harness.classes import Person
from harness.files import FILES, TEST_FILES_ENV, upload
from harness.stack import Stack, running_stack, wait_for
from tests.integration.ws_helpers import cookie_header, open_kernel_ws, open_terminal_ws

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "sec9"
LOG = "/tmp/classhub-credentials.jsonl"

RECORDER = '''
"""Test only: log every request's credentials to /tmp/classhub-credentials.jsonl."""
import json
import time

LOG = "/tmp/classhub-credentials.jsonl"


def _jupyter_server_extension_points():
    return [{"module": "classhub_recorder"}]


def _load_jupyter_server_extension(serverapp):
    app = serverapp.web_app
    find_handler = app.find_handler

    def recording(request, **kwargs):
        entry = {
            "t": time.time(),
            "method": request.method,
            "path": request.path,
            "authorization": request.headers.get_list("Authorization"),
            "tokens": [
                v.decode("utf-8", "replace")
                for k, vs in request.query_arguments.items()
                if k.lower() in ("token", "_xsrf", "access_token")
                for v in vs
            ],
            "cookie": request.headers.get_list("Cookie"),
        }
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\\n")
        return find_handler(request, **kwargs)

    app.find_handler = recording
'''

RECORDER_DOCKERFILE = """
FROM classhub/singleuser:latest
USER root
COPY classhub_recorder.py /tmp/classhub_recorder.py
COPY zz-recorder.json /opt/venv/etc/jupyter/jupyter_server_config.d/zzz-recorder.json
RUN site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \\
 && cp /tmp/classhub_recorder.py "$site/" && rm /tmp/classhub_recorder.py
USER 1000:100
"""

# Code a student plants so that any Python that reads the home's site folders, or runs
# with the home as its current folder, leaves a mark and says so.
EVIL = (
    "import os\n"
    "for d in ['/tmp', '/mnt/io', '/mnt/io/out'] + ['/mnt/homes/%d' % i for i in range(64)]"
    " + [os.path.expanduser('~')]:\n"
    "    try:\n"
    "        open(os.path.join(d, 'PWNED-%d' % os.getpid()), 'w').write('student code ran')\n"
    "    except OSError:\n"
    "        pass\n"
    "print('PWNED')\n"
    "os._exit(3)\n"  # and a Python that ran it does nothing else: the work would fail
)


@pytest.fixture(scope="module")
def recorder_image():
    client = docker.from_env(timeout=300)
    tag = f"classhub-test/recorder:{secrets.token_hex(4)}"
    context = io.BytesIO()
    files = {
        "Dockerfile": RECORDER_DOCKERFILE.encode(),
        "classhub_recorder.py": RECORDER.encode(),
        "zz-recorder.json": json.dumps(
            {"ServerApp": {"jpserver_extensions": {"classhub_recorder": True}}}
        ).encode(),
    }
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    yield tag
    try:
        client.images.remove(tag, force=True)
    except docker.errors.APIError:
        pass
    client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, recorder_image):
    new = Stack(
        tmp_path_factory.mktemp("homes"),
        image=recorder_image,
        with_files=True,
        env=dict(TEST_FILES_ENV),
    )
    for stack in running_stack(new):
        for service in (FILES, GRADES):
            health = stack.url + service + "health"
            wait_for(lambda h=health: requests.get(h, timeout=5).ok, 90, what=service)
        stack.enroll("tom9", CODE, teacher=True)
        for student in ("ann9", "bob9", "cid9"):
            stack.enroll(student, CODE)
        yield stack


def sh(stack, user, script: str, check: bool = True) -> str:
    """Run ``script`` as the student (uid 1000) in their container: their terminal."""
    code, out = stack.server_container(user, CODE).exec_run(["bash", "-c", script], user="1000:100")
    text = out.decode(errors="replace")
    assert not check or code == 0, text
    return text


def recorded(stack, user) -> list[dict]:
    text = sh(stack, user, f"cat {LOG} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def credentials(entries: list[dict]) -> set[tuple[str, str]]:
    """Every credential in the recorded requests: ("authorization", value),
    ("token", value), ("cookie", "name=value")."""
    found = set()
    for e in entries:
        found |= {("authorization", v) for v in e["authorization"] if v}
        found |= {("token", v) for v in e["tokens"] if v}
        for header in e["cookie"]:
            for part in header.split(";"):
                if part.strip():
                    found.add(("cookie", part.strip()))
    return found


def grades(stack, name, role="student") -> Person:
    return Person(stack, name, role, service=GRADES)


def also_files(stack, who: Person) -> Person:
    """The same browser signed in at the files service too (one hub session per person)."""
    r = who.browser.get(stack.url + FILES, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == who.name, r.text
    other = copy.copy(who)
    other.service = FILES
    return other


def service_token(stack, module: str) -> str:
    """The hub token of a running service (``services.files``), read from its process:
    what the services used to send into student servers."""
    hub = stack.hub.proc.pid
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == hub and module.encode() in cmdline:
            for var in environ:
                if var.startswith(b"JUPYTERHUB_API_TOKEN="):
                    return var.split(b"=", 1)[1].decode()
    raise LookupError(f"{module} is not running under this hub")


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def wait_push(teacher: Person, push_id: str) -> dict:
    def done():
        body = teacher.get(f"api/classes/{CODE}/pushes/{push_id}").json()
        return body if body["status"] == "done" else None

    return wait_for(done, 90, interval=0.3, what=f"push {push_id} done")


def open_server(stack, person: Person, user: str) -> None:
    """The student opens their class server in the browser (the hub's OAuth on the way)."""
    lab = person.browser.get(stack.url + f"/user/{user}/{CODE}/lab", timeout=60)
    assert lab.status_code == 200 and f"/user/{user}/{CODE}/lab" in lab.url, lab.url


def replay_refused(stack, kind: str, value: str) -> None:
    """``value`` (as the server received it) opens neither another student's server nor
    the hub API."""
    if kind == "authorization":
        ways = [{"headers": {"Authorization": value}}]
    elif kind == "token":
        ways = [{"params": {"token": value}}, {"headers": {"Authorization": f"token {value}"}}]
    else:
        ways = [{"headers": {"Cookie": value}}]
        name, _, raw = value.partition("=")
        ways.append({"headers": {"Authorization": f"token {raw}"}})
    for way in ways:
        bob = requests.get(
            stack.url + f"/user/bob9/{CODE}/api/contents",
            timeout=15,
            allow_redirects=False,
            **way,
        )
        assert bob.status_code != 200, (kind, bob.status_code)
        assert bob.status_code in (302, 401, 403), (kind, bob.status_code, bob.text[:200])
        users = requests.get(stack.url + "/hub/api/users", timeout=15, **way)
        assert users.status_code in (401, 403), (kind, users.status_code)
        start = requests.post(stack.url + "/hub/api/users/bob9/servers/other9", timeout=15, **way)
        assert start.status_code in (401, 403, 404), (kind, start.status_code)
    assert stack.server_model("bob9", "other9") is None


def test_no_credential_reaches_a_student_server_during_the_services_work(stack):
    tom = grades(stack, "tom9", "teacher")
    tom_files = also_files(stack, tom)
    ann = grades(stack, "ann9")
    stack.spawn("ann9", CODE)
    stack.spawn("bob9", CODE)
    stack.write_home("ann9", CODE, f"{CODE}/assignments/hw1/answer.py", b"print(42)\n")
    upload(tom_files, f"class/{CODE}", "sheet.txt", b"material v1")
    upload(tom_files, f"class/{CODE}/assignments", "hw1/start.py", b"# start here\n")
    status = f"/user/ann9/{CODE}/api/status"
    open_server(stack, ann, "ann9")
    for student in ("ann9", "bob9"):
        sh(stack, student, f": > {LOG}")  # the window opens: nothing recorded before counts

    # the control: ann's own browser calls her server, so its cookies are recorded
    control = {("cookie", part.strip()) for part in cookie_header(ann.browser, status).split(";")}
    assert any(value.startswith("jupyterhub-user-ann9") for _, value in control), control
    r = ann.browser.get(stack.url + status, timeout=60, allow_redirects=False)
    assert r.status_code == 200, r.status_code

    # push: material into every student's folder
    pushed = wait_push(tom_files, tom_files.post(f"api/classes/{CODE}/pushes").json()["id"])
    statuses = {s["user"]: s["status"] for s in pushed["students"]}
    assert statuses == {"ann9": "delivered", "bob9": "delivered", "cid9": "waiting"}
    # release: the grades service asks the files service, which writes the starting files
    body = {
        "slug": "hw1",
        "title": "Homework 1",
        "max_points": 10,
        "release_at": iso(-60),
        "due_at": iso(3600),
    }
    assert tom.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201
    wait_for(
        lambda: (
            sh(stack, "ann9", f"cat ~/{CODE}/assignments/hw1/start.py", check=False)
            == "# start here\n"
        ),
        90,
        interval=0.5,
        what="the release in ann's folder",
    )
    # submit, collect, grade and return (feedback)
    submitted = ann.post(f"api/classes/{CODE}/assignments/hw1/submit")
    assert submitted.status_code == 201, submitted.text
    collected = tom.post(f"api/classes/{CODE}/assignments/hw1/collect", timeout=300)
    assert collected.status_code == 200, collected.text
    sub = submitted.json()["id"]
    r = tom.call("PUT", f"api/submissions/{sub}/grade", json={"points": 9, "expected_revision": 0})
    assert r.status_code == 200, r.text
    assert tom.post(f"api/submissions/{sub}/return").status_code == 200
    wait_for(
        lambda: (
            "Points: 9" in sh(stack, "ann9", f"cat ~/{CODE}/feedback/hw1/feedback.md", check=False)
        ),
        60,
        interval=0.5,
        what="the feedback in ann's folder",
    )

    # what the servers received in that window
    ann_got = credentials(recorded(stack, "ann9"))
    bob_got = credentials(recorded(stack, "bob9"))
    assert ann_got == control, ann_got ^ control  # her own browser's, nothing else
    assert bob_got == set()  # bob's browser did nothing: nobody else sent anything
    everything = json.dumps(recorded(stack, "ann9") + recorded(stack, "bob9"))
    for module in ("services.files", "services.grades"):
        assert service_token(stack, module) not in everything
    # and what was received is refused everywhere else
    for kind, value in ann_got:
        replay_refused(stack, kind, value)
    # the helpers are gone, with their volumes, once their work is done
    wait_for(lambda: stack.helper_containers() == [], 30, what="no helper container left")


def test_a_stopped_server_is_snapshotted_without_starting_it(stack):
    cid, tom = grades(stack, "cid9"), grades(stack, "tom9", "teacher")
    body = {"slug": "hw3", "title": "Homework 3", "max_points": 5, "due_at": iso(3600)}
    assert tom.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201
    stack.spawn("cid9", CODE)
    stack.write_home("cid9", CODE, f"{CODE}/assignments/hw3/answer.py", b"print('cid')\n")
    stack.stop("cid9", CODE)
    client = docker.from_env()
    # events are timed to the second, and `since` includes its own second: wait until the
    # spawn's own "start" (above, in the same second on a fast machine) is in the past
    time.sleep(1.1)
    since = int(time.time())
    r = cid.post(f"api/classes/{CODE}/assignments/hw3/submit")
    assert r.status_code == 201, r.text
    until = int(time.time()) + 1
    events = list(
        client.events(
            since=since,
            until=until,
            decode=True,
            filters={"type": "container", "label": ["classhub.user=cid9"]},
        )
    )
    client.close()
    started = [e for e in events if e.get("Action") in ("create", "start", "restart")]
    assert started == []  # no container of cid's was created or started
    assert stack.server_model("cid9", CODE) is None
    link = tom.get(f"api/submissions/{r.json()['id']}/download").json()["url"]
    with zipfile.ZipFile(io.BytesIO(requests.get(link, timeout=30).content)) as zf:
        assert zf.read("answer.py") == b"print('cid')\n"
    # a student who never started the class has no home: a clear refusal
    stack.enroll("dan9", CODE)
    dan = grades(stack, "dan9")
    r = dan.post(f"api/classes/{CODE}/assignments/hw3/submit")
    assert r.status_code == 409 and "no home folder" in r.json()["message"], r.text


def test_a_hostile_home_makes_the_helper_follow_nothing_and_run_nothing(stack):
    ann, tom = grades(stack, "ann9"), grades(stack, "tom9", "teacher")
    tom_files = also_files(stack, tom)
    if stack.server_model("ann9", CODE) is None:
        stack.spawn("ann9", CODE)
    site = "~/.local/lib/python3.11/site-packages"
    hw = f"~/{CODE}/assignments/hw2"
    plant = "\n".join(
        [
            "set -e",
            f"mkdir -p {hw} {site} ~/classhub_singleuser ~/elsewhere",
            f"echo 'print(2)' > {hw}/answer.py",
            "echo PRIVATE > ~/private.txt",
            f"ln -s ~/private.txt {hw}/notes.txt",
            f"ln -s /etc {hw}/system",
            f"ln -s ~ {hw}/home",
            f"mkfifo {hw}/pipe",
            f"cat > {site}/sitecustomize.py <<'EOF'\n{EVIL}EOF",
            f"cp {site}/sitecustomize.py {site}/usercustomize.py",
            f"cp {site}/sitecustomize.py ~/sitecustomize.py",
            f"echo \"import os; exec(open(os.path.expanduser('{site}/sitecustomize.py')).read())\""
            f" > {site}/evil.pth",
            "cp ~/sitecustomize.py ~/classhub_singleuser/__init__.py",
            "cp ~/sitecustomize.py ~/classhub_singleuser/homectl.py",
            f"rm -rf ~/{CODE}/feedback && ln -s ~/elsewhere ~/{CODE}/feedback",
        ]
    )
    sh(stack, "ann9", plant)
    body = {"slug": "hw2", "title": "Homework 2", "max_points": 5, "due_at": iso(3600)}
    assert tom.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201

    # a snapshot (read-only mount): links and the FIFO are left out, nothing hangs
    r = ann.post(f"api/classes/{CODE}/assignments/hw2/submit", timeout=120)
    assert r.status_code == 201, r.text
    link = tom.get(f"api/submissions/{r.json()['id']}/download").json()["url"]
    with zipfile.ZipFile(io.BytesIO(requests.get(link, timeout=30).content)) as zf:
        assert zf.namelist() == ["answer.py"]
        assert b"PRIVATE" not in b"".join(zf.read(n) for n in zf.namelist())
    collected = tom.post(f"api/classes/{CODE}/assignments/hw2/collect", timeout=300)
    assert collected.status_code == 200, collected.text
    # a delivery (read-write mount) and feedback through a folder that is a link
    upload(tom_files, f"class/{CODE}", "sheet2.txt", b"material v2")
    pushed = wait_push(tom_files, tom_files.post(f"api/classes/{CODE}/pushes").json()["id"])
    ann_delivery = next(s for s in pushed["students"] if s["user"] == "ann9")
    assert ann_delivery["status"] == "delivered", ann_delivery
    r = tom.call(
        "PUT",
        f"api/submissions/{r.json()['id']}/grade",
        json={"points": 5, "feedback": "ok", "expected_revision": 0},
    )
    assert r.status_code == 200, r.text
    sub = r.json()["id"]
    assert tom.post(f"api/submissions/{sub}/return").status_code == 200
    time.sleep(3)  # a few rounds of the feedback loop (it retries what failed)

    # nothing of the student's ran anywhere, no link was followed
    marks = sh(stack, "ann9", "find ~ /tmp -name 'PWNED-*' 2>/dev/null || true")
    assert marks.strip() == "", marks
    assert sh(stack, "ann9", "ls -A ~/elsewhere").strip() == ""
    assert sh(stack, "ann9", "cat ~/private.txt").strip() == "PRIVATE"
    assert sh(stack, "ann9", f"cat ~/{CODE}/material/sheet2.txt") == "material v2"
    # the planted code would break the student's own Python from here on: remove it
    sh(stack, "ann9", f"rm -rf {site} ~/sitecustomize.py ~/classhub_singleuser {hw}/pipe")


async def test_the_server_process_is_non_dumpable_and_kernels_and_terminals_work(stack):
    ann = grades(stack, "ann9")
    if stack.server_model("ann9", CODE) is None:
        stack.spawn("ann9", CODE)
    probe = r"""
import os, sys, subprocess
def pid_of(word):
    # a Python process running the program ``word`` (not docker-init, PID 1, whose
    # command line names it too; not this probe, whose script does not hold it whole)
    for p in sorted(os.listdir('/proc')):
        if p.isdigit():
            try:
                args = open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')
            except OSError:
                continue
            if b'python' in args[0] and any(a.endswith(word) for a in args[1:]):
                return int(p)
def readable(pid, name):
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as f:
            f.read(16)
        return 'read'
    except OSError as e:
        return type(e).__name__
server = pid_of(b'classhub-' + b'singleuser')  # the image's CMD (start.py)
other = subprocess.Popen(['sleep', '30'])
print(os.getuid(), server is not None)
print(readable(server, 'mem'), readable(server, 'environ'))
print(readable(other.pid, 'environ'))
kernel = pid_of(b'ipykernel' + b'_launcher')
print(readable(kernel, 'environ') if kernel else 'no-kernel')
other.kill()
"""
    first = sh(stack, "ann9", f"python3 - <<'EOF'\n{probe}\nEOF").split("\n")
    assert first[0] == "1000 True"
    # the server: neither its memory nor its environment (its hub token) can be read
    assert first[1] == "PermissionError PermissionError", first
    # the control: another process of the same uid is readable, as before
    assert first[2] == "read", first

    # kernels and terminals still work (separate programs: exec makes them dumpable)
    base = f"/user/ann9/{CODE}/"
    open_server(stack, ann, "ann9")
    cookies = cookie_header(ann.browser, base + "api/kernels")
    kernel = await open_kernel_ws(stack, base, cookies)
    terminal = await open_terminal_ws(stack, base, cookies)
    try:
        second = (
            await asyncio.to_thread(sh, stack, "ann9", f"python3 - <<'EOF'\n{probe}\nEOF")
        ).split("\n")
        assert second[3] == "read", second  # the student's own kernel stays theirs
    finally:
        kernel.close()
        terminal.close()
