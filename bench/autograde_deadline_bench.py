"""Autograding at a deadline: ``--count`` submissions in the last minute, a grading process
killed with SIGKILL in the middle, every version graded, none lost.

A throw-away PostgreSQL 15 holds the real grading queue (services/grades/store); an
assignment has the autograding bench's notebook (bench/autograde_bench.py: 10 cells, numpy,
``--reps`` loops of work) with grading on Submit switched on. For ``--window`` seconds the
students' Submits arrive evenly (each records the version and queues its job in one
transaction, as the service's Submit does). Grading runs in a separate process, as in the
grades service: ``--workers`` workers (the service's default is the number of cores), each
version in its own sealed container (services/grades/autograde/sandbox.py). ``--kill-at``
seconds after the first Submit that process is killed with SIGKILL and a new one started
at once (what the hub or Docker does when the service dies); the jobs the dead process had
claimed are taken again once their lease (``--lease``, the service's default 60 s) lapses.

Printed: how many versions were graded, failed or never finished; the time from the first
Submit and from the deadline (the last Submit) to the last result; Submit-to-result
seconds (median, p95, max). Target (issue: autograding): 200 Submits in the last minute all
graded within 6 minutes of the deadline, none lost, with a worker killed during the run.

Usage: .venv/bin/python bench/autograde_deadline_bench.py [--count 200] [--window 60]
       [--workers 2] [--kill-at 90] [--reps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.autograde_bench import source_notebook, student_notebook, work_seconds  # noqa: E402
from harness.stack import start_postgres  # noqa: E402
from services.grades import rules  # noqa: E402
from services.grades.autograde import sandbox  # noqa: E402
from services.grades.autograde.worker import Worker, WorkerSettings, run_workers  # noqa: E402
from services.grades.store import GradesStore  # noqa: E402

DEPLOYMENT = "autograde-deadline-bench"
CLASS = "bench1"


async def grading_process(conninfo: str, folder: str, workers: int, lease: float) -> None:
    """The grades service's grading part alone: leftovers removed, then its workers."""
    store = GradesStore(conninfo)
    await store.open()
    grader = sandbox.Autograder(sandbox.Limits(deployment=DEPLOYMENT), concurrency=workers)
    await grader.remove_leftovers()

    async def load(job, path):
        return (Path(folder) / f"{job.username}.ipynb").read_bytes()

    # poll: the service wakes its workers on each Submit; a separate process looks often
    settings = WorkerSettings(lease=lease, poll=0.2)
    crew = [
        Worker(store=store, grader=grader, load=load, settings=settings, name=f"g{os.getpid()}/{n}")
        for n in range(workers)
    ]
    await run_workers(crew, asyncio.Event())


def start_grading(conninfo: str, folder: Path, workers: int, lease: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--grading-process", conninfo, str(folder), str(workers),
         str(lease)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )  # fmt: skip


async def job_rows(store) -> list[tuple]:
    async with store.db.connection() as conn:
        cur = await conn.execute(
            "SELECT state, enqueued_at, finished_at, attempts FROM classhub_grades.autograde_jobs"
        )
        return await cur.fetchall()


