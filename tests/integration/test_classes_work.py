"""Read-only views of a student's work (services/classes/work.py) against a real hub,
classes service, homes helper containers and a student's real home: a teacher lists and
reads what the student made, whether the server runs or not, and nothing of the
student's can run or reach past their home."""

from __future__ import annotations

import json
import re
import secrets

import pytest

from harness.classes import Person

pytestmark = pytest.mark.integration

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {
            "cell_type": "markdown",
            "id": "m",
            "metadata": {},
            "source": "# My answer\n<script>fetch('/hub/api/users')</script>",
        },
        {
            "cell_type": "code",
            "id": "c",
            "execution_count": 1,
            "metadata": {},
            "source": "1 + 1",
            "outputs": [
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "application/javascript": "fetch('/hub/api/users')",
                        "text/html": "<b>two</b><img src=x onerror=\"fetch('/x')\">",
                    },
                }
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def world(stack):
    code = "w" + secrets.token_hex(3)
    admin = Person(stack, "admin", "admin")
    people = {
        "tina": Person(stack, "tw" + secrets.token_hex(2), "teacher"),
        "tom": Person(stack, "tx" + secrets.token_hex(2), "teacher"),
        "sam": Person(stack, "sw" + secrets.token_hex(2), "student"),
    }
    r = admin.post("api/classes", {"code": code, "name": "Work", "teachers": [people["tina"].name]})
    assert r.status_code == 201, r.text
    r = people["tina"].post(f"api/classes/{code}/students", {"username": people["sam"].name})
    assert r.status_code == 201, r.text
    sam = people["sam"].name
    stack.spawn(sam, code)
    container = stack.server_container(sam, code)
    script = f"""
set -e
cd /home/jovyan
mkdir -p {code}/assignments/hw1 .secret
cat > {code}/assignments/hw1/answer.ipynb <<'EOF'
{json.dumps(NOTEBOOK)}
EOF
printf '<script>alert(1)</script>' > page.html
echo hidden > .secret/key
ln -s /etc/passwd passwd-link
ln -s {code} code-link
mkfifo pipe
"""
    result = container.exec_run(["bash", "-c", script], user="1000:100")
    assert result.exit_code == 0, result.output
    stack.stop(sam, code)  # the views work on a stopped server's home too
    return {"code": code, "admin": admin, **people}


def page(person, path, **kwargs):
    return person.browser.get(
        person.stack.url + person.service + path,
        headers={"Accept": "text/html"},
        timeout=60,
        allow_redirects=False,
        **kwargs,
    )


def test_a_teacher_lists_a_stopped_students_home_without_hidden_files(stack, world):
    code, sam = world["code"], world["sam"].name
    assert stack.server_model(sam, code) is None
    r = page(world["tina"], f"classes/{code}/students/{sam}/work")
    assert r.status_code == 200, r.text[:300]
    names = dict(re.findall(r'data-name="([^"]+)" data-kind="([^"]+)"', r.text))
    assert names == {
        code: "folder",
        "page.html": "file",
        "passwd-link": "link",
        "code-link": "link",
        "pipe": "other",
    }
    assert stack.server_model(sam, code) is None  # nothing was started


def test_a_notebook_renders_as_a_page_that_runs_nothing(stack, world):
    code, sam = world["code"], world["sam"].name
    path = f"{code}/assignments/hw1/answer.ipynb"
    r = page(world["tina"], f"classes/{code}/students/{sam}/work/file", params={"path": path})
    assert r.status_code == 200, r.text[:300]
    csp = r.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "script-src" not in csp
    assert "My answer</h1>" in r.text and "<b>two</b>" in r.text
    assert not re.findall(r"<script|<[a-z]+[^>]*\son\w+=", r.text, flags=re.I)


def test_other_files_download_and_links_are_never_followed(stack, world):
    code, sam, tina = world["code"], world["sam"].name, world["tina"]
    base = f"classes/{code}/students/{sam}/work"
    r = page(tina, f"{base}/file", params={"path": "page.html"})
    assert r.status_code == 200 and r.content == b"<script>alert(1)</script>"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["Content-Type"] == "application/octet-stream"
    for path, status in (
        ("passwd-link", 400),
        ("code-link/assignments", 400),
        ("pipe", 400),
        (".secret/key", 400),
        ("../etc/passwd", 400),
        ("nothing-here", 404),
    ):
        r = page(tina, f"{base}/file", params={"path": path})
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        assert "root:" not in r.text


def test_only_the_class_teachers_and_admins_look(stack, world):
    code, sam = world["code"], world["sam"].name
    base = f"classes/{code}/students/{sam}/work"
    assert page(world["admin"], base).status_code == 200
    for who in ("tom", "sam"):
        r = page(world[who], base)
        assert r.status_code == 403 and "Only the teachers of class" in r.text, who
    # a teacher cannot reach a home that is not their student's through their own class
    r = page(world["tina"], f"classes/{code}/students/{world['tom'].name}/work")
    assert r.status_code == 404 and "is not a student of class" in r.text
