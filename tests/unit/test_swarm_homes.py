"""Students' homes on a Swarm, the services' side (services/base/swarmhomes.py): where the
hub says each home is, one helper service per node, the job and results through the
service's own S3 keys. Stand-ins for the hub, Docker's API and the S3 store; the helper's
own side (homeremote) is tested with a real HTTP store in test_homeremote.py and the whole
on a real Swarm in tests/swarm/test_swarm_stack.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from services.base import swarmhomes
from services.base.homes import HelperSettings, HelperUnavailable, HomeMissing, _Work
from services.base.hubapi import HubConflict
from services.base.swarmhomes import SwarmHomes, SwarmIO, helper_service_spec, run_swarm_helper

pytestmark = pytest.mark.unit

SETTINGS = HelperSettings(
    image="classhub/homes-helper:latest", deployment="ch", service="grades", run="run1"
)


# ----- the helper service's specification


def test_the_helper_service_is_hardened_pinned_to_the_node_and_holds_only_its_url():
    spec = helper_service_spec(
        SETTINGS,
        name="ch-homes-grades-1",
        image="sha256:abc",
        job_url="http://s3:8333/b/helpers/grades/run1/x/job.json?X-Amz-Signature=s",
        homes=[("ch-home-alice-py-1", True), ("ch-home-bob-py-2", False)],
        node="node-a",
        network="classhub-students",
    )
    task = spec["task_template"]
    container = task["ContainerSpec"]
    assert task["Placement"]["Constraints"] == ["node.id==node-a"]
    assert task["RestartPolicy"]["Condition"] == "none"
    assert [n["Target"] for n in task["Networks"]] == ["classhub-students"]
    assert container["User"] == "1000:100" and container["ReadOnly"] is True
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["Command"] == ["python3", "-I", "-m", "classhub_singleuser.homeremote"]
    env = dict(e.split("=", 1) for e in container["Env"])
    assert set(env) == {"HOME", "LANG", "CLASSHUB_HOMES_JOB_URL"}  # no key, no token
    mounts = {m["Target"]: m for m in container["Mounts"]}
    assert mounts["/mnt/homes/0"]["Source"] == "ch-home-alice-py-1"
    assert mounts["/mnt/homes/0"]["ReadOnly"] is True
    assert not mounts["/mnt/homes/1"].get("ReadOnly")
    assert mounts["/tmp"]["Type"] == "tmpfs"  # the job's folder, /tmp/io, is in it
    assert task["Resources"]["Limits"]["Pids"] == SETTINGS.pids_limit
    assert task["Resources"]["Limits"]["MemoryBytes"] >= swarmhomes.MIN_MEMORY
    assert spec["labels"]["classhub.homes-helper.run"] == "run1"


def test_helper_service_names_are_dns_labels():
    long = HelperSettings(image="i", deployment="d" * 60, service="grades", run="r")
    for settings in (SETTINGS, long):
        name = swarmhomes.service_name(settings)
        assert len(name) <= 63 and name[0].isalnum() and name != swarmhomes.service_name(settings)


# ----- one run: job in, service, results out, everything removed


class _Object:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, size):
        for i in range(0, len(self.data), size):
            yield self.data[i : i + size]

    def close(self):
        pass

    def release_conn(self):
        pass


class _Store:
    """An S3 bucket in memory: objects by key; a presigned URL is ``METHOD key``."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put_object(self, bucket, key, data, length):
        self.objects[key] = data.read()
        assert len(self.objects[key]) == length

    def presigned_get_object(self, bucket, key, expires):
        return f"GET {key}"

    def presigned_put_object(self, bucket, key, expires):
        return f"PUT {key}"

    def stat_object(self, bucket, key):
        from minio.error import S3Error

        if key not in self.objects:
            raise S3Error(None, "NoSuchKey", "no", key, "r", "h", bucket)
        return SimpleNamespace(size=len(self.objects[key]))

    def get_object(self, bucket, key):
        return _Object(self.objects[key])

    def list_objects(self, bucket, prefix, recursive=False):
        return [SimpleNamespace(object_name=k) for k in list(self.objects) if k.startswith(prefix)]

    def remove_objects(self, bucket, keys):
        for k in keys:
            self.objects.pop(k.name, None)
        return iter(())


