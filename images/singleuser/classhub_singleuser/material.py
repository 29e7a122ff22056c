"""Apply class material to ``~/<dest>`` without destroying work.

The files service (material pushes, assignment releases) and the grades service
(feedback) have it done by their helper container (:mod:`.homectl`), which mounts the
student's home: nothing is ever sent to the student's server. The merge rule,
per file, by SHA-256 (:func:`apply_material`), with the record of what was last delivered
for each file kept in ``~/.classhub/material/<sha256(dest)[:16]>.json``:

the pure decision :func:`decide` from three hashes: what was last delivered of the file
(``previous``), the teacher's file in this push and the student's file:

* the teacher's file is what was last delivered -> ``skipped``: nothing is written,
  whatever the student did to their copy (ran it, edited it, deleted it);
* absent -> written, ``added``;
* identical to the new content -> ``unchanged``;
* the student's copy is what was last delivered (they did not touch it) -> ``updated``;
* anything else is the student's: kept; the new version is saved beside it as
  :func:`conflict_name` (``lesson1.teacher-2026-12-06.ipynb``) -> ``conflicts``;
* a folder where a file goes (or the reverse), a link (symlink) on the way, or an OS error
  -> ``errors``; the other files still go through.

``previous`` comes from the caller's authoritative record (``delivered``: the files
service keeps, per student and destination, the hash of each file it last delivered,
outside the student's container), falling back to the record in the home (which the
student can edit or delete: it only ever decides about the student's own files). When the
destination folder does not exist at all (the student deleted or renamed it), nothing
counts as delivered: everything is delivered afresh.

The student's home is hostile to us (the primitives of :mod:`.fsutil`): every folder is
opened with ``O_NOFOLLOW`` relative to its parent's descriptor (no symlink is ever followed,
and a folder swapped for a link half-way cannot redirect a write), files are written to a
temporary name in the same folder, fsynced and renamed into place, and a file expected to be
new is linked into place without replacing anything the student created meanwhile.

Importing the module costs nothing: zipfile is imported on first use.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fsutil

if TYPE_CHECKING:
    import zipfile
    from collections.abc import Iterator

MAX_MEMBERS = 5000  # entries in the zip, folders included
MAX_UNPACKED_BYTES = 1 << 30  # 1 GiB of file content, all members together
STATE_DIR = (".classhub", "material")  # under home
_RESERVED_TOP = ".classhub"  # a push may not write into the record's folder

_DIR_MODE = fsutil.DIR_MODE
_MAX_CONFLICT_COPIES = 100
_MAX_RECORD_BYTES = 64 << 20
_LABEL_EXTRA = frozenset(" -._")
_LABEL_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})

# One push at a time per server: two pushes to the same folder would race on the record.
_apply_lock = threading.Lock()


#: the outcomes of :func:`decide`
SKIP, ADD, SAME, UPDATE, COPY = "skip", "add", "same", "update", "copy"


def decide(previous: str | None, teacher: str, student: str | None) -> str:
    """What to do with one file, from hashes (pure): ``previous`` what was last delivered
    of it (None: never), ``teacher`` the file in this push, ``student`` the student's copy
    (None: absent). :data:`SKIP` the teacher did not change it since the last delivery
    (whatever the student did); :data:`ADD` write it; :data:`SAME` the student's copy is
    it already; :data:`UPDATE` replace the student's untouched copy; :data:`COPY` keep the
    student's copy and save the teacher's beside it (:func:`conflict_name`)."""
    if previous == teacher:
        return SKIP
    if student is None:
        return ADD
    if student == teacher:
        return SAME
    if previous is not None and student == previous:
        return UPDATE
    return COPY


class MaterialError(ValueError):
    """The push as a whole is refused (HTTP 400); nothing was written."""


class MaterialTooLarge(MaterialError):
    """The zip is over :data:`MAX_MEMBERS` or :data:`MAX_UNPACKED_BYTES` (HTTP 400)."""


class _Refused(Exception):
    """One file cannot be delivered; ``message`` says why, for a teacher."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Damaged(Exception):
    """Reading one member of the zip failed (bad CRC, truncated data, unknown method)."""


