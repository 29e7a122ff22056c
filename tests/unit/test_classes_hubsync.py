"""Class groups at the hub: plans, idempotent sync, reconciliation (with a fake hub)."""

import pytest

from services.base.hubapi import HubAPIError, HubBadRequest, HubConflict
from services.classes.hubsync import GroupSync, group_properties, plan_class, plan_group

pytestmark = pytest.mark.unit

ENV = {"image": "img:1", "cpu_limit": 1.0, "mem_limit": "1G", "idle_timeout": 600}
BIO = {
    "code": "bio",
    "name": "Biology",
    "teachers": ["tina"],
    "students": ["sam", "sue"],
    "environment": ENV,
    "archived": False,
}
PROPS = {
    "code": "bio",
    "name": "Biology",
    "image": "img:1",
    "cpu_limit": 1.0,
    "mem_limit": "1G",
    "idle_timeout": 600,
    "archived": False,
}


def test_group_properties_are_what_the_spawner_reads():
    assert group_properties(BIO) == PROPS
    assert group_properties({**BIO, "archived": True})["archived"] is True


def test_plan_for_a_missing_group():
    plan = plan_group("class-bio", ["sam"], None, PROPS)
    assert plan.create and plan.add == {"sam"} and not plan.remove
    assert plan.properties == {"classhub": PROPS}


def test_plan_keeps_other_properties_and_fixes_members():
    current = {"users": ["sam", "old"], "properties": {"other": 1, "classhub": {"stale": 1}}}
    plan = plan_group("class-bio", ["sam", "sue"], current, PROPS)
    assert not plan.create
    assert plan.add == {"sue"} and plan.remove == {"old"}
    assert plan.properties == {"other": 1, "classhub": PROPS}


def test_plan_is_empty_when_in_step():
    current = {"users": ["sue", "sam"], "properties": {"classhub": PROPS}}
    assert plan_group("class-bio", ["sam", "sue"], current, PROPS).empty
    assert plan_group("teachers-bio", ["tina"], {"users": ["tina"], "properties": {}}).empty


def test_plan_class_names_both_groups():
    plans = plan_class(BIO, {})
    assert [p.name for p in plans] == ["class-bio", "teachers-bio"]
    assert plans[1].add == {"tina"} and plans[1].properties is None


class FakeHub:
    """Groups in a dict; users outside ``users`` are refused like the hub does."""

    def __init__(self, users):
        self.users = set(users)
        self.groups = {}
        self.calls = []
        self.down = False

    async def get_group(self, name):
        g = self.groups.get(name)
        return None if g is None else {"name": name, **g, "users": sorted(g["users"])}

    async def list_groups(self):
        return [await self.get_group(n) for n in self.groups]

    async def create_group(self, name):
        self.calls.append(("create", name))
        if name in self.groups:
            raise HubConflict(409, "POST", name, "exists")
        self.groups[name] = {"users": set(), "properties": {}}

    async def add_group_users(self, name, users):
        self.calls.append(("add", name, tuple(sorted(users))))
        if set(users) - self.users:
            raise HubBadRequest(400, "POST", name, "No such user")
        self.groups[name]["users"] |= set(users)

    async def remove_group_users(self, name, users):
        self.calls.append(("remove", name, tuple(sorted(users))))
        self.groups[name]["users"] -= set(users)

    async def set_group_properties(self, name, props):
        self.calls.append(("props", name))
        self.groups[name]["properties"] = props

    async def existing_users(self, names):
        if self.down:
            raise HubAPIError(503, "GET", "/users", "hub down")
        return set(names) & self.users


class FakeStore:
    def __init__(self, *records):
        self.records = {r["code"]: r for r in records}

    async def get(self, code):
        return self.records.get(code)

    async def list_all(self):
        return [dict(r) for r in self.records.values()]

    async def remove_students(self, code, names, *, now):
        r = self.records[code]
        r["students"] = [n for n in r["students"] if n not in names]
        return dict(r)

    async def update(self, code, changes, *, now):
        self.records[code].update(changes)
        return dict(self.records[code])


