"""Review benchmark: a 5 MB notebook opening rendered, and the review page
moving to the next student.

Runs a real deployment on random ports via harness/stack.py (PostgreSQL, Redis, nx-27017,
SeaweedFS, Traefik, JupyterHub running the classes, files and grades services). Versions are
made without student servers: each snapshot zip is stored in the S3 store (as the service
stores a snapshot) and recorded through the grades store, as Submit records it.

1. **A 5 MB notebook.** Three kinds of 5 MB notebook (``mixed``: Markdown, code, printed
   values, PNG plots and HTML tables; ``text``: code and long printed output; ``tables``:
   HTML tables only). For each: the rendered page through Traefik and the hub (the first
   request renders it; the next ones are served from the service's cache), and in headless
   Chromium the review page opened on that student, from navigation start to the
   notebook's frame loaded; and the same notebook handed in by another student opened
   cold (never rendered before: the service renders it for that first opening).
2. **The next student.** ``--students`` (default 30) students, each with a notebook of
   ``--kb`` KB (default 300, a typical homework with a few plots). In Chromium, the teacher
   presses ``j`` ``--steps`` times (default 20), waiting ``--pause`` seconds between
   presses (default 1.0, a glance; the page meanwhile asks the service to prepare the
   neighbours): from the key press to the next student's grading form filled and its
   notebook's frame loaded. Also with no pause (pressing ``j`` as soon as the previous
   student is shown).

Usage: .venv/bin/python bench/review_bench.py [--students 30] [--kb 300] [--steps 20]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import pct  # noqa: E402
from harness.classes import Person  # noqa: E402
from harness.files import TEST_FILES_ENV  # noqa: E402
from harness.stack import Stack, running_stack, wait_for  # noqa: E402
from hub.stores.postgres import GRADES as GRADES_ROLE  # noqa: E402

GRADES = "/services/grades/"
CODE = "review"
SLUG = "lab"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ----------------------------------------------------------------------------- notebooks


def make_notebook(kind: str, target: int, seed: int) -> bytes:
    """A notebook of about ``target`` bytes: ``mixed``, ``text`` or ``tables``."""
    rnd = random.Random(seed)
    png = base64.b64encode(rnd.randbytes(150_000)).decode()

    def code(src, outputs):
        return {
            "cell_type": "code",
            "id": f"c{rnd.randrange(10**9)}",
            "execution_count": 1,
            "metadata": {},
            "source": src,
            "outputs": outputs,
        }

    def md(src):
        return {
            "cell_type": "markdown",
            "id": f"m{rnd.randrange(10**9)}",
            "metadata": {},
            "source": src,
        }

    def table(rows):
        head = "".join(f"<th>col{i}</th>" for i in range(8))
        body = "".join(
            f"<tr><th>{r}</th>"
            + "".join(f"<td>{rnd.random():.6f}</td>" for _ in range(8))
            + "</tr>"
            for r in range(rows)
        )
        return (
            f"<table class='dataframe'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    cells: list[dict] = []
    size = 0
    i = 0
    while size < target:
        i += 1
        if kind == "tables":
            cells.append(
                code(
                    "df",
                    [
                        {
                            "output_type": "execute_result",
                            "execution_count": 1,
                            "metadata": {},
                            "data": {"text/html": table(100), "text/plain": "df"},
                        }
                    ],
                )
            )
        elif kind == "text":
            cells.append(md(f"## Step {i}\nSome *explanation*.\n"))
            printed = "\n".join(f"value {k}: {rnd.random():.8f}" for k in range(100))
            cells.append(
                code(
                    "\n".join(f"x{j} = compute({j})" for j in range(20)),
                    [{"output_type": "stream", "name": "stdout", "text": printed}],
                )
            )
        else:
            cells.append(
                md(
                    f"## Step {i}\nSome *explanation* with `code` and a "
                    "[link](https://example.org).\n\n- a\n- b\n"
                )
            )
            outs = [
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": "\n".join(f"value {k}: {rnd.random():.8f}" for k in range(40)),
                }
            ]
            if i % 4 == 0:
                outs.append(
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": png, "text/plain": "<Figure>"},
                    }
                )
            if i % 3 == 0:
                outs.append(
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {"text/html": table(30), "text/plain": "df"},
                    }
                )
            cells.append(
                code("\n".join(f"x{j} = compute({j}, {rnd.random():.5f})" for j in range(15)), outs)
            )
        if i % 10 == 0 or size > target * 0.9:
            size = len(json.dumps({"cells": cells}))
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def snapshot_zip(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A snapshot like the helper makes (deflate level 1), and its content hash."""
    buffer = io.BytesIO()
    h = hashlib.sha256()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name], compresslevel=1)
            h.update(
                name.encode() + b"\0" + hashlib.sha256(files[name]).hexdigest().encode() + b"\n"
            )
    return buffer.getvalue(), h.hexdigest()


