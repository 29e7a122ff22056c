"""Homes helper benchmark (no power enters a student's container): what it costs to read
and write students' homes from throwaway helper containers instead of through their servers.

Two parts:

1. ``--direct``: the helper alone (``services.base.homes.Homes``, the code the files and
   grades services run), against ``--students`` home volumes made here as the spawner names
   them (no hub): deliveries of a 10-file material zip and snapshots of a ``--mb`` MB
   assignment folder into/from every home, for each batch size of ``--batch`` and each
   concurrency of ``--concurrency``. Timed: all homes done, containers used.
2. The whole stack (harness/stack.py: hub, Traefik, PostgreSQL, nx-27017, SeaweedFS, the
   files and grades services), ``--students`` enrolled students whose homes exist,
   ``--running`` of them with a running class server (real containers), the rest stopped:
   a push of 10 files to all (push request to every delivery recorded), one Submit at a
   time (latency of ``--single`` Submits in a row), "Collect now" for the whole class, and
   a Submit rush (every student presses Submit within ``--window`` seconds, open loop).

3. ``--deadline``: the deadline snapshot on the whole stack: ``--students``
   enrolled students whose homes hold ``--mb`` MB of work, ``--running`` of them with a
   running class server (real containers), the rest stopped; an assignment due
   ``--lead`` seconds after it is made; nobody presses anything. Timed: from the deadline
   to each student's snapshot recorded (``deadline_snapshots.taken_at``, written in the
   transaction that records the version), read from PostgreSQL; then checked: one deadline
   version per student, its snapshot in the S3 store. ``--rounds N``: N deadlines in a row
   on the same stack (new work in every home and the due date moved before each).

Usage: .venv/bin/python bench/homes_bench.py --direct [--students 100] [--mb 5]
           [--batch 1,10,25,50] [--concurrency 1,2,4]
       .venv/bin/python bench/homes_bench.py [--students 100] [--running 50] [--mb 5]
           [--window 60] [--single 10]
       .venv/bin/python bench/homes_bench.py --deadline [--students 300] [--running 150]
           [--mb 5] [--lead 30] [--rounds 1]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import concurrent.futures
import copy
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import pct  # noqa: E402
from common.naming import object_name  # noqa: E402
from harness.classes import Person  # noqa: E402
from harness.files import TEST_FILES_ENV  # noqa: E402
from harness.stack import Stack, running_stack, wait_for  # noqa: E402
from services.base.homes import HelperSettings, Homes  # noqa: E402

CODE = "hb"
FILES, GRADES = "/services/files/", "/services/grades/"
IMAGE = "classhub/singleuser:latest"

# what a student's folder holds: ``mb`` MB of notebook-like text in 4 files
FILL = f"""
import os, random, sys
mb = int(sys.argv[1])
for home in sys.argv[2:]:
    d = os.path.join(home, "{CODE}/assignments/hw")
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(home)
    size = mb * 1000000 // 4
    for i in range(4):
        lines, n = [], 0
        while n < size:
            line = f"cell {{rnd.random():.12f}} = compute(x_{{rnd.randrange(10**6)}})\\n"
            lines.append(line)
            n += len(line)
        with open(os.path.join(d, f"part{{i}}.py"), "w") as f:
            f.write("".join(lines))
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def make_homes(client, prefix: str, users: list[str], mb: int) -> list[str]:
    """Home volumes named as the spawner names them, owned by uid 1000 as a first start
    leaves them, with ``mb`` MB of work each; 25 homes per filling container."""
    volumes = [object_name(prefix, "home", u, CODE) for u in users]
    for start in range(0, len(volumes), 25):
        chunk = volumes[start : start + 25]
        mounts = {v: {"bind": f"/h/{i}", "mode": "rw"} for i, v in enumerate(chunk)}
        homes = [f"/h/{i}" for i in range(len(chunk))]
        script = 'python3 -c "$0" "$@" && chown -R 1000:100 /h && chmod 755 /h/*'
        client.containers.run(
            IMAGE,
            ["bash", "-c", script, FILL, str(mb), *homes],
            user="0:0",
            remove=True,
            volumes=mounts,
        )
    return volumes


def material_zip(files: int = 10) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(files):
            body = os.urandom(20_000) if i % 2 else (f"# notebook {i}\n" * 500).encode()
            zf.writestr(f"week1/file{i}.txt", body)
    return buffer.getvalue()


