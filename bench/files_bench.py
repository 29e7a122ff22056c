"""Files service benchmark (issue 5, item 6): presigned transfer throughput and the push.

Runs a real deployment on random ports via tests/harness.py (Redis, PostgreSQL, nx-27017,
SeaweedFS as the S3 store, Traefik, JupyterHub with classhub's config running the classes
and files services) and measures:

1. Throughput of one ``--size`` MB file (default 100), ``--rounds`` times each way, three
   ways (see :func:`throughput`): the ``minio`` SDK straight to the store; curl with a URL
   presigned for the store's own address; curl with the files service's presigned URL
   through Traefik, as a browser does. Transfers are timed alone (curl's own run); the
   service's sign and done calls around them are timed and listed separately. The target
   compares the last with talking to the store directly.
2. A push to ``--students`` (default 100) running class servers: the students are enrolled,
   their class servers started (real containers), the teacher uploads ``--files`` files of
   material, then the time from the push request to the moment every student's delivery is
   recorded, and whether every file is in every container.

Usage: .venv/bin/python bench/files_bench.py [--size 100] [--rounds 3] [--students 100]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from minio import Minio
from minio.datatypes import PostPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Stack, running_stack, wait_for  # noqa: E402
from tests.integration.test_files_support import (  # noqa: E402
    TEST_FILES_ENV,
    person,
    post_to_store,
)

CODE = "bench"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def curl(*args: str) -> tuple[float, str]:
    """Run curl (a C client, so the client's own cost does not blur the comparison);
    seconds taken and the HTTP status."""
    t = time.perf_counter()
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return time.perf_counter() - t, out


def form_args(fields: dict, path: Path) -> list[str]:
    # the policy's fields first, the file last, as the pages send it
    return [*(a for k, v in fields.items() for a in ("-F", f"{k}={v}")), "-F", f"file=@{path}"]


def throughput(stack: Stack, size: int, rounds: int, tmp: Path) -> list[str]:
    """Three ways to move the same bytes, each ``rounds`` times up and down:
    the minio SDK straight to the store; curl with a URL presigned for the store's own
    address (straight to the store); curl with the files service's presigned URL through
    Traefik, as a browser does (including the sign and done calls for the upload)."""
    path = tmp / "payload.bin"
    path.write_bytes(os.urandom(size))
    data = path.read_bytes()
    client = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )
    bucket = "classhub-files"
    wait_for(lambda: client.bucket_exists(bucket), 60, what="bucket created by the service")
    ann = person(stack, "ann")
    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    for i in range(rounds):
        key = f"bench/direct-{i}"
        t = time.perf_counter()
        client.put_object(bucket, key, io.BytesIO(data), size)
        record("SDK, straight to the store|up", time.perf_counter() - t)
        t = time.perf_counter()
        response = client.get_object(bucket, key)
        assert response.read() == data
        response.close()
        response.release_conn()
        record("SDK, straight to the store|down", time.perf_counter() - t)

        policy = PostPolicy(
            bucket, datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)
        )
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(0, size)
        fields = {**client.presigned_post_policy(policy), "key": key}
        seconds, status = curl(
            *form_args(fields, path), f"http://127.0.0.1:{stack.s3_port}/{bucket}"
        )
        assert status == "204", status
        record("curl, presigned, straight to the store|up", seconds)
        seconds, status = curl(client.presigned_get_object(bucket, key))
        assert status == "200", status
        record("curl, presigned, straight to the store|down", seconds)

        t = time.perf_counter()
        r = ann.post("api/files/me/uploads", json={"path": f"big-{i}.bin", "size": size})
        assert r.status_code == 200, r.text
        record("the service signing an upload|calls", time.perf_counter() - t)
        seconds, status = curl(*form_args(r.json()["fields"], path), r.json()["url"])
        assert status == "204", status
        record("curl, the files service's presigned URL via Traefik|up", seconds)
        t = time.perf_counter()
        done = ann.post(f"api/files/me/uploads/{r.json()['id']}")
        assert done.status_code == 200, done.text
        record("the service checking the upload (done)|calls", time.perf_counter() - t)
        t = time.perf_counter()
        link = ann.get("api/files/me/download", params={"path": f"big-{i}.bin"}).json()["url"]
        record("the service signing a download|calls", time.perf_counter() - t)
        seconds, status = curl(link)
        assert status == "200", status
        record("curl, the files service's presigned URL via Traefik|down", seconds)
        ann.delete("api/files/me/file", params={"path": f"big-{i}.bin"})
        client.remove_object(bucket, key)
    rows = [
        "| way | direction | median | MB/s | all rounds | of straight curl | of the SDK |",
        "|---|---|---|---|---|---|---|",
    ]
    for direction in ("up", "down"):
        base = statistics.median(times[f"curl, presigned, straight to the store|{direction}"])
        sdk = statistics.median(times[f"SDK, straight to the store|{direction}"])
        for name, values in times.items():
            way, d = name.split("|")
            if d != direction:
                continue
            med = statistics.median(values)
            every = ", ".join(f"{v:.2f}" for v in values)
            rows.append(
                f"| {way} | {d} | {med:.2f} s | {mbps(size, med):.0f} | {every} "
                f"| {base / med:.0%} | {sdk / med:.0%} |"
            )
    rows += [
        "",
        "| the service's own calls around a transfer | median | all rounds |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        way, d = name.split("|")
        if d == "calls":
            every = ", ".join(f"{v * 1000:.0f}" for v in values)
            rows.append(f"| {way} | {statistics.median(values) * 1000:.0f} ms | {every} ms |")
    return rows


def push_bench(stack: Stack, students: int, files: int) -> list[str]:
    names = [f"s{i:03d}" for i in range(students)]
    stack.enroll("teach", CODE, teacher=True)
    r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": []})
    for name in names:
        stack.create_user(name)
    r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": names})
    assert r.status_code == 200, r.text
    teacher = person(stack, "teach", "teacher")
    for i in range(files):
        body = os.urandom(20_000) if i % 2 else (f"# notebook {i}\n" * 500).encode()
        r = teacher.post(
            f"api/files/class/{CODE}/uploads",
            json={"path": f"week1/file{i}.txt", "size": len(body)},
        )
        assert r.status_code == 200, r.text
        assert post_to_store(r.json(), body).status_code == 204
        assert teacher.post(f"api/files/class/{CODE}/uploads/{r.json()['id']}").status_code == 200
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: stack.api("POST", f"/users/{n}/servers/{CODE}", json={}), names))
    for name in names:
        stack.wait_ready(name, CODE, timeout=600)
    spawned = time.perf_counter() - t
    load_before = uptime()
    t = time.perf_counter()
    r = teacher.post(f"api/classes/{CODE}/pushes", json={})
    assert r.status_code == 202, r.text
    push_id = r.json()["id"]

    def finished():
        body = teacher.get(f"api/classes/{CODE}/pushes/{push_id}").json()
        return body if body["status"] == "done" else None

    report = wait_for(finished, 600, interval=0.1, what="push done")
    took = time.perf_counter() - t
    statuses = {}
    for s in report["students"]:
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    complete = sum(
        1
        for s in report["students"]
        if s["status"] == "delivered"
        and len(s["report"]["added"]) + len(s["report"]["unchanged"]) == files
    )
    # check every container really has every file
    missing = 0
    for c in stack.containers(all=False):
        if c.labels.get("classhub.server") != CODE:
            continue
        code, out = c.exec_run(
            ["sh", "-c", f"ls /home/jovyan/{CODE}/material/week1 | wc -l"], user="1000"
        )
        if code != 0 or int(out.decode().strip() or 0) != files:
            missing += 1
    return [
        f"- {students} class servers started in {spawned:.1f} s before the push",
        f"- load just before the push: `{load_before}`",
        "",
        "| students | files | push to all recorded | deliveries | complete | missing a file |",
        "|---|---|---|---|---|---|",
        f"| {students} | {files} ({report['bytes']} bytes) | **{took:.2f} s** | {statuses} "
        f"| {complete} | {missing} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100, help="MB of the transfer test")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--skip-push", action="store_true")
    args = parser.parse_args()
    size = args.size * 1_000_000
    env = {
        **TEST_FILES_ENV,
        "CLASSHUB_FILES_USER_QUOTA": f"{args.size * 3}M",
        "CLASSHUB_FILES_MAX_FILE_SIZE": f"{args.size + 10}M",
        "CLASSHUB_FILES_DOWNLOAD_EXPIRY": "60",
        "CLASSHUB_S3_TIMEOUT": "60",
        "CLASSHUB_MEM_LIMIT": "256M",
    }
    out = [
        "# classhub files service benchmark (issue 5, item 6)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs; load before: `{uptime()}`",
        f"- command: `{' '.join(['.venv/bin/python', *sys.argv])}`",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="classhub-files-bench-") as tmp:
        new = Stack(Path(tmp) / "stack", with_files=True, env=env)
        for stack in running_stack(new):
            health = stack.url + "/services/files/health"
            wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="files service")
            out += [f"## 1. One {args.size} MB file, {args.rounds} rounds each way", ""]
            out += throughput(stack, size, args.rounds, Path(tmp))
            if not args.skip_push:
                out += ["", f"## 2. Push to {args.students} running class servers", ""]
                out += push_bench(stack, args.students, args.files)
    out += ["", f"- load after: `{uptime()}`"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
