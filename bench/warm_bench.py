"""Warm before class: sign-in to a running kernel against a warmed class.

Runs a real deployment (Traefik, JupyterHub, PostgreSQL, Redis, nx-27017, the classes
service, student containers on Docker) on random ports via harness/stack.py, then:

1. makes a class of N students (each signed in once beforehand, so that the hub knows
   them as students) with a weekly meeting a few minutes ahead, and lets the classes
   service's own warm-up (every second here) start their servers; reports how long the
   warm-up took until every server was ready;
2. N sign-ins spread evenly over a window (default 30 within 10 s), each from a fresh
   cookie jar (one "browser"), from a thread pool. Each browser signs in with a JWT
   (``POST /hub/login``), opens its class server's JupyterLab page (the OAuth round trip
   with the hub included), starts a kernel with the page's XSRF token, opens the kernel's
   websocket and runs ``1+1`` until the result arrives. Latency: from sending the sign-in
   to receiving ``2``. Target: p95 at most 1.5 s, 0 errors.

The load average before the run is printed: the machine is shared, figures taken while
other work runs are marked as such.

Usage: .venv/bin/python bench/warm_bench.py [--students 30] [--window 10]
Prints a Markdown table (paste it into docs/performance.md with the date and command).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import pct  # noqa: E402
from harness.classes import TEST_SERVICE_ENV, Person, wait_healthy  # noqa: E402
from harness.kernel import execute_request  # noqa: E402
from harness.stack import Stack, wait_for  # noqa: E402

CODE = "bench9"


async def run_one_plus_one(stack: Stack, base: str, browser: requests.Session) -> None:
    # the server's own _xsrf cookie (the hub has another, on /hub/)
    xsrf = next(
        c.value for c in browser.cookies if c.name == "_xsrf" and base.startswith(c.path or "/")
    )
    r = browser.post(
        stack.url + base + "api/kernels",
        json={"name": "python3"},
        headers={"X-XSRFToken": xsrf},
        timeout=30,
    )
    if r.status_code != 201:
        raise RuntimeError(f"kernel start: HTTP {r.status_code} {r.text[:200]}")
    kernel = r.json()["id"]
    cookies = "; ".join(
        f"{c.name}={c.value}" for c in browser.cookies if base.startswith(c.path or "/")
    )
    conn = await websocket_connect(
        HTTPRequest(
            stack.url.replace("http://", "ws://") + f"{base}api/kernels/{kernel}/channels",
            headers={"Cookie": cookies},
            connect_timeout=10,
            request_timeout=30,
        )
    )
    try:
        msg_id, message = execute_request("1+1", username="bench")
        conn.write_message(message)
        while True:
            raw = await asyncio.wait_for(conn.read_message(), 30)
            if raw is None:
                raise RuntimeError("kernel websocket closed before the result")
            msg = json.loads(raw)
            if (
                msg.get("msg_type") == "execute_result"
                and msg.get("parent_header", {}).get("msg_id") == msg_id
            ):
                if msg["content"]["data"].get("text/plain") != "2":
                    raise RuntimeError(f"1+1 gave {msg['content']['data']}")
                return
    finally:
        conn.close()


def student_session(stack: Stack, name: str, start_at: float) -> tuple[float, str]:
    """(seconds from sign-in to the result of 1+1, error or "")."""
    delay = start_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    browser = stack.browser()
    t0 = time.monotonic()
    try:
        r = stack.login_token(browser, stack.mint(name, "student"))
        if r.status_code != 302:
            raise RuntimeError(f"sign-in: HTTP {r.status_code}")
        base = f"/user/{name}/{CODE}/"
        r = browser.get(stack.url + base + "lab", timeout=30)  # OAuth round trip included
        if r.status_code != 200 or f"/user/{name}/{CODE}/" not in r.url:
            raise RuntimeError(f"JupyterLab page: HTTP {r.status_code} at {r.url.split('?')[0]}")
        asyncio.run(run_one_plus_one(stack, base, browser))
        return time.monotonic() - t0, ""
    except Exception as e:  # noqa: BLE001 - every failure is counted and shown
        return time.monotonic() - t0, f"{type(e).__name__}: {e}"
    finally:
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which to sign in")
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds to wait after the warm-up"
    )
    parser.add_argument(
        "--kernel-pool",
        type=int,
        default=None,
        help="kernels each server starts ahead (CLASSHUB_KERNEL_POOL; default: the product's)",
    )
    args = parser.parse_args()
    names = [f"wb{i:03d}" for i in range(args.students)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="classhub-warm-bench-") as tmp:
        stack = Stack(
            Path(tmp),
            with_classes=True,
            log_level="INFO",
            env={
                **TEST_SERVICE_ENV,
                "CLASSHUB_WARM_INTERVAL": "1",
                "CLASSHUB_WARM_CAPACITY": str(args.students + 10),
                **(
                    {}
                    if args.kernel_pool is None
                    else {"CLASSHUB_KERNEL_POOL": str(args.kernel_pool)}
                ),
            },
        )
        try:
            stack.start()
            wait_healthy(stack)
            admin = Person(stack, "admin", "admin")
            r = admin.post("api/classes", {"code": CODE, "name": "Warm bench"})
            assert r.status_code == 201, r.text
            for name in names:  # the hub learns each one's student role
                b = stack.browser()
                assert stack.login_token(b, stack.mint(name, "student")).status_code == 302
                b.close()
            r = admin.post(f"api/classes/{CODE}/import", {"csv": "username\n" + "\n".join(names)})
            assert r.status_code in (200, 201), r.text
            meeting = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=4)
            day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[meeting.weekday()]
            schedule = {
                "timezone": "UTC",
                "meetings": [{"days": [day], "start": meeting.strftime("%H:%M"), "minutes": 60}],
            }
            w0 = time.monotonic()
            r = admin.patch(f"api/classes/{CODE}", {"schedule": schedule})
            assert r.status_code == 200, r.text

            counts = {}

            def settled():
                """Every warm server ready, or none pending any more (a start failed)."""
                users = stack.api("GET", "/users", params={"state": "active"}).json()
                mine = [(u.get("servers") or {}).get(CODE) for u in users]
                mine = [s for s in mine if s]
                counts["ready"] = sum(1 for s in mine if s.get("ready"))
                pending = sum(1 for s in mine if s.get("pending"))
                return counts["ready"] >= len(names) or (mine and not pending)

            wait_for(settled, 1200, interval=0.5, what="the warm-up to finish")
            warm_seconds = time.monotonic() - w0
            if counts["ready"] < len(names):  # why some warm starts failed
                for line in stack.logs().splitlines():
                    if "Timeout" in line or "failed to start" in line or "Spawn of" in line:
                        print(line[:300], file=sys.stderr)
            time.sleep(args.settle)
            load_at_run = os.getloadavg()
            t_start = time.monotonic() + 0.5
            step = args.window / max(1, len(names))
            with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
                results = list(
                    pool.map(
                        lambda i: student_session(stack, names[i], t_start + i * step),
                        range(len(names)),
                    )
                )
        except Exception:
            print(stack.logs()[-20000:], file=sys.stderr)
            traceback.print_exc()
            raise
        finally:
            stack.close()
    times = [t for t, err in results if not err]
    errors = [err for _, err in results if err]
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; command: {' '.join(sys.argv)}")
    print(
        f"load average before: {load_before[0]:.1f}; at the sign-ins: {load_at_run[0]:.1f} "
        f"({os.cpu_count()} cores; above {os.cpu_count()} the figures are under load)"
    )
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| warm-up of {len(names)} servers, schedule saved until settled "
        f"| {warm_seconds:.1f} s, {counts['ready']} ready | all {len(names)} ready |"
    )
    print(f"| sign-ins | {len(names)} within {args.window:g} s | 30 within 10 s |")
    if times:
        print(f"| sign-in to a running kernel, p50 | {pct(times, 50):.2f} s | |")
        print(f"| sign-in to a running kernel, p95 | {pct(times, 95):.2f} s | at most 1.5 s |")
        print(f"| sign-in to a running kernel, max | {max(times):.2f} s | |")
    print(f"| errors | {len(errors)} | 0 |")
    for err in sorted(set(errors)):
        print(f"  error: {err}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
