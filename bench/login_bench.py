"""Sign-in benchmark: JWT sign-ins under load, and the cost of the session check.

Runs a real deployment (Redis, PostgreSQL, Traefik, JupyterHub with classhub's config) on
random ports via harness/stack.py, then measures:

1. N JWT sign-ins (POST ``token`` to /hub/login through Traefik) sent at a steady rate over
   a window, each from its own fresh cookie jar (one "browser"), from a thread pool.
   Latency is from sending the POST to receiving the 302. Afterwards (not timed) every
   browser is checked with ``GET /hub/api/user``; with ``--takeover`` a second run signs
   in N/2 people twice each (the same person's two sign-ins sent at the same instant, or
   ``--takeover-gap`` slots apart) and checks that exactly one browser per person, the
   later one, is signed in and that Redis names that browser's session. Target: p95 at
   most 300 ms, 0 wrong outcomes.
2. The cost of the per-request session check (``JWTAuthenticator.refresh_user``):
   (a) ``SessionStore.touch`` called directly against the deployment's Redis, against a
   plain PING; (b) ``GET /hub/api/user`` pairs from signed-in browsers: the first request
   of each pair comes after more than 1 s idle, so JupyterHub calls ``refresh_user``
   (``auth_refresh_age = 1``), the second follows at once and does not. Redis's own
   command counters confirm which requests ran the check.

Every latency is also read from the hub's access log (its own request time), so the part
spent in Traefik and the client can be told apart. CPU time of the hub, Traefik, Redis,
PostgreSQL and this client is sampled from /proc around each run.

Usage: .venv/bin/python bench/login_bench.py [--logins 200] [--window 10] [--takeover]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import cpu_seconds, ms, pct  # noqa: E402
from harness.stack import VENV_BIN, Stack  # noqa: E402

ACCESS = re.compile(r"\] (\d{3}) (GET|POST) (\S+).*? \(([^@()]*)@[^)]*\) ([\d.]+)ms$")


# ----- small helpers -----


def us(x: float) -> str:
    return f"{x * 1e6:.0f} µs"


class CpuMeter:
    """CPU seconds used by each component (and this client) between start() and stop()."""

    def __init__(self, stack: Stack):
        self.pids = {
            "JupyterHub": stack.hub.proc.pid,
            "Traefik": stack.traefik.proc.pid,
            "Redis": stack.redis.proc.pid,
            "PostgreSQL": stack.pg.proc.pid,
        }

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.client0 = time.process_time()

    def stop(self) -> dict[str, float]:
        used = {k: cpu_seconds(p) - self.before[k] for k, p in self.pids.items()}
        used["benchmark client"] = time.process_time() - self.client0
        used["wall"] = time.monotonic() - self.t0
        return used


class HubLog:
    """The hub's access-log lines written since the last mark()."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def lines(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace").splitlines()

    def access(self, method: str, path_prefix: str) -> list[tuple[int, str, str, float]]:
        """(status, uri, user, ms) of matching requests, in log order."""
        out = []
        for line in self.lines():
            m = ACCESS.search(line)
            if m and m.group(2) == method and m.group(3).startswith(path_prefix):
                out.append((int(m.group(1)), m.group(3), m.group(4), float(m.group(5))))
        return out


def redis_evalsha_calls(stack: Stack) -> int:
    """EVALSHA/EVAL calls Redis has served (every SessionStore script call is one)."""
    info = stack.redis_cli("INFO", "commandstats")
    if isinstance(info, str):
        text = info
        calls = 0
        for name in ("cmdstat_evalsha", "cmdstat_eval"):
            m = re.search(rf"^{name}:calls=(\d+)", text, re.M)
            calls += int(m.group(1)) if m else 0
        return calls
    return sum(int(info.get(n, {}).get("calls", 0)) for n in ("cmdstat_evalsha", "cmdstat_eval"))


# ----- 1. sign-ins -----


@dataclass
class Attempt:
    user: str
    slot: int
    browser: requests.Session
    scheduled: float = 0.0
    sent: float = 0.0
    done: float = 0.0
    status: int | None = None
    error: str = ""
    signed_in_as: str | None = None
    hub_ms: float | None = None

    @property
    def latency(self) -> float:
        return self.done - self.sent


