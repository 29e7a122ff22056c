"""The cost of a teacher's class roles (a teacher reaches only their classes' servers) on
their requests.

A teacher's role ``teacher-<code>`` names each student's class server (two scopes per
student), and the hub checks the teacher's classes on their requests (at most once a
second, ``auth_refresh_age``): the rosters from the hub session's objects (no query once
they are loaded), an in-memory comparison of the roles held, and a role sync only when a
roster changed.

Runs a real deployment (Redis, PostgreSQL, Traefik, JupyterHub with classhub's config)
via harness/stack.py; ``--students`` students sign in once (so the hub knows them as
students) and are put in one class of a teacher. Then, from signed-in browsers,
``GET /hub/api/user`` pairs: the first after more than 1 s idle (the hub runs
``refresh_user``), the second at once (it does not), for a student, for the teacher of the
class, and for the teacher right after a roster change (one student added, so the role's
scopes change and are synced). Latencies are the client's and the hub's own (access log).

Usage: .venv/bin/python bench/teacher_roles_bench.py [--students 300] [--pairs 30]
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import ms, pct  # noqa: E402
from harness.stack import Stack  # noqa: E402

ACCESS = re.compile(r"\] 200 GET /hub/api/user \(([^@()]*)@[^)]*\) ([\d.]+)ms$")
CODE = "big"


def hub_times(stack: Stack, user: str, since: int) -> list[float]:
    lines = stack.hub.log_path.read_text(errors="replace").splitlines()[since:]
    return [
        float(m.group(2)) / 1000
        for line in lines
        if (m := ACCESS.search(line)) and m.group(1) == user
    ]


def log_length(stack: Stack) -> int:
    return len(stack.hub.log_path.read_text(errors="replace").splitlines())


def pairs(stack: Stack, browser, n: int, before_each=None) -> tuple[list[float], list[float]]:
    first, second = [], []
    for i in range(n):
        time.sleep(1.2)  # past auth_refresh_age: the next request runs refresh_user
        if before_each:
            before_each(i)
        for out in (first, second):
            t = time.perf_counter()
            r = stack.browser_api(browser, "GET", "/user")
            out.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    return first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=200, help="in-process calls per step")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="classhub-teacher-bench-") as tmp:
        stack = Stack(Path(tmp), log_level="INFO")
        try:
            stack.start()
            names = [f"s{i:04d}" for i in range(args.students)]

            def sign_in(name):
                assert stack.login_token(stack.browser(), stack.mint(name)).status_code == 302

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(sign_in, names))
            stack.make_class(CODE)
            r = stack.api("POST", f"/groups/class-{CODE}/users", json={"users": names})
            assert r.status_code == 200, r.text
            r = stack.api("POST", f"/groups/teachers-{CODE}")
            assert r.status_code in (201, 409), r.text
            teacher, student = stack.browser(), stack.browser()
            assert stack.login_token(student, stack.mint(names[0])).status_code == 302
            stack.create_user("tbench")
            stack.api("POST", f"/groups/teachers-{CODE}/users", json={"users": ["tbench"]})
            assert stack.login_token(teacher, stack.mint("tbench", "teacher")).status_code == 302
            extra = iter(f"x{i:04d}" for i in range(args.pairs))

            def roster_change(_):
                name = next(extra)
                sign_in(name)
                stack.api("POST", f"/groups/class-{CODE}/users", json={"users": [name]})

            for label, browser, user, hook in (
                ("student", student, names[0], None),
                (f"teacher of {args.students}", teacher, "tbench", None),
                ("teacher, roster changed before each pair", teacher, "tbench", roster_change),
            ):
                start = log_length(stack)
                first, second = pairs(stack, browser, args.pairs, hook)
                hub = hub_times(stack, user, start)
                rows.append((label, first, second, hub[0::2], hub[1::2]))
            direct = in_process(stack.db_url, "tbench", args.repeat)
        finally:
            stack.close()
    print(f"`GET /hub/api/user` pairs, {args.pairs} each")
    print()
    print(
        "| who | with refresh p50 | p95 | without p50 | p95 | hub's own time with / without, p50 |"
    )
    print("|---|---|---|---|---|---|")
    for label, first, second, hub_first, hub_second in rows:
        print(
            f"| {label} | {ms(statistics.median(first))} | {ms(pct(first, 95))} | "
            f"{ms(statistics.median(second))} | {ms(pct(second, 95))} | "
            f"{ms(statistics.median(hub_first))} / {ms(statistics.median(hub_second))} |"
        )
    print()
    print(
        f"In the hub's code, against its PostgreSQL ({args.repeat} calls each; "
        f"role teacher-{CODE}: {direct.pop('scopes')} scopes):"
    )
    print()
    print("| step | p50 | p95 |")
    print("|---|---|---|")
    for label, values in direct.items():
        print(f"| {label} | {us(statistics.median(values))} | {us(pct(values, 95))} |")
    return 0


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def in_process(db_url: str, teacher: str, repeat: int) -> dict:
    """Time the refresh's parts with the hub's own ORM on the hub's database (reads only:
    the roles already match, so nothing is synced)."""
    from jupyterhub import orm
    from jupyterhub.user import User

    from authenticator import JWTAuthenticator
    from authenticator.class_roles import class_teacher_roles
    from authenticator.class_rosters import ClassGroups, teacher_rosters

    db = orm.new_session_factory(db_url)()
    try:
        user = User(orm.User.find(db, teacher), {"config_role_names": set()})
        auth = JWTAuthenticator()
        assert auth._teacher_roles_update(user) is None, "the hub left the roles stale"
        groups = ClassGroups()
        signature = teacher_rosters(db, user.orm_user, groups)
        timings: dict = {"scopes": len(orm.Role.find(db, f"teacher-{CODE}").scopes)}
        for label, call in (
            ("the rosters (teacher_rosters)", lambda: teacher_rosters(db, user.orm_user, groups)),
            ("the role dicts from a signature", lambda: class_teacher_roles(signature)),
            ("the whole check, nothing changed", lambda: auth._teacher_roles_update(user)),
        ):
            values = []
            for _ in range(repeat):
                t = time.perf_counter()
                call()
                values.append(time.perf_counter() - t)
            timings[label] = values
        return timings
    finally:
        db.close()


if __name__ == "__main__":
    raise SystemExit(main())
