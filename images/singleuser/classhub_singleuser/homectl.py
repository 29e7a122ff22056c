"""``python3 -I -m classhub_singleuser.homectl JOB``: read and write students' homes from
outside their servers, so that nothing a service holds enters a container.

The files and grades services never send anything to a student's server any more: to take
a snapshot of an assignment folder (Submit, collect) or to deliver material, a release or
feedback, they start a throwaway helper container (image ``classhub/homes-helper``) that
mounts the homes of a small batch of students, each at its own path
(``/mnt/homes/<n>``), and runs this module as uid 1000:100 with no network, a read-only
root, no capabilities and no secrets. ``-I`` (isolated mode) keeps Python from reading
anything of the student's: no user site-packages, no ``PYTHON*`` variables, no current
folder on ``sys.path``; ``HOME`` is ``/tmp``, never a student's home.

The work on each home is the same careful code the server extension ran:
:func:`classhub_singleuser.snapshot.snapshot` and
:func:`classhub_singleuser.material.apply_material`, which open every folder with
``O_NOFOLLOW`` relative to its parent, never follow a link, never open a FIFO or device
for writing, and never overwrite a file the student changed.

The job (a JSON file the service puts into the container before it starts)::

    {"version": 1, "op": "snapshot", "out": "/mnt/io/out",
     "items": [{"id": "0", "home": "/mnt/homes/0", "folder": "bio/assignments/hw1"}]}

    {"version": 1, "op": "apply", "out": "/mnt/io/out",
     "items": [{"id": "0", "home": "/mnt/homes/0", "dest": "bio/material",
                "label": "2026-12-01 10.30 UTC", "zip": "/mnt/io/in/<sha256>.zip",
                "delivered": {"<path>": "<sha256>", ...}}]}

(``delivered``, optional: the service's record of what it last delivered to this home, see
:func:`classhub_singleuser.material.decide`; entries that are not a path and a sha256 are
ignored.)

    {"version": 1, "op": "view", "out": "/mnt/io/out",
     "items": [{"id": "0", "home": "/mnt/homes/0", "path": "bio/assignments"}]}

Each item's result is one line of JSON appended to ``<out>/results.jsonl`` as soon as
that item is done, so a batch cut off by its time limit keeps the results it had:

* snapshot: ``{"id", "ok": true, "files", "bytes", "sha256", "skipped", "skipped_total"}``
  and the zip in ``<out>/<id>.zip`` (``skipped``: the first :data:`SKIPPED_MAX` entries
  of ``{"path", "reason"}``);
* apply: ``{"id", "ok": true, "report": {"added", "updated", "unchanged", "skipped",
  "conflicts", "errors"}}``;
* view (a teacher's read-only look, :func:`view_item`): for a folder (``path`` ``""`` is
  the home itself) ``{"id", "ok": true, "kind": "folder", "entries": [{"name", "kind",
  "size"}], "total"}``, its entries one level deep, hidden names (``.…``) and
  :data:`snapshot.DEFAULT_EXCLUDE` left out, at most :data:`VIEW_ENTRIES`; for a regular
  file ``{"id", "ok": true, "kind": "file", "size"}`` and its bytes in ``<out>/<id>.bin``
  (at most :data:`VIEW_BYTES`);
* a refusal or failure: ``{"id", "ok": false, "status", "message"}``, ``status`` 400 (a
  bad name, a folder that is a link), 404 (no such folder, or no home), 413 (too large),
  500 (anything else). One home's failure never stops the others.

The exit status is 0 once the job was read (whatever its items' outcomes) and 2 for a job
that cannot be read. Nothing is printed but a one-line summary on stderr.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from . import fsutil, material, snapshot

VERSION = 1
SKIPPED_MAX = 100
VIEW_ENTRIES = 1000
VIEW_BYTES = 50 << 20
MESSAGE_MAX = 1000
RESULTS = "results.jsonl"


class BadJob(ValueError):
    """The job file is not what the services write."""


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadJob(f"{what} must be a non-empty string")
    return value


def read_job(path: str) -> dict:
    """The job, checked for shape (its names are checked again by the core functions)."""
    try:
        with open(path, "rb") as f:
            job = json.loads(f.read(16 << 20))
    except (OSError, ValueError) as e:
        raise BadJob(f"cannot read the job {path}: {e}") from None
    if not isinstance(job, dict) or job.get("version") != VERSION:
        raise BadJob("the job must be an object with version 1")
    if job.get("op") not in ("snapshot", "apply", "view"):
        raise BadJob("op must be 'snapshot', 'apply' or 'view'")
    _text(job.get("out"), "out")
    items = job.get("items")
    if not isinstance(items, list):
        raise BadJob("items must be a list")
    keys = {"snapshot": ("folder",), "apply": ("dest", "label", "zip"), "view": ()}[job["op"]]
    seen = set()
    for item in items:
        if not isinstance(item, dict):
            raise BadJob("each item must be an object")
        ident = _text(item.get("id"), "id")
        if not ident.isdigit() or ident in seen:
            raise BadJob(f"item ids must be distinct digit strings, not {ident!r}")
        seen.add(ident)
        for key in ("home", *keys):
            _text(item.get(key), key)
        if job["op"] == "view" and not isinstance(item.get("path"), str):
            raise BadJob("path must be a string")
    return job


def _failure(ident: str, status: int, message: str) -> dict:
    return {"id": ident, "ok": False, "status": status, "message": message[:MESSAGE_MAX]}


def _home(item: dict) -> Path:
    """The mounted home; FileNotFoundError if it is not a folder (never followed)."""
    home = Path(item["home"])
    st = os.lstat(home)
    if not stat.S_ISDIR(st.st_mode):
        raise FileNotFoundError(item["home"])
    return home


def snapshot_item(item: dict, out_dir: str, **caps) -> dict:
    """One home's snapshot into ``<out_dir>/<id>.zip``; its result line. ``caps`` go to
    :func:`classhub_singleuser.snapshot.snapshot` (``max_files``, ``max_bytes``)."""
    ident = item["id"]
    target = os.path.join(out_dir, f"{ident}.zip")
    try:
        home = _home(item)
    except FileNotFoundError:
        return _failure(ident, 404, "There is no home folder to take the snapshot from.")
    ok = False
    try:
        with os.fdopen(os.open(target, fsutil.O_NEW, 0o600), "wb") as out:
            info = snapshot.snapshot(home, item["folder"], out, **caps)
        ok = True
    except snapshot.SnapshotMissing as e:
        return _failure(ident, 404, str(e))
    except snapshot.SnapshotTooLarge as e:
        return _failure(ident, 413, str(e))
    except snapshot.SnapshotError as e:
        return _failure(ident, 400, str(e))
    except OSError as e:
        why = e.strerror or type(e).__name__
        return _failure(ident, 500, f"The snapshot could not be made ({why}).")
    finally:
        if not ok:
            try:
                os.unlink(target)
            except OSError:
                pass
    return {
        "id": ident,
        "ok": True,
        "files": info.files,
        "bytes": info.bytes,
        "sha256": info.sha256,
        "skipped": info.skipped[:SKIPPED_MAX],
        "skipped_total": len(info.skipped),
    }


def _delivered(value) -> dict[str, str] | None:
    """The job's record of what was last delivered: ``{path: sha256}``, other entries
    dropped; None when the job has none."""
    if not isinstance(value, dict):
        return None
    hexdigits = set("0123456789abcdef")
    return {
        k: v
        for k, v in value.items()
        if isinstance(k, str) and isinstance(v, str) and len(v) == 64 and set(v) <= hexdigits
    }


def apply_item(item: dict, **caps) -> dict:
    """Merge one zip into one home (the rule of :mod:`.material`); its result line.
    ``caps`` go to :func:`classhub_singleuser.material.apply_material`."""
    import zipfile

    ident = item["id"]
    try:
        home = _home(item)
    except FileNotFoundError:
        return _failure(ident, 404, "There is no home folder to deliver to.")
    try:
        material.check_dest(item["dest"])
        material.check_label(item["label"])
        try:
            archive = zipfile.ZipFile(item["zip"])
        except Exception as e:  # parsing bytes: anything it raises means "bad zip"
            raise material.MaterialError("The material is not a valid zip file.") from e
        with archive:
            report = material.apply_material(
                home,
                item["dest"],
                archive,
                item["label"],
                delivered=_delivered(item.get("delivered")),
                **caps,
            )
    except material.MaterialError as e:
        return _failure(ident, 400, str(e))
    except OSError as e:
        why = e.strerror or type(e).__name__
        return _failure(ident, 500, f"The delivery failed ({why}).")
    return {"id": ident, "ok": True, "report": report.to_dict()}


def _shown(name: str) -> bool:
    import fnmatch

    if name.startswith("."):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in snapshot.DEFAULT_EXCLUDE)


def view_item(item: dict, out_dir: str) -> dict:
    """A read-only look at one place of a home (see the module docstring): every folder on
    the way opened with ``O_NOFOLLOW`` relative to its parent, a link never followed, a
    FIFO or device never read."""
    ident = item["id"]
    try:
        home = _home(item)
    except FileNotFoundError:
        return _failure(ident, 404, "There is no home folder to look into.")
    path = item["path"]
    try:
        parts = snapshot.check_folder(path) if path else []
    except snapshot.SnapshotError as e:
        return _failure(ident, 400, str(e))
    if any(part.startswith(".") for part in parts):
        return _failure(ident, 400, "Hidden files and folders are not shown.")
    home_fd = os.open(home, fsutil.O_DIR)
    try:
        fd = fsutil.open_dir(home_fd, parts[:-1])
    except fsutil.Blocked as e:
        if e.kind == fsutil.MISSING:
            return _failure(ident, 404, f"~/{path} does not exist.")
        return _failure(ident, 400, f"~/{path} is not inside a real folder (a link?).")
    finally:
        os.close(home_fd)
    try:
        if parts:
            st = fsutil.lstat(parts[-1], fd)
            if st is None:
                return _failure(ident, 404, f"~/{path} does not exist.")
            kind = fsutil.kind(st)
            if kind == fsutil.FOLDER:
                nfd = os.open(parts[-1], fsutil.O_DIR, dir_fd=fd)
                os.close(fd)
                fd = nfd
            elif kind == fsutil.FILE:
                return _copy_file(ident, fd, parts[-1], path, out_dir)
            else:
                return _failure(
                    ident, 400, f"~/{path} is a {kind}; only files and folders are shown."
                )
        return _list_folder(ident, fd)
    finally:
        os.close(fd)


def _list_folder(ident: str, fd: int) -> dict:
    entries, total = [], 0
    with os.scandir(fd) as it:
        for entry in it:
            if not _shown(entry.name):
                continue
            total += 1
            if len(entries) >= VIEW_ENTRIES:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = fsutil.kind(st)
            entries.append(
                {"name": entry.name, "kind": kind, "size": st.st_size if kind == fsutil.FILE else 0}
            )
    entries.sort(key=lambda e: (e["kind"] != fsutil.FOLDER, e["name"]))
    return {"id": ident, "ok": True, "kind": "folder", "entries": entries, "total": total}


def _copy_file(ident: str, dir_fd: int, name: str, path: str, out_dir: str) -> dict:
    try:
        src = os.open(name, fsutil.O_READ, dir_fd=dir_fd)
    except OSError:
        return _failure(ident, 400, f"~/{path} cannot be opened (a link?).")
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            return _failure(ident, 400, f"~/{path} is not a regular file.")
        if st.st_size > VIEW_BYTES:
            return _failure(
                ident, 413, f"~/{path} is larger than {VIEW_BYTES >> 20} MB; it is not shown."
            )
        size = 0
        target = os.path.join(out_dir, f"{ident}.bin")
        with os.fdopen(os.open(target, fsutil.O_NEW, 0o600), "wb") as out:
            while chunk := os.read(src, 1 << 20):
                size += len(chunk)
                if size > VIEW_BYTES:
                    return _failure(ident, 413, f"~/{path} grew past {VIEW_BYTES >> 20} MB.")
                out.write(chunk)
        return {"id": ident, "ok": True, "kind": "file", "size": size}
    finally:
        os.close(src)


def run(job: dict, *, after=None) -> tuple[int, int]:
    """Do every item of ``job``, appending each result line as it is done: ``(ok, failed)``.
    ``after``, if given, is called with each item's result once its line is written and
    flushed (:mod:`.homeremote` hands that item's outputs back there and then)."""
    out_dir = job["out"]
    os.makedirs(out_dir, 0o700, exist_ok=True)
    done = failed = 0
    results = os.open(os.path.join(out_dir, RESULTS), fsutil.O_NEW | os.O_APPEND, 0o600)
    with os.fdopen(results, "w", encoding="utf-8") as lines:
        for item in job["items"]:
            try:
                if job["op"] == "snapshot":
                    result = snapshot_item(item, out_dir)
                elif job["op"] == "view":
                    result = view_item(item, out_dir)
                else:
                    result = apply_item(item)
            except Exception as e:  # one home's surprise never stops the others
                result = _failure(item["id"], 500, f"internal error ({type(e).__name__})")
            lines.write(json.dumps(result, ensure_ascii=True) + "\n")
            lines.flush()
            if result["ok"]:
                done += 1
            else:
                failed += 1
            if after is not None:
                after(result)
    return done, failed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python3 -I -m classhub_singleuser.homectl JOB.json\n")
        return 2
    os.umask(0o022)
    try:
        job = read_job(args[0])
    except BadJob as e:
        sys.stderr.write(f"homectl: {e}\n")
        return 2
    done, failed = run(job)
    sys.stderr.write(f"homectl: {job['op']}: {done} done, {failed} failed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