async def hand_in(stack: Stack, works: dict[str, dict[str, bytes]]) -> dict[str, int]:
    """Store and record one version per student (``{user: {path: bytes}}``); their ids."""
    from minio import Minio

    from services.grades import rules
    from services.grades.store import GradesStore

    s3 = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
    )
    store = GradesStore(stack.pg_url(GRADES_ROLE), max_size=4)
    await store.open()
    try:
        found = await store.find_assignment(CODE, SLUG)
        if found is None:
            fields = rules.parse_assignment(
                {"slug": SLUG, "title": "Lab", "max_points": 10, "due_at": None}
            )
            found = await store.create_assignment(CODE, fields, actor="teach")
        ids = {}
        for user, files in works.items():
            data, digest = snapshot_zip(files)
            key = f"submissions/{CODE}/{SLUG}/{user}/{digest[:16]}.zip"
            s3.put_object("classhub-files", key, io.BytesIO(data), len(data))
            sub = await store.record_submission(
                found.id,
                user,
                content_sha256=digest,
                size_bytes=len(data),
                files=len(files),
                storage_key=key,
            )
            ids[user] = sub.id
        return ids
    finally:
        await store.close()


# ----------------------------------------------------------------------------- browser


FRAME_LOADED = """([user]) => new Promise((resolve) => {
  function check() {
    const viewer = document.getElementById("viewer");
    if (document.getElementById("grading-user").textContent === user
        && viewer.src.includes("/render/") && viewer.dataset.loaded === viewer.src) {
      requestAnimationFrame(() => resolve(performance.now()));
    } else {
      requestAnimationFrame(check);
    }
  }
  check();
})"""

#: press j; resolves to the milliseconds until the next student's form is filled and their
#: notebook's frame (loaded) is in sight, at the next frame painted after that
NEXT = """([user]) => new Promise((resolve) => {
  const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent("keydown", {key: "j", bubbles: true}));
  function check() {
    const viewer = document.getElementById("viewer");
    if (document.getElementById("grading-user").textContent === user
        && document.getElementById("grading").dataset.submission
        && viewer.src.includes("/render/") && viewer.dataset.loaded === viewer.src) {
      requestAnimationFrame(() => resolve(performance.now() - t0));
    } else {
      requestAnimationFrame(check);
    }
  }
  requestAnimationFrame(check);
})"""


def browser_context(p, stack: Stack, teacher: Person):
    from harness.browser import CHROMIUM_ARGS

    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    context = browser.new_context()
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "url": stack.url + (c.path or "/")}
            for c in teacher.browser.cookies
        ]
    )
    return browser, context


def review_url(stack: Stack, user: str) -> str:
    return f"{stack.url}{GRADES}classes/{CODE}/assignments/{SLUG}/review?user={user}"


