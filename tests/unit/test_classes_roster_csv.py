"""Roster CSV import: parsing, per-row report, all or nothing (no database, no hub)."""

import pytest

from services.classes import roster_csv as rc

pytestmark = pytest.mark.unit


def parse(text, max_rows=100):
    return rc.parse_roster_csv(text, max_rows=max_rows)


def report(text, hub_users=(), enrolled=()):
    return rc.build_report(parse(text), hub_users=set(hub_users), enrolled=set(enrolled))


def statuses(rep):
    return {(r.line, r.username): r.status for r in rep.rows}


def test_plain_file():
    rows = parse("username\nalice\nbob\n")
    assert [(r.line, r.username, r.error) for r in rows] == [(2, "alice", ""), (3, "bob", "")]


def test_bom_crlf_blank_lines_spaces_and_trailing_cells():
    rows = parse("\ufeffUsername\r\n Alice \r\n\r\nbob,\r\n,,\r\ncarol , ,\r\n")
    assert [r.username for r in rows] == ["alice", "bob", "carol"]
    assert all(not r.error for r in rows)


def test_no_trailing_newline_and_quoted_cells():
    assert [r.username for r in parse('username\n"alice"\nbob')] == ["alice", "bob"]


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("name\nalice\n", "header 'username'"),
        ("username,role\nalice,student\n", "one column"),
        ("alice\nbob\n", "header 'username'"),
        ("username\n\n", "no usernames"),
    ],
)
def test_file_level_errors(text, match):
    with pytest.raises(rc.RosterFileError, match=match):
        parse(text)


def test_file_errors_are_400():
    assert rc.RosterFileError("x").status_code == 400


def test_too_many_rows():
    with pytest.raises(rc.RosterFileError, match="more than 2"):
        parse("username\na\nb\nc\n", max_rows=2)


def test_malformed_lines():
    rows = parse("username\nalice,bob\na/b\n-x\nok\n")
    errors = {r.line: r.error for r in rows if r.error}
    assert errors[2] == "expected one username per line"
    assert "slash" in errors[3]
    assert "start with" in errors[4]
    assert 5 not in errors


def test_duplicates_point_at_the_first_line():
    rows = parse("username\nalice\nbob\nALICE\n")
    assert rows[2].duplicate_of == 2
    assert rows[2].username == "alice"


def test_good_import_is_applied_and_skips_harmless_rows():
    rep = report(
        "username\nalice\nbob\nalice\ncarol\n",
        hub_users={"alice", "bob", "carol"},
        enrolled={"carol"},
    )
    assert rep.applied
    assert rep.to_add == ["alice", "bob"]
    assert statuses(rep) == {
        (2, "alice"): "added",
        (3, "bob"): "added",
        (4, "alice"): "duplicate",
        (5, "carol"): "already_enrolled",
    }
    out = rep.as_json()
    assert out["applied"] is True
    assert out["added"] == ["alice", "bob"]
    assert out["counts"]["duplicate"] == 1
    assert "2 student(s) added, 2 line(s) skipped" in out["message"]


def test_one_unknown_user_rejects_everything():
    rep = report("username\nalice\nghost\n", hub_users={"alice"})
    assert not rep.applied
    assert rep.to_add == []
    assert statuses(rep) == {(2, "alice"): "valid", (3, "ghost"): "unknown_user"}
    ghost = next(r for r in rep.rows if r.username == "ghost")
    assert "not a user of this hub" in ghost.message
    out = rep.as_json()
    assert out["added"] == []
    assert "Nothing was imported: 1 line(s) have errors" in out["message"]


def test_one_malformed_line_rejects_everything():
    rep = report("username\nalice\nbad name\n", hub_users={"alice"})
    assert not rep.applied
    assert statuses(rep)[(3, "bad name")] == "malformed"


def test_every_problem_is_reported_at_once():
    rep = report(
        "username\nalice\nalice\nx,y\nghost\nbob\n",
        hub_users={"alice", "bob"},
        enrolled={"bob"},
    )
    assert [r.status for r in rep.rows] == [
        "valid",
        "duplicate",
        "malformed",
        "unknown_user",
        "already_enrolled",
    ]