async def direct_round(prefix, users, op, batch, concurrency, data) -> tuple[float, int, int]:
    settings = HelperSettings(
        image="classhub/homes-helper:latest", deployment=prefix, service="bench"
    )
    homes = Homes(settings, max_batch=batch, concurrency=concurrency)
    try:
        t = time.perf_counter()
        if op == "apply":
            results = await asyncio.gather(
                *(homes.apply(u, CODE, f"{CODE}/material", "bench", data) for u in users),
                return_exceptions=True,
            )
        else:
            results = await asyncio.gather(
                *(homes.snapshot(u, CODE, f"{CODE}/assignments/hw") for u in users),
                return_exceptions=True,
            )
        took = time.perf_counter() - t
        failed = sum(isinstance(r, BaseException) for r in results)
        containers = len(homes.snapshots.batch_sizes) + len(homes.deliveries.batch_sizes)
    finally:
        homes.close()
    return took, containers, failed


def direct(students: int, mb: int, batches: list[int], concurrencies: list[int]) -> list[str]:
    client = docker.from_env(timeout=300)
    prefix = "hbench" + os.urandom(3).hex()
    users = [f"s{i:03d}" for i in range(students)]
    t = time.perf_counter()
    volumes = make_homes(client, prefix, users, mb)
    made = time.perf_counter() - t
    data = material_zip()
    rows = [
        f"- {students} homes of {mb} MB made in {made:.0f} s; load before: `{uptime()}`",
        "",
        "| work | batch size | helpers at once | all homes done | containers | failed |",
        "|---|---|---|---|---|---|",
    ]
    try:
        for op in ("apply", "snapshot"):
            for concurrency in concurrencies:
                for batch in batches:
                    took, containers, failed = asyncio.run(
                        direct_round(prefix, users, op, batch, concurrency, data)
                    )
                    what = "deliver 10 files" if op == "apply" else f"snapshot {mb} MB"
                    rows.append(
                        f"| {what} | {batch} | {concurrency} | **{took:.2f} s** | {containers} "
                        f"| {failed} |"
                    )
                    print(rows[-1], file=sys.stderr)
    finally:
        for v in volumes:
            try:
                client.volumes.get(v).remove(force=True)
            except docker.errors.APIError:
                pass
        client.close()
    return rows


HELPER_LINE = re.compile(r"Helper (snapshot|apply) of (\d+) home\(s\): exit (\S+) in ([\d.]+) s")


class HelperLog:
    """The services' log lines about their helper containers (in the hub's log), from a
    mark on: how many containers, how many homes, their run times."""

    def __init__(self, stack: Stack):
        self.path = stack.hub.log_path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def summary(self) -> str:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        runs = [m.groups() for m in HELPER_LINE.finditer(text)]
        if not runs:
            return "no helper"
        homes = [int(n) for _, n, _, _ in runs]
        took = [float(t) for _, _, _, t in runs]
        return (
            f"{len(runs)} helper(s) for {sum(homes)} home(s) (batches {min(homes)}-{max(homes)}),"
            f" each {min(took):.1f}-{max(took):.1f} s"
        )