MILESTONES = """([done]) => {
  const n = performance.getEntriesByType("navigation")[0];
  // only what was asked for before the frame loaded (the neighbours' look-ahead after it)
  const r = performance.getEntriesByType("resource").filter((e) => e.startTime < done);
  const end = (match) => (r.find((e) => match(e.name)) || {}).responseEnd || NaN;
  return [
    n.responseEnd,
    end((name) => name.includes("review.js")),
    end((name) => name.endsWith("/submissions")), // the students list (or the versions)
    end((name) => name.endsWith("/files")),
    end((name) => name.includes("/render/")),
  ];
}"""
#: per page opened: page HTML, script, students list, the version's files, the notebook's
#: page received (ms from navigation start; NaN: not asked for, the page carried it)
milestones: list[list[float]] = []


def asked_median(values: list[float]) -> float:
    """The median of the times a step was asked for (NaN: never asked for)."""
    asked = [v for v in values if v == v]
    return statistics.median(asked) if asked else float("nan")


def ms(x: float) -> str:
    return "in the page" if x != x else f"{x:.0f} ms"  # NaN: not asked for


def open_page(context, stack: Stack, user: str) -> tuple[float, float | None]:
    """Seconds from navigation start to ``user``'s notebook frame loaded and painted, and
    to the frame's first contentful paint (None when it cannot be read)."""
    page = context.new_page()
    page.goto(review_url(stack, user))
    done = page.evaluate(FRAME_LOADED, [user])
    milestones.append(page.evaluate(MILESTONES, [done]))
    fcp = None
    try:
        frame = page.locator("#viewer").element_handle().content_frame()
        start = frame.evaluate("() => performance.timeOrigin")
        paint = frame.evaluate(
            "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
        )
        origin = page.evaluate("() => performance.timeOrigin")
        if paint is not None:
            fcp = (start - origin + paint) / 1000
    except Exception:  # noqa: BLE001 - a sandboxed frame may refuse the evaluation
        fcp = None
    page.close()
    return done / 1000, fcp


# ----------------------------------------------------------------------------- runs


#: the cold openings' order: the roster's (bigmixed0 < bigtables0 < bigtext0)
COLD_ORDER = ("mixed", "tables", "text")


def big_notebooks(stack: Stack, teacher: Person) -> list[str]:
    from playwright.sync_api import sync_playwright

    works = {}
    sizes = {}
    for kind in ("mixed", "text", "tables"):
        raw = make_notebook(kind, 5 << 20, seed=len(kind))
        sizes[kind] = len(raw)
        works[f"big{kind}"] = {"work.ipynb": raw}
        # the same notebook handed in by another student, opened in the browser before
        # anything else and never asked for before: the service renders it for that first
        # opening. Named to sort next to its warm twin: the review page prepares the
        # neighbours of the student it shows, and no cold one is a neighbour of another
        works[f"big{kind}0"] = {"work.ipynb": raw}
    for user in works:
        stack.enroll(user, CODE)
    ids = asyncio.run(hand_in(stack, works))
    rows = []
    where = []
    served = {}
    for kind in ("mixed", "text", "tables"):  # through Traefik and the hub: render, then kept
        url = f"api/submissions/{ids[f'big{kind}']}/render/work.ipynb"
        times = []
        for _ in range(6):
            t = time.perf_counter()
            r = teacher.get(url, timeout=120, headers={"Sec-Fetch-Mode": "navigate"})
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:300]
        served[kind] = (times, len(r.content))
    with sync_playwright() as p:
        browser, context = browser_context(p, stack, teacher)
        # in roster order, first: bigmixed0's page prepares bigmixed and bigtables only
        cold = {kind: open_page(context, stack, f"big{kind}0")[0] for kind in COLD_ORDER}
        for kind in ("mixed", "text", "tables"):
            times, html_size = served[kind]
            milestones.clear()
            opened = [open_page(context, stack, f"big{kind}") for _ in range(5)]
            steps = [asked_median([m[i] for m in milestones]) for i in range(5)]
            pages = [o[0] for o in opened]
            where.append(
                f"| {kind} | "
                + " | ".join(ms(x) for x in steps)
                + f" | {statistics.median(pages) * 1000:.0f} ms |"
            )
            pages = [o[0] for o in opened]
            paints = [o[1] for o in opened if o[1] is not None]
            fcp = f"{statistics.median(paints) * 1000:.0f} ms" if paints else "n/a"
            rows.append(
                f"| {kind} | {sizes[kind] / 1e6:.1f} MB | {html_size / 1e6:.1f} MB "
                f"| {times[0] * 1000:.0f} ms | {statistics.median(times[1:]) * 1000:.0f} ms "
                f"| {fcp} | **{statistics.median(pages) * 1000:.0f} ms** "
                f"| {max(pages) * 1000:.0f} ms | **{cold[kind] * 1000:.0f} ms** |"
            )
        browser.close()
    return [
        "| notebook | size | page | first request (renders) | again (kept) p50 "
        "| review page: notebook's first paint, p50 | review page: notebook loaded, p50 "
        "(target ≤ 1 s) | max | cold: first opening, never rendered before |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Where the time goes (medians, from navigation start): the received answers, then the",
        "frame loaded (parsed, laid out and painted):",
        "",
        "| notebook | page HTML | review.js | students list | the version's files "
        "| the notebook's page | frame loaded |",
        "|---|---|---|---|---|---|---|",
        *where,
    ]


