"""The pure parts of classhub-backup: the manifest and its checks, choosing a backup and a
home, fingerprints that do not depend on order, the archive of a home (made and unpacked in
a plain folder) and what an unpacking refuses, the SQL that clears the way for a dump,
the settings' checks, the scrubbing of secrets from messages."""

from __future__ import annotations

import io
import logging
import os
import tarfile

import bson
import pytest
from traitlets import TraitError

from backup import cli, homes, manifest, mongo, postgres, run, s3
from backup.manifest import BackupError, Manifest
from backup.settings import BackupSettings
from common.naming import object_name
from spawner import btrfs

pytestmark = pytest.mark.unit


def make_manifest(**files) -> Manifest:
    m = Manifest(name="20261206T190000Z", created=0.0, deployment="classhub")
    for rel, (size, digest) in files.items():
        m.add_file(rel.replace("__", "/"), size, digest)
    return m


# ----- manifest


def test_backup_names_sort_in_time_order_and_are_utc():
    assert manifest.backup_name(0) == "19700101T000000Z"
    a, b = manifest.backup_name(1_765_000_000), manifest.backup_name(1_765_000_001)
    assert a < b and manifest.NAME.match(a)


def test_manifest_round_trip_and_format_check(tmp_path):
    m = make_manifest(postgres__jupyterhub_dump=(3, "ab"))
    m.parts["homes"] = {"homes": [{"volume": "classhub-home-a-1", "suffix": "home-a-1"}]}
    manifest.write(str(tmp_path), m)
    assert oct(os.stat(tmp_path / "manifest.json").st_mode & 0o777) == "0o600"
    again = manifest.read(str(tmp_path))
    assert again.files == {"postgres/jupyterhub_dump": {"size": 3, "sha256": "ab"}}
    assert again.homes()[0]["suffix"] == "home-a-1"
    with pytest.raises(BackupError, match="not a classhub backup"):
        Manifest.from_json({"format": "other/9"})
    with pytest.raises(BackupError, match="no manifest.json"):
        manifest.read(str(tmp_path / "nothing"))


def test_a_file_path_outside_the_backup_is_refused():
    m = make_manifest()
    for bad in ("/etc/passwd", "homes/../../x"):
        with pytest.raises(ValueError):
            m.add_file(bad, 1, "x")


def test_check_files_names_each_problem():
    m = make_manifest(a=(3, "aaa"), b=(4, "bbb"), c=(5, "ccc"), d=(1, "ddd"))
    found = {"a": (3, "aaa"), "b": (4, "xxx"), "c": (6, "ccc"), "d": None}
    problems = manifest.check_files(m, found)
    assert problems == [
        "b: its checksum differs from the manifest's (damaged)",
        "c: 6 bytes, the manifest says 5",
        "d: missing",
    ]
    assert manifest.check_files(m, found, only=["a"]) == []
    assert manifest.check_files(m, {}, only=["zzz"]) == ["zzz: not in the manifest"]


def test_file_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    size, digest = manifest.file_digest(str(path))
    assert size == 3
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_compare_fingerprints_says_what_differs():
    expected = {"t1": {"count": 1, "sha256": "a"}, "t2": {"count": 2, "sha256": "b"}, "t3": {}}
    actual = {"t1": {"count": 1, "sha256": "a"}, "t2": {"count": 2, "sha256": "c"}, "t4": {}}
    assert manifest.compare_fingerprints(expected, actual, "pg") == [
        "pg t2 differs: same number of items, different contents",
        "pg t3: in the backup, missing after the restore",
        "pg t4: not in the backup, present after the restore",
    ]
    changed = {"x": {"count": 3, "sha256": "z"}}
    assert manifest.compare_fingerprints({"x": {"count": 2}}, changed, "s3") == [
        "s3 x differs: 2 items in the backup, 3 now"
    ]
    assert manifest.compare_fingerprints(expected, expected, "pg") == []


# ----- choosing a backup


NAMES = ["20261201T020000Z", "20261202T020000Z", "20261203T020000Z.partial", "lost+found"]


def test_choose_latest_exact_and_prefix():
    assert manifest.choose(NAMES, "latest") == "20261202T020000Z"
    assert manifest.choose(NAMES, "") == "20261202T020000Z"
    assert manifest.choose(NAMES, "20261201T020000Z") == "20261201T020000Z"
    assert manifest.choose(NAMES, "20261201") == "20261201T020000Z"