@dataclass
class SigninResult:
    name: str
    attempts: list[Attempt]
    cpu: dict[str, float]
    client_lag_max: float
    wrong: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def schedule(users: list[str], twice: bool, gap: int) -> list[str]:
    """The user of each slot. ``twice``: each user twice, ``gap`` slots apart (0: adjacent
    slots sent at the same instant)."""
    if not twice:
        return list(users)
    slots: list[str] = []
    for i in range(0, len(users), max(gap, 1)):
        group = users[i : i + max(gap, 1)]
        slots += group + group  # user j of the group at slots j and j + len(group)
    return slots


def signin_run(
    stack: Stack, name: str, users: list[str], twice: bool, gap: int, window: float, workers: int
) -> SigninResult:
    slots = schedule(users, twice, gap)
    n = len(slots)
    interval = window / n
    attempts = [Attempt(u, i, stack.browser()) for i, u in enumerate(slots)]
    tokens = [stack.mint(a.user) for a in attempts]  # before the clock starts

    def one(a: Attempt, token: str) -> None:
        a.sent = time.perf_counter()
        try:
            r = stack.login_token(a.browser, token)
            a.status = r.status_code
        except requests.RequestException as e:
            a.error = type(e).__name__
        a.done = time.perf_counter()

    log = HubLog(stack.hub.log_path)
    log.mark()
    meter = CpuMeter(stack)
    lag_max = 0.0
    with concurrent.futures.ThreadPoolExecutor(min(workers, n)) as pool:
        meter.start()
        t0 = time.perf_counter() + 0.05
        futures = []
        for a, token in zip(attempts, tokens, strict=True):
            slot = a.slot - a.slot % 2 if twice and gap == 0 else a.slot
            a.scheduled = t0 + slot * interval
            delay = a.scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, a, token))
        for f in futures:
            f.result()
    cpu = meter.stop()
    lag_max = max(a.sent - a.scheduled for a in attempts)

    # the hub's own request time for each sign-in (matched per user, in order)
    per_user: dict[str, list[float]] = {}
    for _status, _uri, user, t in log.access("POST", "/hub/login"):
        per_user.setdefault(user, []).append(t)
    for a in sorted(attempts, key=lambda a: a.done):
        times = per_user.get(a.user)
        if times and a.status == 302:
            a.hub_ms = times.pop(0)

    # outcome checks, not timed
    result = SigninResult(name, attempts, cpu, lag_max)
    for a in attempts:
        if a.status != 302:
            result.wrong.append(f"{a.user} slot {a.slot}: {a.status or a.error}")
            continue
        a.signed_in_as = stack.whoami(a.browser)
    by_user: dict[str, list[Attempt]] = {}
    for a in attempts:
        by_user.setdefault(a.user, []).append(a)
    later_won = overlapping = 0
    for user, mine in by_user.items():
        for a in mine:
            if a.signed_in_as not in (None, user):
                result.wrong.append(f"{user} slot {a.slot}: signed in as {a.signed_in_as}")
        live = [a for a in mine if a.signed_in_as == user]
        if len(live) != 1:
            result.wrong.append(f"{user}: {len(live)} browsers signed in (want exactly 1)")
            continue
        raw = stack.redis_cli("GET", f"classhub:session:{user}")
        cookie = live[0].browser.cookies.get("jupyterhub-session-id")
        if not raw or json.loads(raw)["session_id"] != cookie:
            result.wrong.append(f"{user}: Redis session is not the signed-in browser's")
        if twice and live[0] is max(mine, key=lambda a: a.done):
            later_won += 1
        if twice and max(a.sent for a in mine) < min(a.done for a in mine):
            overlapping += 1
    if twice:
        replaced = sum("replaced by a new sign-in" in line for line in log.lines())
        result.notes.append(
            f"the later sign-in won for {later_won} of {len(by_user)} people; "
            f"for {overlapping} the two sign-ins were in flight at once; "
            f"{replaced} sessions replaced (hub log)"
        )
    return result


