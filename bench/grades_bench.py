"""Grades service benchmark: a deadline rush and a big gradebook.

Runs a real deployment on random ports via harness/stack.py (PostgreSQL, Redis, nx-27017,
SeaweedFS, Traefik, JupyterHub running the classes, files and grades services) and measures:

1. The last minute before a deadline: ``--students`` (default 200) students, each with a
   running class server (real containers) holding ``--mb`` MB (default 5) of work in their
   assignment folder, all press Submit within ``--window`` seconds (default 60, spread
   evenly, open loop). Measured: from the first Submit to the last submission recorded;
   then every submission is checked: one version per student in PostgreSQL, its snapshot in
   the S3 store with the recorded SHA-256.
2. The gradebook of ``--roster`` (default 300) students by ``--assignments`` (default 20)
   assignments, every cell graded (rows written through the grades store straight into
   PostgreSQL: the gradebook reads only the records): the JSON API and the CSV export, 20
   requests each, and the teacher's class page in headless Chromium until every gradebook
   row is laid out.

Usage: .venv/bin/python bench/grades_bench.py [--students 200] [--mb 5] [--skip-rush]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import pct  # noqa: E402
from harness.classes import Person  # noqa: E402
from harness.files import TEST_FILES_ENV  # noqa: E402
from harness.stack import Stack, running_stack, wait_for  # noqa: E402
from hub.stores.postgres import GRADES as GRADES_ROLE  # noqa: E402

GRADES = "/services/grades/"
CODE = "rush"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def fill_folder(container, mb: int) -> None:
    """``mb`` MB of notebook-like text in the student's assignment folder (4 files)."""
    script = (
        "import os, random; d = f'/home/jovyan/" + CODE + "/assignments/hw/'; "
        "os.makedirs(d, exist_ok=True); rnd = random.Random(os.getpid()); "
        f"size = {mb} * 1000000 // 4\n"
        "for i in range(4):\n"
        "    lines = []; n = 0\n"
        "    while n < size:\n"
        "        line = f'cell {rnd.random():.12f} = compute(x_{rnd.randrange(10**6)})\\n'\n"
        "        lines.append(line); n += len(line)\n"
        "    open(d + f'part{i}.py', 'w').write(''.join(lines))\n"
    )
    code, out = container.exec_run(["python3", "-c", script], user="1000")
    assert code == 0, out