async def test_sync_is_idempotent():
    hub = FakeHub({"sam", "sue", "tina"})
    sync = GroupSync(hub, FakeStore(BIO))
    await sync.sync("bio")
    assert hub.groups["class-bio"] == {"users": {"sam", "sue"}, "properties": {"classhub": PROPS}}
    assert hub.groups["teachers-bio"]["users"] == {"tina"}
    hub.calls.clear()
    await sync.sync("bio")
    assert hub.calls == []


async def test_a_recreated_group_gets_the_class_environment_before_its_members():
    """A student is never in a class's group without its environment (the spawner reads
    the class's image and limits from the group's properties)."""
    hub = FakeHub({"sam", "sue", "tina"})
    await GroupSync(hub, FakeStore(BIO)).sync("bio")
    hub.calls.clear()
    del hub.groups["class-bio"]
    await GroupSync(hub, FakeStore(BIO)).reconcile()
    assert hub.calls[:3] == [
        ("create", "class-bio"),
        ("props", "class-bio"),
        ("add", "class-bio", ("sam", "sue")),
    ]


async def test_sync_leaves_out_users_the_hub_does_not_know():
    hub = FakeHub({"sam", "tina"})
    await GroupSync(hub, FakeStore(BIO)).sync("bio")
    assert hub.groups["class-bio"]["users"] == {"sam"}


async def test_reconcile_recreates_deleted_groups_and_leaves_others_alone():
    hub = FakeHub({"sam", "sue", "tina"})
    hub.groups["unrelated"] = {"users": {"sam"}, "properties": {"x": 1}}
    hub.groups["class-gone"] = {"users": {"sue"}, "properties": {}}
    sync = GroupSync(hub, FakeStore(BIO))
    report = await sync.reconcile()
    assert report.changed == ["class-bio", "teachers-bio"]
    del hub.groups["class-bio"]
    hub.groups["teachers-bio"]["users"].add("sam")
    report = await sync.reconcile()
    assert report.changed == ["class-bio", "teachers-bio"]
    assert hub.groups["class-bio"]["users"] == {"sam", "sue"}
    assert hub.groups["teachers-bio"]["users"] == {"tina"}
    assert hub.groups["unrelated"] == {"users": {"sam"}, "properties": {"x": 1}}
    assert hub.groups["class-gone"]["users"] == {"sue"}
    assert (await sync.reconcile()).summary() == "1 class(es): hub groups already in step"


async def test_reconcile_takes_deleted_accounts_off_rosters_and_teacher_lists():
    """An account deleted outside the Accounts page (JupyterHub's admin page or API,
    classhub-user remove): the next reconciliation takes it off every class."""
    hub = FakeHub({"sam", "sue", "tina", "tom"})
    chem = {**BIO, "code": "chem", "teachers": ["tina", "tom"], "students": ["sue"]}
    store = FakeStore(BIO, chem)
    sync = GroupSync(hub, store, clock=lambda: 1.0)
    await sync.reconcile()
    hub.users -= {"sue", "tom"}
    # the hub down: nothing is taken off (only a definite "no such user" counts)
    hub.down = True
    with pytest.raises(HubAPIError):
        await sync.reconcile()
    assert store.records["bio"]["students"] == ["sam", "sue"]
    hub.down = False
    report = await sync.reconcile()
    assert report.gone == {"sue": ["bio", "chem"], "tom": ["chem"]}
    assert "deleted accounts taken off their classes: sue (bio, chem); tom (chem)" in (
        report.summary()
    )
    assert store.records["bio"]["students"] == ["sam"]
    assert store.records["chem"]["students"] == []
    assert store.records["chem"]["teachers"] == ["tina"]
    assert hub.groups["teachers-chem"]["users"] == {"tina"}
    assert (await sync.reconcile()).gone == {}