@dataclass
class Report:
    """What a push did, file by file; paths relative to ``dest``."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # not delivered again: the teacher did not change them since the last delivery
    skipped: list[str] = field(default_factory=list)
    # {"path": ..., "saved_as": ..., "already_saved": bool}
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    # {"path": ..., "message": ...}; path "" is about the push as a whole
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        return {
            "added": list(self.added),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "skipped": list(self.skipped),
            "conflicts": [dict(c) for c in self.conflicts],
            "errors": [dict(e) for e in self.errors],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


# ----- names -----


def check_label(label: str) -> str:
    """``label`` if it is 1..40 letters, digits, spaces, ``-``, ``.``, ``_``; else ValueError.

    Leading or trailing spaces are refused too (they would vanish in a file listing).
    """
    import unicodedata

    if not isinstance(label, str) or not 1 <= len(label) <= 40:
        raise MaterialError("The label must be 1 to 40 characters long.")
    for ch in label:
        if ch not in _LABEL_EXTRA and unicodedata.category(ch) not in _LABEL_CATEGORIES:
            raise MaterialError(
                f"The label may only have letters, digits, spaces, '-', '.' and '_' (not {ch!r})."
            )
    if label.strip(" ") != label:
        raise MaterialError("The label may not start or end with a space.")
    return label


def _check_path(path: str, what: str) -> list[str]:
    """The segments of a relative path, or MaterialError naming ``what`` and why."""
    return fsutil.check_path(path, what, MaterialError)


def check_dest(dest: str) -> list[str]:
    """The segments of the destination folder (relative to home), or MaterialError."""
    parts = _check_path(dest, "destination folder")
    if parts[0] == _RESERVED_TOP:
        raise MaterialError(f"Bad destination folder {dest!r}: {_RESERVED_TOP} is reserved.")
    return parts


def copy_tag(label: str) -> str:
    """The tag of conflict copies from a push's label: its date when it starts with one
    (``"2026-12-06 10.30 UTC"`` -> ``"teacher-2026-12-06"``), else the label with anything
    but letters, digits, ``.``, ``_`` and ``-`` turned into ``-``."""
    check_label(label)
    if len(label) >= 10 and label[4] == "-" and label[7] == "-":
        date = label[:10]
        if date.replace("-", "").isdigit() and date.isascii():
            return f"teacher-{date}"
    kept = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "-" for ch in label)
    return "teacher-" + (kept.strip("-.") or "copy")


def conflict_name(path: str, label: str, number: int = 1) -> str:
    """Where the teacher's version of a file the student changed is saved: no spaces, no
    quotes.

    ``"dir/lesson1.ipynb"`` -> ``"dir/lesson1.teacher-2026-12-06.ipynb"`` (label
    ``"2026-12-06 10.30 UTC"``, see :func:`copy_tag`); ``"README"`` ->
    ``"README.teacher-2026-12-06"``; ``".env"`` -> ``".env.teacher-2026-12-06"``.
    ``number`` > 1 is used when that name is taken by something else:
    ``"lesson1.teacher-2026-12-06-2.ipynb"``.
    """
    tag = copy_tag(label) + (f"-{number}" if number > 1 else "")
    head, sep, name = path.rpartition("/")
    stem, ext = os.path.splitext(name)
    return f"{head}{sep}{stem}.{tag}{ext}"


def state_file_name(dest: str) -> str:
    return hashlib.sha256(dest.encode("utf-8")).hexdigest()[:16] + ".json"


# ----- the zip -----


class _Member:
    __slots__ = ("info", "rel", "parts", "is_dir")

    def __init__(self, info: zipfile.ZipInfo, rel: str, parts: list[str], is_dir: bool):
        self.info = info
        self.rel = rel  # relative to dest, without a trailing "/"
        self.parts = parts
        self.is_dir = is_dir


def _plan(archive: zipfile.ZipFile, max_members: int, max_bytes: int) -> list[_Member]:
    """Check the whole zip before anything is written; MaterialError if it is unacceptable."""
    import zipfile

    infos = archive.infolist()
    if len(infos) > max_members:
        raise MaterialTooLarge(
            f"The material has {len(infos)} entries; at most {max_members} are allowed."
        )
    members: list[_Member] = []
    seen: dict[str, bool] = {}  # rel -> is_dir
    total = 0
    for info in infos:
        name = info.filename
        if info.orig_filename != name:  # zipfile cut the name at a NUL character
            raise MaterialError(f"Bad file name in the zip: {info.orig_filename!r}.")
        is_dir = name.endswith("/")
        rel = name[:-1] if is_dir else name
        parts = _check_path(rel, "file name in the zip")
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            raise MaterialError(f"The zip contains a link (symlink): {name!r}.")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise MaterialError(f"The zip contains a special file: {name!r}.")
        if info.flag_bits & 0x1:
            raise MaterialError(f"The zip is encrypted ({name!r}).")
        if not is_dir and info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ):
            raise MaterialError(f"The zip uses an unsupported compression for {name!r}.")
        if rel in seen:
            raise MaterialError(f"The zip contains {rel!r} twice.")
        seen[rel] = is_dir
        if not is_dir:
            if info.file_size < 0:
                raise MaterialError(f"Bad size in the zip for {name!r}.")
            total += info.file_size
        members.append(_Member(info, rel, parts, is_dir))
    if total > max_bytes:
        raise MaterialTooLarge(
            f"The material unpacks to {total} bytes; at most {max_bytes} are allowed."
        )
    for rel in seen:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if seen.get("/".join(parts[:i])) is False:
                raise MaterialError(
                    f"The zip has {'/'.join(parts[:i])!r} both as a file and as a folder."
                )
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's content in chunks; never more than its declared size.

    zipfile itself stops at the declared size and checks the CRC; the count here holds
    even if it did not.
    """
    try:
        stream = archive.open(info)
    except Exception as e:
        raise _Damaged(str(e)) from e
    with stream:
        got = 0
        while True:
            try:
                chunk = stream.read(fsutil.CHUNK)
            except Exception as e:
                raise _Damaged(str(e)) from e
            if not chunk:
                if got != info.file_size:  # ended early (no CRC error for a stored member)
                    raise _Damaged(f"{got} of {info.file_size} bytes")
                return
            got += len(chunk)
            if got > info.file_size:
                raise MaterialTooLarge(
                    f"{info.filename!r} holds more data than the zip declares "
                    f"({info.file_size} bytes)."
                )
            yield chunk