def rush(stack: Stack, students: int, mb: int, window: float) -> list[str]:
    names = [f"r{i:03d}" for i in range(students)]
    stack.enroll("teach", CODE, teacher=True)
    for n in names:
        stack.create_user(n)
    r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": names})
    assert r.status_code == 200, r.text
    teacher = Person(stack, "teach", "teacher", service=GRADES)
    r = teacher.post(
        f"api/classes/{CODE}/assignments",
        json={
            "slug": "hw",
            "title": "Rush",
            "max_points": 10,
            "release_at": iso(-3600),
            "due_at": iso(3 * 3600),
            "late_policy": "refuse",
        },
    )
    assert r.status_code == 201, r.text
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: stack.api("POST", f"/users/{n}/servers/{CODE}", json={}), names))
    for n in names:
        stack.wait_ready(n, CODE, timeout=900)
    spawned = time.perf_counter() - t
    by_user = {
        c.labels.get("classhub.user"): c
        for c in stack.containers(all=False)
        if c.labels.get("classhub.server") == CODE
    }
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: fill_folder(by_user[n], mb), names))
    people = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        people = list(pool.map(lambda n: Person(stack, n, service=GRADES), names))
    free = subprocess.run(["free", "-m"], capture_output=True, text=True).stdout.split("\n")[1]
    load = uptime()

    results: list[tuple[str, int, float, float]] = []

    def submit(person: Person, at: float, start: float) -> None:
        time.sleep(max(0.0, start + at - time.perf_counter()))
        sent = time.perf_counter()
        r = person.post(f"api/classes/{CODE}/assignments/hw/submit", timeout=600)
        results.append((person.name, r.status_code, sent - start, time.perf_counter() - start))

    start = time.perf_counter()
    gap = window / students
    with concurrent.futures.ThreadPoolExecutor(students) as pool:
        list(pool.map(lambda ip: submit(ip[1], ip[0] * gap, start), enumerate(people)))
    total = max(done for _, _, _, done in results)
    latency = [done - sent for _, _, sent, done in results]
    codes: dict[int, int] = {}
    for _, code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1

    # every submission recorded once and its snapshot stored with the recorded hash
    subs = teacher.get(f"api/classes/{CODE}/assignments/hw/submissions").json()["students"]
    recorded = [s for s in subs if s["latest"]]
    checked = lost = 0
    for s in recorded[:: max(1, len(recorded) // 20)]:  # a sample of 20 downloads
        link = teacher.get(f"api/submissions/{s['latest']['id']}/download").json()["url"]
        data = requests.get(link, timeout=60).content
        checked += 1
        lost += hashlib.sha256(data).hexdigest() != s["latest"]["sha256"]
    stored = stack_objects(stack, f"submissions/{CODE}/hw/")
    return [
        f"- {students} class servers started in {spawned:.0f} s; memory (`free -m`): `{free}`",
        f"- load just before the rush: `{load}`",
        "",
        "| students | snapshot | Submits sent over | first Submit to last recorded "
        "| Submit latency p50 / p95 / max | answers | recorded (one version each) "
        "| snapshots stored | sampled hash checks |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {students} | {mb} MB (4 files) | {window:.0f} s | **{total:.1f} s** | "
        f"{statistics.median(latency):.2f} / {pct(latency, 95):.2f} / {max(latency):.2f} s | "
        f"{codes} | {len(recorded)} ({sum(s['versions'] for s in recorded)} versions) | {stored} | "
        f"{checked - lost} of {checked} match |",
    ]


def stack_objects(stack: Stack, prefix: str) -> int:
    from minio import Minio

    client = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )
    return sum(1 for _ in client.list_objects("classhub-files", prefix=prefix, recursive=True))


async def fill_gradebook(url: str, code: str, students: list[str], n_assignments: int) -> None:
    from services.grades import rules
    from services.grades.store import GradesStore

    store = GradesStore(url, max_size=8)
    await store.open()
    try:
        ids = []
        for i in range(n_assignments):
            fields = rules.parse_assignment(
                {
                    "slug": f"a{i:02d}",
                    "title": f"Assignment {i + 1}",
                    "max_points": 10,
                    "release_at": iso(-7200),
                    "due_at": iso(3600 + i * 60),
                    "late_policy": "accept",
                    "late_penalty_percent": 10,
                }
            )
            ids.append((await store.create_assignment(code, fields, actor="teach")).id)
        gate = asyncio.Semaphore(8)

        async def one(aid: int, user: str, k: int) -> None:
            async with gate:
                sub = await store.record_submission(
                    aid,
                    user,
                    content_sha256=hashlib.sha256(f"{aid}{user}".encode()).hexdigest(),
                    size_bytes=1000,
                    files=1,
                    storage_key=f"submissions/{code}/x/{user}/{aid}.zip",
                    collected_by="teach",
                )
                await store.set_grade(sub.id, k % 11, "ok", "teach", 0)

        await asyncio.gather(
            *(one(aid, u, i + j) for i, aid in enumerate(ids) for j, u in enumerate(students))
        )
    finally:
        await store.close()


def gradebook(stack: Stack, roster: int, n_assignments: int) -> list[str]:
    code = "book"
    names = [f"g{i:03d}" for i in range(roster)]
    stack.enroll("teach", code, teacher=True)
    for n in names:
        stack.create_user(n)
    r = stack.api("POST", f"/groups/class-{code}/users", json={"users": names})
    assert r.status_code == 200, r.text
    t = time.perf_counter()
    asyncio.run(fill_gradebook(stack.pg_url(GRADES_ROLE), code, names, n_assignments))
    filled = time.perf_counter() - t
    teacher = Person(stack, "teach", "teacher", service=GRADES)
    rows = []
    for name, path, accept in (
        ("JSON", f"api/classes/{code}/gradebook", "application/json"),
        ("CSV", f"api/classes/{code}/gradebook.csv", "text/csv"),
        ("the class page (HTML)", f"classes/{code}", "text/html"),
        ("its assignments (JSON)", f"api/classes/{code}/assignments", "application/json"),
    ):
        times = []
        for _ in range(20):
            t = time.perf_counter()
            r = teacher.get(path, timeout=60, headers={"Accept": accept})
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
        size = len(r.content)
        rows.append(
            f"| {name} | {roster} × {n_assignments} | {size} bytes "
            f"| {statistics.median(times) * 1000:.0f} ms | {pct(times, 95) * 1000:.0f} ms "
            f"| {max(times) * 1000:.0f} ms |"
        )
    loads = page_in_browser(stack, teacher, code, roster, loads=10)
    reused = list(milestones)
    milestones.clear()

    def change_a_grade():
        # one grade's points, changed as a teacher's grading does: the gradebook the
        # service kept is out of date and is built again on the next load
        changed = stack.psql(
            "UPDATE classhub_grades.grades SET points = CASE WHEN points >= 1"
            " THEN points - 1 ELSE points + 1 END WHERE submission_id ="
            " (SELECT min(submission_id) FROM classhub_grades.grades) RETURNING submission_id"
        )
        assert len(changed) == 1

    rebuilt = page_in_browser(stack, teacher, code, roster, loads=10, before_each=change_a_grade)
    return [
        f"- {roster * n_assignments} graded submissions written in {filled:.0f} s",
        "",
        "| answer | size | bytes | p50 | p95 | max |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "The teacher's class page in headless Chromium: from navigation start to the first",
        f"frame in which all {roster} gradebook rows are laid out (10 loads, the first with an",
        "empty cache):",
        "",
        "| gradebook | loads | p50 | max | loads ≥ 500 ms | first load (cold cache) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {what} | {len(x)} | **{statistics.median(x) * 1000:.0f} ms** "
            f"| {max(x) * 1000:.0f} ms | {sum(v >= 0.5 for v in x)} | {x[0] * 1000:.0f} ms |"
            for what, x in (
                ("unchanged (the service's kept answer)", loads),
                ("a grade changed before every load (built again)", rebuilt),
            )
        ),
        "",
        "Medians (unchanged / changed): "
        + ", ".join(
            f"{name} {statistics.median(m[i] for m in reused) * 1000:.0f}"
            f" / {statistics.median(m[i] for m in milestones) * 1000:.0f} ms"
            for i, name in enumerate(("HTML", "script", "gradebook JSON"))
        )
        + ".",
    ]


