"""Who may read and write which area, and keys that never leave their area
(services/files/areas.py, services/base/membership.py)."""

import pytest

from common.errors import Forbidden, NotFound
from services.base.membership import ADMIN, STUDENT, TEACHER, Caller, Membership
from services.base.names import BadName
from services.base.readcache import ReadCache
from services.files.areas import MATERIAL, PRIVATE, Area, material_area, private_area

pytestmark = pytest.mark.unit

QUOTA = 1 << 30

HOSTILE_PATHS = [
    "",
    "/etc/passwd",
    "../other/secret.txt",
    "a/../../b",
    "a/./b",
    "..",
    ".",
    "a//b",
    "a\\..\\b",
    "folder/",
    "a\x00b",
    "a\nb",
    "\u202eexe.txt",
    "zero\u200bwidth",
    " leading",
    "trailing /x",
    ".classhub-meta",
    "sub/.CLASSHUB/x",
    "x" * 256,
    None,
    42,
]


class FakeHub:
    """``get_group`` as the hub client has it, with a real (non-caching) read cache."""

    def __init__(self, groups: dict[str, list[str]]):
        self.groups = groups
        self.reads = ReadCache(0)
        self.asked: list[str] = []

    async def get_group(self, name):
        self.asked.append(name)
        users = self.groups.get(name)
        return None if users is None else {"name": name, "users": list(users)}


@pytest.fixture
def hub():
    return FakeHub(
        {
            "class-bio": ["sam", "alex", "tara"],
            "teachers-bio": ["tara"],
            "class-chem": ["kim"],
            "teachers-chem": [],
        }
    )


@pytest.fixture
def membership(hub):
    return Membership(hub)


def material(code="bio", writable=False):
    return Area(MATERIAL, f"classes/{code}/material/", code, QUOTA, writable)


# ----- Area


@pytest.mark.parametrize("area", [private_area(Caller("sam"), QUOTA), material()])
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_key_refuses_hostile_names(area, path):
    with pytest.raises(BadName):
        area.key(path)


@pytest.mark.parametrize("area", [private_area(Caller("sam"), QUOTA), material()])
@pytest.mark.parametrize(
    "path", ["notes.txt", "week 1/data.csv", "a/b/c/d.ipynb", "caf\u00e9.md", "..hidden", "a..b"]
)
def test_key_stays_inside_the_prefix(area, path):
    key = area.key(path)
    assert key == area.prefix + path
    assert area.path_of(key) == path


def test_key_is_nfc_normalised():
    area = private_area(Caller("sam"), QUOTA)
    assert area.key("cafe\u0301.md") == "users/sam/caf\u00e9.md"


@pytest.mark.parametrize("path", [p for p in HOSTILE_PATHS if p not in ("", "folder/")] + ["a/b//"])
def test_folder_prefix_refuses_hostile_names(path):
    with pytest.raises(BadName):
        material().folder_prefix(path)


def test_folder_prefix():
    area = material()
    assert area.folder_prefix("") == "classes/bio/material/"
    assert area.folder_prefix("week1") == "classes/bio/material/week1/"
    assert area.folder_prefix("week1/") == "classes/bio/material/week1/"
    assert area.folder_prefix("a/b") == "classes/bio/material/a/b/"


@pytest.mark.parametrize(
    "key",
    [
        "users/sam/",  # the prefix itself
        "users/samuel/notes.txt",  # a neighbour sharing the prefix's letters
        "users/alex/notes.txt",
        "classes/bio/material/notes.txt",
        "notes.txt",
        "",
    ],
)
def test_path_of_refuses_keys_outside_the_area(key):
    with pytest.raises(ValueError):
        private_area(Caller("sam"), QUOTA).path_of(key)


def test_labels():
    assert private_area(Caller("sam"), QUOTA).label == "your files"
    assert material("bio").label == "the material of bio"


def test_private_area():
    area = private_area(Caller("sam", admin=True), 12345)
    assert area == Area(PRIVATE, "users/sam/", "sam", 12345, writable=True)


@pytest.mark.parametrize("name", ["Sam", "../sam", "a/b", "", ".", "..", "sa m", 3])
def test_private_area_refuses_bad_usernames(name):
    with pytest.raises(BadName):
        private_area(Caller(name), QUOTA)


