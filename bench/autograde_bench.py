"""Autograding benchmark: sealed grading throughput, and nbgrader on the same notebooks.

Makes a source notebook in nbgrader's format (10 cells: numpy, about 1 s of compute on an
idle core, three graded answers, four test cells one of them hidden) and ``--count``
student versions of it (most right, some wrong, some crashing), then:

1. classhub: every version graded in its own sealed container
   (services/grades/autograde/sandbox.py, the image ``--image``, by default
   classhub/datascience:latest: it has numpy) with ``--workers`` runs
   at once, each limited to one CPU, the service's production limits otherwise. The
   clock runs from the first container's creation to the last result; notebooks per
   minute = count / minutes.
2. ``--nbgrader``: nbgrader from PyPI in a throwaway venv (/tmp, removed afterwards),
   ``nbgrader generate_assignment`` then ``nbgrader autograde --create`` of the same
   versions in one process (nbgrader runs one notebook at a time, unsandboxed, as the
   user who calls it).

Both grade the same notebooks on the same machine in the same run. The grading queue
(PostgreSQL) is not in the loop: its claim and result are two short transactions per
version (tests/integration/test_autograde_queue.py runs it).

Usage: .venv/bin/python bench/autograde_bench.py [--count 100] [--workers 2] [--nbgrader]
Prints a Markdown table (paste it into docs/performance.md with the date and command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.cputhreads import thread_env  # noqa: E402
from services.grades.autograde import notebook, sandbox  # noqa: E402

WORK = """import numpy as np
rng = np.random.default_rng(0)
a = rng.random((300, 300))
for _ in range({reps}):
    a = np.tanh(a @ a.T / 300)
