"""The services' side of the homes helper (services/base/homes.py, homebatch.py,
homesapp.py): the container's configuration, what goes in and what is taken back (hostile),
batching, and the outcome of each home, with a fake Docker client."""

import asyncio
import io
import json
import tarfile
import zipfile

import pytest
import requests
from traitlets import TraitError

from common.naming import object_name
from services.base.homebatch import Batcher
from services.base.homes import (
    COMMAND,
    MAX_SNAPSHOT_FILES,
    RUN_LABEL,
    HelperSettings,
    HelperUnavailable,
    HomeMissing,
    HomeRefused,
    Homes,
    HomeSnapshot,
    check_snapshot_zip,
    container_config,
    job_archive,
    parse_results,
    read_outputs,
)
from services.base.homesapp import HomesSettings

pytestmark = pytest.mark.unit

SETTINGS = HelperSettings(image="classhub/homes-helper:latest", deployment="ch", service="files")


class FakeMount(dict):
    def __init__(self, **kwargs):
        super().__init__(kwargs)


# ----- the container


def test_the_helper_runs_isolated_with_nothing_to_steal():
    config = container_config(
        SETTINGS,
        [("ch-home-ann-bio-1", True), ("ch-home-bob-bio-2", False)],
        mount_factory=FakeMount,
    )
    assert config["user"] == "1000:100"
    assert config["network_mode"] == "none"
    assert config["read_only"] is True
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["privileged"] is False
    assert config["mem_limit"] == config["memswap_limit"] == "256m"
    assert config["pids_limit"] == 64 and config["nano_cpus"] == 1_000_000_000
    # no token, no key, no setting: only what Python needs, and HOME is not a student's
    assert config["environment"] == {"HOME": "/tmp", "LANG": "C.UTF-8"}
    assert config["working_dir"] == "/tmp"
    # trusted code only, isolated from anything in the homes
    assert config["command"] == COMMAND
    assert COMMAND[:3] == ["python3", "-I", "-m"]
    assert "noexec" in config["tmpfs"]["/tmp"]
    assert config["mounts"] == [
        {"target": "/mnt/io", "source": None, "type": "volume"},
        {
            "target": "/mnt/homes/0",
            "source": "ch-home-ann-bio-1",
            "type": "volume",
            "read_only": True,
            "no_copy": True,
        },
        {
            "target": "/mnt/homes/1",
            "source": "ch-home-bob-bio-2",
            "type": "volume",
            "read_only": False,
            "no_copy": True,
        },
    ]
    assert config["labels"]["classhub.homes-helper"] == "ch"
    assert config["labels"]["classhub.homes-helper.service"] == "files"
    assert config["log_config"]["config"]["max-size"] == "1m"


def test_the_time_limit_grows_with_the_batch():
    assert SETTINGS.time_limit(1) == 90 and SETTINGS.time_limit(10) == 630
    assert SETTINGS.time_limit(0) == 90