# ----- the file system (all relative to directory descriptors, no link followed) -----

_WHAT = {
    fsutil.FOLDER: "a folder",
    fsutil.FILE: "a file",
    fsutil.OTHER: "a special file",
    fsutil.GONE: "missing",
}


def _open_dir(base_fd: int, parts: list[str], shown: str, *, create: bool) -> int:
    """A descriptor for folder ``parts`` under ``base_fd``, made if missing (``create``).

    ``shown`` is the base's path as the teacher sees it (``~/math101``). Raises _Refused
    if a segment is a link or not a folder, FileNotFoundError if missing and not
    ``create``, OSError on other failures.
    """
    try:
        return fsutil.open_dir(base_fd, parts, create=create, mode=_DIR_MODE)
    except fsutil.Blocked as e:
        if e.error is not None:
            raise e.error from None
        where = "/".join([shown, *parts[: e.depth + 1]])
        if e.kind == fsutil.LINK:
            raise _Refused(
                f"{where} is a link (symlink) in the student's home; classhub does not"
                " write through links."
            ) from None
        raise _Refused(f"{where} is {_WHAT[e.kind]} in the student's home, not a folder.") from None


def _hash_chunks(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _os_message(e: OSError) -> str:
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "The student's disk is full (or over its quota); the file was not delivered."
    if code in (errno.EACCES, errno.EPERM):
        return "Permission denied: the student's server may not write here."
    if code == errno.EROFS:
        return "The student's files are read-only here."
    if code == errno.ENAMETOOLONG:
        return "The name is too long for the student's file system."
    if code == errno.EEXIST:
        return (
            "The student created a file of that name while the material was being"
            " delivered; push again to merge it."
        )
    if code == errno.ELOOP:
        return "A link (symlink) is in the way; classhub does not write through links."
    return f"The file could not be written ({e.strerror or type(e).__name__})."


# ----- the record of what was delivered -----


def _load_record(state_fd: int | None, fname: str, dest: str) -> dict[str, str]:
    """The recorded sha256 per path; empty if missing, unreadable or corrupt."""
    if state_fd is None:
        return {}
    try:
        fd = os.open(fname, fsutil.O_READ, dir_fd=state_fd)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_RECORD_BYTES:
            return {}
        pieces = []
        while chunk := os.read(fd, fsutil.CHUNK):
            pieces.append(chunk)
        data = json.loads(b"".join(pieces))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("dest") != dest:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str) and len(v) == 64
    }


def _save_record(state_fd: int, fname: str, dest: str, files: dict[str, str]) -> None:
    payload = json.dumps(
        {"version": 1, "dest": dest, "files": files}, ensure_ascii=False, sort_keys=True
    ).encode("utf-8")
    fsutil.write_atomic(state_fd, fname, iter((payload,)), replace=True)


