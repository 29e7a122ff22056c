"""A teacher's class roles against JupyterHub 6.1's own ORM, role sync and scope checks
(an in-memory SQLite hub database, no server): the scopes name exactly the students'
class servers, follow roster and role changes, and an existing role's scopes really are
replaced when JupyterHub syncs the roles the authenticator returns."""

import pytest
from jupyterhub import orm, scopes
from jupyterhub import roles as hubroles
from jupyterhub.user import User

from authenticator import JWTAuthenticator
from authenticator.roles import roles_for

pytestmark = pytest.mark.unit


@pytest.fixture
def hub():
    db = orm.new_session_factory("sqlite:///:memory:")()
    auth = JWTAuthenticator()
    for role in auth.roles().values():
        hubroles.create_role(db, dict(role))
    settings = {"config_role_names": set()}

    def person(name, role=None):
        u = orm.User(name=name, admin=role == "admin")
        db.add(u)
        db.commit()
        user = User(u, settings)
        if role:
            user.sync_roles(roles_for(role, auth.roles()))
        return user

    def group(name, members):
        g = orm.Group.find(db, name) or orm.Group(name=name)
        db.add(g)
        g.users = [m.orm_user for m in members]
        db.commit()
        return g

    return db, auth, person, group


def may(user, scope):
    parsed = scopes.parse_scopes(scopes.get_scopes_for(user.orm_user))
    return scopes.has_scope(scope, parsed, db=user.db)


def refresh(auth, user):
    """What JupyterHub does with refresh_user's answer: sync the roles it names."""
    update = auth._teacher_roles_update(user)
    if update:
        user.sync_roles(update["roles"])
    return update


def test_class_roles_follow_the_roster_and_the_members_roles(hub):
    db, auth, person, group = hub
    tina = person("tina", "teacher")
    amy, bob, cy = (person(n, "student") for n in ("amy", "bob", "cy"))
    boss, tom, newbie = person("boss", "admin"), person("tom", "teacher"), person("newbie")
    group("teachers-phy", [tina])
    group("class-phy", [amy, bob, boss, tom, newbie])
    group("class-chem", [amy, cy])  # tina does not teach chem

    assert refresh(auth, tina) is not None
    assert refresh(auth, tina) is None, "nothing changed: no second sync"
    for action in ("start", "delete", "read", "access"):
        assert may(tina, f"{action}:servers!server=amy/phy")
    for server in ("amy/", "amy/chem", "cy/chem", "boss/phy", "tom/phy", "newbie/phy"):
        assert not may(tina, f"access:servers!server={server}"), server
        assert not may(tina, f"start:servers!server={server}"), server
    assert not may(tina, "read:users!user=amy") and not may(tina, "list:users")
    assert not may(tina, "read:groups!group=class-phy")

    # the roster shrinks: the same role name, fewer scopes, really replaced in the hub
    group("class-phy", [amy, boss, tom, newbie])
    assert refresh(auth, tina) is not None
    assert "access:servers!server=bob/phy" not in orm.Role.find(db, "teacher-phy").scopes
    assert not may(tina, "access:servers!server=bob/phy")
    assert may(tina, "access:servers!server=amy/phy")

    # a student who signs in as a teacher from now on is out at the next refresh
    amy.sync_roles(roles_for("teacher", auth.roles()))
    refresh(auth, tina)
    assert not may(tina, "access:servers!server=amy/phy")
    # the member who never signed in becomes a student: in
    newbie.sync_roles(roles_for("student", auth.roles()))
    refresh(auth, tina)
    assert may(tina, "access:servers!server=newbie/phy")
    # the teacher stops teaching the class: the role goes
    group("teachers-phy", [])
    refresh(auth, tina)
    assert "teacher-phy" not in {r.name for r in tina.orm_user.roles}
    assert not may(tina, "access:servers!server=newbie/phy")


def test_a_role_changed_by_another_teacher_of_the_class_is_caught(hub):
    """teacher-<code> is shared by a class's teachers; each compares what it holds."""
    db, auth, person, group = hub
    tina, tom = person("tina", "teacher"), person("tom", "teacher")
    amy, bob = person("amy", "student"), person("bob", "student")
    group("teachers-phy", [tina, tom])
    group("class-phy", [amy])
    refresh(auth, tina)
    refresh(auth, tom)
    group("class-phy", [amy, bob])
    refresh(auth, tom)  # tom's refresh widens the shared role ...
    group("class-phy", [amy])
    # ... tina's signature is back to the one she cached, but the role she holds is not
    assert refresh(auth, tina) is not None
    assert not may(tina, "access:servers!server=bob/phy")
    assert not may(tom, "access:servers!server=bob/phy")


def test_students_and_admins_are_never_touched(hub):
    _, auth, person, group = hub
    amy, boss = person("amy", "student"), person("boss", "admin")
    group("teachers-phy", [amy, boss])
    assert auth._teacher_roles_update(amy) is None
    assert auth._teacher_roles_update(boss) is None


def test_a_class_group_deleted_and_made_again_is_read_again(hub):
    """The class groups are kept between requests; a deleted one is not trusted."""
    db, auth, person, group = hub
    tina, amy, bob = person("tina", "teacher"), person("amy", "student"), person("bob", "student")
    group("teachers-phy", [tina])
    group("class-phy", [amy])
    refresh(auth, tina)
    assert may(tina, "access:servers!server=amy/phy")
    db.delete(orm.Group.find(db, "class-phy"))
    db.commit()
    refresh(auth, tina)
    assert not may(tina, "access:servers!server=amy/phy")
    group("class-phy", [bob])
    refresh(auth, tina)
    assert may(tina, "access:servers!server=bob/phy")
    assert not may(tina, "access:servers!server=amy/phy")