def test_the_job_goes_in_as_a_tar_the_helper_can_read_and_write():
    data = job_archive({"version": 1, "op": "apply"}, {"abc.zip": b"PK"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
        assert sorted(members) == ["in", "in/abc.zip", "job.json", "out"]
        assert members["out"].isdir() and members["out"].mode == 0o700
        assert (members["out"].uid, members["out"].gid) == (1000, 100)
        assert members["in/abc.zip"].mode == 0o444
        assert json.loads(tar.extractfile("job.json").read()) == {"version": 1, "op": "apply"}


# ----- what comes back is hostile


def test_results_are_checked_line_by_line():
    lines = [
        b"garbage",
        b"[1, 2]",
        json.dumps({"id": "9", "ok": True}).encode(),  # not ours
        json.dumps(
            {
                "id": "0",
                "ok": True,
                "files": 2,
                "bytes": 10,
                "skipped": [{"path": "x", "reason": "link", "evil": 1}, "no"] * 200,
                "skipped_total": 400,
            }
        ).encode(),
        json.dumps({"id": "0", "ok": False, "status": 404, "message": "second: ignored"}).encode(),
        json.dumps({"id": "1", "ok": False, "status": 302, "message": "odd status"}).encode(),
        json.dumps({"id": "2", "ok": True, "files": MAX_SNAPSHOT_FILES + 1, "bytes": 1}).encode(),
        json.dumps({"id": "3", "ok": False, "status": 413, "message": "m" * 5000}).encode(),
        json.dumps({"id": "4", "ok": "yes"}).encode(),
        b"[" * 100000,
    ]
    found = parse_results("snapshot", b"\n".join(lines), ["0", "1", "2", "3", "4", "5"])
    assert found["0"]["ok"] and found["0"]["files"] == 2 and found["0"]["skipped_total"] == 400
    assert found["0"]["skipped"][0] == {"path": "x", "reason": "link"}
    assert len(found["0"]["skipped"]) == 50  # dicts among the first 100 entries
    assert found["1"]["ok"] is False and found["1"]["status"] == 500
    assert found["2"]["status"] == 500 and "bad result" in found["2"]["message"]
    assert found["3"] == {"ok": False, "status": 413, "message": "m" * 1000}
    assert found["4"]["status"] == 500
    assert "5" not in found and "9" not in found


def test_an_apply_result_needs_a_report_object():
    data = b"\n".join(
        json.dumps(x).encode()
        for x in (
            {"id": "0", "ok": True, "report": {"added": ["a"]}},
            {"id": "1", "ok": True, "report": ["a"]},
        )
    )
    found = parse_results("apply", data, ["0", "1"])
    assert found["0"] == {"ok": True, "report": {"added": ["a"]}}
    assert found["1"]["ok"] is False


def _tar(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            elif kind == tarfile.DIRTYPE:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _chunks(data: bytes, size: int = 7):
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def test_only_the_expected_files_under_their_caps_are_taken_back():
    data = _tar(
        [
            ("out", b"", tarfile.DIRTYPE),
            ("out/results.jsonl", b"{}\n", tarfile.REGTYPE),
            ("out/0.zip", b"zip zero", tarfile.REGTYPE),
            ("out/1.zip", b"x" * 100, tarfile.REGTYPE),  # over its cap
            ("out/2.zip", b"", tarfile.SYMTYPE),  # a link
            ("out/../../etc/shadow", b"root", tarfile.REGTYPE),
            ("out/9.zip", b"unasked", tarfile.REGTYPE),
        ]
    )
    caps = {"results.jsonl": 10, "0.zip": 10, "1.zip": 10, "2.zip": 10}
    found = read_outputs(_chunks(data), caps)
    assert sorted(found) == ["0.zip", "results.jsonl"]
    assert found["0.zip"].read() == b"zip zero"


def test_a_cut_archive_keeps_what_was_read():
    data = _tar(
        [("out/0.zip", b"first", tarfile.REGTYPE), ("out/1.zip", b"b" * 5000, tarfile.REGTYPE)]
    )
    found = read_outputs(_chunks(data[:1500]), {"0.zip": 100, "1.zip": 10_000})
    assert list(found) == ["0.zip"]


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_snapshot_zip_is_checked_before_it_is_stored():
    good = _zip({"answer.py": b"print(1)", "data/zeros.bin": bytes(2 << 20)})
    check_snapshot_zip(good, 2)  # a file of zeros compresses well: fine
    with pytest.raises(ValueError, match="not 3"):
        check_snapshot_zip(good, 3)
    with pytest.raises(ValueError, match="not a zip"):
        check_snapshot_zip(b"hello", 0)
    with pytest.raises(ValueError):
        check_snapshot_zip(_zip({"../escape.py": b"x"}), 1)
    # a directory claiming more entries than a snapshot may hold is refused unparsed
    many = bytearray(_zip({}))
    many[-12:-10] = (MAX_SNAPSHOT_FILES + 1).to_bytes(2, "little")
    with pytest.raises(ValueError, match="directory is too large"):
        check_snapshot_zip(bytes(many), 0)


# ----- batching


async def test_single_requests_run_at_once_and_a_crowd_goes_in_batches():
    started: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items):
        started.append(list(items))
        await gate.wait()
        return [i * 10 for i in items]

    batcher = Batcher(run, key=lambda i: i, max_batch=4, slots=asyncio.Semaphore(2), concurrency=2)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)
    assert started == [[0]]  # alone, at once
    crowd = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 12)]
    await asyncio.sleep(0.01)
    assert started == [[0], [1, 2, 3, 4]]  # the second slot takes a full batch
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*crowd) == [i * 10 for i in range(1, 12)]
    assert sorted(x for batch in started for x in batch) == list(range(12))
    assert max(batcher.batch_sizes) <= 4