class _StateDir:
    """Where the record lives: under home, opened without following links."""

    def __init__(self, home_fd: int, home: Path, state_dir: Path | None):
        if state_dir is None:
            state_dir = home.joinpath(*STATE_DIR)
        self.path = state_dir
        if state_dir.is_relative_to(home):
            self.base_fd, self.parts = home_fd, list(state_dir.relative_to(home).parts)
            self.shown = "~"
        else:  # a folder outside home, chosen by the caller (tests)
            self.base_fd, self.parts, self.shown = None, list(state_dir.parts), ""

    def open(self, *, create: bool) -> int | None:
        try:
            if self.base_fd is None:
                if create:
                    os.makedirs(self.path, _DIR_MODE, exist_ok=True)
                return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return _open_dir(self.base_fd, self.parts, self.shown, create=create)
        except (_Refused, OSError):  # missing, a link, ...: no record to read
            if create:
                raise
            return None


# ----- applying -----


class _Push:
    def __init__(
        self,
        archive,
        dest: str,
        dest_fd: int,
        label: str,
        record: dict[str, str],
        previous: dict[str, str],
    ):
        self.archive = archive
        self.dest = dest
        self.dest_fd = dest_fd
        self.label = label
        self.record = record  # the home's record, rewritten after the push
        self.previous = previous  # what was last delivered, by path (see decide)
        self.report = Report()
        self.changed = False

    def remember(self, rel: str, digest: str) -> None:
        if self.record.get(rel) != digest:
            self.record[rel] = digest
            self.changed = True

    def chunks(self, member: _Member) -> Iterator[bytes]:
        return _read_member(self.archive, member.info)

    def folder(self, member: _Member) -> None:
        os.close(_open_dir(self.dest_fd, member.parts, f"~/{self.dest}", create=True))

    def file(self, member: _Member) -> None:
        rel = member.rel
        new = _hash_chunks(self.chunks(member))
        if decide(self.previous.get(rel), new, None) == SKIP:
            # not changed by the teacher since it was last delivered: nothing is written,
            # and no folder is made for it (the student may have removed it)
            self.remember(rel, new)
            self.report.skipped.append(rel)
            return
        parent = member.parts[:-1]
        name = member.parts[-1]
        shown = f"~/{self.dest}"
        pfd = _open_dir(self.dest_fd, parent, shown, create=True)
        try:
            self._file_in(pfd, member, name, new)
        finally:
            os.close(pfd)

    def _file_in(self, pfd: int, member: _Member, name: str, new: str) -> None:
        rel, size = member.rel, member.info.file_size
        report = self.report
        st = fsutil.lstat(name, pfd)
        have: str | None = None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                where = f"~/{self.dest}/{rel}"
                if stat.S_ISLNK(st.st_mode):
                    raise _Refused(
                        f"{where} is a link (symlink) in the student's home; classhub does not"
                        " write through links."
                    )
                if stat.S_ISDIR(st.st_mode):
                    raise _Refused(
                        f"{where} is a folder in the student's home; the material has a file there."
                    )
                raise _Refused(f"{where} is a special file in the student's home, not a file.")
            existing = fsutil.hash_file(pfd, name)
            if existing is None:
                raise _Refused(
                    f"~/{self.dest}/{rel} changed while the material was being delivered."
                )
            have = existing[0]
        action = decide(self.previous.get(rel), new, have)
        if action == ADD:
            self.remember(rel, fsutil.write_atomic(pfd, name, self.chunks(member), replace=False))
            report.added.append(rel)
            return
        if action == SAME:
            self.remember(rel, new)
            report.unchanged.append(rel)
            return
        if action == UPDATE:
            self.remember(rel, fsutil.write_atomic(pfd, name, self.chunks(member), replace=True))
            report.updated.append(rel)
            return
        # COPY: the student's version: keep it, save the teacher's beside it.
        for number in range(1, _MAX_CONFLICT_COPIES + 1):
            cname = conflict_name(name, self.label, number)
            saved_as = conflict_name(rel, self.label, number)
            cst = fsutil.lstat(cname, pfd)
            if cst is None:
                fsutil.write_atomic(pfd, cname, self.chunks(member), replace=False)
                self.remember(rel, new)
                report.conflicts.append({"path": rel, "saved_as": saved_as, "already_saved": False})
                return
            if stat.S_ISREG(cst.st_mode) and cst.st_size == size:
                saved = fsutil.hash_file(pfd, cname)
                if saved is not None and saved[0] == new:
                    self.remember(rel, new)
                    report.conflicts.append(
                        {"path": rel, "saved_as": saved_as, "already_saved": True}
                    )
                    return
            # that name holds something else (e.g. the student's edit of it): next number
        raise _Refused(
            f"The student changed ~/{self.dest}/{rel}, and there are already"
            f" {_MAX_CONFLICT_COPIES} other files named as the teacher's version of it."
        )


