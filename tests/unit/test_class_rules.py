"""Class server rules and teacher roles, as plain functions."""

import pytest

from authenticator.class_roles import class_teacher_roles
from spawner.classes import ClassRefused, environment_from_properties, resolve_class

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


def test_teacher_roles_are_scoped_to_each_class_group():
    roles = class_teacher_roles(["teachers-phy", "class-chem", "teachers-bio", "other"])
    assert [r["name"] for r in roles] == ["teacher-bio", "teacher-phy"]
    for r in roles:
        code = r["name"].removeprefix("teacher-")
        for scope in r["scopes"]:
            assert scope.endswith((f"!group=class-{code}", f"!group=teachers-{code}")), scope
        assert f"access:servers!group=class-{code}" in r["scopes"]
    assert class_teacher_roles(["class-phy"]) == []
