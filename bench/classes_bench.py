"""Classes service benchmark: API latency under load, class page render.

Runs a real deployment (Redis, PostgreSQL, nx-27017, Traefik, JupyterHub with classhub's
config, which runs the classes service) on random ports via harness/stack.py, with the
service's production settings (culling every 60 s, reconciliation every 600 s). Setup:
300 hub users created in one call of the hub API with the stack's service token, an admin
and teachers signed in like browsers, class ``big`` (teacher tina) created by the admin
with the 300 students enrolled by the service's CSV import, six smaller classes, and
``--running`` of big's students with their class server started by tina (real containers).

Everyone calls the service the way the pages do: signed in at the hub with a JWT, then
through OAuth at the service (``Person`` of harness/classes.py),
each request with the service's cookie and the ``X-XSRFToken`` header. Then:

1. API load: ``--rate`` requests per second for ``--duration`` s, sent open-loop (each on
   its schedule, whether or not earlier ones have answered) from one asyncio loop
   (aiohttp, keep-alive) through Traefik, after a warm-up that signs people's tokens into
   the service's cache spread over its 5 s lifetime. Mix: tina ``GET api/classes`` 10%,
   ``GET api/classes/big`` 15%, ``GET api/classes/big/servers`` 20%, ``PATCH
   api/classes/big`` (rename) 5%; ``--students`` signed-in students ``GET api/classes``
   50%. Latency: from sending to the last byte of the answer. The service's own logged
   time of each request and the hub's log of the token checks the service makes
   (``GET /hub/api/user``; HubAuth caches each answer for 5 s) are read from the hub's
   log, which the service writes to. CPU time of each component from /proc.
2. The class page: (a) ``GET /services/classes/classes/big`` (HTML, 300 roster rows)
   sequentially; (b) in headless Chromium (Playwright), navigation start to the first
   frame in which all 300 roster rows are laid out and visible, signed in with tina's
   cookies (first load with a cold cache, the rest warm), with the page's milestones and
   Chromium's main-thread totals; then tina's 40-student class for comparison.

Usage: .venv/bin/python bench/classes_bench.py [--rate 100] [--duration 20]
Prints Markdown tables (paste them into docs/performance.md with the date).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import HZ, cpu_seconds, ms, pct  # noqa: E402
from harness.browser import CHROMIUM_ARGS  # noqa: E402
from harness.classes import (  # noqa: E402
    SERVICE,
    Person,
    service_pid,
    wait_healthy,
)
from harness.stack import VENV_BIN, Stack  # noqa: E402

CODE = "big"
AUTH_CACHE = 5.0  # seconds HubAuth reuses the hub's answer for a token (auth_cache_seconds)
TEACHER = "tina"
#: one line of the hub's log: time, logger name, message
LOG_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) [^\]]*\] (.*)$")
#: the service's access log: status, method, path, user, ms
SERVICE_ACCESS = re.compile(r"^(\d{3}) (\w+) (/services/classes/\S*) (\S+) ([\d.]+)ms$")
#: the hub's access log: status, method, path, token owner, ms
HUB_ACCESS = re.compile(r"^(\d{3}) (\w+) (\S+) \(([^@()]*)@[^)]*\) ([\d.]+)ms$")

#: (name, share of requests, method, path after the prefix, who)
MIX = [
    ("teacher GET api/classes", 0.10, "GET", "api/classes", "teacher"),
    (f"teacher GET api/classes/{CODE}", 0.15, "GET", f"api/classes/{CODE}", "teacher"),
    (
        f"teacher GET api/classes/{CODE}/servers",
        0.20,
        "GET",
        f"api/classes/{CODE}/servers",
        "teacher",
    ),
    (f"teacher PATCH api/classes/{CODE} (name)", 0.05, "PATCH", f"api/classes/{CODE}", "teacher"),
    ("student GET api/classes", 0.50, "GET", "api/classes", "student"),
]


# ----- small helpers -----


def machine_busy() -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds of the whole machine so far (/proc/stat); busy
    excludes steal (time the hypervisor gave this VM's CPUs to someone else)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, steal = fields[3] + fields[4], fields[7]  # idle + iowait; steal
    total = sum(fields[:8])
    return (total - idle - steal) / HZ, steal / HZ, total / HZ


class CpuMeter:
    """CPU seconds of each component (and this client, and the machine) between start()
    and stop(). The hub is its own process only: the service is its child."""

    def __init__(self, stack: Stack, service: int):
        self.pids = {
            "classes service": (service, False),
            "JupyterHub": (stack.hub.proc.pid, False),
            "nx-27017 (MongoDB)": (stack.mongo.proc.pid, True),
            "Traefik": (stack.traefik.proc.pid, True),
            "PostgreSQL": (stack.pg.proc.pid, True),
            "Redis": (stack.redis.proc.pid, True),
        }

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = {k: cpu_seconds(p, t) for k, (p, t) in self.pids.items()}
        self.client0 = time.process_time()
        self.machine0 = machine_busy()

    def stop(self) -> dict[str, float]:
        used = {k: cpu_seconds(p, t) - self.before[k] for k, (p, t) in self.pids.items()}
        used["benchmark client"] = time.process_time() - self.client0
        busy, steal, total = machine_busy()
        used["whole machine"] = busy - self.machine0[0]
        used["steal"] = steal - self.machine0[1]
        used["machine capacity"] = total - self.machine0[2]
        used["wall"] = time.monotonic() - self.t0
        return used


@dataclass
class LogLine:
    when: float  # epoch seconds
    logger: str
    message: str


class HubLog:
    """Lines of the hub's log (the service writes there too) since the last mark()."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def lines(self) -> list[LogLine]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        out = []
        for raw in text.splitlines():
            m = LOG_LINE.match(raw.strip())
            if m:
                when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                out.append(LogLine(when, m.group(2), m.group(3)))
        return out

    def service_access(self) -> list[tuple[float, int, str, str, str, float]]:
        """(when, status, method, path, user, seconds) of the service's requests."""
        out = []
        for line in self.lines():
            m = SERVICE_ACCESS.match(line.message)
            if m and line.logger != "JupyterHub":
                out.append(
                    (
                        line.when,
                        int(m.group(1)),
                        m.group(2),
                        m.group(3),
                        m.group(4),
                        float(m.group(5)) / 1000,
                    )
                )
        return out

    def hub_access(self) -> list[tuple[float, int, str, str, str, float]]:
        """(when, status, method, path, token owner, seconds) of the hub's requests."""
        out = []
        for line in self.lines():
            m = HUB_ACCESS.match(line.message)
            if m and line.logger == "JupyterHub":
                out.append(
                    (
                        line.when,
                        int(m.group(1)),
                        m.group(2),
                        m.group(3),
                        m.group(4),
                        float(m.group(5)) / 1000,
                    )
                )
        return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ----- setup -----