async def test_the_queue_is_split_evenly_over_the_slots():
    sizes = []

    async def run(items):
        sizes.append(len(items))
        await asyncio.sleep(0.01)
        return items

    batcher = Batcher(run, key=lambda i: i, max_batch=50, slots=asyncio.Semaphore(2), concurrency=2)
    await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert sizes == [10, 10]


async def test_work_on_one_home_never_overlaps_and_keeps_its_order():
    running: set[str] = set()
    order: list[tuple[str, int]] = []

    async def run(items):
        homes = [home for home, _ in items]
        assert not running & set(homes) and len(set(homes)) == len(homes)
        running.update(homes)
        await asyncio.sleep(0.01)
        order.extend(items)
        running.difference_update(homes)
        return [n for _, n in items]

    batcher = Batcher(
        run, key=lambda i: i[0], max_batch=8, slots=asyncio.Semaphore(3), concurrency=3
    )
    work = [("ann", n) for n in range(4)] + [("bob", n) for n in range(3)]
    assert await asyncio.gather(*(batcher.submit(w) for w in work)) == [0, 1, 2, 3, 0, 1, 2]
    assert [n for home, n in order if home == "ann"] == [0, 1, 2, 3]
    assert [n for home, n in order if home == "bob"] == [0, 1, 2]


async def test_each_piece_gets_its_own_outcome_and_a_crash_fails_the_batch_only():
    async def run(items):
        if "crash" in items:
            raise RuntimeError("helper crashed")
        return [ValueError(i) if i.startswith("bad") else i.upper() for i in items]

    batcher = Batcher(run, key=lambda i: i, max_batch=3, slots=asyncio.Semaphore(1), concurrency=1)
    results = await asyncio.gather(
        *(batcher.submit(i) for i in ("ok", "bad1", "fine", "crash", "x")),
        return_exceptions=True,
    )
    assert results[0] == "OK" and results[2] == "FINE"
    assert isinstance(results[1], ValueError)
    assert isinstance(results[3], RuntimeError) and isinstance(results[4], RuntimeError)
    assert await batcher.submit("again") == "AGAIN"  # the batcher goes on


async def test_a_caller_that_gives_up_does_not_stop_the_others():
    gate = asyncio.Event()

    async def run(items):
        await gate.wait()
        return items

    batcher = Batcher(run, key=lambda i: i, max_batch=5, slots=asyncio.Semaphore(1), concurrency=1)
    blocker = asyncio.ensure_future(batcher.submit("first"))
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(batcher.submit("quitter"))
    stayer = asyncio.ensure_future(batcher.submit("stayer"))
    await asyncio.sleep(0)
    quitter.cancel()
    gate.set()
    assert await blocker == "first" and await stayer == "stayer"
    await batcher.wait_idle()


# ----- Homes with a fake Docker engine


