"""Reviewing handed-in work (the review page) against the real hub, Traefik, PostgreSQL,
SeaweedFS and a real student container: a version's files, a notebook rendered as a page
that runs nothing (sandboxing CSP, nothing of the student's as markup), one file
downloaded as an attachment, the changes between two versions, **Download all** (a zip
with a folder per student and a manifest) and the review page. Every route is tried by the
people who must not use it (another student of the class, a student and a teacher of
another class) and with bad input (unknown: 404, malformed: 400, not showable: 422)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
import requests
from minio import Minio

from harness.browser import Listener
from harness.classes import Person, assert_error
from services.base import nbrender
from tests.integration.test_grades_loop import iso

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "chem5"
OTHER = "other5"
A = f"api/classes/{CODE}/assignments"
MARK = "review-marker"  # what the payloads below would write, if anything ran


def notebook(cells) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def code_cell(cid, source, outputs=()):
    return {
        "cell_type": "code",
        "id": cid,
        "execution_count": 1,
        "metadata": {},
        "source": source,
        "outputs": list(outputs),
    }


def md_cell(cid, source):
    return {"cell_type": "markdown", "id": cid, "metadata": {}, "source": source}


def display(data):
    return {"output_type": "display_data", "metadata": {}, "data": data}


SCRIPT = f"document.title = '{MARK}'"
V1 = notebook(
    [
        md_cell("m1", f"# Pendulum\n<script>{SCRIPT}</script>\nThe period is *2 s*."),
        code_cell(
            "c1",
            "print('g =', 9.81)",
            [
                {"output_type": "stream", "name": "stdout", "text": "g = 9.81\n"},
                display({"application/javascript": SCRIPT, "text/plain": "js fallback"}),
                display({"text/html": f'<b>table</b><img src=x onerror="{SCRIPT}">'}),
            ],
        ),
    ]
)
V2 = notebook(
    [
        md_cell("m1", f"# Pendulum\n<script>{SCRIPT}</script>\nThe period is *2.0 s*."),
        code_cell(
            "c1",
            "print('g =', 9.8)",
            [{"output_type": "stream", "name": "stdout", "text": "g = 9.8\n"}],
        ),
        code_cell("c2", "answer = 42"),
    ]
)


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    """chem5: teacher tia, students sam (a running server, two versions) and sue (nothing
    handed in); other5: teacher otto and student zoe; an admin who teaches nothing."""
    stack.enroll("tia", CODE, teacher=True)
    stack.enroll("sam", CODE)
    stack.enroll("sue", CODE)
    stack.enroll("otto", OTHER, teacher=True)
    stack.enroll("zoe", OTHER)
    return {
        "tia": Person(stack, "tia", "teacher", service=GRADES),
        "sam": Person(stack, "sam", service=GRADES),
        "sue": Person(stack, "sue", service=GRADES),
        "otto": Person(stack, "otto", "teacher", service=GRADES),
        "zoe": Person(stack, "zoe", service=GRADES),
        "admin": Person(stack, "admin", "admin", service=GRADES),
    }


@pytest.fixture(scope="module")
def versions(stack, people):
    """Assignment ``lab`` with two versions by sam (v1: the notebook, a CSV file, a
    damaged notebook and a binary file; v2: the notebook changed, the CSV removed, notes
    added) and assignment ``other`` with one version by sam."""
    tia, sam = people["tia"], people["sam"]
    for slug in ("lab", "other"):
        r = tia.post(
            A, json={"slug": slug, "title": slug.title(), "max_points": 10, "due_at": iso(3600)}
        )
        assert r.status_code == 201, r.text
    stack.spawn("sam", CODE)
    folder = f"{CODE}/assignments/lab"
    stack.write_home("sam", CODE, f"{folder}/pendulum.ipynb", V1)
    stack.write_home("sam", CODE, f"{folder}/data/g.csv", b"g\n9.81\n")
    stack.write_home("sam", CODE, f"{folder}/broken.ipynb", b"{not json")
    stack.write_home("sam", CODE, f"{folder}/plot.bin", bytes(range(256)))
    r = sam.post(f"{A}/lab/submit")
    assert r.status_code == 201, r.text
    v1 = r.json()
    stack.write_home("sam", CODE, f"{folder}/pendulum.ipynb", V2)
    stack.write_home("sam", CODE, f"{folder}/notes.md", b"# Notes\n<script>x()</script>\n")
    code, out = _container(stack).exec_run(["rm", f"/home/jovyan/{folder}/data/g.csv"], user="1000")
    assert code == 0, out
    r = sam.post(f"{A}/lab/submit")
    assert r.status_code == 201, r.text
    v2 = r.json()
    stack.write_home("sam", CODE, f"{CODE}/assignments/other/x.ipynb", V1)
    r = sam.post(f"{A}/other/submit")
    assert r.status_code == 201, r.text
    return {"v1": v1["id"], "v2": v2["id"], "other": r.json()["id"]}


ROWS = 10_000  # 20,000 table cells, about 340 KB: over the default 256K, collapsed


def hostile_big_notebook(script: str) -> bytes:
    """A small HTML output, then a very large one whose markup tries to run ``script``
    (a ``<script>``, an image's onerror, a hover handler)."""
    big = (
        f'<script>{script}</script><img src=x onerror="{script}">'
        f"<div id='hover' onmouseover=\"{script}\">hover here</div><table>"
        + "<tr><td>1.5</td><td>2.5</td></tr>" * ROWS
        + "</table>"
    )
    return notebook(
        [
            code_cell("c0", "small", [display({"text/html": "<i>a small table</i>"})]),
            code_cell("c1", "df", [display({"text/html": big, "text/plain": "df"})]),
        ]
    )


def write_large(stack, user, folder, name, data: bytes):
    """Write a file too large for write()'s command line into the student's home, owned
    by the student (a tar through Docker's archive API)."""
    import tarfile

    box = _container(stack)
    code, out = box.exec_run(["mkdir", "-p", f"/home/jovyan/{folder}"], user="1000")
    assert code == 0, out
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.uid, info.gid, info.mode = len(data), 1000, 100, 0o644
        tar.addfile(info, io.BytesIO(data))
    assert box.put_archive(f"/home/jovyan/{folder}", buffer.getvalue())


@pytest.fixture(scope="module")
def big(stack, people, versions):
    """Assignment ``big``: sam hands in a notebook with a very large hostile HTML output;
    its payload would mark its page and the review page and call ``listener``."""
    listener = Listener()
    script = (
        "try{document.documentElement.setAttribute('data-pwned','frame')}catch(e){}"
        "try{parent.document.body.setAttribute('data-pwned','parent')}catch(e){}"
        f"try{{new Image().src='http://127.0.0.1:{listener.port}/beacon'}}catch(e){{}}"
    )
    r = people["tia"].post(
        A, json={"slug": "big", "title": "Big", "max_points": 10, "due_at": iso(3600)}
    )
    assert r.status_code == 201, r.text
    write_large(stack, "sam", f"{CODE}/assignments/big", "big.ipynb", hostile_big_notebook(script))
    r = people["sam"].post(f"{A}/big/submit")
    assert r.status_code == 201, r.text
    yield {"id": r.json()["id"], "listener": listener}
    listener.close()


def test_a_very_large_html_output_is_collapsed_until_asked_for(people, big):
    tia = people["tia"]
    url = f"api/submissions/{big['id']}/render/big.ipynb"
    page = assert_page(tia.get(url), 200)
    # the small output as always; the large one a placeholder saying how large it is
    assert "<i>a small table</i>" in page and "<td>" not in page
    assert "20,000 table cells" in page
    link = r'href="\?show=1\.0&(?:amp;)?grant=([0-9]+\.[0-9a-f]{32})#out-1-0"'
    (grant,) = set(re.findall(link, page))
    # the link works without the teacher's cookies (a sandboxed page's link sends none):
    # the grant lets it render this file of this version, and nothing else
    anonymous = requests.get(
        f"{people['tia'].stack.url}{GRADES}{url}?show=1.0&grant={grant}", timeout=30
    )
    assert assert_page(anonymous, 200).count("<td>1.5</td>") == ROWS
    assert grant in anonymous.text  # carried on as it is, never renewed
    other = f"api/submissions/{big['id'] - 1}/render/big.ipynb?grant={grant}"
    assert_page(requests.get(f"{people['tia'].stack.url}{GRADES}{other}", timeout=30), 403)
    for bad in (grant[:-1] + ("0" if grant[-1] != "0" else "1"), "1.x", "", "99999999999.a"):
        r = requests.get(f"{people['tia'].stack.url}{GRADES}{url}?grant={bad}", timeout=30)
        assert_page(r, 403)
    # asked for: in place, sanitised as every output (the same page, CSP and headers)
    page = assert_page(tia.get(url + "?show=1.0"), 200)
    assert page.count("<td>1.5</td>") == ROWS and 'id="out-1-0"' in page
    assert "onerror" not in page and "onmouseover" not in page and "hover here" in page
    assert assert_page(tia.get(url + "?show=all"), 200).count("<td>") == 2 * ROWS
    # a hint that is no output id shows nothing more; the access boundary stays
    assert "<td>" not in assert_page(tia.get(url + "?show=../x,<b>"), 200)
    for who in [people["sue"], *outsiders(people)]:
        assert_page(who.get(url + "?show=all"), 404)


def test_in_chromium_show_inserts_the_output_and_nothing_in_it_runs(stack, chromium, big, tmp_path):
    from playwright.sync_api import expect

    from harness.browser import signed_in_page

    path = f"{GRADES}classes/{CODE}/assignments/big/review"
    # a second teacher of the class: signing tia in here would end the session that the
    # other tests' requests hold (one session per person)
    stack.enroll("tim", CODE, teacher=True)
    page = signed_in_page(chromium, stack, "tim", "teacher", path)
    listener = big["listener"]
    try:
        page.goto(f"{stack.url}{path}?user=sam&file=big.ipynb")
        frame = page.frame_locator("#viewer")
        expect(frame.locator("i")).to_have_text("a small table")
        expect(frame.locator(".collapsed")).to_contain_text("20,000 table cells")
        assert frame.locator("td").count() == 0
        frame.get_by_role("link", name="Show it").click()
        # the output in place, the frame scrolled to it; its markup runs nothing
        expect(frame.locator("td")).to_have_count(2 * ROWS)
        expect(frame.locator(".shown")).to_contain_text("shown on request")
        expect(frame.locator("i")).to_have_text("a small table")
        frame.get_by_text("hover here").hover()
        page.wait_for_timeout(1500)  # anything triggered has landed by now
        assert frame.locator("html").get_attribute("data-pwned") is None
        assert page.locator("body").get_attribute("data-pwned") is None
        assert frame.locator("script").count() == 0
        assert listener.hits == []
        # collapsed again on request
        frame.get_by_role("link", name="Collapse it").click()
        expect(frame.locator(".collapsed")).to_contain_text("20,000 table cells")
        assert frame.locator("td").count() == 0
        assert page.problems == []
    except Exception:
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        raise
    finally:
        page.context.close()


def _container(stack):
    return stack.server_container("sam", CODE)


def outsiders(people):
    return [people["zoe"], people["otto"]]


def assert_page(r: requests.Response, status: int, text: str = "") -> str:
    """A rendered page (or its error): HTML with the sandboxing headers."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    for name, value in nbrender.HEADERS.items():
        assert r.headers[name] == value, (name, r.headers.get(name))
    assert "<script" not in r.text.lower()
    if text:
        assert text in r.text, r.text[:2000]
    return r.text


def test_a_versions_files_are_listed(people, versions):
    tia, sam = people["tia"], people["sam"]
    r = tia.get(f"api/submissions/{versions['v1']}/files")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["submission"]["version"] == 1 and data["submission"]["user"] == "sam"
    # as the submissions list shows it (services/grades/standing.py): version 2 is the last
    # on time, so it counts, not version 1
    assert data["submission"]["on_time"] is True and data["submission"]["counts"] is False
    v2 = tia.get(f"api/submissions/{versions['v2']}/files").json()["submission"]
    assert v2["counts"] is True and v2["grade"] is None
    assert data["assignment"]["slug"] == "lab" and data["role"] == "teacher"
    files = {f["path"]: f for f in data["files"]}
    assert sorted(files) == ["broken.ipynb", "data/g.csv", "pendulum.ipynb", "plot.bin"]
    assert files["pendulum.ipynb"]["size"] == len(V1)
    assert files["pendulum.ipynb"]["view"] == "notebook"
    assert files["data/g.csv"]["view"] == "text" and files["plot.bin"]["view"] is None
    assert files["plot.bin"]["render_url"] is None
    assert files["data/g.csv"]["download_url"].endswith(
        f"api/submissions/{versions['v1']}/files/data/g.csv"
    )
    # the owner sees their own version; nobody else but the class's teachers and admins
    assert sam.get(f"api/submissions/{versions['v1']}/files").status_code == 200
    assert people["admin"].get(f"api/submissions/{versions['v1']}/files").status_code == 200
    assert_error(people["sue"].get(f"api/submissions/{versions['v1']}/files"), 404)
    for who in outsiders(people):
        assert_error(who.get(f"api/submissions/{versions['v1']}/files"), 404)
    assert_error(tia.get("api/submissions/987654321/files"), 404)
    assert_error(tia.get(f"api/submissions/{2**63}/files"), 404)


def test_a_notebook_is_rendered_as_a_page_that_runs_nothing(people, versions):
    tia, sam = people["tia"], people["sam"]
    url = f"api/submissions/{versions['v1']}/render/pendulum.ipynb"
    html = assert_page(tia.get(url, headers={"Sec-Fetch-Mode": "navigate"}), 200)
    # what is harmless is there to read; what would run is not there as markup
    assert "Pendulum</h1>" in html and "<em>2 s</em>" in html and "<b>table</b>" in html
    assert "js fallback" in html and "g = 9.81" in html
    assert "onerror" not in html and 'src="x"' not in html
    assert MARK not in html.replace(f"&#x27;{MARK}&#x27;", "")  # only as escaped text
    # HEAD prepares the page without sending it (the review page warms the next student)
    head = tia.call("HEAD", url)
    assert head.status_code == 200 and head.content == b""
    # a text file is shown escaped; the owner may look
    text = assert_page(sam.get(f"api/submissions/{versions['v2']}/render/notes.md"), 200)
    assert "&lt;script&gt;x()&lt;/script&gt;" in text

    # a notebook that cannot be rendered: the reason, and where to download it
    assert_page(
        tia.get(f"api/submissions/{versions['v1']}/render/broken.ipynb"),
        422,
        "not a notebook",
    )
    assert_page(tia.get(f"api/submissions/{versions['v1']}/render/plot.bin"), 422, "download")
    assert_page(tia.get(f"api/submissions/{versions['v1']}/render/nope.ipynb"), 404, "no file")
    assert_page(tia.get(f"api/submissions/{versions['v1']}/render/.classhub-x.ipynb"), 400)
    # a way out of the version: refused (by Traefik already, or by the service)
    assert tia.get(f"api/submissions/{versions['v1']}/render/..%2F..%2Fx.ipynb").status_code == 400
    # the access boundary, as a page too
    assert_page(people["sue"].get(url), 404)
    for who in outsiders(people):
        assert_page(who.get(url), 404)
    assert_page(tia.get("api/submissions/987654321/render/pendulum.ipynb"), 404)


def test_one_file_is_downloaded_as_an_attachment(people, versions):
    tia, sam = people["tia"], people["sam"]
    url = f"api/submissions/{versions['v1']}/files/plot.bin"
    r = tia.get(url)
    assert r.status_code == 200, r.text
    assert r.content == bytes(range(256))
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == "attachment; filename*=UTF-8''plot.bin"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    r = sam.get(f"api/submissions/{versions['v1']}/files/data/g.csv")
    assert r.status_code == 200 and r.content == b"g\n9.81\n", r.text
    assert r.headers["Content-Disposition"] == "attachment; filename*=UTF-8''g.csv"
    assert_error(tia.get(f"api/submissions/{versions['v2']}/files/data/g.csv"), 404)
    assert_error(tia.get(f"api/submissions/{versions['v1']}/files/.classhub-x"), 400)
    assert_error(people["sue"].get(url), 404)
    for who in outsiders(people):
        assert_error(who.get(url), 404)


def test_the_changes_between_two_versions(people, versions):
    tia, sam = people["tia"], people["sam"]
    v1, v2 = versions["v1"], versions["v2"]
    html = assert_page(tia.get(f"api/submissions/{v2}/diff/{v1}/pendulum.ipynb"), 200)
    assert "From version 1 to version 2" in html
    assert "1 changed" in html or "2 changed" in html, html[-3000:]
    assert "1 added" in html
    # the source, line by line, and the outputs summarised; the script only as text
    assert "- print(&#x27;g =&#x27;, 9.81)" in html and "+ print(&#x27;g =&#x27;, 9.8)" in html
    assert "&lt;script&gt;" in html
    assert "3 output(s) before, 1 now" in html
    # a file removed, a file added: compared with nothing
    removed = assert_page(tia.get(f"api/submissions/{v2}/diff/{v1}/data/g.csv"), 200)
    assert "absent in version 2" in removed
    assert_page(sam.get(f"api/submissions/{v2}/diff/{v1}/notes.md"), 200, "+ # Notes")
    # only two versions of one student's work on one assignment
    assert_page(tia.get(f"api/submissions/{v2}/diff/{versions['other']}/x.ipynb"), 400)
    assert_page(tia.get(f"api/submissions/{v2}/diff/{v1}/nothing.ipynb"), 404)
    assert_page(people["sue"].get(f"api/submissions/{v2}/diff/{v1}/pendulum.ipynb"), 404)
    for who in outsiders(people):
        assert_page(who.get(f"api/submissions/{v2}/diff/{v1}/pendulum.ipynb"), 404)


def test_download_all_gives_the_counting_versions_and_a_manifest(stack, people, versions):
    tia = people["tia"]
    r = tia.get(f"{A}/lab/download-all")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{CODE}-lab-all.zip"'
    assert r.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built first
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None
    names = sorted(zf.namelist())
    # sam's counting version (by default the last on time: version 2), a folder per student
    assert names == [
        "manifest.csv",
        "sam/broken.ipynb",
        "sam/notes.md",
        "sam/pendulum.ipynb",
        "sam/plot.bin",
    ]
    assert zf.read("sam/pendulum.ipynb") == V2
    rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
    by_student = {row["student"]: row for row in rows}
    assert by_student["sam"]["version"] == "2" and by_student["sam"]["late"] == "no"
    assert by_student["sam"]["submitted_at"].endswith("Z")
    assert by_student["sam"]["status"] == "on time" and by_student["sam"]["files"] == "4"
    assert by_student["sam"]["counts_because"] == "last on time"
    assert by_student["sam"]["taken_by"] == "handed in"
    # nothing handed in and the due date still to come
    assert by_student["sue"]["status"] == "not handed in yet" and by_student["sue"]["version"] == ""
    # the access boundary: the class's teachers and admins only
    assert people["admin"].get(f"{A}/lab/download-all").status_code == 200
    assert_error(people["sam"].get(f"{A}/lab/download-all"), 403)
    for who in outsiders(people):
        assert_error(who.get(f"{A}/lab/download-all"), 404)
    assert_error(tia.get(f"{A}/nope/download-all"), 404)
    assert_error(tia.get(f"{A}/Bad!Slug/download-all"), 400)


def test_a_version_missing_from_the_store_is_named_in_the_manifest(stack, people, versions):
    """The snapshot of sam's ``other`` version is deleted from the store by hand: its
    files cannot be listed (404), and Download all says so in the manifest."""
    tia = people["tia"]
    s3 = Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
    )
    keys = [
        o.object_name
        for o in s3.list_objects("classhub-files", f"submissions/{CODE}/other/", recursive=True)
    ]
    assert len(keys) == 1
    for key in keys:
        s3.remove_object("classhub-files", key)
    assert_error(tia.get(f"api/submissions/{versions['other']}/files"), 404, "missing")
    r = tia.get(f"{A}/other/download-all")
    assert r.status_code == 200, r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.namelist() == ["manifest.csv"]
    rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
    (sam,) = [row for row in rows if row["student"] == "sam"]
    assert sam["version"] == "1" and "missing" in sam["note"], sam


def test_the_review_page(people, versions):
    html = {"Accept": "text/html"}
    page = f"classes/{CODE}/assignments/lab/review"
    r = people["tia"].get(page, headers=html)
    assert r.status_code == 200 and "review.js" in r.text, r.text[:500]
    # the page opens on the first student who handed in, their counting version's first
    # notebook (by name), named in the frame's src (fetched while the script starts)
    src = 'src="/services/grades/api/submissions/{}/render/broken.ipynb"'
    assert src.format(versions["v2"]) in r.text
    r = people["tia"].get(
        f"{page}?user=sam&version={versions['v1']}&file=pendulum.ipynb", headers=html
    )
    assert (
        f'src="/services/grades/api/submissions/{versions["v1"]}/render/pendulum.ipynb"' in r.text
    )
    r = people["tia"].get(f"{page}?user=sam&version={versions['v1']}&file=data/g.csv", headers=html)
    assert (
        'src="/services/grades/api/submissions/{}/render/data/g.csv"'.format(versions["v1"])
        in r.text
    )
    r = people["tia"].get(f"{page}?user=sue", headers=html)  # nothing handed in: no frame src
    assert r.status_code == 200 and "/render/" not in r.text
    r = people["tia"].get(f"{page}?user=Bad!&version=x&file=..", headers=html)  # hints only
    assert r.status_code == 200 and src.format(versions["v2"]) in r.text
    assert 'id="grading"' in r.text and 'id="download-all"' in r.text
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    # a student: their own versions, no grading
    r = people["sam"].get(page, headers=html)
    assert r.status_code == 200 and 'id="your-version"' in r.text and 'id="grading"' not in r.text
    assert src.format(versions["v2"]) in r.text
    # another student's name or version in the query changes nothing
    r = people["sue"].get(f"{page}?user=sam&version={versions['v2']}", headers=html)
    assert r.status_code == 200 and "/render/" not in r.text
    for who in outsiders(people):
        assert who.get(page, headers=html).status_code == 404
    assert (
        people["tia"].get(f"classes/{CODE}/assignments/nope/review", headers=html).status_code
        == 404
    )
    assert (
        people["tia"].get(f"classes/{CODE}/assignments/Bad!/review", headers=html).status_code
        == 400
    )


FIRST_VIEW = re.compile(
    r'<script type="application/json" id="review-first-view">(.*?)</script>', re.DOTALL
)


def first_view(page: str) -> dict | None:
    """The first view's data the review page carries for its script (None: none)."""
    found = FIRST_VIEW.search(page)
    if found is None:
        return None
    assert not set("<>&") & set(found.group(1)), found.group(1)[:300]  # escaped
    return json.loads(found.group(1))


def test_the_review_pages_first_view_is_in_the_page(people, versions):
    """The review page carries what its script needs first (the API's own answers: the
    students list, the student's versions, the shown version's files) and the notebook in
    its frame's src, so the browser asks for nothing else before the notebook; a student's
    page carries their own versions only, whatever the query names."""
    tia, sam, sue = people["tia"], people["sam"], people["sue"]
    html = {"Accept": "text/html"}
    page = f"classes/{CODE}/assignments/lab/review"
    v1, v2 = versions["v1"], versions["v2"]
    r = tia.get(f"{page}?user=sam", headers=html)
    assert r.status_code == 200, r.text[:500]
    assert f'src="/services/grades/api/submissions/{v2}/render/broken.ipynb"' in r.text
    first = first_view(r.text)
    assert first is not None and first["user"] == "sam"
    assert first["students"] == tia.get(f"{A}/lab/submissions").json()
    assert first["versions"] == tia.get(f"{A}/lab/students/sam/submissions").json()
    assert first["files"] == tia.get(f"api/submissions/{v2}/files").json()
    # the version and file asked for; a comparison: the data, but the script asks for it
    r = tia.get(f"{page}?user=sam&version={v1}&file=pendulum.ipynb", headers=html)
    assert f'src="/services/grades/api/submissions/{v1}/render/pendulum.ipynb"' in r.text
    assert first_view(r.text)["files"] == tia.get(f"api/submissions/{v1}/files").json()
    r = tia.get(f"{page}?user=sam&version={v2}&since={v1}", headers=html)
    assert "/render/" not in r.text.split('id="review-first-view"')[0]
    assert first_view(r.text)["files"]["submission"]["id"] == v2
    # a student who handed in nothing: the list and their (empty) versions, no files
    first = first_view(tia.get(f"{page}?user=sue", headers=html).text)
    assert first["user"] == "sue" and first["versions"]["submissions"] == []
    assert "files" not in first
    # a student: their own versions and files as the API gives them to them, no list
    r = sam.get(f"{page}?user=sue", headers=html)
    assert f'src="/services/grades/api/submissions/{v2}/render/broken.ipynb"' in r.text
    first = first_view(r.text)
    assert "students" not in first and first["user"] == "sam"
    assert first["versions"] == sam.get(f"{A}/lab/students/sam/submissions").json()
    assert first["files"] == sam.get(f"api/submissions/{v2}/files").json()
    # another student's name or version in the query: nothing of theirs in the page
    r = sue.get(f"{page}?user=sam&version={v2}", headers=html)
    first = first_view(r.text)
    assert first == {
        "user": "sue",
        "versions": sue.get(f"{A}/lab/students/sue/submissions").json(),
    }
    assert first["versions"]["submissions"] == []
    block = FIRST_VIEW.search(r.text).group(1)
    assert "sam" not in block and "/submissions/" not in block
    assert "/render/" not in r.text


def test_the_teachers_choice_of_version_is_what_the_review_and_download_all_use(people, versions):
    """The version that counts is one computation (services/grades/standing.py): when tia
    makes sam's version 1 count, the review page opens on it, the version views say so,
    Download all gives it; a grade given to version 1 stays with version 1."""
    tia, sam = people["tia"], people["sam"]
    html = {"Accept": "text/html"}
    v1, v2 = versions["v1"], versions["v2"]
    r = tia.call(
        "PUT", f"{A}/lab/students/sam/counts", json={"submission_id": v1, "reason": "v2 broke"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["standing"]["counting_id"] == v1 and r.json()["standing"]["why"] == "chosen"
    try:
        page = f"classes/{CODE}/assignments/lab/review"
        src = f'src="/services/grades/api/submissions/{v1}/render/broken.ipynb"'
        assert src in tia.get(page, headers=html).text
        assert src in sam.get(page, headers=html).text  # the student's page agrees
        assert tia.get(f"api/submissions/{v1}/files").json()["submission"]["counts"] is True
        assert tia.get(f"api/submissions/{v2}/files").json()["submission"]["counts"] is False
        zf = zipfile.ZipFile(io.BytesIO(tia.get(f"{A}/lab/download-all").content))
        assert zf.read("sam/pendulum.ipynb") == V1 and "sam/data/g.csv" in zf.namelist()
        assert "sam/notes.md" not in zf.namelist()
        rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
        (row,) = [row for row in rows if row["student"] == "sam"]
        assert row["version"] == "1" and row["counts_because"] == "chosen by a teacher"

        # the grade belongs to the version graded, whichever counts
        r = tia.call(
            "PUT",
            f"api/submissions/{v1}/grade",
            json={"points": 6, "feedback": "ok", "expected_revision": 0},
        )
        assert r.status_code == 200, r.text
        assert r.json()["counts"] is True and r.json()["grade"]["points"] == 6
        seen = tia.get(f"api/submissions/{v1}/files").json()["submission"]
        assert seen["grade"]["points"] == 6
        assert tia.get(f"api/submissions/{v2}/files").json()["submission"]["grade"] is None
        # the student sees it only once it is returned
        assert sam.get(f"api/submissions/{v1}/files").json()["submission"]["grade"] is None
        assert tia.post(f"api/submissions/{v1}/return").status_code == 200
        mine = sam.get(f"api/submissions/{v1}/files").json()["submission"]
        assert mine["grade"]["points"] == 6 and mine["counts"] is True
    finally:
        r = tia.call("PUT", f"{A}/lab/students/sam/counts", json={"submission_id": None})
        assert r.status_code == 200, r.text
    # back to the default rule: version 2 counts again, the grade stays with version 1
    assert tia.get(f"api/submissions/{v2}/files").json()["submission"]["counts"] is True
    seen = tia.get(f"api/submissions/{v1}/files").json()["submission"]
    assert seen["counts"] is False and seen["grade"]["points"] == 6
    zf = zipfile.ZipFile(io.BytesIO(tia.get(f"{A}/lab/download-all").content))
    assert zf.read("sam/pendulum.ipynb") == V2
