"""Who may do what with a class: every rule, tried from the right and the wrong side."""

import pytest

from common.errors import Forbidden
from services.classes import rules as r

pytestmark = pytest.mark.unit

BIO = {"code": "bio", "teachers": ["tina"], "students": ["sam", "sue"]}
CHEM = {"code": "chem", "teachers": ["tom"], "students": ["sid"]}

ADMIN = r.Actor("root", admin=True)
TINA = r.Actor("tina")
TOM = r.Actor("tom")
SAM = r.Actor("sam")
SID = r.Actor("sid")
NOBODY = r.Actor("nobody")


def test_actor_from_hub_model():
    assert r.Actor.from_model({"name": "a", "admin": True}) == r.Actor("a", True)
    assert r.Actor.from_model({"name": "b"}) == r.Actor("b", False)


@pytest.mark.parametrize(
    "actor,expected",
    [
        (ADMIN, "admin"),
        (TINA, "teacher"),
        (SAM, "student"),
        (TOM, None),
        (SID, None),
        (NOBODY, None),
    ],
)
def test_relation(actor, expected):
    assert r.relation(actor, BIO) == expected


def test_only_admins_create_classes():
    r.require_admin(ADMIN, "create classes")
    for actor in (TINA, SAM, NOBODY):
        with pytest.raises(Forbidden, match="Only an administrator can create classes"):
            r.require_admin(actor, "create classes")


def test_seeing_a_class():
    assert r.require_see(SAM, BIO) == "student"
    assert r.require_see(TINA, BIO) == "teacher"
    for outsider in (TOM, SID, NOBODY):
        assert not r.can_see(outsider, BIO)
        with pytest.raises(Forbidden, match="not a teacher or student of class 'bio'"):
            r.require_see(outsider, BIO)


def test_roster_is_for_teachers_and_admins_only():
    assert r.can_manage(TINA, BIO) and r.can_manage(ADMIN, BIO)
    for actor in (SAM, TOM, SID, NOBODY):
        assert not r.can_manage(actor, BIO)
        with pytest.raises(Forbidden, match="Only the teachers of class 'bio'"):
            r.require_manage(actor, BIO, "see its roster")


def test_teacher_edits_own_class_fields_only():
    assert r.require_edit(TINA, BIO, {"name", "term", "environment", "archived"}) == "teacher"
    with pytest.raises(Forbidden, match="cannot change teachers .*ask an administrator"):
        r.require_edit(TINA, BIO, {"name", "teachers"})
    with pytest.raises(Forbidden, match="Only the teachers of class 'chem'"):
        r.require_edit(TINA, CHEM, {"name"})


def test_admin_edits_teachers_but_never_the_code():
    assert r.require_edit(ADMIN, CHEM, {"teachers", "name"}) == "admin"
    with pytest.raises(Forbidden, match="cannot change code"):
        r.require_edit(ADMIN, CHEM, {"code"})


def test_students_edit_nothing():
    with pytest.raises(Forbidden):
        r.require_edit(SAM, BIO, {"name"})


def test_server_control():
    assert r.require_server_control(TINA, BIO, "sam") == "teacher"
    assert r.require_server_control(TINA, BIO, "tina") == "teacher"  # their own class server
    assert r.require_server_control(ADMIN, BIO, "sue") == "admin"
    assert r.require_server_control(SAM, BIO, "sam") == "student"
    with pytest.raises(Forbidden, match="sid is not on the roster"):
        r.require_server_control(TINA, BIO, "sid")
    with pytest.raises(Forbidden, match="other people's servers"):
        r.require_server_control(SAM, BIO, "sue")
    with pytest.raises(Forbidden, match="other people's servers"):
        r.require_server_control(TOM, BIO, "sam")
    with pytest.raises(Forbidden):
        r.require_server_control(SID, BIO, "sid")


@pytest.mark.parametrize(
    "model, role",
    [
        ({"roles": ["user", "classhub-student"]}, "student"),
        ({"roles": ["user", "classhub-teacher"]}, "teacher"),
        ({"roles": ["user", "admin"]}, "admin"),
        ({"roles": ["user", "classhub-student"], "admin": True}, "admin"),
        ({"roles": ["user", "classhub-student", "classhub-teacher"]}, "teacher"),
        ({"roles": ["user"]}, None),
        ({}, None),
    ],
)
def test_hub_role_from_the_hub_roles(model, role):
    assert r.hub_role(model) == role


def test_teachers_act_only_on_students_admins_on_anyone():
    r.require_student("teacher", "sam", "student", r.ENROL_ONLY)
    for role in ("admin", "teacher", "student", None):
        r.require_student("admin", "x", role, r.ENROL_ONLY)
    with pytest.raises(Forbidden, match="Teachers can enrol only students: boss is an admin"):
        r.require_student("teacher", "boss", "admin", r.ENROL_ONLY)
    with pytest.raises(Forbidden, match="only their students' servers: tom is a teacher"):
        r.require_student("teacher", "tom", "teacher", r.SERVERS_ONLY)
    with pytest.raises(Forbidden, match="never signed in"):
        r.require_student("teacher", "new", None, r.ENROL_ONLY)


def test_a_teacher_controls_no_other_teachers_server():
    both = {"code": "bio", "teachers": ["tina", "tom"], "students": ["sam"]}
    with pytest.raises(Forbidden, match="tom is a teacher of class 'bio'"):
        r.require_server_control(TINA, both, "tom")
    assert r.require_server_control(ADMIN, both, "tom") == "admin"
