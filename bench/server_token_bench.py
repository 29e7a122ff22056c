"""How fast an ended session loses a student's server (the target: within 10 s).

Runs a real deployment (Redis, PostgreSQL, Traefik, JupyterHub with classhub's config,
one student container) on random ports via harness/stack.py. For each event (a takeover
by a new sign-in, a logout, an admin's "End session"), ``--rounds`` times:

1. a fresh browser signs in as the student and opens JupyterLab (OAuth with the server);
2. right before the event it makes one request to the server with its session's OAuth
   token, so the server's cache of the hub's answer is fresh: the worst case;
3. the event; then, polling every ``--poll`` seconds from when the event's request
   returned, until each is refused:
   - ``server token``: the server's own ``JUPYTERHUB_API_TOKEN`` (as a terminal of the
     container shows it) in an ``Authorization`` header;
   - ``session token``: the old browser's OAuth token (what JupyterLab sends) in an
     ``Authorization`` header;
   - ``old browser``: the old browser's own request with its cookies.

Target: every credential refused within 10 s. Prints a Markdown table (seconds from the
event to refusal: min, median, max) for docs/performance.md.

Usage: .venv/bin/python bench/server_token_bench.py [--rounds 5] [--poll 0.1]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.stack import Stack  # noqa: E402

USER = "benchstudent"
EVENTS = ("takeover", "logout", "end session")
CREDENTIALS = ("server token", "session token", "old browser")


def server_token(stack: Stack) -> str:
    (container,) = [c for c in stack.containers(all=False) if c.labels["classhub.user"] == USER]
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    return env["JUPYTERHUB_API_TOKEN"]


def one_round(stack: Stack, event: str, token: str, poll: float, limit: float) -> dict:
    status_url = stack.url + f"/user/{USER}/api/status"
    old = stack.browser()
    assert stack.login_token(old, stack.mint(USER)).status_code == 302
    lab = old.get(stack.url + f"/user/{USER}/lab", timeout=60)
    assert lab.status_code == 200, lab.status_code
    session = re.search(r'"token":\s*"([^"]+)"', lab.text).group(1)
    checks = {
        "server token": lambda: (
            requests.get(
                status_url, headers={"Authorization": f"token {token}"}, timeout=15
            ).status_code
        ),
        "session token": lambda: (
            requests.get(
                status_url, headers={"Authorization": f"token {session}"}, timeout=15
            ).status_code
        ),
        "old browser": lambda: old.get(status_url, timeout=15, allow_redirects=False).status_code,
    }
    assert checks["session token"]() == 200 and checks["old browser"]() == 200
    if event == "takeover":
        assert stack.login_token(stack.browser(), stack.mint(USER)).status_code == 302
    elif event == "logout":
        old.get(stack.url + "/hub/logout", timeout=15)
    else:
        assert stack.api("DELETE", f"/classhub/sessions/{USER}").status_code == 204
    t0 = time.monotonic()
    refused: dict[str, float] = {}
    while len(refused) < len(checks):
        now = time.monotonic() - t0
        if now > limit:
            for name in checks:
                refused.setdefault(name, float("inf"))
            break
        for name, check in checks.items():
            if name not in refused and check() != 200:
                refused[name] = time.monotonic() - t0
        time.sleep(poll)
    return refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--limit", type=float, default=30.0, help="give up after this many s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="classhub-token-bench-") as tmp:
        stack = Stack(Path(tmp), log_level="INFO")
        try:
            stack.start()
            stack.create_user(USER)
            stack.spawn(USER)
            token = server_token(stack)
            results = {e: {c: [] for c in CREDENTIALS} for e in EVENTS}
            for _ in range(args.rounds):
                for event in EVENTS:
                    for name, seconds in one_round(
                        stack, event, token, args.poll, args.limit
                    ).items():
                        results[event][name].append(seconds)
        finally:
            stack.close()
    print(f"Refusal after the event, seconds ({args.rounds} rounds, polling every {args.poll} s)")
    print()
    print("| event | credential | min | median | max |")
    print("|---|---|---|---|---|")
    for event in EVENTS:
        for name in CREDENTIALS:
            values = results[event][name]
            print(
                f"| {event} | {name} | {min(values):.2f} | "
                f"{statistics.median(values):.2f} | {max(values):.2f} |"
            )
    worst = max(max(v) for by_event in results.values() for v in by_event.values())
    print()
    print(f"worst: {worst:.2f} s (target: at most 10 s)")
    return 0 if worst <= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
