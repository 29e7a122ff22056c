"""Who may do what with a class: every rule, tried from the right and the wrong side."""

import pytest

from services.base.errors import Forbidden
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
