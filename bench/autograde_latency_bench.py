"""Submit to a visible autograde result, with an idle queue, through the real service.

A whole deployment on random ports (harness.stack with the files and grades services, the
production grading settings but the image ``--image``): a class with an assignment whose
autograding runs on Submit (the bench's notebook, bench/autograde_bench.py, 1 s of numpy
with ``--reps 200``), one student's running server with their notebook in it. ``--count``
times, one after the other: the student's Submit (the service snapshots the folder through
its helper container, stores it, queues the job and wakes its workers), then the student's
own API asks every 0.2 s until the result is there. Seconds from the Submit request to the
first answer that shows the result: median, p95, max.

Target (issue: autograding): p95 at most 10 s when the queue is idle.

Usage: .venv/bin/python bench/autograde_latency_bench.py [--count 20] [--reps 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.autograde_bench import source_notebook, student_notebook  # noqa: E402
from harness.classes import Person  # noqa: E402
from harness.files import files_stack  # noqa: E402

GRADES = "/services/grades/"
CODE = "lat1"


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--image", default="classhub/datascience:latest")
    args = parser.parse_args()
    env = {
        "CLASSHUB_AUTOGRADE_IMAGE": args.image,
        "CLASSHUB_ALLOWED_IMAGES": f"classhub/singleuser:latest,{args.image}",
    }
    source = source_notebook(args.reps)
    seconds = []
    for stack in files_stack(Path(tempfile.mkdtemp(prefix="autograde-latency-")), env=env):
        stack.enroll("tia", CODE, teacher=True, image=args.image)
        stack.enroll("sam", CODE, image=args.image)
        tia = Person(stack, "tia", "teacher", service=GRADES)
        sam = Person(stack, "sam", "student", service=GRADES)
        a = f"api/classes/{CODE}/assignments"
        body = {"slug": "np", "title": "Numpy", "max_points": 10,
                "release_at": iso(-3600), "due_at": iso(86400)}  # fmt: skip
        assert tia.post(a, json=body).status_code == 201
        config = {"notebook_path": "np.ipynb", "source": source, "on_submit": True,
                  "image": args.image}  # fmt: skip
        r = tia.call("PUT", f"{a}/np/autograde", json=config)
        assert r.status_code == 200, r.text
        stack.spawn("sam", CODE)
        for n in range(args.count):
            notebook = student_notebook(source, n)
            notebook["cells"][0]["source"] += f"\n\n(version {n})"  # a new version each time
            nb = json.dumps(notebook).encode()
            stack.write_home("sam", CODE, f"{CODE}/assignments/np/np.ipynb", nb)
            start = time.monotonic()
            r = sam.post(f"{a}/np/submit")
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            while True:
                state = sam.get(f"api/submissions/{sid}/autograde").json()["state"]
                if state in ("done", "failed"):
                    break
                assert time.monotonic() - start < 300, state
                time.sleep(0.2)
            seconds.append(time.monotonic() - start)
            assert state == "done", state
        stack.stop("sam", CODE)
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    print(f"\n{args.count} Submits one after the other, idle queue, {args.image}, "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}\n")  # fmt: skip
    print("| Submits | median | p95 | max |\n|---|---|---|---|")
    print(f"| {len(seconds)} | {statistics.median(seconds):.1f} s | {p95:.1f} s "
          f"| {seconds[-1]:.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