@dataclass
class World:
    admin: Person
    teacher: Person
    students: list[Person]
    roster: list[str]
    import_seconds: float
    running: list[str]
    small: dict[str, list[str]]  # the smaller classes' rosters (small0 is tina's)


def cookie_header(person: Person, path: str = SERVICE) -> dict[str, str]:
    """The headers a page's fetch() sends to the service: its cookies (those whose path
    covers ``path``) and the XSRF token."""
    cookies = [c for c in person.browser.cookies if path.startswith(c.path or "/")]
    return {
        "Cookie": "; ".join(f"{c.name}={c.value}" for c in cookies),
        "X-XSRFToken": person.xsrf(),
        "Sec-Fetch-Mode": "cors",
        "Accept": "application/json",
    }


def setup(stack: Stack, n_roster: int, n_students: int, n_running: int) -> World:
    roster = [f"s{i:03d}" for i in range(n_roster)]
    teachers = [TEACHER, "tom", "tara"]
    r = stack.api("POST", "/users", json={"usernames": roster + teachers}, timeout=120)
    assert r.status_code == 201, r.text
    admin = Person(stack, "admin", "admin")
    teacher = Person(stack, TEACHER, "teacher")
    for name in teachers[1:]:
        Person(stack, name, "teacher")  # signs in once, like a teacher who has used the hub
    r = admin.post("api/classes", {"code": CODE, "name": "Big class", "teachers": [TEACHER]})
    assert r.status_code == 201, r.text
    started = time.monotonic()
    r = admin.post(f"api/classes/{CODE}/import", {"csv": "username\n" + "\n".join(roster)})
    import_seconds = time.monotonic() - started
    assert r.status_code == 200 and r.json().get("hub_sync") == "done", r.text[:500]
    # six smaller classes: each student of the roster's first 240 is in one of them
    small = {}
    for k in range(6):
        code = f"small{k}"
        owner = teachers[min(k, 2)] if k < 3 else "tara"
        r = admin.post("api/classes", {"code": code, "name": f"Small {k}", "teachers": [owner]})
        assert r.status_code == 201, r.text
        names = small[code] = [n for i, n in enumerate(roster[:240]) if i % 6 == k]
        r = admin.post(f"api/classes/{code}/import", {"csv": "username\n" + "\n".join(names)})
        assert r.status_code == 200, r.text[:500]
    students = [Person(stack, name) for name in roster[:n_students]]
    running = roster[len(roster) - n_running :] if n_running else []
    for name in running:
        r = teacher.post(f"api/classes/{CODE}/servers/{name}")
        assert r.status_code in (200, 202), r.text
    for name in running:
        stack.wait_ready(name, CODE, timeout=180)
    return World(admin, teacher, students, roster, import_seconds, running, small)


