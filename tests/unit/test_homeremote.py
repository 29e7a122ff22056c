"""The homes helper's Swarm side (classhub_singleuser.homeremote): the job, its inputs and
its outputs travel through presigned URLs, here those of a real HTTP server on 127.0.0.1
that serves GETs from a dict and records PUTs; the homes and /tmp/io are temp folders."""

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from classhub_singleuser import homectl, homeremote

pytestmark = pytest.mark.unit

SIGNATURE = "X-Amz-Signature=0123456789abcdef-not-for-logs"


class Store:
    """What the server serves (``gets``), what it was sent (``puts``: path -> bodies in
    order, with their headers) and the paths it answers 500 to (``broken``)."""

    def __init__(self):
        self.gets: dict[str, bytes] = {}
        self.puts: dict[str, list[bytes]] = {}
        self.headers: dict[str, dict] = {}
        self.broken: set[str] = set()
        self.fetched: list[str] = []
        self.base = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}?{SIGNATURE}"


@pytest.fixture
def store():
    store = Store()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _path(self):
            return self.path.split("?", 1)[0].lstrip("/")

        def do_GET(self):
            path = self._path()
            store.fetched.append(path)
            body = store.gets.get(path)
            if body is None or path in store.broken:
                self.send_response(404 if body is None else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):
            path = self._path()
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if path in store.broken:
                self.send_response(500)
            else:
                store.puts.setdefault(path, []).append(body)
                store.headers[path] = dict(self.headers)
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    store.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield store
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def helper(tmp_path, monkeypatch, store):
    """``run(job) -> (exit status, stderr)``: the module's main in this process, with
    /tmp/io in a temp folder and the job served at the job URL."""
    io_dir = tmp_path / "io"
    monkeypatch.setattr(homeremote, "IO", str(io_dir))
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    umask = os.umask(0o077)
    os.umask(umask)

    def run(job, capsys):
        store.gets["job.json"] = json.dumps(job).encode()
        monkeypatch.setenv(homeremote.JOB_URL_ENV, store.url("job.json"))
        capsys.readouterr()
        status = homeremote.main()
        err = capsys.readouterr().err
        # a presigned URL is a credential: never on stderr
        assert SIGNATURE not in err and store.base not in err and "127.0.0.1" not in err
        return status, err

    run.io = io_dir
    yield run
    os.umask(umask)


@pytest.fixture
def homes(tmp_path):
    ann = tmp_path / "homes" / "0"
    (ann / "bio/assignments/hw1/data").mkdir(parents=True)
    (ann / "bio/assignments/hw1/answer.py").write_bytes(b"print(42)\n")
    (ann / "bio/assignments/hw1/data/x.csv").write_bytes(b"a,b\n")
    return tmp_path / "homes"


def lines(body: bytes) -> dict[str, dict]:
    return {line["id"]: line for line in map(json.loads, body.decode().splitlines())}


def snapshot_job(helper, store, homes, items=2):
    job = {
        "version": 1,
        "op": "snapshot",
        "out": str(helper.io / "out"),
        "items": [
            {"id": str(n), "home": str(homes / str(n)), "folder": "bio/assignments/hw1"}
            for n in range(items)
        ],
        "inputs": {},
        "outputs": {"results.jsonl": store.url("out/results.jsonl")},
    }
    for n in range(items):
        job["outputs"][f"{n}.zip"] = store.url(f"out/{n}.zip")
    return job