async def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="autograde-deadline-"))
    pg, port, url = start_postgres(workdir / "pg")
    procs: list[subprocess.Popen] = []
    try:
        store = GradesStore(url)
        await store.open()
        source = source_notebook(args.reps)
        now = datetime.now(UTC)
        body = {
            "slug": "numpy",
            "title": "Numpy practice",
            "max_points": 10,
            "release_at": (now - timedelta(hours=1)).isoformat(),
            "due_at": (now + timedelta(seconds=args.window + 30)).isoformat(),
            "late_policy": "accept",
        }
        a = await store.create_assignment(CLASS, rules.parse_assignment(body), actor="tina")
        await store.set_autograde_config(
            a.id,
            notebook_path="numpy.ipynb",
            source=source,
            image=args.image,
            on_submit=True,
            show_hidden=False,
            actor="tina",
        )
        folder = workdir / "notebooks"
        folder.mkdir()
        names = [f"s{n:03d}" for n in range(args.count)]
        for n, name in enumerate(names):
            (folder / f"{name}.ipynb").write_text(json.dumps(student_notebook(source, n)))
        procs.append(start_grading(url, folder, args.workers, args.lease))

        start = time.monotonic()
        killed_at = None
        gap = args.window / max(1, args.count - 1)
        for n, name in enumerate(names):
            await asyncio.sleep(max(0.0, start + n * gap - time.monotonic()))
            await store.record_submission(
                a.id, name, content_sha256=f"{n:064x}", size_bytes=1000, files=1
            )
            if killed_at is None and time.monotonic() - start >= args.kill_at:
                killed_at = kill_and_restart(procs, url, folder, args)
        deadline = datetime.now(UTC)  # the last Submit
        waiting_since = time.monotonic()
        while True:
            rows = await job_rows(store)
            if killed_at is None and time.monotonic() - start >= args.kill_at:
                killed_at = kill_and_restart(procs, url, folder, args)
            open_jobs = [r for r in rows if r[0] in ("queued", "running")]
            if len(rows) == args.count and not open_jobs:
                break
            if time.monotonic() - waiting_since > args.give_up:
                break
            await asyncio.sleep(1)
        rows = await job_rows(store)
        await store.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        pg.stop()
    done = [r for r in rows if r[0] == "done"]
    latencies = sorted((r[2] - r[1]).total_seconds() for r in done)
    last = max((r[2] for r in done), default=None)
    first_enqueued = min((r[1] for r in rows), default=None)
    return {
        "done": len(done),
        "failed": sum(r[0] == "failed" for r in rows),
        "unfinished": args.count - len(done) - sum(r[0] == "failed" for r in rows),
        "retried": sum(r[3] > 1 for r in rows),
        "from_first": (last - first_enqueued).total_seconds() if last else None,
        "from_deadline": (last - deadline).total_seconds() if last else None,
        "latencies": latencies,
        "killed_at": killed_at,
    }


def kill_and_restart(procs: list, url: str, folder: Path, args) -> float:
    os.kill(procs[-1].pid, signal.SIGKILL)
    procs[-1].wait(10)
    procs.append(start_grading(url, folder, args.workers, args.lease))
    return time.monotonic()


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--grading-process":
        conninfo, folder, workers, lease = sys.argv[2:6]
        asyncio.run(grading_process(conninfo, folder, int(workers), float(lease)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of Submits")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--kill-at", type=float, default=90.0, help="seconds after the first")
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--reps", type=int, default=200, help="numpy loops of the work cell (~1 s)")
    parser.add_argument("--image", default="classhub/datascience:latest", help="has numpy")
    parser.add_argument("--give-up", type=float, default=900.0, help="seconds after the deadline")
    args = parser.parse_args()
    compute = work_seconds(args.image, args.reps)
    r = asyncio.run(run(args))
    lat = r["latencies"]
    print(
        f"\n{args.count} Submits over {args.window:.0f} s, {args.workers} workers, grading process"
        f" killed (SIGKILL) {args.kill_at:.0f} s after the first Submit and restarted; lease"
        f" {args.lease:.0f} s; work cell {compute:.2f} s in {args.image} (1 CPU);"
        f" {os.cpu_count()} cores, {platform.platform()}, {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
    )
    print("| graded | failed | never finished | tried again | last result after the first"
          " Submit | after the deadline | Submit to result: median / p95 / max |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    spread = (
        f"{statistics.median(lat):.1f} / {pct(lat, 0.95):.1f} / {lat[-1]:.1f} s" if lat else "-"
    )
    first, after = (
        f"{r[k]:.0f} s" if r[k] is not None else "-" for k in ("from_first", "from_deadline")
    )
    print(
        f"| {r['done']} | {r['failed']} | {r['unfinished']} | {r['retried']} | {first}"
        f" | {after} | {spread} |"
    )


if __name__ == "__main__":
    main()
