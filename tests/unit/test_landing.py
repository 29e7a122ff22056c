"""Where a person lands after sign-in and whether they may have a personal server
(common.landing), the spawner's setting and refusal, and what hub.config.configure_landing
sets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets.config import Config

from common.landing import MY_CLASSES, ClassChoice, landing_path, may_start_default_server
from common.web.nav import ADMIN, ROLES, STUDENT, TEACHER

pytestmark = pytest.mark.unit


def land(role, *codes, archived=(), allowed=False, user="sam"):
    classes = [ClassChoice(c, archived=c in archived) for c in codes]
    return landing_path(user, role, classes, student_default_server=allowed)


def test_a_student_with_one_class_lands_in_its_server():
    assert land(STUDENT, "bio") == "hub/spawn/sam/bio"


def test_names_in_the_path_are_quoted():
    assert land(STUDENT, "b o", user="a/b") == "hub/spawn/a%2Fb/b%20o"


@pytest.mark.parametrize("allowed", [False, True])
def test_a_student_with_several_classes_lands_on_my_classes(allowed):
    assert land(STUDENT, "bio", "geo", allowed=allowed) == MY_CLASSES == "services/classes/"


def test_archived_classes_do_not_count():
    assert land(STUDENT, "bio", "old", archived=("old",)) == "hub/spawn/sam/bio"
    assert land(STUDENT, "old", archived=("old",)) == MY_CLASSES


def test_the_same_class_twice_is_one_class():
    assert land(STUDENT, "bio", "bio") == "hub/spawn/sam/bio"


def test_a_student_without_a_class():
    assert land(STUDENT) == MY_CLASSES
    # when the admin allows personal servers, their own server
    assert land(STUDENT, allowed=True) == "hub/spawn"


@pytest.mark.parametrize("role", [TEACHER, ADMIN])
@pytest.mark.parametrize("codes", [(), ("bio",), ("bio", "geo")])
def test_teachers_and_admins_land_on_my_classes(role, codes):
    assert land(role, *codes) == MY_CLASSES
    assert land(role, *codes, allowed=True) == MY_CLASSES


@pytest.mark.parametrize("role", ROLES)
def test_who_may_start_a_personal_server(role):
    assert may_start_default_server(role, student_default_server=True)
    assert may_start_default_server(role, student_default_server=False) == (role != STUDENT)


def test_unknown_roles_are_refused():
    with pytest.raises(ValueError, match="unknown role"):
        may_start_default_server("guest", student_default_server=True)
    with pytest.raises(ValueError, match="unknown role"):
        land("guest", "bio")


# ----- the spawner's setting -----


@pytest.mark.parametrize(
    "value, expected", [("", False), ("0", False), ("no", False), ("1", True), ("true", True)]
)
def test_student_default_server_from_the_environment(monkeypatch, value, expected):
    from spawner import ClassroomSpawner

    monkeypatch.setenv("CLASSHUB_STUDENT_DEFAULT_SERVER", value)
    assert ClassroomSpawner().student_default_server is expected


def fake_user(*roles, admin=False):
    orm_user = SimpleNamespace(roles=[SimpleNamespace(name=r) for r in roles])
    return SimpleNamespace(orm_user=orm_user, admin=admin, name="sam")


@pytest.mark.parametrize(
    "roles, admin, allowed, refused",
    [
        (("user", "classhub-student"), False, False, True),
        (("user",), False, False, True),  # no classhub role yet: a student
        (("user", "classhub-student"), False, True, False),
        (("user", "classhub-teacher"), False, False, False),
        (("user", "admin"), True, False, False),
    ],
)
def test_a_students_default_server_is_refused_with_403(roles, admin, allowed, refused):
    from spawner import ClassroomSpawner
    from spawner.readiness import SpawnError

    spawner = ClassroomSpawner(student_default_server=allowed)
    spawner.user = fake_user(*roles, admin=admin)  # no hub behind this test
    if refused:
        with pytest.raises(SpawnError) as e:
            spawner._check_default_server()
        assert e.value.status_code == 403 and "My classes" in e.value.jupyterhub_message
    else:
        spawner._check_default_server()


# ----- the hub's configuration -----


def test_configure_landing():
    from hub.config import configure_landing
    from hub.landing import ServerOffers, default_url

    c = Config()
    c.JupyterHub.template_vars = {"kept": 1}
    configure_landing(c)
    configure_landing(c)  # idempotent
    assert c.JupyterHub.default_url is default_url
    assert isinstance(c.JupyterHub.template_vars["classhub_offers"], ServerOffers)
    assert c.JupyterHub.template_vars["kept"] == 1
    routes = [h[0] for h in c.JupyterHub.extra_handlers]
    assert routes == ["/classhub/landing"]


def test_default_url_only_for_a_signed_in_person():
    from hub.landing import default_url

    hub = SimpleNamespace(base_url="/base/hub/")
    assert default_url(SimpleNamespace(current_user=None, hub=hub)) == ""
    signed_in = SimpleNamespace(current_user=object(), hub=hub)
    assert default_url(signed_in) == "/base/hub/classhub/landing"


@pytest.mark.parametrize(
    "roles, admin, allowed, default",
    [
        (["classhub-student"], False, False, False),
        (["classhub-student"], False, True, True),
        (["classhub-teacher"], False, False, True),
        (["admin"], True, False, True),
    ],
)
def test_the_home_page_offers_only_what_the_person_may_start(roles, admin, allowed, default):
    from hub.landing import ServerOffers

    spawner = SimpleNamespace(student_default_server=allowed, class_servers_only=True)
    user = SimpleNamespace(
        roles=[SimpleNamespace(name=r) for r in roles],
        admin=admin,
        spawner=spawner,
        groups=[],
        orm_user=SimpleNamespace(orm_spawners={}),
    )
    assert ServerOffers()(user) == {"default": default, "named": False, "refused": {}}
    assert ServerOffers()(None) == {"default": False, "named": False, "refused": {}}