def signin_table(results: list[SigninResult], window: float) -> list[str]:
    out = [
        "| run | sign-ins | 302 | p50 | p95 | p99 | max | wrong outcomes | "
        "hub's own time p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lat = [a.latency for a in r.attempts if a.status is not None]
        hub = [a.hub_ms / 1000 for a in r.attempts if a.hub_ms is not None]
        ok = sum(a.status == 302 for a in r.attempts)
        out.append(
            f"| {r.name} | {len(r.attempts)} in {window:g} s | {ok} | {ms(pct(lat, 50))} | "
            f"**{ms(pct(lat, 95))}** | {ms(pct(lat, 99))} | {ms(max(lat))} | "
            f"**{len(r.wrong)}** | {ms(pct(hub, 50))} / {ms(pct(hub, 95))} |"
        )
    return out


def cpu_table(results: list[SigninResult]) -> list[str]:
    keys = ["JupyterHub", "PostgreSQL", "Traefik", "Redis", "benchmark client"]
    out = [
        "| run | wall | " + " | ".join(keys) + " | client send lag max |",
        "|---|---|" + "---|" * len(keys) + "---|",
    ]
    for r in results:
        n = len(r.attempts)
        cells = [f"{r.cpu[k]:.2f} s ({r.cpu[k] / n * 1000:.1f} ms each)" for k in keys]
        out.append(
            f"| {r.name} | {r.cpu['wall']:.1f} s | "
            + " | ".join(cells)
            + f" | {ms(r.client_lag_max)} |"
        )
    return out


# ----- 2. the session check -----


async def touch_bench(stack: Stack, n: int) -> dict[str, list[float]]:
    """Seconds per call: SessionStore.touch (the check refresh_user makes) and PING."""
    from authenticator.sessions import Session, SessionStore

    store = SessionStore.from_url(
        f"redis://127.0.0.1:{stack.redis_port}/0",
        timeout=2.0,
        idle_timeout=7200,
        prefix="classhub-bench",
    )
    try:
        session = Session(user="bench", session_id="b" * 32, started=time.time())
        await store.begin(session, "takeover")
        out: dict[str, list[float]] = {"touch": [], "ping": []}
        for _ in range(100):  # warm up: connection, script cache
            await store.touch("bench", session.session_id)
            await store.redis.ping()
        for _ in range(n):
            t = time.perf_counter()
            assert await store.touch("bench", session.session_id)
            out["touch"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await store.redis.ping()
            out["ping"].append(time.perf_counter() - t)
        await store.end("bench")
        return out
    finally:
        await store.close()


@dataclass
class RefreshResult:
    e2e: dict[str, list[float]]
    hub: dict[str, list[float]]
    evalsha: int
    statuses: dict[int, int]


def refresh_bench(stack: Stack, browsers: dict[str, requests.Session], rounds: int):
    """Pairs of GET /hub/api/user per browser: after >1.1 s idle (refresh), then at once."""
    names = sorted(browsers)
    last: dict[str, float] = {}
    e2e: dict[str, list[float]] = {"refresh": [], "cached": []}
    statuses: dict[int, int] = {}
    time.sleep(1.2)  # everyone idle for longer than auth_refresh_age
    log = HubLog(stack.hub.log_path)
    log.mark()
    calls0 = redis_evalsha_calls(stack)
    for _ in range(rounds):
        for name in names:
            wait = last.get(name, 0) + 1.1 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last[name] = time.monotonic()
            for kind in ("refresh", "cached"):
                b = browsers[name]
                t = time.perf_counter()
                r = stack.browser_api(b, "GET", f"/user?bench={kind}")
                e2e[kind].append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    evalsha = redis_evalsha_calls(stack) - calls0
    hub: dict[str, list[float]] = {"refresh": [], "cached": []}
    for _status, uri, _user, t in log.access("GET", "/hub/api/user?bench="):
        hub[uri.rsplit("=", 1)[1]].append(t / 1000)
    return RefreshResult(e2e, hub, evalsha, statuses)


# ----- main -----


def machine_facts(stack: Stack | None = None) -> list[str]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError):
        pass
    import jupyterhub

    traefik = subprocess.run(
        [str(VENV_BIN / "traefik"), "version"], capture_output=True, text=True
    ).stdout
    m = re.search(r"Version:\s*(\S+)", traefik)
    load = os.getloadavg()
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
        f"{cpu_model or platform.processor()}, {mem} RAM, {platform.platform()}",
        f"- load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- JupyterHub {jupyterhub.__version__}, Traefik {m.group(1) if m else '?'}, "
        f"Python {platform.python_version()}, PostgreSQL 15, "
        + subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        .stdout.split(" sha=")[0]
        .strip(),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=200, help="sign-ins per run")
    parser.add_argument("--window", type=float, default=10.0, help="seconds to spread them over")
    parser.add_argument(
        "--takeover",
        action="store_true",
        help="also run LOGINS/2 people signing in twice each (session takeover)",
    )
    parser.add_argument(
        "--takeover-gap",
        type=int,
        default=0,
        help="slots between one person's two sign-ins (0 = both sent at the same instant)",
    )
    parser.add_argument("--workers", type=int, default=100, help="client threads")
    parser.add_argument("--touch", type=int, default=2000, help="direct SessionStore.touch calls")
    parser.add_argument(
        "--refresh-rounds", type=int, default=5, help="request pairs per signed-in browser"
    )
    args = parser.parse_args()
    command = ".venv/bin/python bench/login_bench.py " + shlex.join(sys.argv[1:])
    facts = machine_facts()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        stack = Stack(Path(tmp), log_level="INFO")
        try:
            print("starting the deployment ...", file=sys.stderr)
            stack.start()
            startup = time.monotonic() - started
            print(f"  up in {startup:.1f} s", file=sys.stderr)
            # one throw-away sign-in so first-use costs (imports, pools) are not measured
            warm = stack.browser()
            assert stack.login_token(warm, stack.mint("warmup")).status_code == 302
            assert stack.whoami(warm) == "warmup"

            results = []
            print("sign-ins: distinct people ...", file=sys.stderr)
            users = [f"s{i:04d}" for i in range(args.logins)]
            results.append(
                signin_run(
                    stack,
                    "distinct people",
                    users,
                    False,
                    1,
                    args.window,
                    args.workers,
                )
            )
            if args.takeover:
                print("sign-ins: takeover ...", file=sys.stderr)
                users2 = [f"t{i:04d}" for i in range(args.logins // 2)]
                results.append(
                    signin_run(
                        stack,
                        f"{len(users2)} people x 2 (takeover, "
                        + (
                            "both at once)"
                            if args.takeover_gap == 0
                            else f"{args.takeover_gap} slots apart)"
                        ),
                        users2,
                        True,
                        args.takeover_gap,
                        args.window,
                        args.workers,
                    )
                )

            print("session check: SessionStore.touch ...", file=sys.stderr)
            touch = asyncio.run(touch_bench(stack, args.touch))

            print("session check: hub requests ...", file=sys.stderr)
            signed_in = {
                a.user: a.browser
                for a in results[0].attempts
                if a.signed_in_as == a.user and a.user.startswith("s")
            }
            chosen = dict(sorted(signed_in.items())[:100])
            refresh = refresh_bench(stack, chosen, args.refresh_rounds)
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            hub_log = stack.hub.log_path.read_text(errors="replace") if stack.hub else ""
            stack.close()

    # the takeover check's signed-out browsers get 403 from GET /hub/api/user, as they should
    losers = sum(a.status == 302 and a.signed_in_as is None for r in results for a in r.attempts)
    expected_403 = [ln for ln in hub_log.splitlines() if "] 403 GET /hub/api/user (@" in ln]
    unexpected = [
        ln
        for ln in hub_log.splitlines()
        if re.search(r"\] [45]\d\d |Traceback|\[E ", ln) and ln not in expected_403
    ]

    p = print
    p("# classhub sign-in benchmark\n")
    p(*facts, sep="\n")
    p(f"- command: `{command}`")
    total = time.monotonic() - started
    p(f"- total runtime: {total:.0f} s, of which {startup:.0f} s starting the deployment\n")

    p(f"## 1. JWT sign-ins, {args.logins} sent at a steady rate over {args.window:g} s\n")
    p("Latency: client sends POST /hub/login (through Traefik) until the 302 arrives.")
    p("'hub's own time' is JupyterHub's logged request time for the same requests.\n")
    p(*signin_table(results, args.window), sep="\n")
    p("\nCPU used during each run (from /proc), and the client's worst lateness in sending:\n")
    p(*cpu_table(results), sep="\n")
    p()
    for r in results:
        outside = [a.latency - a.hub_ms / 1000 for a in r.attempts if a.hub_ms is not None]
        p(
            f"- {r.name}: outside the hub's own time (client, Traefik, TCP) p50 "
            f"{ms(pct(outside, 50))}, p95 {ms(pct(outside, 95))}; client CPU "
            f"{r.cpu['benchmark client'] / len(r.attempts) * 1000:.1f} ms per sign-in"
        )
        if r.client_lag_max > 0.05:
            p(
                f"- {r.name}: WARNING the client fell {ms(r.client_lag_max)} behind its "
                "schedule (all threads busy): the offered rate was lower than asked"
            )
    for r in results:
        for note in r.notes:
            p(f"- {r.name}: {note}")
        for w in r.wrong[:20]:
            p(f"- WRONG ({r.name}): {w}")

    p("\n## 2. Cost of the session check (refresh_user)\n")
    p(f"(a) {args.touch} sequential calls from one asyncio loop to the deployment's Redis:\n")
    p("| call | p50 | p95 | p99 | mean |")
    p("|---|---|---|---|---|")
    for name, label in (("touch", "`SessionStore.touch` (Lua script)"), ("ping", "PING")):
        v = touch[name]
        p(
            f"| {label} | {us(pct(v, 50))} | {us(pct(v, 95))} | {us(pct(v, 99))} | "
            f"{us(statistics.fmean(v))} |"
        )
    n_pairs = len(refresh.e2e["refresh"])
    p(
        f"\n(b) `GET /hub/api/user` with a browser's cookie: {len(chosen)} signed-in people x "
        f"{args.refresh_rounds} rounds = {n_pairs} pairs; first of each pair after >1.1 s idle "
        "(refresh_user runs), second at once (it does not).\n"
    )
    p("| request | n | p50 | p95 | mean | hub's own time p50 / mean |")
    p("|---|---|---|---|---|---|")
    for kind, label in (("refresh", "with session check"), ("cached", "without (same second)")):
        e, h = refresh.e2e[kind], refresh.hub[kind]
        p(
            f"| {label} | {len(e)} | {ms(pct(e, 50))} | {ms(pct(e, 95))} | "
            f"{ms(statistics.fmean(e))} | {ms(pct(h, 50))} / {ms(statistics.fmean(h))} |"
        )
    e2e_d = [a - b for a, b in zip(refresh.e2e["refresh"], refresh.e2e["cached"], strict=True)]
    hub_d = [a - b for a, b in zip(refresh.hub["refresh"], refresh.hub["cached"], strict=False)]
    p(
        f"| **difference** (median of per-pair differences) | {len(e2e_d)} | "
        f"**{ms(statistics.median(e2e_d))}** | | {ms(statistics.fmean(e2e_d))} | "
        f"**{ms(statistics.median(hub_d))}** / {ms(statistics.fmean(hub_d))} |"
    )
    p(
        f"\nRedis script calls during (b): {refresh.evalsha} for {n_pairs} first-of-pair "
        f"requests (should be equal: the second of each pair made none). Statuses: "
        f"{dict(sorted(refresh.statuses.items()))}."
    )
    p(
        f"\nHub log: {len(expected_403)} `403 GET /hub/api/user` from signed-out browsers "
        f"({losers} browsers were signed out by a later sign-in); "
        f"{len(unexpected)} other error, 4xx or 5xx lines."
    )
    if unexpected:
        p("\n```")
        p(*unexpected[:10], sep="\n")
        p("```")
    ok = all(not r.wrong for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