def next_student(stack: Stack, teacher: Person, students: int, kb: int, steps: int, pause: float):
    from playwright.sync_api import sync_playwright

    names = [f"s{i:03d}" for i in range(students)]
    for n in names:
        stack.enroll(n, CODE)
    works = {
        n: {"work.ipynb": make_notebook("mixed", kb << 10, seed=i), "data.csv": b"x,y\n1,2\n"}
        for i, n in enumerate(names)
    }
    asyncio.run(hand_in(stack, works))
    lines = []
    with sync_playwright() as p:
        browser, context = browser_context(p, stack, teacher)
        for wait in (pause, 0.0):
            page = context.new_page()
            page.goto(review_url(stack, names[0]))
            page.wait_for_function(
                "() => document.getElementById('grading-user').textContent === 's000'"
            )
            page.wait_for_timeout(1500)
            order = page.eval_on_selector_all(
                "#student-select option", "(os) => os.map((o) => o.value)"
            )
            at = order.index(names[0])
            times = []
            for k in range(min(steps, len(order) - at - 1)):
                if wait:
                    page.wait_for_timeout(wait * 1000)
                times.append(page.evaluate(NEXT, [order[at + k + 1]]) / 1000)
            page.close()
            lines.append(
                f"| {students} × {kb} KB notebook | {wait:.1f} s | {len(times)} "
                f"| **{statistics.median(times) * 1000:.0f} ms** | {pct(times, 95) * 1000:.0f} ms "
                f"| {max(times) * 1000:.0f} ms | {sum(t > 0.3 for t in times)} |"
            )
        browser.close()
    return [
        "| students | pause before `j` | moves | p50 (target ≤ 300 ms) | p95 | max "
        "| moves > 300 ms |",
        "|---|---|---|---|---|---|---|",
        *lines,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--kb", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="review-bench-"))
    stack = Stack(workdir, with_files=True, env=dict(TEST_FILES_ENV))
    for running in running_stack(stack):
        health = running.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 90, what="grades")
        running.enroll("teach", CODE, teacher=True)
        teacher = Person(running, "teach", "teacher", service=GRADES)
        print(f"## Review ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
        print(f"Before: {uptime()}\n")
        if not args.skip_big:
            print("\n".join(big_notebooks(running, teacher)) + "\n")
        print(f"Before the next-student run: {uptime()}\n")
        rows = next_student(running, teacher, args.students, args.kb, args.steps, args.pause)
        print("\n".join(rows))
        print(f"\nAfter: {uptime()}")


if __name__ == "__main__":
    main()
