"""The read-only views of a student's work (services/classes/work.py) with fakes of the
homes helper and the hub: who may look, what a page shows, and that nothing of the
student's can run (the real helper and browser: tests/integration/test_classes_work.py)."""

import json
import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from common import clock
from common.errors import BadRequest
from harness.memstore import MemoryClassStore
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, HomeView
from services.base.nbrender import Renderer
from services.classes.app import ClassesApp
from services.classes.hubsync import GroupSync
from services.classes.work import clean_path, crumbs, download_name
from tests.unit.test_classes_handlers import PREFIX, FakeHubAuth, MemoryHub

pytestmark = pytest.mark.unit

NOTEBOOK = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "markdown",
                "id": "m",
                "metadata": {},
                "source": "# Answer\n<script>steal()</script><img src=x onerror=steal()>",
            }
        ],
    }
).encode()


class PageHubAuth(FakeHubAuth):
    base_url = PREFIX  # where pages' XSRF cookie lives


class FakeHomes:
    def __init__(self):
        self.calls = []
        self.files = {
            "": HomeView(
                "folder",
                entries=[
                    {"name": "bio", "kind": "folder", "size": 0},
                    {"name": "<b>x</b>.ipynb", "kind": "file", "size": 10},
                    {"name": "data.html", "kind": "file", "size": 20},
                    {"name": "ln", "kind": "link", "size": 0},
                ],
                total=6,
            ),
            "hw.ipynb": HomeView("file", data=NOTEBOOK),
            "page.html": HomeView("file", data=b"<script>steal()</script>"),
            "bio": HomeView("folder", entries=[], total=0),
        }
        self.fail = None

    async def view(self, user, server, path):
        self.calls.append((user, server, path))
        if self.fail:
            raise self.fail
        if path not in self.files:
            raise HomeRefused(f"~/{path} does not exist.", 404)
        return self.files[path]


@pytest.fixture
async def work(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_800_000_000.0)
    app = ClassesApp(
        api_token="t", service_prefix=PREFIX, allowed_images=["img:1"], default_image="img:1"
    )
    app.hub_auth = PageHubAuth()
    app.hub = MemoryHub({"root", "tina", "tom", "sam", "sue"})
    app.store = MemoryClassStore()
    app.store.records["bio"] = {
        "code": "bio",
        "name": "Bio",
        "teachers": ["tina"],
        "students": ["sam"],
        "archived": False,
    }
    app.group_sync = GroupSync(app.hub, app.store)
    app.homes = FakeHomes()
    app.renderer = Renderer(workers=1)
    sock, port = bind_unused_port()
    server = HTTPServer(app.make_app())
    server.add_sockets([sock])

    async def get(user, path):
        req = HTTPRequest(
            f"http://127.0.0.1:{port}{PREFIX}{path}",
            headers={"X-Test-User": user, "Accept": "text/html"},
            follow_redirects=False,
        )
        return await AsyncHTTPClient().fetch(req, raise_error=False)

    yield app, get
    server.stop()
    app.renderer.close()


BASE = "classes/bio/students/sam/work"


async def test_teachers_and_admins_look_students_and_others_do_not(work):
    app, get = work
    for user in ("tina", "root"):
        assert (await get(user, BASE)).code == 200
    for user, status in (("tom", 403), ("sam", 403), ("sue", 403)):
        r = await get(user, BASE)
        assert r.code == status, (user, r.code)
    # only students on the roster: tina cannot look into tom's home through her class
    assert (await get("tina", "classes/bio/students/tom/work")).code == 404
    assert (await get("tina", "classes/chem/students/sam/work")).code == 404
    assert app.homes.calls == [("sam", "bio", ""), ("sam", "bio", "")]


async def test_the_list_escapes_every_name_and_links_notebooks_and_downloads(work):
    _, get = work
    r = await get("tina", BASE)
    page = r.body.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;.ipynb" in page
    assert 'data-name="bio" data-kind="folder"' in page
    assert f'href="{PREFIX}{BASE}?path=bio"' in page
    assert f"{PREFIX}{BASE}/file?path=%3Cb%3Ex%3C/b%3E.ipynb" in page
    assert "2 more entries are not listed" in page
    assert (
        "script-src" not in r.headers["Content-Security-Policy"]
        or "'self'" in r.headers["Content-Security-Policy"]
    )


async def test_a_notebook_is_shown_as_a_page_that_runs_nothing(work):
    _, get = work
    r = await get("tina", f"{BASE}/file?path=hw.ipynb")
    assert r.code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "script-src" not in csp and "default-src 'none'" in csp
    page = r.body.decode()
    assert "Answer</h1>" in page
    assert not re.findall(r"<script|<[a-z]+[^>]*\son\w+=", page, flags=re.I)


async def test_other_files_only_download(work):
    _, get = work
    for path in ("page.html", "hw.ipynb&download=1"):
        r = await get("tina", f"{BASE}/file?path={path}")
        assert r.code == 200
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in r.headers["Content-Security-Policy"]


async def test_refusals_are_clear_pages(work):
    app, get = work
    r = await get("tina", f"{BASE}?path=../../etc")
    assert r.code == 400 and "not a path inside" in r.body.decode()
    r = await get("tina", f"{BASE}?path=nothing")
    assert r.code == 404 and "does not exist" in r.body.decode()
    r = await get("tina", f"{BASE}/file?path=bio")
    assert r.code == 400 and "is a folder" in r.body.decode()
    r = await get("tina", f"{BASE}/file")
    assert r.code == 400
    app.homes.fail = HomeMissing("no home")
    r = await get("tina", BASE)
    assert r.code == 404 and "has not started class bio" in r.body.decode()
    app.homes.fail = HomeRefused("~/x is larger than 50 MB; it is not shown.", 413)
    assert (await get("tina", f"{BASE}/file?path=x")).code == 413
    app.homes.fail = HelperUnavailable("docker down")
    r = await get("tina", BASE)
    assert r.code == 503


def test_paths_and_names():
    assert clean_path("") == "" and clean_path("/a/b/") == "a/b"
    for bad in ("a/../b", "a//b", "./a", "a\\\\b"):
        with pytest.raises(BadRequest):
            clean_path(bad)
    assert crumbs("a/b") == [("home", ""), ("a", "a"), ("b", "a/b")]
    assert download_name("x/é x.py") == "attachment; filename*=UTF-8''%C3%A9%20x.py"