class _Api:
    """Docker's API: ``create_service`` runs ``helper(job, store)`` as the service would."""

    def __init__(self, store, helper, state="complete"):
        self.store, self.helper, self.state = store, helper, state
        self.created, self.removed = [], []

    def inspect_image(self, name):
        return {"Id": "sha256:abc"}

    def create_service(self, **spec):
        self.created.append(spec)
        env = dict(e.split("=", 1) for e in spec["task_template"]["ContainerSpec"]["Env"])
        job_key = env["CLASSHUB_HOMES_JOB_URL"].removeprefix("GET ")
        job = json.loads(self.store.objects[job_key])
        self.helper(job, self.store)

    def tasks(self, filters):
        return [{"Status": {"State": self.state, "ContainerStatus": {"ExitCode": 3}}}]

    def remove_service(self, name):
        self.removed.append(name)

    def service_logs(self, name, **kwargs):
        return iter([b"homeremote: snapshot: 0 done, 1 failed\n"])


def _io(store):
    return SwarmIO(SimpleNamespace(client=store, bucket="b"), "helpers/grades/", "students")


def _snapshot_helper(job, store):
    """What homeremote does for a snapshot job: a zip and a result line per item."""
    lines = []
    for item in job["items"]:
        out = f"{item['id']}.zip"
        store.objects[job["outputs"][out].removeprefix("PUT ")] = b"zip of " + item["home"].encode()
        lines.append(json.dumps({"id": item["id"], "ok": True}))
    store.objects[job["outputs"]["results.jsonl"].removeprefix("PUT ")] = "\n".join(lines).encode()


def test_a_run_puts_the_job_runs_the_service_takes_the_outputs_and_leaves_nothing():
    store = _Store()
    api = _Api(store, _snapshot_helper)
    job = {"version": 1, "op": "snapshot", "out": "/tmp/io/out", "items": []}
    job["items"] = [{"id": "3", "home": "/mnt/homes/0", "folder": "py/assignments/a"}]
    run = run_swarm_helper(
        SimpleNamespace(api=api),
        _io(store),
        SETTINGS,
        job,
        {},
        [("ch-home-alice-py-1", True)],
        {"3.zip": 1000},
        "node-a",
        poll=0,
    )
    assert run.exit_code == 0
    assert json.loads(run.results) == {"id": "3", "ok": True}
    assert run.outputs["3.zip"].read() == b"zip of /mnt/homes/0"
    assert api.removed == [api.created[0]["name"]]
    assert store.objects == {}  # the job, its inputs and outputs are gone


def test_outputs_over_their_cap_are_left_behind_and_a_failed_task_reports_its_exit():
    store = _Store()
    api = _Api(store, _snapshot_helper, state="failed")
    job = {"version": 1, "op": "snapshot", "out": "/tmp/io/out", "items": []}
    job["items"] = [{"id": "0", "home": "/mnt/homes/0", "folder": "f"}]
    run = run_swarm_helper(
        SimpleNamespace(api=api),
        _io(store),
        SETTINGS,
        job,
        {},
        [("v", True)],
        {"0.zip": 5},
        "node-a",
        poll=0,
    )
    assert run.exit_code == 3 and "0.zip" not in run.outputs
    assert "homeremote: snapshot: 0 done" in run.stderr  # its own words, for the log
    assert store.objects == {} and api.removed


def test_an_apply_job_gets_its_input_through_a_url():
    store = _Store()
    seen = {}

    def helper(job, store_):
        seen["inputs"] = {
            n: store_.objects[u.removeprefix("GET ")] for n, u in job["inputs"].items()
        }
        store_.objects[job["outputs"]["results.jsonl"].removeprefix("PUT ")] = b""

    api = _Api(store, helper)
    name = "a" * 64 + ".zip"
    job = {"version": 1, "op": "apply", "out": "/tmp/io/out", "items": []}
    run_swarm_helper(
        SimpleNamespace(api=api), _io(store), SETTINGS, job, {name: b"zipdata"}, [], {}, "n", poll=0
    )
    assert seen["inputs"] == {name: b"zipdata"}
    assert set(json.loads(json.dumps(api.created[0]["labels"]))) >= {"classhub.homes-helper"}


# ----- the batch: where each home is, one service per node


class _Hub:
    def __init__(self, nodes):
        self.nodes = nodes
        self.asked = []

    async def request(self, method, path, body=None, timeout=None):
        self.asked.append((method, path, body))
        if method == "GET":
            return {"volumes": ["ch-home-a"]}
        user = path.split("/")[3]
        answer = self.nodes[user]
        if isinstance(answer, Exception):
            raise answer
        return {"node": answer}


def _homes(monkeypatch, nodes, runs):
    def fake_run(client, swarm_io, settings, job, inputs, homes, caps, node, **kw):
        runs.append((node, job, homes, caps))
        lines = []
        for item in job["items"]:
            entries = [{"name": f"on-{node}-{item['home'][-1]}", "kind": "file", "size": 1}]
            lines.append(
                json.dumps(
                    {"id": item["id"], "ok": True, "kind": "folder", "entries": entries, "total": 1}
                )
            )
        return swarmhomes._Run(0, "\n".join(lines).encode(), {}, "")

    monkeypatch.setattr(swarmhomes, "run_swarm_helper", fake_run)
    hub = _Hub(nodes)
    homes = SwarmHomes(
        SETTINGS,
        hub=hub,
        swarm_io=_io(_Store()),
        client_factory=lambda: SimpleNamespace(api=None, close=lambda: None),
    )
    return homes, hub