def test_choose_refuses_with_a_reason():
    with pytest.raises(BackupError, match="did not finish"):
        manifest.choose(NAMES, "20261203T020000Z")
    with pytest.raises(BackupError, match="names 2 backups"):
        manifest.choose(NAMES, "202612")
    with pytest.raises(BackupError, match="no backup '2025'"):
        manifest.choose(NAMES, "2025")
    with pytest.raises(BackupError, match="no complete backup"):
        manifest.choose(["x.partial"], "latest")


def test_prune_keeps_the_newest_and_never_partial_ones():
    names = [f"2026120{d}T020000Z" for d in range(1, 6)] + ["20261206T020000Z.partial"]
    assert manifest.to_prune(names, 3) == ["20261201T020000Z", "20261202T020000Z"]
    assert manifest.to_prune(names, 0) == []
    assert manifest.to_prune(names, 10) == []


# ----- choosing a home


def test_home_suffix_is_the_spawners_volume_name_without_the_prefix():
    for user, server in [("alice", ""), ("bob@example.org", "py101"), ("Ünïcode " * 9, "x")]:
        suffix, _ = run.home_suffix_for(user, server)
        assert object_name("classhub", "home", user, server) == "classhub-" + suffix
        assert object_name("chtest1a2b3c", "home", user, server) == "chtest1a2b3c-" + suffix
    assert manifest.home_suffix("classhub-home-alice-abc", "classhub") == "home-alice-abc"
    # a volume of another deployment keeps its name
    assert manifest.home_suffix("other-home-alice-abc", "classhub") == "other-home-alice-abc"


def test_select_homes_exact_else_the_users_other_homes():
    alice, readable = run.home_suffix_for("alice", "")
    alice_py, _ = run.home_suffix_for("alice", "py101")
    alicea, _ = run.home_suffix_for("alicea", "")
    m = make_manifest()
    m.parts["homes"] = {"homes": [{"suffix": s, "volume": "v-" + s} for s in (alice_py, alicea)]}
    home, others = manifest.select_homes(m, alice, readable)
    assert home is None
    assert [h["suffix"] for h in others] == [alice_py]  # not alicea's
    home, _ = manifest.select_homes(m, alice_py, readable)
    assert home["suffix"] == alice_py


def test_target_volume_takes_the_new_deployments_prefix():
    home = {"volume": "old-home-alice-abc", "suffix": "home-alice-abc"}
    assert run.target_volume(home, "new") == "new-home-alice-abc"
    assert run.target_volume({"volume": "odd", "suffix": "odd"}, "new") == "odd"


# ----- fingerprints that do not depend on order


def test_bucket_fingerprint_ignores_listing_order_but_not_content():
    a = {"key": "a", "size": 1, "sha256": "x"}
    b = {"key": "b/c", "size": 2, "sha256": "y"}
    assert s3.bucket_fingerprint([a, b]) == s3.bucket_fingerprint([b, a])
    assert s3.bucket_fingerprint([a, b])["count"] == 2
    assert s3.bucket_fingerprint([a, b])["bytes"] == 3
    assert s3.bucket_fingerprint([a, {**b, "sha256": "z"}]) != s3.bucket_fingerprint([a, b])


def test_collection_fingerprint_ignores_document_order_but_not_types():
    docs = [bson.encode({"_id": i, "n": bson.Int64(i)}) for i in range(3)]
    one, two = mongo.Fingerprint(), mongo.Fingerprint()
    for d in docs:
        one.add(d)
    for d in reversed(docs):
        two.add(d)
    idx = [{"name": "n_1", "key": [["n", 1]], "unique": True}]
    assert one.result(idx) == two.result(idx)
    assert one.result(idx) != one.result([])
    three = mongo.Fingerprint()
    for i in range(3):
        three.add(bson.encode({"_id": i, "n": i}))  # int32, not Int64
    assert three.result(idx) != one.result(idx)


def test_read_bson_keeps_documents_exactly_and_spots_damage(tmp_path):
    docs = [bson.encode({"_id": 1, "n": bson.Int64(5)}), bson.encode({"_id": 2, "s": "é"})]
    path = tmp_path / "c.bson"
    path.write_bytes(b"".join(docs))
    with open(path, "rb") as f:
        assert [d.raw for d in mongo.read_bson(f)] == docs
    path.write_bytes(b"".join(docs)[:-3])
    with open(path, "rb") as f, pytest.raises(BackupError, match="damaged"):
        list(mongo.read_bson(f))


# ----- homes: fingerprint, archive, unpack


