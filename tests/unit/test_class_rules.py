"""Class server rules and teacher roles, as plain functions."""

import pytest

from authenticator.class_roles import class_teacher_roles, is_student, rosters
from common.classenv import ClassRefused, environment_from_properties, resolve_class
from common.groups import TEACHERS_PREFIX, codes_of

pytestmark = pytest.mark.unit

PROPS = {"classhub": {"name": "Physics", "image": "img:1", "mem_limit": "2G", "cpu_limit": 1.5}}


def test_environment_comes_from_the_group_properties():
    env = environment_from_properties("phy", PROPS)
    assert (env.image, env.mem_limit, env.cpu_limit, env.archived) == ("img:1", "2G", 1.5, False)
    assert environment_from_properties("phy", {}) is None
    assert environment_from_properties("phy", {"classhub": {"name": "no image"}}) is None


@pytest.mark.parametrize(
    "groups, admin, props, refused",
    [
        ({"class-phy"}, False, PROPS, None),
        ({"teachers-phy"}, False, PROPS, None),
        (set(), True, PROPS, None),
        (set(), False, PROPS, "not enrolled"),
        ({"class-chem"}, False, PROPS, "not enrolled"),
        ({"class-phy"}, False, None, "no class"),
        ({"class-phy"}, False, {"classhub": {**PROPS["classhub"], "archived": True}}, "archived"),
    ],
)
def test_who_may_start_a_class_server(groups, admin, props, refused):
    if refused:
        with pytest.raises(ClassRefused, match=refused):
            resolve_class("phy", member_of=groups, group_properties=props, is_admin=admin)
    else:
        assert resolve_class("phy", member_of=groups, group_properties=props, is_admin=admin)


def test_teacher_roles_name_each_students_class_server_and_nothing_else():
    signature = rosters(
        codes_of(
            ["teachers-phy", "class-chem", "teachers-bio", "other", "teachers-", "teachers-X"],
            TEACHERS_PREFIX,
        ),
        {
            "phy": [("amy", True), ("boss", False), ("bob", True)],
            "bio": [("amy", True)],
            "chem": [("cy", True)],
        },
    )
    assert signature == (("bio", ("amy",)), ("phy", ("amy", "bob")))
    roles = class_teacher_roles(signature)
    assert [r["name"] for r in roles] == ["teacher-bio", "teacher-phy"]
    assert roles[1]["scopes"] == [
        "servers!server=amy/phy",
        "access:servers!server=amy/phy",
        "servers!server=bob/phy",
        "access:servers!server=bob/phy",
    ]
    for role in roles:
        assert all("!server=" in s and "group" not in s for s in role["scopes"])
    # a class without students gives no role at all
    assert class_teacher_roles(rosters(["phy"], {"phy": [("boss", False)]})) == []
    assert class_teacher_roles(rosters(["phy"], {})) == []


@pytest.mark.parametrize(
    "roles, admin, student",
    [
        ({"user", "classhub-student"}, False, True),
        ({"user", "classhub-student"}, True, False),
        ({"user", "classhub-student", "admin"}, False, False),
        ({"user", "classhub-student", "classhub-teacher"}, False, False),
        ({"user", "classhub-teacher"}, False, False),
        ({"user", "admin"}, True, False),
        ({"user"}, False, False),  # never signed in: role unknown
    ],
)
def test_only_a_classhub_student_counts_as_a_student(roles, admin, student):
    assert is_student(roles, admin) is student