def apply_material(
    home: Path | str,
    dest: str,
    archive: zipfile.ZipFile,
    label: str,
    state_dir: Path | str | None = None,
    *,
    delivered: dict[str, str] | None = None,
    max_members: int | None = None,
    max_bytes: int | None = None,
) -> Report:
    """Merge the zip ``archive`` into ``home/dest`` (see the module docstring).

    ``state_dir`` holds the home's record (default ``home/.classhub/material``);
    ``delivered`` the caller's record of what was last delivered (sha256 by path, over the
    home's record); the caps default to :data:`MAX_MEMBERS` and
    :data:`MAX_UNPACKED_BYTES`. Raises
    MaterialError (a ValueError) before anything is written for a bad ``dest``, ``label``
    or member name, a symlink or special member, duplicates, a name that is both a file and
    a folder, or a zip over the caps (MaterialTooLarge). Problems with single files go into
    the report's ``errors``. A file the student deleted is delivered again only when the
    teacher changed it since (or the whole destination folder is gone); files no longer in
    the material are left alone.
    """
    home = Path(home)
    dest_parts = check_dest(dest)
    check_label(label)
    members = _plan(
        archive,
        MAX_MEMBERS if max_members is None else max_members,
        MAX_UNPACKED_BYTES if max_bytes is None else max_bytes,
    )
    with _apply_lock:
        home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return _apply(
                home_fd, home, dest, dest_parts, archive, members, label, state_dir, delivered
            )
        finally:
            os.close(home_fd)


def _dest_exists(home_fd: int, parts: list[str]) -> bool:
    """Whether folder ``parts`` exists under home (a link or a file counts as existing:
    the delivery reports it)."""
    try:
        fd = fsutil.open_dir(home_fd, parts)
    except fsutil.Blocked as e:
        return e.kind != fsutil.MISSING
    os.close(fd)
    return True


def _apply(
    home_fd, home, dest, dest_parts, archive, members, label, state_dir, delivered
) -> Report:
    state = _StateDir(home_fd, home, Path(state_dir) if state_dir is not None else None)
    fname = state_file_name(dest)
    state_fd = state.open(create=False)
    try:
        record = _load_record(state_fd, fname, dest)
    finally:
        if state_fd is not None:
            os.close(state_fd)
    if not _dest_exists(home_fd, dest_parts):
        previous: dict[str, str] = {}  # the whole folder is gone: deliver everything
    else:
        previous = {**record, **(delivered or {})}
    try:
        dest_fd = _open_dir(home_fd, dest_parts, "~", create=True)
    except (_Refused, OSError) as e:
        message = e.message if isinstance(e, _Refused) else _os_message(e)
        report = Report()
        for m in members:
            report.errors.append({"path": m.rel + ("/" if m.is_dir else ""), "message": message})
        return report
    push = _Push(archive, dest, dest_fd, label, record, previous)
    try:
        for member in members:
            shown = member.rel + ("/" if member.is_dir else "")
            try:
                if member.is_dir:
                    push.folder(member)
                else:
                    push.file(member)
            except _Refused as e:
                push.report.errors.append({"path": shown, "message": e.message})
            except _Damaged:
                push.report.errors.append(
                    {
                        "path": shown,
                        "message": "The material's copy of this file is damaged (the zip is"
                        " corrupt); it was not delivered.",
                    }
                )
            except OSError as e:
                push.report.errors.append({"path": shown, "message": _os_message(e)})
    finally:
        os.close(dest_fd)
        if push.changed:  # also when MaterialTooLarge stops the push half-way
            _save(state, fname, dest, push)
    return push.report


def _save(state: _StateDir, fname: str, dest: str, push: _Push) -> None:
    try:
        state_fd = state.open(create=True)
        try:
            _save_record(state_fd, fname, dest, push.record)
        finally:
            os.close(state_fd)
    except (_Refused, OSError) as e:
        why = e.message if isinstance(e, _Refused) else (e.strerror or type(e).__name__)
        push.report.errors.append(
            {
                "path": "",
                "message": "The record of delivered files could not be saved"
                f" ({why}); the next push will treat changed files as the student's.",
            }
        )


def apply_zip(
    home: Path | str,
    dest: str,
    data: bytes,
    label: str,
    state_dir: Path | str | None = None,
    delivered: dict[str, str] | None = None,
    **caps: int | None,
) -> Report:
    """:func:`apply_material` for a zip given as bytes; MaterialError if it is not a zip."""
    import io
    import zipfile

    check_dest(dest)
    check_label(label)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as e:  # parsing untrusted bytes: anything it raises means "bad zip"
        raise MaterialError("The material is not a valid zip file.") from e
    with archive:
        return apply_material(home, dest, archive, label, state_dir, delivered=delivered, **caps)