# ----- 1. API load -----


@dataclass
class Call:
    op: str
    user: str
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    wall_sent: float = 0.0
    wall_done: float = 0.0
    status: int = 0
    error: str = ""
    checked: bool = False  # the service asked the hub who this caller is

    @property
    def latency(self) -> float:
        return self.done - self.sent

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error


def plan_calls(world: World, n: int, seed: int) -> list[tuple[str, Person, str, str]]:
    rng = random.Random(seed)
    names = [m[0] for m in MIX]
    weights = [m[1] for m in MIX]
    by_name = {m[0]: m for m in MIX}
    out = []
    for _ in range(n):
        op = rng.choices(names, weights)[0]
        _, _, method, path, who = by_name[op]
        person = world.teacher if who == "teacher" else rng.choice(world.students)
        out.append((op, person, method, path))
    return out


async def api_load(stack: Stack, world: World, rate: float, duration: float, seed: int):
    n = int(rate * duration)
    plan = plan_calls(world, n, seed)
    headers = {p.name: cookie_header(p) for p in [world.teacher, *world.students]}
    base = stack.url + SERVICE
    counter = iter(range(10**9))

    async def one(http: aiohttp.ClientSession, call: Call, method: str, path: str) -> None:
        kwargs = {}
        if method == "PATCH":
            kwargs["json"] = {"name": f"Big class {next(counter)}"}
        call.wall_sent = time.time()
        call.sent = time.perf_counter()
        try:
            async with http.request(
                method, base + path, headers=headers[call.user], allow_redirects=False, **kwargs
            ) as r:
                await r.read()
                call.status = r.status
        except (aiohttp.ClientError, TimeoutError) as e:
            call.error = type(e).__name__
        call.done = time.perf_counter()
        call.wall_done = time.time()

    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:
        # warm-up, not measured: every kind of request from everyone, people spread over
        # HubAuth's 5 s cache lifetime (as sign-ins are; otherwise every cached token
        # expires at once, every 5 s), then a burst that opens connections
        people = [world.teacher, *world.students]
        start = time.perf_counter()
        for i, person in enumerate(people):
            await asyncio.sleep(
                max(0.0, start + i * AUTH_CACHE / len(people) - time.perf_counter())
            )
            for op, _share, method, path, who in MIX:
                if (who == "teacher") == (person is world.teacher) and method == "GET":
                    await one(http, Call(op, person.name, 0.0), method, path)
        burst = plan_calls(world, 50, seed + 1)
        await asyncio.gather(*(one(http, Call(o, p.name, 0.0), m, pa) for o, p, m, pa in burst))
        await asyncio.sleep(0.5)

        log = HubLog(stack.hub.log_path)
        log.mark()
        meter = CpuMeter(stack, service_pid(stack))
        calls: list[Call] = []
        tasks = []
        meter.start()
        t0 = time.perf_counter() + 0.05
        for i, (op, person, method, path) in enumerate(plan):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            call = Call(op, person.name, at)
            calls.append(call)
            tasks.append(asyncio.create_task(one(http, call, method, path)))
        await asyncio.gather(*tasks)
        cpu = meter.stop()
    await asyncio.sleep(0.3)  # the last log lines
    return calls, cpu, log


