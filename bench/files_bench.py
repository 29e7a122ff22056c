"""Files service benchmark: presigned transfer throughput and the push.

Runs a real deployment on random ports via harness/stack.py (Redis, PostgreSQL, nx-27017,
SeaweedFS as the S3 store, Traefik, JupyterHub with classhub's config running the classes
and files services) and measures:

1. Throughput of one ``--size`` MB file (default 100), ``--rounds`` times each way, three
   ways (see :func:`throughput`): the ``minio`` SDK straight to the store; curl with a URL
   presigned for the store's own address; curl with the files service's presigned URL
   through Traefik, as a browser does. Transfers are timed alone (curl's own timer); the
   service's sign and done calls around them are timed and listed separately. The target
   compares the last with talking to the store directly. Over loopback everything is bound
   by the CPU, and Traefik's extra copy shows in full; ``--link 1gbit`` runs curl at the far
   end of a link of that rate instead, from its own network namespace, as a student's
   laptop on a LAN is (bench/netlink.py; needs root).
2. A push to ``--students`` (default 100) running class servers: the students are enrolled,
   their class servers started (real containers), the teacher uploads ``--files`` files of
   material, then the time from the push request to the moment every student's delivery is
   recorded (the files service writes into their homes through helper containers), and
   whether every file is in every container.

Usage: .venv/bin/python bench/files_bench.py [--size 100] [--rounds 5] [--students 100]
                                            [--files 10] [--skip-push] [--skip-transfer]
                                            [--link 1gbit]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.netlink import Link, shaped_link  # noqa: E402
from harness.files import (  # noqa: E402
    TEST_FILES_ENV,
    person,
    put_to_store,
)
from harness.stack import Stack, running_stack, wait_for  # noqa: E402
from services.base import sigv4  # noqa: E402

CODE = "bench"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def curl(*args: str, link: Link | None = None) -> tuple[float, str]:
    """Run curl (a C client, so the client's own cost does not blur the comparison), in the
    client's namespace when there is a ``link``; seconds of the transfer as curl measured
    it (connection included) and the HTTP status."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", *args]
    out = subprocess.run(
        link.command(*command) if link else command, capture_output=True, text=True, check=True
    ).stdout
    status, seconds = out.split()
    return float(seconds), status


OCTETS = "application/octet-stream"


def put_args(path: Path, content_type: str) -> list[str]:
    # one PUT of the file with the signed type, as the pages send it (curl sends the length)
    return ["-T", str(path), "-H", f"Content-Type: {content_type}"]


def throughput(
    stack: Stack, size: int, rounds: int, tmp: Path, link: Link | None = None
) -> list[str]:
    """Three ways to move the same bytes, each ``rounds`` times up and down, interleaved:
    the minio SDK straight to the store; curl with a URL presigned for the store's own
    address (straight to the store); curl with the files service's presigned URL through
    Traefik, as a browser does (the sign and done calls around it are timed apart). With a
    ``link``, curl runs at its far end (the SDK, on this machine, is left out: it would not
    cross the link)."""
    path = tmp / "payload.bin"
    path.write_bytes(os.urandom(size))
    data = path.read_bytes()
    client = Minio(
        f"{stack.public_host}:{stack.s3_port}",
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
        if link is None:
            t = time.perf_counter()
            client.put_object(bucket, key, io.BytesIO(data), size)
            record("SDK, straight to the store|up", time.perf_counter() - t)
            t = time.perf_counter()
            response = client.get_object(bucket, key)
            assert response.read() == data
            response.close()
            response.release_conn()
            record("SDK, straight to the store|down", time.perf_counter() - t)

        direct = sigv4.presign(
            method="PUT",
            scheme="http",
            host=f"{stack.public_host}:{stack.s3_port}",
            path=f"/{bucket}/{key}",
            access_key=stack.s3_access_key,
            secret_key=stack.s3_secret_key,
            region="us-east-1",
            expires=600,
            now=datetime.datetime.now(datetime.UTC),
            headers={"content-length": str(size), "content-type": OCTETS},
        )
        seconds, status = curl(*put_args(path, OCTETS), direct, link=link)
        assert status == "200", status
        record("curl, presigned, straight to the store|up", seconds)
        seconds, status = curl(client.presigned_get_object(bucket, key), link=link)
        assert status == "200", status
        record("curl, presigned, straight to the store|down", seconds)

        t = time.perf_counter()
        r = ann.post("api/files/me/uploads", json={"path": f"big-{i}.bin", "size": size})
        assert r.status_code == 200, r.text
        record("the service signing an upload|calls", time.perf_counter() - t)
        signed = r.json()
        seconds, status = curl(
            *put_args(path, signed["headers"]["Content-Type"]), signed["url"], link=link
        )
        assert status == "200", status
        record("curl, the files service's presigned URL via Traefik|up", seconds)
        t = time.perf_counter()
        done = ann.post(f"api/files/me/uploads/{r.json()['id']}")
        assert done.status_code == 200, done.text
        record("the service checking the upload (done)|calls", time.perf_counter() - t)
        t = time.perf_counter()
        url = ann.get("api/files/me/download", params={"path": f"big-{i}.bin"}).json()["url"]
        record("the service signing a download|calls", time.perf_counter() - t)
        seconds, status = curl(url, link=link)
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
        sdk_times = times.get(f"SDK, straight to the store|{direction}")
        sdk = statistics.median(sdk_times) if sdk_times else None
        for name, values in times.items():
            way, d = name.split("|")
            if d != direction:
                continue
            med = statistics.median(values)
            every = ", ".join(f"{v:.2f}" for v in values)
            rows.append(
                f"| {way} | {d} | {med:.2f} s | {mbps(size, med):.0f} | {every} "
                f"| {base / med:.0%} | {f'{sdk / med:.0%}' if sdk else '-'} |"
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
        assert put_to_store(r.json(), body).status_code == 200
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
    parser.add_argument("--skip-transfer", action="store_true", help="only the push")
    parser.add_argument(
        "--link",
        metavar="RATE",
        help="run curl across a link shaped to RATE (tc syntax, e.g. 1gbit) from its own "
        "network namespace, as a client on a LAN is (needs root; see bench/netlink.py)",
    )
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
        "# classhub files service benchmark",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs; load before: `{uptime()}`",
        f"- command: `{' '.join(['.venv/bin/python', *sys.argv])}`",
        "",
    ]
    with contextlib.ExitStack() as cleanup:
        tmp = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="classhub-files-bench-"))
        link = cleanup.enter_context(shaped_link(args.link)) if args.link else None
        public = link.host_address if link else "127.0.0.1"
        new = Stack(Path(tmp) / "stack", with_files=True, env=env, public_host=public)
        for stack in running_stack(new):
            health = stack.url + "/services/files/health"
            wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="files service")
            where = f", the client across a {link.rate}/s link" if link else ", over loopback"
            if not args.skip_transfer:
                out += [f"## 1. One {args.size} MB file, {args.rounds} rounds each way{where}", ""]
                out += throughput(stack, size, args.rounds, Path(tmp), link)
            if not args.skip_push:
                out += ["", f"## 2. Push to {args.students} running class servers", ""]
                out += push_bench(stack, args.students, args.files)
    out += ["", f"- load after: `{uptime()}`"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