def test_key_refuses_keys_longer_than_s3_allows():
    from services.base import names

    user = "a" * 128
    path = "/".join(["x" * 99] * 8) + "/" + "y" * 100  # 900 bytes: a valid path
    assert len(names.validate_path(path).encode()) == 900
    with pytest.raises(BadName):
        names.user_key(user, path)  # the names module refuses it...
    with pytest.raises(BadName):
        private_area(Caller(user), QUOTA).key(path)  # ...the area must too


def test_caller_from_model():
    assert Caller.from_model({"name": "sam"}) == Caller("sam", admin=False)
    assert Caller.from_model({"name": "root", "admin": True}) == Caller("root", admin=True)
    assert Caller.from_model({"name": "x", "admin": None}).admin is False


# ----- Membership


async def test_role_admin(membership, hub):
    assert await membership.role(Caller("root", admin=True), "bio") == ADMIN
    # even in a class that does not exist: admins see every class
    assert await membership.role(Caller("root", admin=True), "nope") == ADMIN
    assert hub.asked == []


async def test_role_teacher(membership):
    # tara is in both groups: the teacher role wins
    assert await membership.role(Caller("tara"), "bio") == TEACHER


async def test_role_student(membership):
    assert await membership.role(Caller("sam"), "bio") == STUDENT
    assert await membership.role(Caller("kim"), "chem") == STUDENT


async def test_role_nobody(membership):
    assert await membership.role(Caller("kim"), "bio") is None
    assert await membership.role(Caller("sam"), "chem") is None
    assert await membership.role(Caller("sam"), "missing") is None  # no such groups


async def test_role_teacher_only_in_teachers_group(hub, membership):
    hub.groups["teachers-chem"] = ["pat"]
    assert await membership.role(Caller("pat"), "chem") == TEACHER


async def test_role_follows_group_changes_with_ttl_zero(hub, membership):
    assert await membership.role(Caller("newbie"), "bio") is None
    hub.groups["class-bio"].append("newbie")
    assert await membership.role(Caller("newbie"), "bio") == STUDENT
    hub.groups["teachers-bio"].append("newbie")
    assert await membership.role(Caller("newbie"), "bio") == TEACHER


@pytest.mark.parametrize("code", ["BIO", "../bio", "bio/x", "", "-bio", "x" * 33])
async def test_role_refuses_bad_codes(membership, hub, code):
    with pytest.raises(BadName):
        await membership.role(Caller("root", admin=True), code)
    assert hub.asked == []


async def test_exists_and_students(membership):
    assert await membership.exists("bio") is True
    assert await membership.exists("missing") is False
    assert await membership.students("bio") == ["alex", "sam", "tara"]
    assert await membership.students("chem") == ["kim"]
    with pytest.raises(NotFound):
        await membership.students("missing")


# ----- material_area


@pytest.mark.parametrize("write", [False, True])
async def test_material_area_not_found_for_outsiders(membership, write):
    with pytest.raises(NotFound) as e:
        await material_area(membership, Caller("kim"), "bio", QUOTA, write=write)
    assert e.value.status_code == 404


async def test_material_area_not_found_for_unknown_class(membership):
    with pytest.raises(NotFound):
        await material_area(membership, Caller("sam"), "missing", QUOTA, write=False)


async def test_material_area_student_reads_but_may_not_write(membership):
    area, role = await material_area(membership, Caller("sam"), "bio", QUOTA, write=False)
    assert role == STUDENT
    assert area == Area(MATERIAL, "classes/bio/material/", "bio", QUOTA, writable=False)
    with pytest.raises(Forbidden) as e:
        await material_area(membership, Caller("sam"), "bio", QUOTA, write=True)
    assert e.value.status_code == 403


@pytest.mark.parametrize("write", [False, True])
async def test_material_area_writable_for_teachers(membership, write):
    area, role = await material_area(membership, Caller("tara"), "bio", 777, write=write)
    assert role == TEACHER
    assert area == Area(MATERIAL, "classes/bio/material/", "bio", 777, writable=True)


async def test_material_area_writable_for_admins(membership):
    area, role = await material_area(
        membership, Caller("root", admin=True), "chem", QUOTA, write=True
    )
    assert role == ADMIN
    assert area.writable is True
    assert area.prefix == "classes/chem/material/"