checksum = float(a.sum())"""


def _cell(kind, source, cid, nbgrader=None):
    c = {"cell_type": kind, "id": cid, "source": source, "metadata": {}}
    if nbgrader:
        c["metadata"]["nbgrader"] = {"schema_version": 3, "grade_id": cid, **nbgrader}
    if kind == "code":
        c.update(outputs=[], execution_count=None)
    return c


def _solution(head: str, body: str) -> str:
    return f"{head}\n    ### BEGIN SOLUTION\n    {body}\n    ### END SOLUTION"


HIDDEN = "\n### BEGIN HIDDEN TESTS\nassert top([1], 1) == [1]\n### END HIDDEN TESTS"


def source_notebook(reps: int) -> dict:
    solution = {"solution": True, "grade": False, "locked": False}
    locked = {"solution": False, "grade": False, "locked": True}
    test = {"solution": False, "grade": True, "locked": True}
    cells = [
        _cell("markdown", "# Numpy practice\nAnswer the three questions.", "intro"),
        _cell("code", WORK.format(reps=reps), "setup", locked),
        _cell("code", _solution("def mean_of(x):", "return float(np.mean(x))"), "q1", solution),
        _cell("code", "assert abs(mean_of([1, 2, 3]) - 2.0) < 1e-9", "t1", {**test, "points": 2}),
        _cell(
            "code", _solution("def norms(m):", "return np.linalg.norm(m, axis=1)"), "q2", solution
        ),
        _cell("code", "assert np.allclose(norms(np.eye(3)), 1)", "t2", {**test, "points": 2}),
        _cell("code", _solution("def top(x, k):", "return sorted(x)[-k:]"), "q3", solution),
        _cell("code", "assert top([3, 1, 2], 2) == [2, 3]", "t3", {**test, "points": 3}),
        _cell("code", "assert top([5, 4], 1) == [5]" + HIDDEN, "t4", {**test, "points": 3}),
        _cell("code", "print(checksum)", "end"),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel}, "cells": cells}


ANSWERS = {
    "q1": "def mean_of(x):\n    return float(np.mean(x))",
    "q2": "def norms(m):\n    return np.linalg.norm(m, axis=1)",
    "q3": "def top(x, k):\n    return sorted(x)[-k:]",
}
WRONG = {"q3": "def top(x, k):\n    return sorted(x)[:k]"}
CRASH = {"q2": "def norms(m):\n    raise ValueError('no')"}


def student_notebook(source: dict, n: int) -> dict:
    answers = {**ANSWERS, **(WRONG if n % 5 == 1 else {}), **(CRASH if n % 10 == 3 else {})}
    nb = json.loads(json.dumps(source))
    for c in nb["cells"]:
        if c["id"] in answers:
            c["source"] = answers[c["id"]]
        elif c["id"] == "t4":
            c["source"] = notebook.released(c["source"])
    return nb


async def classhub_run(image: str, workers: int, source: dict, students: list[dict]) -> dict:
    limits = sandbox.Limits(deployment="autograde-bench")
    grader = sandbox.Autograder(limits, concurrency=workers)
    plans = [notebook.make_plan(source, s) for s in students]
    try:
        start = time.monotonic()
        results = await asyncio.gather(*(grader.grade(image, p) for p in plans))
        seconds = time.monotonic() - start
    finally:
        grader.close()
    scores = [r.score for r in results]
    incomplete = [r.reason for r in results if not r.complete]
    return {
        "seconds": seconds,
        "scores": scores,
        "incomplete": incomplete,
    }


def nbgrader_run(source: dict, students: list[dict]) -> dict:
    root = Path(tempfile.mkdtemp(prefix="autograde-bench-nbgrader-"))
    try:
        venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "nbgrader", "numpy", "ipykernel"], check=True, timeout=1800)
        version = subprocess.run(
            [str(venv / "bin" / "nbgrader"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        course = root / "course"
        (course / "source" / "ps1").mkdir(parents=True)
        (course / "source" / "ps1" / "ps1.ipynb").write_text(json.dumps(source))
        (course / "nbgrader_config.py").write_text(
            "c = get_config()\nc.CourseDirectory.course_id = 'bench'\n"
            "c.ExecutePreprocessor.timeout = 120\n"
        )
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        run = {"cwd": course, "env": env, "check": True, "capture_output": True, "text": True}
        subprocess.run(["nbgrader", "db", "assignment", "add", "ps1"], **run)
        subprocess.run(["nbgrader", "generate_assignment", "ps1", "--force"], **run)
        for n, s in enumerate(students):
            folder = course / "submitted" / f"s{n:03d}" / "ps1"
            folder.mkdir(parents=True)
            (folder / "ps1.ipynb").write_text(json.dumps(s))
        start = time.monotonic()
        done = subprocess.run(
            ["nbgrader", "autograde", "ps1", "--create"], **{**run, "check": False}
        )
        seconds = time.monotonic() - start
        graded = len(list((course / "autograded").glob("*/ps1/ps1.ipynb")))
        return {"seconds": seconds, "graded": graded, "version": version, "rc": done.returncode}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def work_seconds(image: str, reps: int) -> float:
    """Seconds the work cell takes in ``image`` (one run, in a plain container)."""
    probe = (
        "import time\nt = time.monotonic()\n"
        + WORK.format(reps=reps)
        + "\nprint(time.monotonic() - t)"
    )
    # as in a sealed run: one CPU, numpy's threads as many (common/cputhreads.py)
    threads = [f"--env={k}={v}" for k, v in thread_env(1.0).items()]
    out = subprocess.run(
        ["docker", "run", "--rm", "--network=none", "--cpus=1", *threads, "--entrypoint",
         "/opt/venv/bin/python", image, "-c", probe],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--reps", type=int, default=200, help="numpy loops of the work cell (200: about 1 s here)"
    )
    parser.add_argument("--image", default="classhub/datascience:latest", help="has numpy")
    parser.add_argument("--nbgrader", action="store_true")
    args = parser.parse_args()

    source = source_notebook(args.reps)
    students = [student_notebook(source, n) for n in range(args.count)]
    compute = work_seconds(args.image, args.reps)

    ours = asyncio.run(classhub_run(args.image, args.workers, source, students))
    rows = [
        (
            f"classhub sealed, {args.workers} at once",
            args.count,
            ours["seconds"],
            f"{len(ours['incomplete'])} incomplete",
        )
    ]
    if args.nbgrader:
        theirs = nbgrader_run(source, students)
        rows.append(
            (
                f"nbgrader autograde ({theirs['version']})",
                theirs["graded"],
                theirs["seconds"],
                f"exit code {theirs['rc']}",
            )
        )
    print(
        f"\n{args.count} notebooks, 10 cells, work cell {compute:.2f} s in {args.image} (1 CPU);"
        f" {os.cpu_count()} cores, {platform.platform()}, {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
    )
    print("| grader | graded | seconds | per minute | notes |")
    print("|---|---|---|---|---|")
    for name, graded, seconds, notes in rows:
        print(f"| {name} | {graded} | {seconds:.1f} | {60 * graded / seconds:.1f} | {notes} |")
    scores = sorted(set(ours["scores"]))
    print(f"\nclasshub scores seen: {scores}")


if __name__ == "__main__":
    main()