def mark_token_checks(calls: list[Call], checks: list[tuple[float, str]]) -> int:
    """Mark the calls during which the service asked the hub who the caller is: for each
    ``GET /hub/api/user`` the hub logged (time, token owner), that person's earliest call
    in flight at that time. Returns how many checks found no call."""
    by_user: dict[str, list[Call]] = {}
    for c in sorted(calls, key=lambda c: c.wall_sent):
        by_user.setdefault(c.user, []).append(c)
    unmatched = 0
    for when, user in sorted(checks):
        for c in by_user.get(user, []):
            if c.checked:
                continue
            # the hub logs after answering; 5 ms of slack for the clocks' resolution
            if c.wall_sent - 0.005 <= when <= c.wall_done + 0.005:
                c.checked = True
                break
        else:
            unmatched += 1
    return unmatched


# ----- 2. the class page -----


def page_server_time(stack: Stack, teacher: Person, n: int, expect_rows: int):
    url = stack.url + SERVICE + f"classes/{CODE}"
    log = HubLog(stack.hub.log_path)
    for _ in range(3):  # warm-up
        teacher.browser.get(url, headers={"Accept": "text/html"}, timeout=30)
    log.mark()
    times, sizes = [], []
    for _ in range(n):
        t = time.perf_counter()
        r = teacher.browser.get(url, headers={"Accept": "text/html"}, timeout=30)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.status_code
        rows = len(re.findall(r'<tr data-key="[^"]+" data-user="[^"]+"', r.text))
        assert rows == expect_rows, rows
        sizes.append(len(r.content))
    time.sleep(0.3)
    own = [
        s
        for _w, status, method, path, _u, s in log.service_access()
        if method == "GET" and path == SERVICE + f"classes/{CODE}" and status == 200
    ]
    listing = [
        s
        for _w, _st, method, path, user, s in log.hub_access()
        if user == "classes" and method == "GET" and path.startswith("/hub/api/users?")
    ]
    return times, own, listing, statistics.mean(sizes)


WATCH_ROSTER = """
(() => {
  const pages = %s;  // class page path -> [roster rows, last username]
  const want = pages[location.pathname];
  if (!want) return;
  function check() {
    const rows = document.querySelectorAll("#roster tr[data-user]");
    const el = document.querySelector(`#roster tr[data-user="${want[1]}"]`);
    const box = el && el.getBoundingClientRect();
    if (rows.length >= want[0] && el && el.checkVisibility() && box.height > 0) {
      window.__rosterVisible = performance.now();
      return;
    }
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})();
"""