def make_home(root):
    os.makedirs(root / "work" / "deep")
    (root / "notebook.ipynb").write_text('{"cells": []}')
    (root / "work" / "deep" / "data.csv").write_bytes(b"a,b\n" * 1000)
    (root / "work" / "run.sh").write_text("echo hi\n")
    os.chmod(root / "work" / "run.sh", 0o775)
    os.symlink("work/deep", root / "shortcut")
    os.symlink("/etc/hostname", root / "absolute-link")  # kept as a link, never followed
    os.link(root / "notebook.ipynb", root / "hardlink.ipynb")
    os.mkfifo(root / "fifo")  # left out of archives and fingerprints
    os.chown(root / "notebook.ipynb", 1000, 100)


def test_archive_round_trip_keeps_the_fingerprint(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_home(src)
    before = homes.tree_fingerprint(str(src))
    assert before["count"] == 9  # ., 2 folders, 4 files (a hard link counts), 2 links
    archive = tmp_path / "home.tar.gz"
    homes.archive(str(src), str(archive))
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"
    dest = tmp_path / "dest"
    dest.mkdir()
    homes.extract(str(archive), str(dest))
    assert homes.tree_fingerprint(str(dest)) == before
    assert os.readlink(dest / "absolute-link") == "/etc/hostname"
    assert os.stat(dest / "notebook.ipynb").st_uid == 1000
    assert os.stat(dest / "notebook.ipynb").st_ino == os.stat(dest / "hardlink.ipynb").st_ino
    assert not os.path.exists(dest / "fifo")


def test_fingerprint_sees_a_changed_byte_and_a_changed_mode(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_home(src)
    before = homes.tree_fingerprint(str(src))
    stat = os.stat(src / "work" / "run.sh")
    (src / "work" / "run.sh").write_text("echo ho\n")
    os.utime(src / "work" / "run.sh", (stat.st_atime, stat.st_mtime))
    assert homes.tree_fingerprint(str(src)) != before
    (src / "work" / "run.sh").write_text("echo hi\n")
    os.utime(src / "work" / "run.sh", (stat.st_atime, stat.st_mtime))
    assert homes.tree_fingerprint(str(src)) == before
    os.chmod(src / "work" / "run.sh", 0o755)
    assert homes.tree_fingerprint(str(src)) != before


def hostile_archive(path, *members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    "members, why",
    [
        ([member("/etc/cron.d/x")], "outside the home"),
        ([member("../../etc/x")], "outside the home"),
        ([member("a/../../x")], "outside the home"),
        ([member("dev", tarfile.CHRTYPE)], "not a file or folder"),
        (
            [member("link", tarfile.SYMTYPE, linkname="/etc"), member("link/passwd")],
            "through a link",
        ),
        ([member("h", tarfile.LNKTYPE, linkname="/etc/shadow")], "outside the home"),
    ],
)
def test_unpacking_refuses_what_no_home_archive_holds(tmp_path, members, why):
    archive = tmp_path / "bad.tar.gz"
    hostile_archive(archive, *members)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(BackupError, match=why):
        homes.extract(str(archive), str(dest))
    assert not os.path.exists("/etc/cron.d/x")


# ----- btrfs snapshot arguments


def test_snapshot_ioctl_matches_the_kernel_header():
    # BTRFS_IOC_SNAP_CREATE_V2 = _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2), 4096 bytes
    assert btrfs.IOC_SNAP_CREATE_V2 == 0x50009417
    args = btrfs.snapshot_args(7, ".backup-x", readonly=True)
    assert len(args) == 4096
    assert int.from_bytes(args[0:8], "little") == 7
    assert int.from_bytes(args[16:24], "little") == btrfs.SUBVOL_RDONLY == 2
    assert args[56 : 56 + 9] == b".backup-x" and args[56 + 9] == 0
    assert int.from_bytes(btrfs.snapshot_args(3, "y", readonly=False)[16:24], "little") == 0
    for bad in ("", "a/b", "..", "x" * 256):
        with pytest.raises(ValueError):
            btrfs.snapshot_args(3, bad)


# ----- PostgreSQL


def test_server_from_url_and_the_password_only_in_the_environment():
    server = postgres.Server.from_url(
        "postgresql+psycopg://classhub:p%40ss@127.0.0.1:15432/jupyterhub"
    )
    assert (server.host, server.port, server.user, server.password) == (
        "127.0.0.1",
        15432,
        "classhub",
        "p@ss",
    )
    env = server.env("grades")
    assert env["PGPASSWORD"] == "p@ss" and env["PGDATABASE"] == "grades"
    with pytest.raises(BackupError, match="postgresql://"):
        postgres.Server.from_url("mysql://x@y/z")


def test_drop_statements_clear_each_schema_and_only_the_dumps_public_tables():
    sql = postgres.drop_statements(
        ["classhub_hub.users", "classhub_hub.users_id_seq", 'we"ird.t', "public.legacy"]
    )
    assert 'DROP SCHEMA IF EXISTS "classhub_hub" CASCADE;' in sql
    assert 'DROP SCHEMA IF EXISTS "we""ird" CASCADE;' in sql
    assert 'DROP SCHEMA IF EXISTS "public"' not in sql
    assert "relname IN ('legacy')" in sql
    assert postgres.drop_statements([]) == ""


# ----- settings and messages


def test_settings_refuse_a_relative_folder_and_a_bad_quota(monkeypatch):
    monkeypatch.setenv("CLASSHUB_BACKUP_DIR", "backups")
    with pytest.raises(TraitError, match="absolute path"):
        BackupSettings().backup_dir  # noqa: B018
    monkeypatch.setenv("CLASSHUB_BACKUP_DIR", "/srv/b")
    monkeypatch.setenv("CLASSHUB_HOME_QUOTA", "lots")
    with pytest.raises(TraitError):
        BackupSettings().home_quota  # noqa: B018
    monkeypatch.setenv("CLASSHUB_HOME_QUOTA", "5G")
    monkeypatch.setenv("CLASSHUB_BACKUP_KEEP", "-1")
    with pytest.raises(TraitError, match="CLASSHUB_BACKUP_KEEP"):
        BackupSettings().keep  # noqa: B018


def test_a_secret_never_reaches_the_log(monkeypatch, caplog):
    monkeypatch.setenv("CLASSHUB_BACKUP_PG_URL", "postgresql://classhub:pg-secret-1@h:1/db")
    monkeypatch.setenv("CLASSHUB_BACKUP_S3_SECRET_KEY", "s3-secret-2")
    settings = BackupSettings()
    scrub = cli._Scrub(cli._secrets(settings))
    record = logging.LogRecord(
        "x", logging.ERROR, "", 0, "failed: %s %s", ("pg-secret-1", "s3-secret-2"), None
    )
    scrub.filter(record)
    assert record.getMessage() == "failed: *** ***"


def test_unknown_parts_are_refused():
    assert cli._parts("") == list(manifest.PARTS)
    assert cli._parts("homes, postgres") == ["homes", "postgres"]
    with pytest.raises(BackupError, match="unknown part"):
        cli._parts("redis")


class FakeSession:
    def __init__(self):
        self._snapshot_time = None
        self.ended = False

    def end_session(self):
        self.ended = True


class FakeCollection:
    def __init__(self, answers_time):
        self.answers_time = answers_time

    def find_one(self, query, session):
        if self.answers_time:
            session._snapshot_time = object()  # the answer's atClusterTime


class FakeDatabase:
    def __init__(self, answers_time):
        self.answers_time = answers_time

    def list_collection_names(self):
        return ["system.views", "classes"]

    def __getitem__(self, name):
        return FakeCollection(self.answers_time)


class FakeClient:
    def __init__(self, answers_time):
        self.answers_time = answers_time
        self.sessions = []

    def __getitem__(self, name):
        return FakeDatabase(self.answers_time)

    def start_session(self, snapshot):
        assert snapshot is True
        self.sessions.append(FakeSession())
        return self.sessions[-1]


def test_a_snapshot_session_counts_only_when_the_server_gives_a_time():
    real = FakeClient(answers_time=True)
    assert mongo._snapshot_session(real, ["classhub"]) is real.sessions[0]
    # nx-27017 answers a snapshot read without a time: no snapshot at all
    fake = FakeClient(answers_time=False)
    assert mongo._snapshot_session(fake, ["classhub"]) is None
    assert fake.sessions[0].ended
    assert mongo._snapshot_session(FakeClient(True), []) is None  # nothing to read


def test_a_store_that_is_down_is_one_clear_line(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CLASSHUB_BACKUP_DIR", str(tmp_path / "b"))
    monkeypatch.setenv("CLASSHUB_BACKUP_PG_URL", "postgresql://classhub:pw-secret-9@127.0.0.1:1/db")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    caplog.set_level(logging.INFO)
    assert cli.main(["backup", "--only", "postgres"]) == 1
    text = caplog.text
    assert "backup failed: OperationalError" in text
    assert "did not finish" in text and ".partial" in text
    assert "pw-secret-9" not in text
