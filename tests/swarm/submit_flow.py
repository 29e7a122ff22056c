"""Sign-in → spawn → write → submit on the Swarm stack, as plain functions for
tests/swarm/test_swarm_stack.py (no tests or fixtures here).

The shape is that of tests/integration/test_grades_loop.py and harness/classes.py's
``Person``, through Traefik only (the Swarm tier has no hub admin token):

- an admin creates the class (``POST /services/classes/api/classes``: admins only,
  services/classes/handlers.py ``ClassListHandler.post``), naming a teacher who has signed
  in once (the service requires hub users);
- the teacher enrols the student (``POST .../api/classes/<code>/students``, ``RosterHandler``;
  the student must have signed in once: their hub role ``student``);
- the teacher creates an assignment in the grades service (``POST
  /services/grades/api/classes/<code>/assignments``); without ``release_at`` it is released
  at once and without starting files nothing is pushed (services/grades/rules.py
  ``is_released``, release.py);
- the student starts their class server (the named server ``<code>``) through the hub API,
  opens it (OAuth with the server) and writes ``~/<code>/assignments/<slug>/<file>`` with
  the Jupyter contents API through Traefik;
- the student submits (``POST .../assignments/<slug>/submit``, 201); the teacher reads the
  version's files back through the grades service (``GET api/submissions/<id>/files`` and
  ``.../files/<path>``, services/grades/review.py), not through a presigned S3 link.

A service's API takes the browser's cookie with the service's own XSRF token (the
``_xsrf`` cookie of path ``/services/<name>/``), as a page's ``fetch()`` sends it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from urllib.parse import quote

import requests

TIMEOUT = 60


def _fail_text(r: requests.Response, what: str) -> str:
    return f"{what}: {r.request.method} {r.url} answered {r.status_code}: {r.text[:1500]}"


def _expect(r: requests.Response, statuses: tuple[int, ...], what: str) -> requests.Response:
    assert r.status_code in statuses, _fail_text(r, what)
    return r


def service_client(
    stack, browser: requests.Session, service: str
) -> Callable[..., requests.Response]:
    """Sign ``browser`` (already signed in at the hub) in at ``/services/<service>/`` through
    the hub's OAuth (the services have ``oauth_no_confirm``), and return
    ``call(method, path, **kwargs)`` for the service's API (``path`` relative to its prefix),
    with the service's XSRF token as the pages send it."""
    prefix = f"/services/{service}/"
    r = browser.get(stack.url + prefix, timeout=TIMEOUT)
    _expect(r, (200,), f"signing in at the {service} service")
    home = r.json()

    def call(method: str, path: str, **kwargs) -> requests.Response:
        xsrf = next(
            (c.value for c in browser.cookies if c.name == "_xsrf" and c.path == prefix),
            home.get("xsrf", ""),
        )
        headers = {"X-XSRFToken": xsrf, "Sec-Fetch-Mode": "cors", **kwargs.pop("headers", {})}
        return browser.request(
            method,
            stack.url + prefix + path,
            headers=headers,
            timeout=kwargs.pop("timeout", TIMEOUT),
            allow_redirects=False,
            **kwargs,
        )

    return call


def make_class(admin_classes, code: str, teacher: str) -> dict:
    """As an admin (a classes-service client): create class ``code`` taught by ``teacher``
    (a hub user already: signed in once); its hub groups synced."""
    r = admin_classes(
        "POST", "api/classes", json={"code": code, "name": code.title(), "teachers": [teacher]}
    )
    body = _expect(r, (201,), f"creating class {code}").json()
    assert body["hub_sync"] == "done", body
    return body


def enrol(teacher_classes, code: str, student: str) -> dict:
    """As the class's teacher (a classes-service client): put ``student`` (signed in once,
    role student) on the roster; the hub group ``class-<code>`` synced."""
    r = teacher_classes("POST", f"api/classes/{code}/students", json={"username": student})
    body = _expect(r, (201,), f"enrolling {student} in {code}").json()
    assert body["added"] is True and body["hub_sync"] == "done", body
    return body