def page_in_browser(stack: Stack, teacher: Person, pages: list[tuple[str, list[str], int]]):
    """Load class pages in headless Chromium with ``teacher``'s cookies. ``pages``: (class
    code, its roster, loads); the very first load has an empty cache. Returns {code: [one
    dict per load]}: seconds from navigation start to ``visible`` (all roster rows laid
    out and visible), ``first_byte``, ``html`` (received), ``css`` (the hub's style sheet
    received; ``css_bytes`` transferred: 0 from the cache, about 300 when revalidated),
    ``dcl`` (DOMContentLoaded end), ``load``; and Chromium's main-thread totals for the
    page so far: ``style``, ``layout``, ``script``, ``tasks``."""
    from playwright.sync_api import sync_playwright

    watch = {f"{SERVICE}classes/{code}": [len(r), r[-1]] for code, r, _n in pages}
    cookies = [
        {"name": c.name, "value": c.value, "url": stack.url + (c.path or "/")}
        for c in teacher.browser.cookies
    ]
    out: dict[str, list[dict]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies(cookies)
            context.add_init_script(WATCH_ROSTER % json.dumps(watch))
            for code, roster, loads in pages:
                url = stack.url + SERVICE + f"classes/{code}"
                out[code] = [load_page(context, url, len(roster)) for _ in range(loads)]
            context.close()
        finally:
            browser.close()
    return out


CHROMIUM_METRICS = {
    "style": "RecalcStyleDuration",
    "layout": "LayoutDuration",
    "script": "ScriptDuration",
    "tasks": "TaskDuration",
}
PAGE_TIMES = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  const css = performance.getEntriesByType("resource")
    .find((e) => e.name.includes("/style.min.css"));
  return [window.__rosterVisible, n.responseStart, n.responseEnd,
          n.domContentLoadedEventEnd, n.loadEventEnd,
          css ? css.responseEnd : NaN, css ? css.transferSize : NaN];
}"""


def load_page(context, url: str, rows: int) -> dict:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url, wait_until="load", timeout=30_000)
    page.wait_for_function("window.__rosterVisible !== undefined", timeout=30_000)
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    t = page.evaluate(PAGE_TIMES)
    assert page.locator("#roster tr[data-user]").count() == rows
    keys = ["visible", "first_byte", "html", "dcl", "load", "css"]
    row = dict(zip(keys, (x / 1000 for x in t[:6]), strict=True))
    row["css_bytes"] = t[6]
    row.update({k: metrics.get(v, float("nan")) for k, v in CHROMIUM_METRICS.items()})
    cdp.detach()
    page.close()
    return row


# ----- report -----


def machine_facts() -> list[str]:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    kb = int(Path("/proc/meminfo").read_text().split()[1])
    import jupyterhub

    traefik = subprocess.run(
        [str(VENV_BIN / "traefik"), "version"], capture_output=True, text=True
    ).stdout
    m = re.search(r"Version:\s*(\S+)", traefik)
    chromium = subprocess.run(
        ["/usr/bin/chromium", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
        f"{cpu_model or platform.processor()}, {kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.platform()}",
        f"- JupyterHub {jupyterhub.__version__}, Traefik {m.group(1) if m else '?'}, "
        f"Python {platform.python_version()}, nx-27017 "
        + subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                "import importlib.metadata as m;print(m.version('nx-27017'))",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        + f", PostgreSQL 15, {chromium}",
    ]


def latency_row(name: str, calls: list[Call], own: list[float]) -> str:
    lat = [c.latency for c in calls if not c.error]
    errors = sum(not c.ok for c in calls)
    own_cell = f"{ms(pct(own, 50))} / {ms(pct(own, 95))}" if own else "n/a"
    return (
        f"| {name} | {len(calls)} | {errors} | {ms(pct(lat, 50))} | **{ms(pct(lat, 95))}** | "
        f"{ms(pct(lat, 99))} | {ms(max(lat))} | {own_cell} |"
    )


def own_times(access, op: str) -> list[float]:
    """The service's logged times of the requests of kind ``op``."""
    _, _, method, path, who = next(m for m in MIX if m[0] == op)
    full = SERVICE + path
    return [
        s
        for _w, _st, m, p, user, s in access
        if m == method and p == full and (user == TEACHER) == (who == "teacher")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="API requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of API load")
    parser.add_argument("--roster", type=int, default=300, help="students of the big class")
    parser.add_argument("--students", type=int, default=20, help="signed-in students")
    parser.add_argument(
        "--running", type=int, default=10, help="big's students with a running class server"
    )
    parser.add_argument("--page-requests", type=int, default=50, help="HTML page GETs")
    parser.add_argument("--browser-loads", type=int, default=10, help="page loads in Chromium")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/classes_bench.py", *sys.argv[1:]])
    facts = machine_facts()
    load_before = uptime()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        stack = Stack(Path(tmp), with_classes=True, log_level="INFO", env={})
        try:
            print("starting the deployment ...", file=sys.stderr)
            stack.start()
            wait_healthy(stack)
            startup = time.monotonic() - started
            print(f"  up in {startup:.1f} s; setting up classes ...", file=sys.stderr)
            t = time.monotonic()
            world = setup(stack, args.roster, args.students, args.running)
            setup_s = time.monotonic() - t
            print(f"  set up in {setup_s:.1f} s; API load ...", file=sys.stderr)
            calls, cpu, log = asyncio.run(
                api_load(stack, world, args.rate, args.duration, args.seed)
            )
            access = log.service_access()
            hub_access = log.hub_access()
            print("class page: server time ...", file=sys.stderr)
            page_times, page_own, page_listing, page_size = page_server_time(
                stack, world.teacher, args.page_requests, args.roster
            )
            print("class page: Chromium ...", file=sys.stderr)
            loads = [(CODE, world.roster, args.browser_loads)]
            loads.append(("small0", world.small["small0"], args.browser_loads))
            pages = page_in_browser(stack, world.teacher, loads)
            browser = pages[CODE]
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            hub_log = stack.hub.log_path.read_text(errors="replace") if stack.hub else ""
            stack.close()
    load_after = uptime()
    total = time.monotonic() - started

    # token checks: GET /hub/api/user by a person's token, made by the service
    people = {c.user for c in calls}
    checks = [
        (w, user)
        for w, status, method, path, user, _s in hub_access
        if method == "GET" and path.split("?")[0] == "/hub/api/user" and user in people
    ]
    check_hub_time = [
        s
        for _w, _st, method, path, user, s in hub_access
        if method == "GET" and path.split("?")[0] == "/hub/api/user" and user in people
    ]
    unmatched = mark_token_checks(calls, checks)
    hub_calls_by_service = [
        (path.split("?")[0], s) for _w, _st, _m, path, user, s in hub_access if user == "classes"
    ]
    errors_in_log = [
        ln for ln in hub_log.splitlines() if re.search(r"Traceback|\[E |\] 5\d\d ", ln)
    ]

    p = print
    p("# classhub classes service benchmark\n")
    p(*facts, sep="\n")
    p(f"- load before the run (`uptime`): {load_before}")
    p(f"- load after the run (`uptime`): {load_after}")
    p(f"- command: `{command}`")
    p(
        f"- total runtime: {total:.0f} s ({startup:.0f} s starting the deployment, "
        f"{setup_s:.0f} s setting up; the CSV import of {args.roster} students into "
        f"`{CODE}` took {world.import_seconds * 1000:.0f} ms, hub groups synced)"
    )
    p(
        f"- data: class `{CODE}` with {args.roster} students (teacher {TEACHER}), 6 classes "
        f"of {len(world.small['small0'])} more; {len(world.running)} of `{CODE}`'s students "
        f"with a running class server; {args.students} signed-in students, each in `{CODE}` "
        "and one small class\n"
    )

    sent = len(calls)
    p(f"## 1. Class API: {args.rate:g} requests/s for {args.duration:g} s, open loop\n")
    p(
        "Through Traefik with each person's service cookie + XSRF header (OAuth sign-in, "
        "as the pages call it). Latency: send to last byte. 'service's own time': the "
        "service's logged request time for the same kind of request.\n"
    )
    p("| request | n | errors | p50 | p95 | p99 | max | service's own time p50 / p95 |")
    p("|---|---|---|---|---|---|---|---|")
    for name, *_ in MIX:
        p(latency_row(name, [c for c in calls if c.op == name], own_times(access, name)))
    all_own = [s for *_x, s in access if "/api/" in _x[3]]
    p(latency_row("**all**", calls, all_own))
    lags = [c.sent - c.scheduled for c in calls]
    statuses: dict[str, int] = {}
    for c in calls:
        key = c.error or str(c.status)
        statuses[key] = statuses.get(key, 0) + 1
    p(f"\nStatuses: {dict(sorted(statuses.items()))}.")

    p("\nCPU during the load (from /proc):\n")
    p("| component | CPU-s | share of one core | per request |")
    p("|---|---|---|---|")
    wall = cpu["wall"]
    for key in [
        "classes service",
        "JupyterHub",
        "nx-27017 (MongoDB)",
        "Traefik",
        "PostgreSQL",
        "Redis",
        "benchmark client",
    ]:
        share, each = cpu[key] / wall * 100, cpu[key] / sent * 1000
        p(f"| {key} | {cpu[key]:.2f} | {share:.0f}% | {each:.2f} ms |")
    machine = ("whole machine", "steal", "machine capacity", "wall")
    ours = sum(cpu[k] for k in cpu if k not in machine)
    p(
        f"| whole machine (all processes) | {cpu['whole machine']:.2f} | "
        f"{cpu['whole machine'] / cpu['machine capacity'] * 100:.0f}% of "
        f"{os.cpu_count()} cores | of which not this deployment or client: "
        f"{max(0.0, cpu['whole machine'] - ours):.2f} CPU-s |"
    )
    p(
        f"| stolen by the hypervisor (steal) | {cpu['steal']:.2f} | "
        f"{cpu['steal'] / cpu['machine capacity'] * 100:.0f}% of {os.cpu_count()} cores | |"
    )
    p(f"\nWall time of the load: {wall:.1f} s.")

    p("\nClient overhead:")
    p(
        f"- send lag (sent minus scheduled): p50 {ms(pct(lags, 50))}, p99 {ms(pct(lags, 99))}, "
        f"max {ms(max(lags))}; client CPU {cpu['benchmark client'] / sent * 1000:.2f} ms per "
        "request"
    )
    outside = []
    for name, *_ in MIX:
        lat = [c.latency for c in calls if c.op == name and c.ok]
        own = own_times(access, name)
        if lat and own:
            outside.append(statistics.median(lat) - statistics.median(own))
    p(
        "- outside the service (client, Traefik, TCP), median latency minus the service's "
        f"median own time per request kind: {', '.join(ms(x) for x in outside)}"
    )

    p("\nToken checks (the service asking the hub who a cookie's token belongs to):")
    checked = [c for c in calls if c.checked]
    unchecked = [c for c in calls if not c.checked and c.ok]
    extra = []
    for name, *_ in MIX:
        base = [c.latency for c in unchecked if c.op == name]
        if base:
            med = statistics.median(base)
            extra += [c.latency - med for c in checked if c.op == name]
    total_latency = sum(c.latency for c in calls if not c.error)
    p(
        f"- {len(checks)} `GET /hub/api/user` calls for {sent} requests "
        f"({len(checks) / sent * 100:.1f}%; {len(people)} people, HubAuth cache 5 s); "
        f"the hub's own time for them p50 {ms(pct(check_hub_time, 50))}, "
        f"mean {ms(statistics.fmean(check_hub_time)) if check_hub_time else 'n/a'}"
    )
    if checked:
        p(
            f"- the {len(checked)} requests that waited for a check ({unmatched} checks not "
            f"matched to a request): latency p50 {ms(pct([c.latency for c in checked], 50))}, "
            f"{ms(statistics.median(extra))} above the median of the same kind of request; "
            f"together {sum(extra) / total_latency * 100:.1f}% of all latency. Without them: "
            f"p95 {ms(pct([c.latency for c in unchecked], 95))} (all: "
            f"{ms(pct([c.latency for c in calls if not c.error], 95))})"
        )
    per_path: dict[str, list[float]] = {}
    for path, s in hub_calls_by_service:
        key = re.sub(r"/users/[^/?]+", "/users/<name>", path)
        key = re.sub(r"/groups/[^/?]+", "/groups/<name>", key)
        per_path.setdefault(key, []).append(s)
    p(
        "- the service's other hub API calls during the load (hub's own time p50 / p95): "
        + "; ".join(
            f"`{k}` {len(v)} ({ms(pct(v, 50))} / {ms(pct(v, 95))})"
            for k, v in sorted(per_path.items(), key=lambda kv: -len(kv[1]))
        )
    )

    p(f"\n## 2. The class page of `{CODE}` ({args.roster} students)\n")
    p(
        f"(a) `GET {SERVICE}classes/{CODE}` (HTML, {page_size / 1024:.0f} KiB, "
        f"{args.roster} roster rows), {args.page_requests} sequential requests, idle "
        "deployment:\n"
    )
    p("| measured | p50 | p95 | max |")
    p("|---|---|---|---|")
    p(
        f"| end to end through Traefik | {ms(pct(page_times, 50))} | "
        f"**{ms(pct(page_times, 95))}** | {ms(max(page_times))} |"
    )
    p(
        f"| service's own time | {ms(pct(page_own, 50))} | {ms(pct(page_own, 95))} | "
        f"{ms(max(page_own))} |"
    )
    if page_listing:
        p(
            f"| of which the hub's own time for `GET /hub/api/users?state=active` "
            f"({len(page_listing)} calls; the rest answered from the service's read cache) | "
            f"{ms(pct(page_listing, 50))} | {ms(pct(page_listing, 95))} | "
            f"{ms(max(page_listing))} |"
        )
    else:
        p("| hub calls for the active-server listing | all answered from the read cache | | |")
    p(
        f"\n(b) Headless Chromium, {len(browser)} loads of the page (the first with an empty "
        "cache): seconds from navigation start to the first frame in which all roster rows "
        "are laid out and visible, and the page's milestones.\n"
    )
    p(
        "| load | roster all visible | first byte | HTML received | style sheet received "
        "(bytes) | DOMContentLoaded | load | Chromium main thread: style / layout / script / "
        "all tasks |"
    )
    p("|---|---|---|---|---|---|---|---|")
    for i, row in enumerate(browser):
        label = "1 (cold cache)" if i == 0 else str(i + 1)
        css = f"{ms(row['css'])} ({row['css_bytes']:.0f})"
        cells = " | ".join([ms(row["first_byte"]), ms(row["html"]), css])
        cells += " | " + " | ".join(ms(row[k]) for k in ("dcl", "load"))
        chromium = " / ".join(ms(row[k]) for k in ("style", "layout", "script", "tasks"))
        p(f"| {label} | **{ms(row['visible'])}** | {cells} | {chromium} |")
    visible = [row["visible"] for row in browser]
    p(
        f"\nRoster visible: p50 **{ms(pct(visible, 50))}**, max **{ms(max(visible))}**, "
        f"{sum(v >= 0.3 for v in visible)} of {len(visible)} loads at 300 ms or more "
        "(target: under 300 ms). Chromium's totals are for the page when the roster was "
        "visible or shortly after (they may include the page script's first refresh)."
    )
    small = pages["small0"]

    def med(rows: list[dict], key: str) -> str:
        return ms(statistics.median(r[key] for r in rows))

    p(
        f"\nFor comparison, tina's class `small0` ({len(world.small['small0'])} students), "
        f"{len(small)} loads right after (warm cache), medians: roster visible "
        f"{med(small, 'visible')} (p50 of `{CODE}` without its cold load: "
        f"{med(browser[1:], 'visible')}), HTML received {med(small, 'html')} "
        f"({med(browser[1:], 'html')}), style sheet received {med(small, 'css')} "
        f"({med(browser[1:], 'css')}), style {med(small, 'style')} "
        f"({med(browser[1:], 'style')}), layout {med(small, 'layout')} "
        f"({med(browser[1:], 'layout')}), all main-thread tasks {med(small, 'tasks')} "
        f"({med(browser[1:], 'tasks')})."
    )
    if errors_in_log:
        p("\nErrors in the hub/service log:\n\n```")
        p(*errors_in_log[:10], sep="\n")
        p("```")
    ok = not any(not c.ok for c in calls)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