def test_a_snapshot_hands_back_its_zip_and_results(helper, store, homes, capsys):
    status, err = helper(snapshot_job(helper, store, homes), capsys)
    assert status == 0
    assert err.splitlines() == ["homeremote: snapshot: 1 done, 1 failed; 4 uploads, 0 failed"]
    # ann's zip (bob has no home: no zip); each local output deleted once uploaded
    assert list(store.puts) == ["out/0.zip", "out/results.jsonl"]
    with zipfile.ZipFile(io.BytesIO(store.puts["out/0.zip"][0])) as zf:
        assert zf.namelist() == ["answer.py", "data/x.csv"]
        assert zf.read("answer.py") == b"print(42)\n"
    assert store.headers["out/0.zip"]["Content-Type"] == "application/octet-stream"
    assert not (helper.io / "out/0.zip").exists()
    # results.jsonl after each item, then once more
    sent = store.puts["out/results.jsonl"]
    assert len(sent) == 3 and sent[1] == sent[2]
    assert list(lines(sent[0])) == ["0"]
    got = lines(sent[2])
    assert got["0"]["ok"] and got["0"]["files"] == 2
    assert got["1"]["status"] == 404
    assert sent[2] == (helper.io / "out/results.jsonl").read_bytes()
    # the job as homectl reads it: without the URLs
    written = json.loads((helper.io / "job.json").read_text())
    assert "inputs" not in written and "outputs" not in written


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_an_apply_downloads_its_input_and_delivers_it(helper, store, homes, capsys):
    data = make_zip({"notes.md": b"# week 1\n", "data/t.csv": b"x\n"})
    name = hashlib.sha256(data).hexdigest() + ".zip"
    store.gets[f"in/{name}"] = data
    job = {
        "version": 1,
        "op": "apply",
        "out": str(helper.io / "out"),
        "items": [
            {
                "id": "0",
                "home": str(homes / "0"),
                "dest": "bio/material",
                "label": "2026-12-01 10.30 UTC",
                "zip": str(helper.io / "in" / name),
            }
        ],
        "inputs": {name: store.url(f"in/{name}")},
        "outputs": {"results.jsonl": store.url("out/results.jsonl")},
    }
    status, err = helper(job, capsys)
    assert status == 0, err
    assert (homes / "0/bio/material/notes.md").read_bytes() == b"# week 1\n"
    assert (homes / "0/bio/material/data/t.csv").read_bytes() == b"x\n"
    got = lines(store.puts["out/results.jsonl"][-1])["0"]
    assert got["ok"] and sorted(got["report"]["added"]) == ["data/t.csv", "notes.md"]
    downloaded = helper.io / "in" / name
    assert downloaded.read_bytes() == data
    assert downloaded.stat().st_mode & 0o777 == 0o444


def test_an_input_that_is_not_what_its_name_says_runs_nothing(helper, store, homes, capsys):
    name = "0" * 64 + ".zip"
    store.gets[f"in/{name}"] = make_zip({"notes.md": b"x"})
    job = {
        "version": 1,
        "op": "apply",
        "out": str(helper.io / "out"),
        "items": [
            {
                "id": "0",
                "home": str(homes / "0"),
                "dest": "bio/material",
                "label": "l",
                "zip": str(helper.io / "in" / name),
            }
        ],
        "inputs": {name: store.url(f"in/{name}")},
        "outputs": {"results.jsonl": store.url("out/results.jsonl")},
    }
    status, err = helper(job, capsys)
    assert status == homeremote.EXIT_NO_INPUT
    assert "not what its name says" in err and len(err.splitlines()) == 1
    assert store.puts == {} and not (homes / "0/bio/material").exists()
    assert not (helper.io / "in" / name).exists()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda job, url: job["outputs"].update({"../0.zip": url}), "bad name"),
        (lambda job, url: job["outputs"].update({"0.txt": url}), "bad name"),
        (lambda job, url: job["outputs"].update({"0.zip": "file:///etc/passwd"}), "http"),
        (lambda job, url: job["outputs"].update({"0.zip": 7}), "http"),
        (lambda job, url: job["outputs"].update({"0.zip": "http://a b/x"}), "http"),
        (lambda job, url: job["outputs"].pop("results.jsonl"), "no results.jsonl"),
        (lambda job, url: job["inputs"].update({"x.zip": url}), "bad name"),
        (lambda job, url: job.update(inputs=[]), "inputs must be an object"),
        (lambda job, url: job.update(out="/elsewhere/out"), "out must be"),
        (lambda job, url: job.update(version=2), "version 1"),
    ],
    ids=[
        "output-path",
        "output-ext",
        "file-url",
        "url-not-text",
        "url-space",
        "no-results",
        "input-name",
        "inputs-list",
        "out",
        "version",
    ],
)
def test_a_bad_job_is_refused_and_nothing_is_sent(helper, store, homes, capsys, change, problem):
    job = snapshot_job(helper, store, homes)
    change(job, store.url("in/x"))
    status, err = helper(job, capsys)
    assert status == homeremote.EXIT_BAD_JOB
    assert problem in err and len(err.splitlines()) == 1
    assert store.puts == {} and store.fetched == ["job.json"]