def make_assignment(teacher_grades, code: str, slug: str, *, max_points: int = 10) -> dict:
    """As the class's teacher (a grades-service client): an assignment ``slug``, released at
    once (no ``release_at``), no due date, no starting files."""
    r = teacher_grades(
        "POST",
        f"api/classes/{code}/assignments",
        json={"slug": slug, "title": f"Swarm {slug}", "max_points": max_points},
    )
    return _expect(r, (201,), f"creating assignment {code}/{slug}").json()


def make_class_with_assignment(
    stack,
    admin_browser: requests.Session,
    teacher_browser: requests.Session,
    teacher: str,
    student: str,
    code: str,
    slug: str,
) -> dict:
    """The admin creates class ``code`` for ``teacher`` (``teacher_browser``), the teacher
    enrols ``student`` and creates assignment ``slug``. Returns the teacher's clients
    (``classes``, ``grades``) and the assignment as created."""
    admin_classes = service_client(stack, admin_browser, "classes")
    teacher_classes = service_client(stack, teacher_browser, "classes")
    teacher_grades = service_client(stack, teacher_browser, "grades")
    make_class(admin_classes, code, teacher)
    enrol(teacher_classes, code, student)
    assignment = make_assignment(teacher_grades, code, slug)
    # in the teacher's list (the grades service reads the class's hub groups)
    seen = teacher_grades("GET", f"api/classes/{code}/assignments")
    assert slug in [
        a["slug"] for a in _expect(seen, (200,), "listing assignments").json()["assignments"]
    ]
    return {"classes": teacher_classes, "grades": teacher_grades, "assignment": assignment}


def start_class_server(stack, api, student: str, code: str, *, timeout: float = 300) -> dict:
    """Start ``student``'s class server (the named server ``code``) through the hub API
    (``api`` from ``signed_in``: the student's own browser) and wait until it is ready;
    its server model."""
    r = api("POST", f"/users/{quote(student)}/servers/{quote(code)}")
    _expect(r, (201, 202), f"starting {student}'s server {code}")
    deadline = time.monotonic() + timeout
    while True:
        model = api("GET", f"/users/{quote(student)}").json()
        server = (model.get("servers") or {}).get(code) or {}
        if server.get("ready"):
            return server
        assert server.get("pending") and time.monotonic() < deadline, (
            f"{student}'s server {code} did not start: {model}\n{stack.logs()}"
        )
        time.sleep(1)


def stop_class_server(stack, api, student: str, code: str, *, timeout: float = 300) -> None:
    """Stop ``student``'s class server through the hub API and wait until it has stopped
    (its home saved into the store)."""
    r = api("DELETE", f"/users/{quote(student)}/servers/{quote(code)}")
    _expect(r, (202, 204), f"stopping {student}'s server {code}")
    deadline = time.monotonic() + timeout
    while True:
        model = api("GET", f"/users/{quote(student)}").json()
        if code not in (model.get("servers") or {}):
            return
        assert time.monotonic() < deadline, f"{student}'s server {code} did not stop: {model}"
        time.sleep(1)


def server_base(student: str, code: str) -> str:
    return f"/user/{quote(student)}/{quote(code)}/"


def open_server(stack, browser: requests.Session, student: str, code: str) -> None:
    """Open JupyterLab of the class server as a browser does: the owner gate lets the
    student's session through and the server signs them in through the hub's OAuth (which
    sets the server's ``_xsrf`` cookie)."""
    base = server_base(student, code)
    r = browser.get(stack.url + base + "lab", timeout=120)
    _expect(r, (200,), f"opening {base}lab")
    assert r.url.endswith(base + "lab"), r.url


def _server_xsrf(browser: requests.Session, base: str) -> str:
    """The ``_xsrf`` cookie the server set (the most specific path that covers ``base``)."""
    found = [c for c in browser.cookies if c.name == "_xsrf" and base.startswith(c.path or "/")]
    assert found, f"no _xsrf cookie for {base}: open the server first ({list(browser.cookies)})"
    return max(found, key=lambda c: len(c.path or "")).value