def whole_stack(
    stack: Stack, students: int, running: int, mb: int, window: float, single: int
) -> list[str]:
    users = [f"s{i:03d}" for i in range(students)]
    stack.enroll("teach", CODE, teacher=True)
    for u in users:
        stack.create_user(u)
    r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": users})
    assert r.status_code == 200, r.text
    make_homes(stack.docker, stack.prefix, users, mb)
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: stack.api("POST", f"/users/{n}/servers/{CODE}", json={}), users[:running]
            )
        )
    for n in users[:running]:
        stack.wait_ready(n, CODE, timeout=900)
    spawned = time.perf_counter() - t
    teacher = Person(stack, "teach", "teacher", service=GRADES)
    r = teacher.browser.get(stack.url + FILES, timeout=30)
    assert r.status_code == 200, r.text
    files = copy.copy(teacher)  # the same browser, at the files service
    files.service = FILES
    r = teacher.post(
        f"api/classes/{CODE}/assignments",
        json={"slug": "hw", "title": "HW", "max_points": 10, "due_at": "2099-01-01T00:00:00Z"},
    )
    assert r.status_code == 201, r.text
    for i in range(10):
        body = os.urandom(20_000) if i % 2 else (f"# notebook {i}\n" * 500).encode()
        r = files.post(
            f"api/files/class/{CODE}/uploads",
            json={"path": f"week1/file{i}.txt", "size": len(body)},
        )
        assert r.status_code == 200, r.text
        signed = r.json()
        assert (
            requests.put(
                signed["url"], data=body, headers=signed["headers"], timeout=60
            ).status_code
            == 200
        )
        assert files.post(f"api/files/class/{CODE}/uploads/{signed['id']}").status_code == 200
    out = [
        f"- {students} students, all with a home of {mb} MB; {running} class servers running "
        f"(started in {spawned:.0f} s), {students - running} stopped",
        f"- load before the measures: `{uptime()}`",
        "",
    ]

    log = HelperLog(stack)
    helpers = {}

    # a push to everyone
    log.mark()
    t = time.perf_counter()
    r = files.post(f"api/classes/{CODE}/pushes", json={})
    assert r.status_code == 202, r.text
    push_id = r.json()["id"]

    def pushed():
        body = files.get(f"api/classes/{CODE}/pushes/{push_id}").json()
        return body if body["status"] == "done" else None

    report = wait_for(pushed, 600, interval=0.1, what="push done")
    push_took = time.perf_counter() - t
    delivered = sum(s["status"] == "delivered" for s in report["students"])
    helpers["push"] = log.summary()

    # Submits one at a time (nothing else going on)
    people = {}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for person in pool.map(lambda n: Person(stack, n, service=GRADES), users):
            people[person.name] = person
    alone = []
    log.mark()
    for u in users[:single]:
        t = time.perf_counter()
        r = people[u].post(f"api/classes/{CODE}/assignments/hw/submit", timeout=300)
        alone.append(time.perf_counter() - t)
        assert r.status_code in (200, 201), r.text
    helpers["single"] = log.summary()

    # Collect now, for the whole class (new content first, so every version is new)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda u: stack.docker.containers.run(
                    IMAGE,
                    ["bash", "-c", f"echo again >> /h/{CODE}/assignments/hw/part0.py"],
                    user="1000:100",
                    remove=True,
                    volumes={
                        object_name(stack.prefix, "home", u, CODE): {"bind": "/h", "mode": "rw"}
                    },
                ),
                users,
            )
        )
    log.mark()
    t = time.perf_counter()
    r = teacher.post(f"api/classes/{CODE}/assignments/hw/collect", timeout=900)
    collect_took = time.perf_counter() - t
    assert r.status_code == 200, r.text
    collected = sum(s["status"] == "collected" for s in r.json()["students"])
    new_versions = sum(not s.get("duplicate", True) for s in r.json()["students"])
    helpers["collect"] = log.summary()
    # new content again, so the rush's Submits make new versions too
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda u: stack.docker.containers.run(
                    IMAGE,
                    ["bash", "-c", f"echo rush >> /h/{CODE}/assignments/hw/part1.py"],
                    user="1000:100",
                    remove=True,
                    volumes={
                        object_name(stack.prefix, "home", u, CODE): {"bind": "/h", "mode": "rw"}
                    },
                ),
                users,
            )
        )

    # the rush: everyone presses Submit within the window
    results: list[tuple[int, float, float]] = []

    def submit(person: Person, at: float, start: float) -> None:
        time.sleep(max(0.0, start + at - time.perf_counter()))
        sent = time.perf_counter()
        r = person.post(f"api/classes/{CODE}/assignments/hw/submit", timeout=900)
        results.append((r.status_code, sent - start, time.perf_counter() - start))

    load = uptime()
    log.mark()
    start = time.perf_counter()
    gap = window / students
    with concurrent.futures.ThreadPoolExecutor(students) as pool:
        list(pool.map(lambda ip: submit(people[ip[1]], ip[0] * gap, start), enumerate(users)))
    total = max(done for _, _, done in results)
    latency = [done - sent for _, sent, done in results]
    codes: dict[int, int] = {}
    for code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    helpers["rush"] = log.summary()
    out += [
        "| measure | result | detail | helper containers |",
        "|---|---|---|---|",
        f"| push of 10 files (132,500 bytes) to {students} students | **{push_took:.2f} s** "
        f"| {delivered} delivered | {helpers['push']} |",
        f"| one Submit, nothing else going on ({single} in a row) | p50 "
        f"**{statistics.median(alone):.2f} s**, max {max(alone):.2f} s | {mb} MB folder "
        f"| {helpers['single']} |",
        f"| Collect now, {students} students ({running} running, {students - running} stopped)"
        f" | **{collect_took:.1f} s** | {collected} collected, {new_versions} new versions "
        f"| {helpers['collect']} |",
        f"| {students} Submits within {window:.0f} s | last recorded at **{total:.1f} s**; "
        f"latency p50 / p95 / max {statistics.median(latency):.2f} / {pct(latency, 95):.2f} / "
        f"{max(latency):.2f} s | answers {codes}; load before: `{load}` | {helpers['rush']} |",
    ]
    return out