#: resolves to performance.now() in the first animation frame where every row is laid out
ROWS_VISIBLE = """([rows]) => new Promise((resolve) => {
  function check() {
    const table = document.getElementById("gradebook");
    const body = table && table.tBodies[0];
    if (table && !table.hidden && body && body.rows.length === rows
        && body.rows[rows - 1].getBoundingClientRect().height > 0) {
      resolve(performance.now());
    } else {
      requestAnimationFrame(check);
    }
  }
  check();
})"""


MILESTONES = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  const r = performance.getEntriesByType("resource");
  const end = (part) => (r.find((e) => e.name.includes(part)) || {}).responseEnd || NaN;
  return [n.responseEnd, end("grades.js"), end("/gradebook")];
}"""
#: per load: HTML received, script received, gradebook JSON received (seconds)
milestones: list[list[float]] = []


def page_in_browser(
    stack: Stack, teacher: Person, code: str, rows: int, loads: int, before_each=None
) -> list[float]:
    """Seconds from navigation start to all gradebook rows laid out, per load
    (``before_each()`` runs before every load)."""
    from playwright.sync_api import sync_playwright

    from harness.browser import CHROMIUM_ARGS

    cookies = [
        {"name": c.name, "value": c.value, "url": stack.url + (c.path or "/")}
        for c in teacher.browser.cookies
    ]
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies(cookies)
            for _ in range(loads):
                if before_each:
                    before_each()
                page = context.new_page()
                page.goto(stack.url + GRADES + f"classes/{code}", wait_until="commit")
                visible = page.evaluate(ROWS_VISIBLE, [rows]) / 1000
                marks = page.evaluate(MILESTONES)
                out.append(visible)
                milestones.append([m / 1000 for m in marks])
                page.close()
            context.close()
        finally:
            browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--mb", type=int, default=5)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--roster", type=int, default=300)
    parser.add_argument("--assignments", type=int, default=20)
    parser.add_argument("--skip-rush", action="store_true")
    args = parser.parse_args()
    env = {**TEST_FILES_ENV, "CLASSHUB_MEM_LIMIT": "256M", "CLASSHUB_S3_TIMEOUT": "60"}
    out = [
        "# classhub grades service benchmark",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs; load before: `{uptime()}`",
        f"- command: `{' '.join(['.venv/bin/python', *sys.argv])}`",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="classhub-grades-bench-") as tmp:
        new = Stack(Path(tmp) / "stack", with_files=True, env=env)
        for stack in running_stack(new):
            health = stack.url + GRADES + "health"
            wait_for(lambda h=health: requests.get(h, timeout=5).ok, 90, what="grades service")
            out += ["## 2. Gradebook", ""] + gradebook(stack, args.roster, args.assignments)
            if not args.skip_rush:
                out += [
                    "",
                    f"## 1. {args.students} students submit in the last {args.window:.0f} s",
                    "",
                ]
                out += rush(stack, args.students, args.mb, args.window)
    out += ["", f"- load after: `{uptime()}`"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