def write_into_server(
    stack, browser: requests.Session, student: str, code: str, path: str, data: bytes
) -> dict:
    """Save ``data`` at ``~/<path>`` (relative to the server's root, the home) with the
    Jupyter contents API through Traefik, its folders made first, as the student; the
    file's model as the server answers it. Call :func:`open_server` first."""
    base = server_base(student, code)
    xsrf = _server_xsrf(browser, base)

    def put(rel: str, model: dict) -> requests.Response:
        return browser.put(
            stack.url + base + "api/contents/" + quote(rel),
            json=model,
            headers={"X-XSRFToken": xsrf},
            timeout=TIMEOUT,
            allow_redirects=False,
        )

    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        folder = "/".join(parts[:i])
        _expect(put(folder, {"type": "directory"}), (200, 201), f"making ~/{folder}")
    r = put(
        "/".join(parts),
        {"type": "file", "format": "base64", "content": base64.b64encode(data).decode("ascii")},
    )
    model = _expect(r, (200, 201), f"writing ~/{path}").json()
    assert model["size"] == len(data), model
    return model


def submit(student_grades, code: str, slug: str) -> dict:
    """The student's Submit of ``~/<code>/assignments/<slug>`` (a grades-service client of
    the student); the new version as the service answers it (201), with ``taken``."""
    r = student_grades("POST", f"api/classes/{code}/assignments/{slug}/submit", timeout=180)
    return _expect(r, (201,), f"submitting {code}/{slug}").json()


def submissions(teacher_grades, code: str, slug: str) -> dict[str, dict]:
    """The teacher's submissions list of ``slug``: each student's row by name (status,
    versions, latest)."""
    r = teacher_grades("GET", f"api/classes/{code}/assignments/{slug}/submissions")
    return {
        row["user"]: row for row in _expect(r, (200,), "the submissions list").json()["students"]
    }


def submission_files(teacher_grades, submission_id: int) -> dict[str, bytes]:
    """Every file of version ``submission_id`` (paths relative to the assignment folder)
    and its bytes, read as a teacher through the grades service."""
    r = teacher_grades("GET", f"api/submissions/{submission_id}/files")
    listed = _expect(r, (200,), f"the files of submission {submission_id}").json()
    out = {}
    for f in listed["files"]:
        got = teacher_grades("GET", f"api/submissions/{submission_id}/files/{quote(f['path'])}")
        out[f["path"]] = _expect(got, (200,), f"file {f['path']} of {submission_id}").content
        assert len(out[f["path"]]) == f["size"], (f, len(out[f["path"]]))
    return out


def collect(teacher_grades, code: str, slug: str) -> dict[str, dict]:
    """The teacher's collect of ``slug`` from every student's home (running or not): each
    student's result by name (``status``, ``duplicate``, ``version``)."""
    r = teacher_grades("POST", f"api/classes/{code}/assignments/{slug}/collect", timeout=600)
    body = _expect(r, (200,), f"collecting {code}/{slug}").json()
    return {row["user"]: row for row in body["students"]}


def grade(teacher_grades, submission_id: int, *, points: float, feedback: str) -> dict:
    """The teacher's grade of version ``submission_id`` (its first: revision 0)."""
    r = teacher_grades(
        "PUT",
        f"api/submissions/{submission_id}/grade",
        json={"points": points, "feedback": feedback, "expected_revision": 0},
    )
    return _expect(r, (200,), f"grading submission {submission_id}").json()


def return_grade(teacher_grades, submission_id: int) -> dict:
    """Return the grade of ``submission_id`` to the student: the feedback file goes into
    their home (running or not); the answer counts ``feedback_files_delivered``."""
    r = teacher_grades("POST", f"api/submissions/{submission_id}/return", timeout=600)
    return _expect(r, (200,), f"returning submission {submission_id}").json()