async def test_a_batch_runs_one_helper_per_node_and_each_home_gets_its_own_answer(monkeypatch):
    runs = []
    nodes = {"alice": "node-a", "bob": "node-b", "carol": "node-a", "dave": ""}
    homes, hub = _homes(monkeypatch, nodes, runs)
    # one batch of four (as the Batcher hands work that arrives together)
    work = [_Work("view", user, "py", homes.volume(user, "py"), folder="") for user in nodes]
    answers = await homes._run_views(work)
    try:
        by_user = dict(zip(nodes, answers, strict=True))
        assert by_user["alice"].entries[0]["name"] == "on-node-a-0"
        assert by_user["carol"].entries[0]["name"] == "on-node-a-1"
        assert by_user["bob"].entries[0]["name"] == "on-node-b-0"
        assert isinstance(by_user["dave"], HomeMissing)
        assert sorted(r[0] for r in runs) == ["node-a", "node-b"]
        for _node, _job, mounted, _caps in runs:
            assert all(read_only for _volume, read_only in mounted)  # a view only reads
        # a read never asks the hub to pin a home
        assert {json.dumps(b) for m, _p, b in hub.asked if m == "POST"} == {'{"write": false}'}
    finally:
        homes.close()


async def test_a_delivery_asks_for_the_homes_node_to_write(monkeypatch):
    runs = []
    homes, hub = _homes(monkeypatch, {"alice": "node-a"}, runs)

    def fake_run(client, swarm_io, settings, job, inputs, mounted, caps, node, **kw):
        runs.append((node, job, mounted, inputs))
        line = {"id": job["items"][0]["id"], "ok": True, "report": {"added": ["x"]}}
        return swarmhomes._Run(0, json.dumps(line).encode(), {}, "")

    monkeypatch.setattr(swarmhomes, "run_swarm_helper", fake_run)
    try:
        report = await homes.apply("alice", "py", "py/material", "label", b"zipbytes")
        assert report == {"added": ["x"]}
        assert hub.asked[-1] == ("POST", "/classhub/swarm-homes/alice/py", {"write": True})
        (node, job, mounted, inputs) = runs[0]
        assert (
            node == "node-a" and mounted[0][1] is False and list(inputs.values()) == [b"zipbytes"]
        )
        assert job["items"][0]["zip"] == f"/tmp/io/in/{next(iter(inputs))}"
    finally:
        homes.close()


async def test_a_server_starting_or_a_node_out_of_service_is_try_again_with_the_hubs_words(
    monkeypatch,
):
    busy = HubConflict(409, "POST", "/x", "The class server of alice is starting.")
    homes, _ = _homes(monkeypatch, {"alice": busy}, [])
    try:
        with pytest.raises(HelperUnavailable, match="starting") as failed:
            await homes.view("alice", "py", "")
        assert failed.value.status_code == 503
        assert await homes.existing() == {"ch-home-a"}
    finally:
        homes.close()


async def test_without_an_s3_identity_a_look_into_a_home_is_not_offered(monkeypatch):
    homes = SwarmHomes(SETTINGS, hub=_Hub({}), swarm_io=None, client_factory=lambda: None)
    try:
        with pytest.raises(swarmhomes.HomesUnsupported) as refused:
            await homes.view("alice", "py", "")
        assert refused.value.status_code == 501
    finally:
        homes.close()


def test_make_homes_chooses_the_swarm_helpers_from_the_setting(monkeypatch):
    from services.base.homesapp import HomesSettings

    monkeypatch.setenv("CLASSHUB_HOMES_SWARM", "1")
    monkeypatch.setenv("CLASSHUB_STUDENT_NETWORK", "classhub-students")
    settings = HomesSettings()
    objects = SimpleNamespace(client=_Store(), bucket="b")
    homes = settings.make_homes("grades", None, hub=_Hub({}), objects=objects)
    try:
        assert isinstance(homes, SwarmHomes)
        assert homes.swarm_io.prefix == "helpers/grades/"
        assert homes.swarm_io.network == "classhub-students"
    finally:
        homes.close()
    monkeypatch.setenv("CLASSHUB_HOMES_SWARM", "0")
    plain = HomesSettings().make_homes("grades", None)
    try:
        assert not isinstance(plain, SwarmHomes)
    finally:
        plain.close()