class FakeContainer:
    short_id = "abc123"

    def __init__(self, engine, config):
        self.engine, self.config = engine, config
        self.removed = False

    def put_archive(self, path, data):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            self.job = json.loads(tar.extractfile("job.json").read())
        return True

    def start(self):
        pass

    def wait(self, timeout):
        if self.engine.hang:
            self.engine.hang = False  # killed: the next wait returns
            raise requests.exceptions.ReadTimeout("no answer")
        return {"StatusCode": 0}

    def kill(self):
        self.engine.killed += 1

    def logs(self, **kwargs):
        return b"homectl: done"

    def get_archive(self, path):
        entries = []
        lines = []
        for item in self.job["items"]:
            outcome = self.engine.outcomes.get(item["home"])
            if outcome is None:
                continue  # no result: as if the helper stopped before it
            lines.append(json.dumps({"id": item["id"], **outcome}))
            if outcome.get("ok") and self.job["op"] == "snapshot":
                entries.append(
                    (f"out/{item['id']}.zip", self.engine.zips[item["home"]], tarfile.REGTYPE)
                )
        entries.append(("out/results.jsonl", "\n".join(lines).encode(), tarfile.REGTYPE))
        return _chunks(_tar(entries), 4096), {}

    def remove(self, v, force):
        self.removed = v and force
        self.engine.removed += 1


class FakeVolumes:
    def __init__(self, engine):
        self.engine = engine

    def volumes(self, filters):
        return {"Volumes": [{"Name": n} for n in self.engine.volumes]}


class FakeEngine:
    """A Docker client: ``containers.create`` gives a FakeContainer that 'runs' the job
    by answering ``outcomes`` (per mounted home path)."""

    def __init__(self, volumes):
        self.volumes = set(volumes)
        self.outcomes: dict[str, dict] = {}
        self.zips: dict[str, bytes] = {}
        self.created: list[FakeContainer] = []
        self.hang = False
        self.killed = self.removed = 0
        self.api = FakeVolumes(self)
        self.containers = self

    def create(self, **config):
        container = FakeContainer(self, config)
        self.created.append(container)
        return container

    def close(self):
        pass


def _homes(engine, **kwargs):
    return Homes(SETTINGS, client_factory=lambda: engine, **kwargs)


async def test_a_snapshot_from_the_helper_and_homes_that_do_not_exist():
    ann = object_name("ch", "home", "ann", "bio")
    engine = FakeEngine([ann, "ch-home-other-thing"])
    good = _zip({"answer.py": b"print(42)\n"})
    engine.outcomes["/mnt/homes/0"] = {
        "ok": True,
        "files": 1,
        "bytes": 10,
        "skipped": [],
        "skipped_total": 0,
    }
    engine.zips["/mnt/homes/0"] = good
    homes = _homes(engine)
    try:
        assert homes.volume("ann", "bio") == ann
        taken, missing = await asyncio.gather(
            homes.snapshot("ann", "bio", "bio/assignments/hw1"),
            homes.snapshot("bob", "bio", "bio/assignments/hw1"),
            return_exceptions=True,
        )
    finally:
        homes.close()
    assert isinstance(taken, HomeSnapshot) and taken.data == good and taken.files == 1
    assert isinstance(missing, HomeMissing) and "bob has no home folder" in str(missing)
    # bob's volume was never mounted (Docker would have made an empty one)
    (container,) = engine.created
    assert [m["Source"] for m in container.config["mounts"][1:]] == [ann]
    assert container.config["mounts"][1]["ReadOnly"] is True
    assert container.config["labels"][RUN_LABEL] == homes.settings.run != ""
    assert container.job["items"] == [
        {"id": "0", "home": "/mnt/homes/0", "folder": "bio/assignments/hw1"}
    ]
    assert container.removed


async def test_refusals_missing_results_and_bad_zips_are_per_home():
    names = {u: object_name("ch", "home", u, "bio") for u in ("ann", "bob", "cid", "dan")}
    engine = FakeEngine(names.values())
    outcomes = [
        {"ok": False, "status": 404, "message": "The folder does not exist."},
        None,  # no result line
        {"ok": True, "files": 5, "bytes": 1, "skipped": []},  # the zip holds 1 file
        {"ok": True, "files": 1, "bytes": 1, "skipped": []},
    ]
    for n, outcome in enumerate(outcomes):
        if outcome is not None:
            engine.outcomes[f"/mnt/homes/{n}"] = outcome
            engine.zips[f"/mnt/homes/{n}"] = _zip({"a.py": b"1"})
    homes = _homes(engine, max_batch=10, concurrency=1)
    try:
        got = await asyncio.gather(
            *(homes.snapshot(u, "bio", "bio/assignments/hw1") for u in names),
            return_exceptions=True,
        )
    finally:
        homes.close()
    assert len(engine.created) == 1  # one container for the four
    assert isinstance(got[0], HomeRefused) and got[0].status == 404
    assert isinstance(got[1], HelperUnavailable)
    assert isinstance(got[2], HomeRefused) and "could not be used" in str(got[2])
    assert isinstance(got[3], HomeSnapshot)