def available_memory() -> int:
    """MemAvailable of this machine, in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


#: the machine is shared: servers are started only while this much memory stays available
MEMORY_RESERVE = 4 << 30


def start_servers(stack: Stack, users: list[str]) -> tuple[float, int]:
    """Start the class servers of ``users`` through the hub (real containers), 25 at a
    time, and only while ``MEMORY_RESERVE`` stays available: ``(seconds, started)``."""
    t = time.perf_counter()
    started = 0
    for start in range(0, len(users), 25):
        if available_memory() < MEMORY_RESERVE:
            print(f"stopped starting servers at {started}: memory", file=sys.stderr)
            break
        chunk = users[start : start + 25]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(
                pool.map(lambda n: stack.api("POST", f"/users/{n}/servers/{CODE}", json={}), chunk)
            )
        for n in chunk:
            stack.wait_ready(n, CODE, timeout=1800)
        started += len(chunk)
    return time.perf_counter() - t, started


def deadline_rows(stack: Stack, assignment_id: int) -> list[tuple]:
    """``(username, state, due_at, taken_at, submission_id)`` of every deadline snapshot."""
    import psycopg

    with psycopg.connect(stack.pg_admin_url.replace("+psycopg", ""), connect_timeout=5) as conn:
        return conn.execute(
            "SELECT username, state, due_at, taken_at, submission_id"
            " FROM classhub_grades.deadline_snapshots WHERE assignment_id = %s",
            (assignment_id,),
        ).fetchall()


def deadline_versions(stack: Stack, assignment_id: int) -> list[tuple]:
    import psycopg

    with psycopg.connect(stack.pg_admin_url.replace("+psycopg", ""), connect_timeout=5) as conn:
        return conn.execute(
            "SELECT username, kind, deadline_for, storage_key, size_bytes"
            " FROM classhub_grades.submissions WHERE assignment_id = %s",
            (assignment_id,),
        ).fetchall()


def change_homes(client, prefix: str, users: list[str], text: str) -> None:
    """Append ``text`` to every student's work (25 homes per container), so the next
    deadline has new content to take."""
    volumes = [object_name(prefix, "home", u, CODE) for u in users]
    for start in range(0, len(volumes), 25):
        chunk = volumes[start : start + 25]
        mounts = {v: {"bind": f"/h/{i}", "mode": "rw"} for i, v in enumerate(chunk)}
        script = " && ".join(
            f"echo {text} >> /h/{i}/{CODE}/assignments/hw/part0.py" for i in range(len(chunk))
        )
        client.containers.run(
            IMAGE, ["bash", "-c", script], user="1000:100", remove=True, volumes=mounts
        )


def deadline(
    stack: Stack, students: int, running: int, mb: int, lead: float, rounds: int
) -> list[str]:
    users = [f"s{i:03d}" for i in range(students)]
    stack.enroll("teach", CODE, teacher=True)
    for u in users:
        stack.create_user(u)
    r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": users})
    assert r.status_code == 200, r.text
    t = time.perf_counter()
    make_homes(stack.docker, stack.prefix, users, mb)
    made = time.perf_counter() - t
    spawned, running = start_servers(stack, users[:running])
    teacher = Person(stack, "teach", "teacher", service=GRADES)
    out = [
        f"- {students} students, each home with {mb} MB of work (made in {made:.0f} s); "
        f"{running} class servers running (started in {spawned:.0f} s), {students - running} "
        "stopped; nobody presses Submit",
        "",
        "| round | load at the deadline | first recorded | half | **last recorded** "
        "| within 60 s | states | versions / in S3 | helper containers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    assignment_id = None
    for n in range(1, rounds + 1):
        if n > 1:  # new work in every home, and the due date moved: a new deadline
            change_homes(stack.docker, stack.prefix, users, f"round{n}")
        log = HelperLog(stack)
        log.mark()
        due_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lead))
        if assignment_id is None:
            r = teacher.post(
                f"api/classes/{CODE}/assignments",
                json={"slug": "hw", "title": "HW", "max_points": 10, "due_at": due_text},
            )
            assert r.status_code == 201, r.text
            assignment_id = r.json()["id"]
        else:
            r = teacher.patch(f"api/classes/{CODE}/assignments/hw", json={"due_at": due_text})
            assert r.status_code == 200, r.text
        due = calendar.timegm(time.strptime(due_text, "%Y-%m-%dT%H:%M:%SZ"))
        wait_for(lambda due=due: time.time() > due, lead + 5, interval=0.2, what="the deadline")
        load = uptime().split("load average:")[-1].strip()

        def done(due=due, assignment_id=assignment_id):
            found = deadline_rows(stack, assignment_id)
            ready = [row for row in found if row[1] != "pending" and row[2].timestamp() == due]
            return found if len(ready) == students else None

        found = wait_for(done, 900, interval=1, what="every deadline snapshot recorded")
        after = sorted((taken - due_at).total_seconds() for _, _, due_at, taken, _ in found)
        states: dict[str, int] = {}
        for _, state, _, _, _ in found:
            states[state] = states.get(state, 0) + 1
        versions = deadline_versions(stack, assignment_id)
        assert all(kind == "deadline" for _, kind, _, _, _ in versions)
        assert len(versions) == students * n, (len(versions), states)  # one per student
        stored = stack_objects(stack, f"submissions/{CODE}/hw/")
        within = sum(x <= 60 for x in after)
        out.append(
            f"| {n} | {load} | {after[0]:.1f} s | {statistics.median(after):.1f} s "
            f"| **{after[-1]:.1f} s** | {within} of {students} | {states} "
            f"| {len(versions)} / {stored} | {log.summary()} |"
        )
        print(out[-1], file=sys.stderr)
    return out


def stack_objects(stack: Stack, prefix: str) -> int:
    from minio import Minio

    client = Minio(
        f"{stack.public_host}:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )
    return sum(1 for _ in client.list_objects("classhub-files", prefix=prefix, recursive=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--direct", action="store_true")
    parser.add_argument("--deadline", action="store_true")
    parser.add_argument("--lead", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--running", type=int, default=50)
    parser.add_argument("--mb", type=int, default=5)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--single", type=int, default=10)
    parser.add_argument("--batch", default="1,10,25,50")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="NAME=VALUE for the hub (e.g. CLASSHUB_HOMES_BATCH_SIZE=10)",
    )
    args = parser.parse_args()
    out = [
        "# classhub homes helper benchmark (no power enters a student's container)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs; load before: `{uptime()}`",
        f"- command: `{' '.join(['.venv/bin/python', *sys.argv])}`",
        "",
    ]
    if args.direct:
        out += direct(
            args.students,
            args.mb,
            [int(x) for x in args.batch.split(",")],
            [int(x) for x in args.concurrency.split(",")],
        )
    else:
        env = {
            **TEST_FILES_ENV,
            "CLASSHUB_MEM_LIMIT": "256M",
            "CLASSHUB_S3_TIMEOUT": "60",
            "CLASSHUB_FILES_MAX_UNPACKED_SIZE": "64M",
            "CLASSHUB_FILES_MATERIAL_QUOTA": "64M",
        }
        env.update(dict(kv.split("=", 1) for kv in args.env))
        with tempfile.TemporaryDirectory(prefix="classhub-homes-bench-") as tmp:
            new = Stack(Path(tmp) / "stack", with_files=True, env=env)
            for stack in running_stack(new):
                for service in (FILES, GRADES):
                    health = stack.url + service + "health"
                    wait_for(lambda h=health: requests.get(h, timeout=5).ok, 90, what=service)
                if args.deadline:
                    out += deadline(
                        stack, args.students, args.running, args.mb, args.lead, args.rounds
                    )
                else:
                    out += whole_stack(
                        stack, args.students, args.running, args.mb, args.window, args.single
                    )
    out += ["", f"- load after: `{uptime()}`"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
