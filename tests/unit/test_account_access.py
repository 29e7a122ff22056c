"""Who may do what to which local account (authenticator/account_access.py)."""

import pytest

from authenticator.account_access import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    Actor,
    Target,
    like_pattern,
    may_act,
    search_params,
    self_lockout,
)

pytestmark = pytest.mark.unit

ADMIN = Actor("root", "admin")
TEACHER = Actor("t1", "teacher", frozenset({"bio1", "chem2"}))
STUDENT = Actor("s1", "student")


# ----- admins


@pytest.mark.parametrize("action", ["create", "password", "role", "disable", "enable", "delete"])
def test_an_admin_may_do_anything_to_another_account(action):
    for role in ("admin", "teacher", "student"):
        assert may_act(ADMIN, Target("other", role), action, new_role="student") is None


@pytest.mark.parametrize(
    ("action", "new_role", "words"),
    [
        ("disable", None, "cannot disable your own"),
        ("delete", None, "cannot delete your own"),
        ("role", "teacher", "cannot demote your own"),
        ("role", "student", "cannot demote your own"),
    ],
)
def test_an_admin_cannot_lock_themself_out(action, new_role, words):
    problem = may_act(ADMIN, Target("root", "admin"), action, new_role=new_role)
    assert problem is not None and words in problem


def test_an_admin_may_change_their_own_password_enable_and_stay_admin():
    me = Target("root", "admin")
    assert self_lockout(ADMIN, me, "password") is None
    assert self_lockout(ADMIN, me, "enable") is None
    assert self_lockout(ADMIN, me, "role", "admin") is None


# ----- teachers (the attacks)


def test_a_teacher_may_create_a_student_for_a_class_they_teach():
    assert may_act(TEACHER, Target("new", None), "create", in_class="bio1") is None
    assert (
        may_act(TEACHER, Target("new", None), "create", new_role="student", in_class="chem2")
        is None
    )


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_a_teacher_cannot_create_teachers_or_admins(role):
    problem = may_act(TEACHER, Target("new", None), "create", new_role=role, in_class="bio1")
    assert problem and "student accounts only" in problem


@pytest.mark.parametrize("in_class", ["phys3", None, ""])
def test_a_teacher_cannot_create_students_for_other_classes(in_class):
    problem = may_act(TEACHER, Target("new", None), "create", in_class=in_class)
    assert problem and "classes you teach" in problem


def test_a_teacher_cannot_take_over_an_existing_account_by_creating_it():
    for role in ("student", "teacher", "admin"):
        problem = may_act(TEACHER, Target("old", role), "create", in_class="bio1")
        assert problem and "exists already" in problem


def test_a_teacher_may_reset_only_their_own_classes_students_passwords():
    mine = Target("s2", "student", frozenset({"bio1"}))
    assert may_act(TEACHER, mine, "password") is None
    refused = [
        Target("s3", "student", frozenset({"phys3"})),  # another class's student
        Target("s4", "student"),  # in no class
        Target("root", "admin", frozenset({"bio1"})),  # an admin enrolled in the class
        Target("t2", "teacher", frozenset({"bio1"})),  # a teacher enrolled in the class
        Target("ghost", None, frozenset()),  # no such account
    ]
    messages = {may_act(TEACHER, target, "password") for target in refused}
    # one message for all: it never tells whether an account exists or where it is
    assert len(messages) == 1 and None not in messages


@pytest.mark.parametrize("action", ["role", "disable", "enable", "delete"])
def test_a_teacher_cannot_change_roles_disable_or_delete_anyone(action):
    mine = Target("s2", "student", frozenset({"bio1"}))
    assert may_act(TEACHER, mine, action, new_role="admin") is not None


@pytest.mark.parametrize("action", ["create", "password", "role", "disable", "delete"])
def test_a_student_may_do_nothing(action):
    assert may_act(STUDENT, Target("s1", "student"), action, in_class="bio1") is not None


def test_an_unknown_action_is_refused():
    assert "unknown action" in may_act(ADMIN, Target("x", "student"), "promote")


# ----- search


def test_search_params_defaults_and_limits():
    assert search_params(None, None, None) == ("", 0, PAGE_SIZE)
    assert search_params("  ali ", "100", "20") == ("ali", 100, 20)
    assert search_params("", "", str(MAX_PAGE_SIZE))[2] == MAX_PAGE_SIZE


@pytest.mark.parametrize(
    ("q", "offset", "limit", "words"),
    [
        ("x" * 129, "0", "10", "too long"),
        ("", "-1", "10", "negative"),
        ("", "0", "0", "between 1 and"),
        ("", "0", str(MAX_PAGE_SIZE + 1), "between 1 and"),
        ("", "ten", "10", "whole numbers"),
        ("", "0", "1.5", "whole numbers"),
    ],
)
def test_search_params_refuse_bad_input(q, offset, limit, words):
    with pytest.raises(ValueError, match=words):
        search_params(q, offset, limit)


def test_like_pattern_matches_literally():
    assert like_pattern("Ali") == "%ali%"
    assert like_pattern("a_b%c\\") == "%a\\_b\\%c\\\\%"