async def test_a_helper_past_its_time_limit_is_killed_and_removed():
    engine = FakeEngine([object_name("ch", "home", "ann", "bio")])
    engine.hang = True
    homes = _homes(engine)
    try:
        with pytest.raises(HelperUnavailable) as e:
            await homes.apply("ann", "bio", "bio/material", "label", b"zip")
    finally:
        homes.close()
    assert "took too long" in str(e.value)
    assert engine.killed == 1 and engine.removed == 1


async def test_deliveries_share_one_copy_of_the_zip():
    names = [object_name("ch", "home", u, "bio") for u in ("ann", "bob")]
    engine = FakeEngine(names)
    for n in range(2):
        engine.outcomes[f"/mnt/homes/{n}"] = {"ok": True, "report": {"added": ["s.txt"]}}
    homes = _homes(engine, concurrency=1)
    try:
        gate = asyncio.ensure_future(homes.apply("ann", "bio", "bio/material", "l", b"Z"))
        reports = await asyncio.gather(gate, homes.apply("bob", "bio", "bio/material", "l", b"Z"))
    finally:
        homes.close()
    assert reports == [{"added": ["s.txt"]}] * 2
    for container in engine.created:
        zips = {item["zip"] for item in container.job["items"]}
        assert len(zips) == 1 and zips.pop().startswith("/mnt/io/in/")
        assert all(m["ReadOnly"] is False for m in container.config["mounts"][1:])


async def test_docker_down_is_a_503_with_a_clear_message():
    import docker

    def no_engine():
        raise docker.errors.DockerException("Error while fetching server API version")

    homes = Homes(SETTINGS, client_factory=no_engine)
    try:
        with pytest.raises(HelperUnavailable) as e:
            await homes.snapshot("ann", "bio", "bio/assignments/hw1")
    finally:
        homes.close()
    assert e.value.status_code == 503 and "try again in a minute" in str(e.value)


# ----- the settings


def test_the_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CLASSHUB_CONTAINER_PREFIX", "ch7")
    monkeypatch.setenv("CLASSHUB_HOMES_BATCH_SIZE", "12")
    monkeypatch.setenv("CLASSHUB_HOMES_MEM_LIMIT", "512M")
    settings = HomesSettings()
    assert settings.homes_deployment == "ch7"
    assert settings.homes_batch_size == 12
    assert settings.homes_concurrency == 2
    assert settings.homes_helper_image == "classhub/homes-helper:latest"
    homes = settings.make_homes("grades", None)
    try:
        assert homes.settings.mem_limit == "512M" and homes.settings.service == "grades"
        assert homes.volume("ann", "bio") == object_name("ch7", "home", "ann", "bio")
    finally:
        homes.close()


@pytest.mark.parametrize(
    "trait, value",
    [
        ("homes_batch_size", 0),
        ("homes_concurrency", 500),
        ("homes_mem_limit", "lots"),
        ("homes_cpu_limit", 0.0),
        ("homes_seconds_per_home", -1.0),
        ("homes_helper_image", "two words"),
    ],
)
def test_bad_settings_are_refused(trait, value):
    with pytest.raises(TraitError, match=trait):
        HomesSettings(**{trait: value})


def test_a_bad_number_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("CLASSHUB_HOMES_CONCURRENCY", "two")
    with pytest.raises(TraitError, match="CLASSHUB_HOMES_CONCURRENCY"):
        HomesSettings().homes_concurrency  # noqa: B018