def test_a_job_that_cannot_be_fetched_is_a_bad_job(helper, store, monkeypatch, capsys):
    monkeypatch.setenv(homeremote.JOB_URL_ENV, store.url("missing.json"))
    assert homeremote.main() == homeremote.EXIT_BAD_JOB
    err = capsys.readouterr().err
    assert err == "homeremote: fetching the job failed (HTTP 404)\n"
    monkeypatch.setenv(homeremote.JOB_URL_ENV, "http://127.0.0.1:1/job.json?" + SIGNATURE)
    assert homeremote.main() == homeremote.EXIT_BAD_JOB
    err = capsys.readouterr().err
    assert "fetching the job failed" in err and SIGNATURE not in err and "127.0.0.1" not in err
    monkeypatch.delenv(homeremote.JOB_URL_ENV)
    assert homeremote.main() == homeremote.EXIT_BAD_JOB
    assert "CLASSHUB_HOMES_JOB_URL is not set" in capsys.readouterr().err
    assert store.puts == {}


def test_a_failed_output_upload_still_hands_back_the_results(helper, store, homes, capsys):
    job = snapshot_job(helper, store, homes)
    store.broken.add("out/0.zip")
    status, err = helper(job, capsys)
    assert status == 0
    assert err.splitlines() == [
        "homeremote: uploading 0.zip failed (HTTP 500)",
        "homeremote: snapshot: 1 done, 1 failed; 3 uploads, 1 failed",
    ]
    assert "out/0.zip" not in store.puts
    assert lines(store.puts["out/results.jsonl"][-1])["0"]["ok"]
    assert not (helper.io / "out/0.zip").exists()


def test_an_output_without_a_place_is_dropped(helper, store, homes, capsys):
    job = snapshot_job(helper, store, homes, items=1)
    del job["outputs"]["0.zip"]
    status, err = helper(job, capsys)
    assert status == 0 and "0.zip has no place to go" in err
    assert list(store.puts) == ["out/results.jsonl"]
    assert os.listdir(helper.io / "out") == ["results.jsonl"]


def test_results_that_cannot_be_handed_back_exit_3(helper, store, homes, capsys):
    job = snapshot_job(helper, store, homes, items=1)
    store.broken.add("out/results.jsonl")
    status, err = helper(job, capsys)
    assert status == homeremote.EXIT_RESULTS_LOST
    assert err.splitlines()[-1].endswith("the results were not handed back")
    assert list(store.puts) == ["out/0.zip"]


def test_the_after_hook_sees_each_result_once_its_line_is_written(homes, tmp_path):
    out = tmp_path / "out"
    seen = []

    def after(result):
        written = (out / homectl.RESULTS).read_text().splitlines()
        seen.append((result, json.loads(written[-1]), len(written)))

    items = [
        {"id": str(n), "home": str(homes / str(n)), "folder": "bio/assignments/hw1"}
        for n in range(3)
    ]
    job = {"version": 1, "op": "snapshot", "out": str(out), "items": items}
    assert homectl.run(job, after=after) == (1, 2)
    assert [r["id"] for r, _, _ in seen] == ["0", "1", "2"]
    assert all(result == line for result, line, _ in seen)
    assert [count for _, _, count in seen] == [1, 2, 3]


def test_the_command_runs_isolated_and_never_prints_the_url(store):
    """As the helper runs it (``-I``: the installed package only); a job that cannot be
    fetched is exit 2 and one line, without its URL."""
    env = {"HOME": "/tmp", homeremote.JOB_URL_ENV: store.url("missing.json")}
    done = subprocess.run(
        [sys.executable, "-I", "-m", "classhub_singleuser.homeremote"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "homeremote: fetching the job failed (HTTP 404)\n"
    assert store.fetched == ["missing.json"]
