"""The helper's command (classhub_singleuser.homectl) on real folders: a batch of homes,
each processed by the O_NOFOLLOW code of snapshot.py and material.py, one home's failure
never stopping the others."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from classhub_singleuser import homectl

# The package's folder; the .venv has the package installed (editable), and a subprocess
# given only PYTHONPATH=SINGLEUSER finds it there too.
SINGLEUSER = Path(homectl.__file__).resolve().parents[1]
# The interpreter the .venv was made from, without the .venv's packages (as in the helper
# image, whose own python3 has nothing of jupyter)
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")

pytestmark = pytest.mark.unit


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def results(out: Path) -> dict[str, dict]:
    lines = (out / homectl.RESULTS).read_text().splitlines()
    return {line["id"]: line for line in map(json.loads, lines)}


@pytest.fixture
def homes(tmp_path):
    """Three homes: ann with work, bob with a folder that is a link, carl missing."""
    ann = tmp_path / "homes" / "0"
    (ann / "bio/assignments/hw1/data").mkdir(parents=True)
    (ann / "bio/assignments/hw1/answer.py").write_bytes(b"print(42)\n")
    (ann / "bio/assignments/hw1/data/x.csv").write_bytes(b"a,b\n")
    bob = tmp_path / "homes" / "1"
    (bob / "bio/assignments").mkdir(parents=True)
    (bob / "elsewhere").mkdir()
    (bob / "elsewhere/secret.txt").write_bytes(b"not for the teacher")
    os.symlink(bob / "elsewhere", bob / "bio/assignments/hw1")
    return tmp_path


def test_a_batch_of_snapshots_isolates_each_home(homes):
    out = homes / "out"
    job = {
        "version": 1,
        "op": "snapshot",
        "out": str(out),
        "items": [
            {"id": "0", "home": str(homes / "homes/0"), "folder": "bio/assignments/hw1"},
            {"id": "1", "home": str(homes / "homes/1"), "folder": "bio/assignments/hw1"},
            {"id": "2", "home": str(homes / "homes/2"), "folder": "bio/assignments/hw1"},
            {"id": "3", "home": str(homes / "homes/0"), "folder": "bio/assignments/nope"},
        ],
    }
    assert homectl.run(job) == (1, 3)
    got = results(out)
    assert got["0"]["ok"] and got["0"]["files"] == 2 and got["0"]["bytes"] == 14
    with zipfile.ZipFile(out / "0.zip") as zf:
        assert zf.namelist() == ["answer.py", "data/x.csv"]
    # a folder that is a link is refused, never followed
    assert got["1"] == {
        "id": "1",
        "ok": False,
        "status": 400,
        "message": got["1"]["message"],
    }
    assert "link" in got["1"]["message"]
    assert got["2"]["status"] == 404 and "no home folder" in got["2"]["message"]
    assert got["3"]["status"] == 404 and "does not exist" in got["3"]["message"]
    # failed snapshots leave no zip behind
    assert sorted(p.name for p in out.iterdir()) == ["0.zip", homectl.RESULTS]


def test_a_snapshot_skips_links_and_fifos_and_reports_them(homes):
    hw = homes / "homes/0/bio/assignments/hw1"
    os.symlink("/etc/passwd", hw / "passwd")
    os.mkfifo(hw / "pipe")
    out = homes / "out"
    item = {"id": "0", "home": str(homes / "homes/0"), "folder": "bio/assignments/hw1"}
    homectl.run({"version": 1, "op": "snapshot", "out": str(out), "items": [item]})
    got = results(out)["0"]
    assert got["ok"] and got["skipped_total"] == 2
    assert {s["path"]: s["reason"] for s in got["skipped"]} == {
        "passwd": "link",
        "pipe": "not a regular file",
    }
    with zipfile.ZipFile(out / "0.zip") as zf:
        assert "passwd" not in zf.namelist() and "pipe" not in zf.namelist()


def test_a_batch_of_deliveries_keeps_each_students_edits(homes):
    inputs = homes / "in"
    inputs.mkdir()
    (inputs / "m.zip").write_bytes(make_zip({"sheet.txt": b"v1", "data/t.csv": b"1"}))
    (inputs / "bad.zip").write_bytes(b"not a zip")
    ann = homes / "homes/0"
    (ann / "bio/material").mkdir(parents=True)
    (ann / "bio/material/sheet.txt").write_bytes(b"ann's own")
    out = homes / "out"
    label = "2026-12-01 10.30 UTC"
    items = [
        {"id": "0", "home": str(ann), "dest": "bio/material", "label": label},
        {"id": "1", "home": str(homes / "homes/1"), "dest": "bio/material", "label": label},
        {"id": "2", "home": str(homes / "homes/2"), "dest": "bio/material", "label": label},
        {"id": "3", "home": str(ann), "dest": "bio/other", "label": label},
        {"id": "4", "home": str(ann), "dest": "../escape", "label": label},
    ]
    for item in items:
        item["zip"] = str(inputs / ("bad.zip" if item["id"] == "3" else "m.zip"))
    assert homectl.run({"version": 1, "op": "apply", "out": str(out), "items": items}) == (2, 3)
    got = results(out)
    ann_report = got["0"]["report"]
    assert ann_report["added"] == ["data/t.csv"]
    assert [c["path"] for c in ann_report["conflicts"]] == ["sheet.txt"]
    assert (ann / "bio/material/sheet.txt").read_bytes() == b"ann's own"
    assert sorted(got["1"]["report"]["added"]) == ["data/t.csv", "sheet.txt"]
    assert got["2"]["status"] == 404
    assert got["3"]["status"] == 400 and "not a valid zip" in got["3"]["message"]
    assert got["4"]["status"] == 400
    assert not (homes / "escape").exists()


def test_a_delivery_never_writes_through_a_link(homes):
    inputs = homes / "in"
    inputs.mkdir()
    (inputs / "m.zip").write_bytes(make_zip({"feedback.md": b"# 9 of 10"}))
    bob = homes / "homes/1"
    os.symlink(bob / "elsewhere", bob / "bio/feedback")
    item = {
        "id": "0",
        "home": str(bob),
        "dest": "bio/feedback/hw1",
        "label": "2026-12-01 10.30 UTC",
        "zip": str(inputs / "m.zip"),
    }
    out = homes / "out"
    homectl.run({"version": 1, "op": "apply", "out": str(out), "items": [item]})
    got = results(out)["0"]
    assert got["ok"] and got["report"]["added"] == []
    assert "link" in got["report"]["errors"][0]["message"]
    assert sorted(os.listdir(bob / "elsewhere")) == ["secret.txt"]


def test_an_unexpected_error_in_one_home_is_that_homes_result(homes, monkeypatch):
    calls = []

    def boom(item, out_dir):
        calls.append(item["id"])
        if item["id"] == "0":
            raise RuntimeError("surprise")
        return {"id": item["id"], "ok": True, "files": 0, "bytes": 0}

    monkeypatch.setattr(homectl, "snapshot_item", boom)
    out = homes / "out"
    items = [{"id": str(n), "home": "/nowhere", "folder": "x"} for n in range(2)]
    assert homectl.run({"version": 1, "op": "snapshot", "out": str(out), "items": items}) == (1, 1)
    assert calls == ["0", "1"]
    assert results(out)["0"] == {
        "id": "0",
        "ok": False,
        "status": 500,
        "message": "internal error (RuntimeError)",
    }


@pytest.mark.parametrize(
    "job, problem",
    [
        ({"version": 2, "op": "snapshot", "out": "/o", "items": []}, "version 1"),
        ({"version": 1, "op": "rm", "out": "/o", "items": []}, "op must be"),
        ({"version": 1, "op": "snapshot", "out": "", "items": []}, "out must be"),
        ({"version": 1, "op": "snapshot", "out": "/o", "items": {}}, "items must be a list"),
        (
            {"version": 1, "op": "snapshot", "out": "/o", "items": [{"id": "a", "home": "/h"}]},
            "digit strings",
        ),
        (
            {"version": 1, "op": "apply", "out": "/o", "items": [{"id": "0", "home": "/h"}]},
            "dest must be",
        ),
    ],
)
def test_a_bad_job_is_refused(tmp_path, job, problem):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    with pytest.raises(homectl.BadJob, match=problem):
        homectl.read_job(str(path))
    assert homectl.main([str(path)]) == 2


def test_the_command_runs_isolated_and_reports_on_stderr(homes, tmp_path):
    out = tmp_path / "out"
    job = tmp_path / "job.json"
    item = {"id": "0", "home": str(homes / "homes/0"), "folder": "bio/assignments/hw1"}
    job.write_text(json.dumps({"version": 1, "op": "snapshot", "out": str(out), "items": [item]}))
    done = subprocess.run(
        [BASE_PYTHON, "-I", "-m", "classhub_singleuser.homectl", str(job)],
        cwd=SINGLEUSER,  # the package is right here, and in PYTHONPATH
        env={"PYTHONPATH": str(SINGLEUSER), "HOME": "/tmp"},
        capture_output=True,
        text=True,
    )
    # -I ignores PYTHONPATH and the current folder (a student's home is never either in the
    # helper, but even so): only an installed package runs, as in the helper image
    assert done.returncode != 0 and "No module named 'classhub_singleuser'" in done.stderr
    done = subprocess.run(
        [BASE_PYTHON, "-m", "classhub_singleuser.homectl", str(job)],
        env={"PYTHONPATH": str(SINGLEUSER), "HOME": "/tmp"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "snapshot: 1 done, 0 failed" in done.stderr
    assert results(out)["0"]["ok"]


@pytest.mark.parametrize("module", ["fsutil", "material", "snapshot", "homectl"])
def test_importing_the_modules_costs_nothing(module):
    """zipfile and tempfile on first use only; nothing of jupyter (not in the helper)."""
    code = (
        "import sys\n"
        f"import classhub_singleuser.{module}\n"
        "heavy = ('zipfile', 'tempfile', 'jupyter_server', 'tornado', 'traitlets')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
