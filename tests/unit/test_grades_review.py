"""The review's parts without a deployment: the page cache, the pipe that streams a zip,
the manifest, reading a version's zip with ranged reads (a fake S3 client over bytes), the
cell-by-cell difference, and the renderer's allow-list (services/grades/review.py,
snapzip.py, nbdiff.py, services/base/nbrender.py)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import io
import json
import random
import re
import zipfile
from decimal import Decimal

import pytest

from common.errors import NotFound
from services.base import nbrender
from services.grades import downloadall, nbdiff, reviewsettings, reviewwork, snapzip, zipstream
from services.grades import standing as st
from services.grades.store import Assignment, Choice, StandingData, Submission

pytestmark = pytest.mark.unit


# ----------------------------------------------------------------------------- cache


def test_the_render_cache_drops_the_least_recently_used_beyond_its_size():
    cache = reviewwork.RenderCache(10)
    cache.put(("a",), b"1234")
    cache.put(("b",), b"1234")
    assert cache.get(("a",)) == b"1234"  # a is now the most recent
    cache.put(("c",), b"1234")
    assert cache.get(("b",)) is None and cache.get(("a",)) and cache.get(("c",))
    assert cache.used == 8
    cache.put(("big",), b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(("big",)) is None and cache.used == 8
    off = reviewwork.RenderCache(0)
    off.put(("a",), b"1")
    assert off.get(("a",)) is None


# ----------------------------------------------------------------------------- streaming


DATA = random.Random(1).randbytes(10_000)


def test_a_zip_written_into_the_pipe_arrives_whole_and_in_bounded_chunks():
    class Browser:
        def __init__(self):
            self.chunks = []

        def write(self, chunk):
            self.chunks.append(chunk)

        async def flush(self):
            await asyncio.sleep(0)

    async def run():
        loop = asyncio.get_running_loop()
        pipe = zipstream.ChunkPipe(loop, chunk=1024, depth=2)
        browser = Browser()
        pump = asyncio.create_task(pipe.pump(browser))

        def build():
            with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:
                for i in range(5):
                    with zf.open(f"s{i}/data.bin", "w") as out:
                        out.write(DATA[: 2000 * (i + 1)])
            pipe.drain()

        await loop.run_in_executor(None, build)
        pipe.end()
        await pump
        return browser.chunks

    chunks = asyncio.run(run())
    assert all(len(c) <= 1024 for c in chunks) and len(chunks) > 10
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert zf.testzip() is None
    assert zf.read("s4/data.bin") == DATA[:10_000]


def test_a_browser_that_goes_away_stops_the_copy():
    from tornado import iostream

    class Gone:
        def write(self, chunk):
            pass

        async def flush(self):
            raise iostream.StreamClosedError()

    async def run():
        loop = asyncio.get_running_loop()
        pipe = zipstream.ChunkPipe(loop, chunk=16, depth=1)
        pump = asyncio.create_task(pipe.pump(Gone()))

        def copy():
            for _ in range(10_000):
                pipe.write(b"x" * 16)

        with pytest.raises(zipstream.Aborted):
            await loop.run_in_executor(None, copy)
        pipe.end()
        await pump

    asyncio.run(run())


# ----------------------------------------------------------------------------- manifest


def submission(**changes) -> Submission:
    base = dict(
        id=1,
        assignment_id=1,
        username="sam",
        version=2,
        submitted_at=datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.UTC),
        due_at_then=None,
        late=False,
        penalty_percent=Decimal("10"),
        storage_key="submissions/x.zip",
        content_sha256="ab" * 32,
        size_bytes=100,
        files=3,
        collected_by=None,
    )
    return Submission(**{**base, **changes})


def test_the_manifest_lists_every_student_with_their_version_as_it_stands_now():
    """The manifest's on time or late, penalty and why a version counts come from the
    student's standing (now, against their current deadline), not from what was recorded
    when the version was taken."""
    due = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
    now = due + datetime.timedelta(days=1)
    late_at = due + datetime.timedelta(hours=2)
    # amy: one version, late, collected; recorded as on time when it was taken
    amy = submission(id=5, username="amy", version=1, submitted_at=late_at, collected_by="t")
    amy = dataclasses.replace(amy, kind=st.COLLECT)
    # sam: version 1 on time, version 2 late: version 1 counts; the teacher waived nothing
    sam1 = submission(id=7, version=1, late=True)
    sam2 = submission(id=8, version=2, submitted_at=late_at)
    # tom: the teacher chose his late version 2 and waived the penalty
    tom1 = submission(id=9, username="tom", version=1)
    tom2 = submission(id=10, username="tom", version=2, submitted_at=late_at)
    data = StandingData(
        assignments={1: assignment(due)},
        versions={
            (1, "amy"): [amy.as_version()],
            (1, "sam"): [sam1.as_version(), sam2.as_version()],
            (1, "tom"): [tom1.as_version(), tom2.as_version()],
        },
        submissions={s.id: s for s in (amy, sam1, sam2, tom1, tom2)},
        extensions={},
        choices={
            (1, "tom"): Choice(1, "tom", counted_submission_id=10, penalty_percent=Decimal(0))
        },
        deadlines={},
        questions={},
        question_points={},
    )
    rows = downloadall.counted(data, 1, ["bob", "sam", "tom"], now)
    assert [r.student for r in rows] == ["amy", "bob", "sam", "tom"]
    rows[2] = dataclasses.replace(rows[2], note="left out: missing")
    text = downloadall.manifest_csv(rows).decode("utf-8-sig")
    parsed = {r["student"]: r for r in csv.DictReader(io.StringIO(text))}
    amy_row, bob, sam, tom = (parsed[u] for u in ("amy", "bob", "sam", "tom"))
    assert amy_row["status"] == "late" and amy_row["late"] == "yes"
    assert amy_row["penalty_percent"] == "10" and amy_row["counts_because"] == "first late"
    assert amy_row["collected_by"] == "t" and amy_row["taken_by"] == "collected"
    assert amy_row["submitted_at"] == "2026-12-01T14:00:00Z"
    assert amy_row["note"] == "no longer on the class's roster"
    assert bob["version"] == "" and bob["status"] == "missing"  # the deadline passed
    assert sam["version"] == "1" and sam["status"] == "on time" and sam["late"] == "no"
    assert sam["penalty_percent"] == "" and sam["counts_because"] == "last on time"
    assert sam["note"] == "left out: missing"
    assert tom["version"] == "2" and tom["counts_because"] == "chosen by a teacher"
    assert tom["late"] == "yes" and tom["penalty_percent"] == "0"
    # before the deadline, nothing handed in is "not handed in yet"
    early = downloadall.counted(data, 1, ["bob"], due - datetime.timedelta(hours=1))
    assert [r.status for r in early if r.student == "bob"] == ["not handed in yet"]


def assignment(due: datetime.datetime) -> Assignment:
    values = {f.name: None for f in dataclasses.fields(Assignment)}
    values.update(
        id=1,
        class_code="chem5",
        slug="lab",
        due_at=due,
        late_penalty_percent=Decimal(10),
        max_points=Decimal(10),
    )
    return Assignment(**values)


@pytest.mark.parametrize(
    "path, kind",
    [
        ("a.ipynb", "notebook"),
        ("dir/A.IPYNB", "notebook"),
        ("answer.py", "text"),
        ("README", "text"),
        ("data/x.csv", "text"),
        ("plot.png", None),
        ("archive.zip", None),
    ],
)
def test_which_files_are_shown(path, kind):
    assert reviewwork.viewable(path) == kind


# ----------------------------------------------------------------------------- snapzip


class FakeS3:
    """A minio client of one object, counting its ranged GETs."""

    def __init__(self, data: bytes):
        self.data = data
        self.gets = []

    def get_object(self, bucket, key, offset=0, length=0):
        if key != "k":
            from minio.error import S3Error

            raise S3Error(None, "NoSuchKey", "no", "k", "r", "h")
        self.gets.append((offset, length))
        data = self.data[offset : offset + length]

        class Response:
            def stream(self, size):
                for i in range(0, len(data), size):
                    yield data[i : i + size]

            def close(self):
                pass

            def release_conn(self):
                pass

        return Response()


class FakeObjects:
    def __init__(self, data: bytes):
        self.client = FakeS3(data)
        self.bucket = "b"


def snapshot(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_version_is_listed_and_read_with_ranged_reads():
    big = b"y" * (3 << 20)
    data = snapshot({"b.ipynb": b"{}", "a/data.csv": b"1,2\n", "big.bin": big})
    objects = FakeObjects(data)
    files = snapzip.list_files(objects, "k", len(data))
    assert [(f.path, f.size) for f in files] == [
        ("a/data.csv", 4),
        ("b.ipynb", 2),
        ("big.bin", 3 << 20),
    ]
    # the directory only: a few small reads from the end, not the whole object
    assert sum(length for _, length in objects.client.gets) < 100_000
    assert snapzip.read_file(objects, "k", len(data), "a/data.csv", 100) == b"1,2\n"
    with pytest.raises(snapzip.FileTooLarge):
        snapzip.read_file(objects, "k", len(data), "big.bin", 1 << 20)
    with pytest.raises(NotFound):
        snapzip.read_file(objects, "k", len(data), "nope", 100)
    assert snapzip.read_files(objects, "k", len(data), ["b.ipynb", "x"], 100) == {
        "b.ipynb": b"{}",
        "x": None,
    }
    copied = {}

    def add(path, size, chunks):
        copied[path] = b"".join(chunks)

    snapzip.copy_files(objects, "k", len(data), add, 1 << 30)
    assert copied["big.bin"] == big and copied["a/data.csv"] == b"1,2\n"


def test_a_missing_or_damaged_version_is_said_so():
    with pytest.raises(snapzip.SnapshotMissing):
        snapzip.list_files(FakeObjects(b""), "gone", 100)
    with pytest.raises(snapzip.SnapshotUnreadable):
        snapzip.list_files(FakeObjects(b"not a zip at all" * 10), "k", 160)
    # names classhub never stores are never served
    data = snapshot({"../evil": b"x", "ok.txt": b"y"})
    assert [f.path for f in snapzip.list_files(FakeObjects(data), "k", len(data))] == ["ok.txt"]


# ----------------------------------------------------------------------------- diff


def nb(cells) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def cell(source, cid=None, outputs=(), kind="code"):
    c = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        c.update(outputs=list(outputs), execution_count=1)
    if cid:
        c["id"] = cid
    return c


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_cells_are_matched_by_id_even_when_moved():
    old = [cell("a", "1"), cell("b", "2"), cell("c", "3")]
    new = [cell("c", "3"), cell("a2", "1"), cell("b", "2"), cell("d", "4")]
    pairs = nbdiff.align(old, new)
    by_new = {j: (i, moved) for i, j, moved in pairs if j is not None}
    assert by_new[1] == (0, False) and by_new[2] == (1, False)
    assert by_new[0] == (2, True)  # c moved to the top
    assert by_new[3] == (None, False)  # d added


def test_without_ids_cells_are_matched_by_content_then_position():
    old = [cell("x = 1"), cell("y = 2"), cell("z = 3")]
    new = [cell("x = 1"), cell("y = 20"), cell("z = 3"), cell("w = 4")]
    assert nbdiff.align(old, new) == [(0, 0, False), (1, 1, False), (2, 2, False), (None, 3, False)]


def test_the_difference_page_shows_sources_and_outputs_and_escapes_everything():
    payload = "<script>document.title='x'</script><img src=x onerror=alert(1)>"
    old = nb(
        [
            cell("print(1)", "a", [stream("1\n")]),
            cell(payload, "m", kind="markdown"),
            cell("gone()", "g"),
        ]
    )
    new = nb(
        [
            cell(
                "print(2)",
                "a",
                [
                    stream("2\n"),
                    {"output_type": "display_data", "metadata": {}, "data": {"text/html": payload}},
                ],
            ),
            cell(payload, "m", kind="markdown"),
            cell("new()", "n"),
        ]
    )
    page = nbdiff.diff_file("hw.ipynb", old, new, ("version 1", "version 2"))
    assert "1 changed, 1 added, 1 removed, 1 unchanged" in page
    assert '<div class="l del">- print(1)</div>' in page
    assert '<div class="l ins">+ print(2)</div>' in page
    assert (
        "1 output(s) before, 2 now" in page and "Output 2 added: display_data (text/html)" in page
    )
    assert "<script" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page


def test_text_files_and_unreadable_notebooks_are_compared_as_text():
    page = nbdiff.diff_file("a.py", b"x = 1\ny = 2\n", b"x = 1\ny = 3\n", ("v1", "v2"))
    assert "+1 −1 lines" in page and "+ y = 3" in page
    page = nbdiff.diff_file("b.ipynb", b"{broken", b"{broken2", ("v1", "v2"))
    assert "Compared as text instead" in page
    page = nbdiff.diff_file("c.bin", b"\xff\x00", None, ("v1", "v2"))
    assert "absent in v2" in page and "different" in page


# ----------------------------------------------------------------------------- renderer


def test_links_images_and_attachments_keep_only_what_is_harmless():
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
        "AAAABJRU5ErkJggg=="
    )
    raw = nb(
        [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "[ok](https://example.org) [rel](/hub/api/users) "
                "[js](javascript:alert(1)) [d](data:text/html,<script>x</script>)"
                "\n\n![pic](attachment:p.png) <img src='https://tracker.example/x.png'>"
                "<style>body{display:none}</style><form action='/hub/api'><input></form>",
                "attachments": {"p.png": {"image/png": png}},
            },
            cell(
                "x",
                outputs=[
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "image/svg+xml": "<svg onload='alert(1)'><script>1</script></svg>"
                        },
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "m"}},
                    },
                    {
                        "output_type": "error",
                        "ename": "E",
                        "evalue": "v",
                        "traceback": ["\x1b[31mBoom<b>\x1b[0m"],
                    },
                ],
            ),
        ]
    )
    page = nbrender.render_html(raw)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == ["https://example.org"]
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs[0] == f"data:image/png;base64,{png}"
    assert srcs[1].startswith("data:image/svg+xml;base64,")  # the SVG only as an image
    assert len(srcs) == 2  # the tracker image is gone
    assert "<style>body" not in page and "<form" not in page and "<input" not in page
    assert "scripts and widgets never run" in page
    assert "Boom&lt;b&gt;" in page and "\x1b" not in page


def test_format_3_notebooks_are_refused_with_the_reason():
    with pytest.raises(nbrender.NotebookError, match="format 3"):
        nbrender.render_html(json.dumps({"nbformat": 3, "cells": []}).encode())
    assert "no cells" in nbrender.render_html(nb([]))


def html_out(html: str) -> dict:
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {},
            "data": {"text/html": html, "text/plain": "df"}}  # fmt: skip


def table(rows: int) -> str:
    return "<table>" + "<tr><td>1.5</td><td>2.5</td></tr>" * rows + "</table>"


def test_very_large_html_outputs_are_collapsed_until_asked_for():
    hostile = f"<img src=x onerror=\"document.title='pwned'\"><script>x()</script>{table(5000)}"
    raw = nb(
        [
            cell("small", outputs=[html_out("<b>small</b>")]),
            cell("big", outputs=[stream("printed\n"), html_out(hostile)]),
        ]
    )
    limits = nbrender.Collapse(output_bytes=64 << 10, page_bytes=1 << 20)
    page = nbrender.render_html(raw, collapse=limits)
    # the small output as today; the large one a placeholder saying how large it is
    assert "<b>small</b>" in page and "printed" in page
    assert "10,000 table cells" in page and "<td>" not in page
    assert 'href="?show=1.1#out-1-1"' in page and 'id="out-1-1-c"' in page
    assert "1 large HTML output is collapsed" in page and 'href="?show=all"' in page
    # asked for: in place, through the same sanitiser, with a way to collapse it again
    for shown in (limits.asking("1.1"), limits.asking("all")):
        page = nbrender.render_html(raw, collapse=shown)
        assert page.count("<td>1.5</td>") == 5000 and "collapsed so that" not in page
        assert "onerror" not in page and "<script" not in page and "pwned" not in page
    assert 'id="out-1-1"' in nbrender.render_html(raw, collapse=limits.asking("1.1"))
    assert 'href="?show=#out-1-1-c"' in nbrender.render_html(raw, collapse=limits.asking("1.1"))
    # ids that are not <cell>.<output> are ignored; too many ask for nothing more
    assert limits.asking("x,1.1,../2,1.1.1").shown == {"1.1"}
    assert len(limits.asking(",".join(f"{i}.0" for i in range(500))).shown) == 100
    assert limits.asking("1.1").key() != limits.key() != limits.asking("all").key()


def test_once_the_page_holds_enough_html_the_further_outputs_are_collapsed():
    each = table(100)  # about 3.5 KB
    raw = nb([cell(f"t{i}", outputs=[html_out(each)]) for i in range(30)])
    page = nbrender.render_html(raw, collapse=nbrender.Collapse(page_bytes=10 * len(each)))
    assert page.count("<table>") == 10 and "20 large HTML outputs are collapsed" in page
    assert 'href="?show=10.0#out-10-0"' in page and "200 table cells" in page
    # one asked for is shown and does not push the others out
    page = nbrender.render_html(
        raw, collapse=nbrender.Collapse(page_bytes=10 * len(each), shown=frozenset({"25.0"}))
    )
    assert page.count("<table>") == 11 and 'id="out-25-0"' in page
    assert 'href="?show=12.0,25.0#out-12-0"' in page  # the next Show keeps it shown
    # no limits: everything inline
    page = nbrender.render_html(raw, collapse=nbrender.Collapse(output_bytes=0, page_bytes=0))
    assert page.count("<table>") == 30 and "collapsed so that" not in page


def test_a_page_is_made_once_for_concurrent_requests_and_a_failure_is_kept():
    import logging

    made = []

    async def run():
        r = reviewwork.Review(
            objects=None,
            renderer=None,
            cache=reviewwork.RenderCache(1 << 20),
            downloads=1,
            log=logging.getLogger("test"),
        )

        async def make():
            made.append(1)
            await asyncio.sleep(0.05)
            return "<p>page</p>"

        pages = await asyncio.gather(*(r._cached(("k",), make) for _ in range(5)))
        assert pages == [b"<p>page</p>"] * 5 and len(made) == 1

        async def broken():
            made.append(2)
            raise nbrender.NotebookError("The file is not a notebook: x")

        for _ in range(3):
            with pytest.raises(nbrender.NotebookError, match="not a notebook"):
                await r._cached(("bad",), broken)
        assert made.count(2) == 1  # tried once; the reason is kept

    asyncio.run(run())


def test_the_review_settings_refuse_bad_values_with_a_fix(monkeypatch):
    from traitlets import TraitError

    monkeypatch.setenv("CLASSHUB_GRADES_RENDER_WORKERS", "3")
    monkeypatch.setenv("CLASSHUB_GRADES_RENDER_CACHE", "0")
    settings = reviewsettings.ReviewSettings()
    assert settings.render_workers == 3 and settings.render_timeout == 20
    assert settings.render_memory == "2G" and settings.render_cache_size == "0"
    assert settings.render_collapse_output == "256K" and settings.render_collapse_page == "1M"
    for name, value, message in (
        ("render_workers", 0, "1 to 64"),
        ("render_timeout", 0, "1 to 600"),
        ("render_memory", "100M", "at least 256M"),
        ("render_memory", "lots", "a size such as"),
        ("render_cache_size", "big", "a size such as"),
        ("render_collapse_output", "huge", "a size such as"),
        ("render_collapse_page", "-1", "a size such as"),
        ("download_all_concurrency", 0, "1 to 32"),
    ):
        with pytest.raises(TraitError, match=message):
            setattr(reviewsettings.ReviewSettings(), name, value)
    monkeypatch.setenv("CLASSHUB_GRADES_RENDER_WORKERS", "two")
    with pytest.raises(TraitError, match="must be a number"):
        _ = reviewsettings.ReviewSettings().render_workers


def test_a_show_links_grant_opens_one_file_of_one_version_for_an_hour():
    grants = reviewwork.Grants(b"s" * 32)
    grant = grants.make(7, "lab/work.ipynb", now=1000.0)
    assert grants.check(grant, 7, "lab/work.ipynb", now=1000.0 + 3599)
    assert not grants.check(grant, 7, "lab/work.ipynb", now=1000.0 + 3601)  # expired
    assert not grants.check(grant, 8, "lab/work.ipynb", now=1000.0)  # another version
    assert not grants.check(grant, 7, "lab/other.ipynb", now=1000.0)  # another file
    expires, mac = grant.split(".")
    assert not grants.check(f"{int(expires) + 9999}.{mac}", 7, "lab/work.ipynb", now=1000.0)
    assert not reviewwork.Grants(b"t" * 32).check(grant, 7, "lab/work.ipynb", now=1000.0)
    for bad in ("", ".", "x.y", "1" * 13 + ".ab", grant + "0"):
        assert not grants.check(bad, 7, "lab/work.ipynb", now=1000.0)
    # the mark in a rendered page's links is what the handler replaces
    raw = nb([cell("big", outputs=[html_out(table(3000))])])
    page = nbrender.render_html(
        raw, collapse=nbrender.Collapse(output_bytes=1024, link_query=reviewwork.GRANT_QUERY)
    )
    assert f'href="?show=0.0&grant={reviewwork.GRANT_MARK}#out-0-0"' in page


# ----------------------------------------------------------------------------- the first view


def test_the_review_pages_first_view_is_chosen_as_its_script_chooses():
    """The page's first view (services/grades/review.py) picks the student, the version
    and the file as start(), showStudent() and firstShown() in static/review.js do: what
    was asked for when it checks out, else the first who handed in, the version that
    counts, the first notebook."""
    from services.grades.review import first_shown, first_student, first_version

    rows = [
        {"user": "amy", "versions": 0},
        {"user": "bob", "versions": 2},
        {"user": "cy", "versions": 1},
    ]
    assert first_student(rows, "cy") == "cy"
    assert first_student(rows, "zed") == "bob" and first_student(rows) == "bob"
    assert first_student(rows[:1]) == "amy" and first_student([], "amy") == ""

    versions = [{"id": 9, "counts": False}, {"id": 8, "counts": True}, {"id": 7, "counts": False}]
    assert first_version(versions, "7")["id"] == 7
    assert first_version(versions, "12")["id"] == 8 and first_version(versions)["id"] == 8
    assert first_version([{"id": 9, "counts": False}])["id"] == 9
    assert first_version([], "9") is None

    files = [
        {"path": "a.bin", "view": None},
        {"path": "notes.md", "view": "text"},
        {"path": "lab/work.ipynb", "view": "notebook"},
        {"path": "z.ipynb", "view": "notebook"},
    ]
    assert first_shown(files, "notes.md") == "notes.md"
    assert (
        first_shown(files, "../etc") == "lab/work.ipynb" and first_shown(files) == "lab/work.ipynb"
    )
    assert first_shown(files[:2]) == "notes.md" and first_shown(files[:1]) == "a.bin"
    assert first_shown([], "x") == ""


def test_the_submissions_list_is_one_function_for_the_api_and_the_review_page():
    """``handlers.submissions_answer``: every student of the roster and everyone who
    handed in, by name, with their status, latest and counting versions."""
    from services.grades.handlers import submissions_answer

    due = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
    late_at = due + datetime.timedelta(hours=2)
    sam1 = submission(id=7, version=1)
    sam2 = submission(id=8, version=2, submitted_at=late_at)
    amy = submission(id=5, username="amy", version=1, submitted_at=late_at)
    data = StandingData(
        assignments={1: assignment(due)},
        versions={
            (1, "sam"): [sam1.as_version(), sam2.as_version()],
            (1, "amy"): [amy.as_version()],
        },
        submissions={s.id: s for s in (sam1, sam2, amy)},
        extensions={},
        choices={},
        deadlines={},
        questions={},
        question_points={},
    )
    answer = submissions_answer(
        assignment(due), ["sam", "bob"], data, due + datetime.timedelta(days=1)
    )
    rows = {r["user"]: r for r in answer["students"]}
    assert [r["user"] for r in answer["students"]] == ["amy", "bob", "sam"]
    assert rows["sam"]["status"] == "on_time" and rows["sam"]["counting"]["id"] == 7
    assert rows["sam"]["latest"]["id"] == 8 and rows["sam"]["versions"] == 2
    assert rows["amy"]["status"] == "late" and rows["amy"]["on_roster"] is False
    assert rows["bob"]["status"] == "missing" and rows["bob"]["counting"] is None
    assert answer["counts"] == {"late": 1, "missing": 1, "on_time": 1}
    assert answer["assignment"]["slug"] == "lab" and answer["questions"] == []
