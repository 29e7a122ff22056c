"""CSV account import: parsing, every row error, file-level errors, report (no database)."""

import re

import pytest

from authenticator import accounts_csv as ac
from authenticator.account_rules import (
    MAX_PASSWORD_LENGTH,
    AccountError,
    check_password,
    check_role,
    generate_password,
)

pytestmark = pytest.mark.unit

GOOD_PW = "a-good-password"


def parse(text, **kw):
    return ac.parse_accounts_csv(text, **kw)


def errors(rows):
    return {r.line: r.error for r in rows if r.error}


def test_valid_file_with_all_columns():
    rows = parse(f"username,password,role\nAlice,{GOOD_PW},teacher\nbob,{GOOD_PW}x,\n")
    assert [(r.line, r.username, r.role, r.generated, r.error) for r in rows] == [
        (2, "alice", "teacher", False, None),
        (3, "bob", "student", False, None),
    ]
    assert rows[0].password == GOOD_PW


def test_default_role_and_case_insensitive_header_in_any_order():
    rows = parse(
        f" Role ,USERNAME,Password\nADMIN,carol,{GOOD_PW}\n,dave,{GOOD_PW}\n",
        default_role="teacher",
    )
    assert [(r.username, r.role) for r in rows] == [("carol", "admin"), ("dave", "teacher")]


def test_bom_and_crlf_from_a_spreadsheet():
    text = f"\ufeffusername,password\r\nalice,{GOOD_PW}\r\n\r\nbob,{GOOD_PW}\r\n"
    rows = parse(text)
    assert [(r.line, r.username, r.password) for r in rows] == [
        (2, "alice", GOOD_PW),
        (4, "bob", GOOD_PW),
    ]


def test_semicolon_and_tab_delimiters():
    assert [r.username for r in parse(f"username;password\nalice;{GOOD_PW}\n")] == ["alice"]
    assert [r.username for r in parse(f"username\tpassword\nalice\t{GOOD_PW}\n")] == ["alice"]


def test_generated_passwords_when_empty_or_no_column():
    rows = parse("username\nalice\nbob\n") + parse("username,password,role\ncarol,,\n")
    passwords = [r.password for r in rows]
    assert all(r.generated and r.error is None for r in rows)
    assert len(set(passwords)) == 3
    for p in passwords:
        check_password(p)
        assert len(p) >= 16 and p.isalnum()
        assert not set(p) & set("0O1lI")  # nothing to misread on a printed slip


def test_quoted_fields_and_line_numbers_of_multiline_records():
    rows = parse('username,password\n"alice","pass, with comma"\n\n"bob",' + f"{GOOD_PW}\n")
    assert [(r.line, r.username, r.password) for r in rows] == [
        (2, "alice", "pass, with comma"),
        (4, "bob", GOOD_PW),
    ]


def test_trailing_empty_cells_are_ignored():
    rows = parse(f"username,password,,\nalice,{GOOD_PW},,\nbob,{GOOD_PW}\n")
    assert errors(rows) == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("\ufeff\r\n\r\n", "empty"),
        ("username,password\n", "no accounts"),
        ("username\n\n  \n", "no accounts"),
        (f"alice,{GOOD_PW}\n", "header"),
        ("name,password\nalice,x\n", "header"),
        ("username,passwd\nalice,x\n", "unknown column(s) in the header: 'passwd'"),
        ("username,,role\nalice,,student\n", "unknown column"),
        ("username,role,Role\nalice,student,student\n", "'role' appears more than once"),
        ('username,password\n"alice,pw\n', "line 2: the CSV is malformed (unexpected end of data)"),
    ],
)
def test_file_level_errors(text, message):
    with pytest.raises(AccountError, match=re.escape(message)):
        parse(text)


def test_missing_header_does_not_echo_the_first_line():
    with pytest.raises(AccountError) as e:
        parse("alice,Secret-Pass-123\n")
    assert "Secret" not in str(e.value) and "alice" not in str(e.value)


def test_bad_default_role():
    with pytest.raises(AccountError, match="unknown role 'boss'"):
        parse("username\nalice\n", default_role="boss")


def test_size_caps():
    big = "username,password\n" + "x" * ac.MAX_BYTES
    with pytest.raises(AccountError, match="larger than 1 MB"):
        parse(big)
    # counted in UTF-8 bytes, not characters
    with pytest.raises(AccountError, match="larger than 1 MB"):
        parse("username\n" + "é" * (ac.MAX_BYTES // 2 + 1))
    many = "username\n" + "".join(f"u{i}\n" for i in range(ac.MAX_ROWS + 1))
    with pytest.raises(AccountError, match=f"more than {ac.MAX_ROWS} accounts"):
        parse(many)
    assert len(parse("username\n" + "".join(f"u{i}\n" for i in range(ac.MAX_ROWS)))) == 5000


def test_every_row_error_is_reported_with_its_line():
    text = "\n".join(
        [
            "username,password,role",
            f"good1,{GOOD_PW},student",  # 2
            f"bad name,{GOOD_PW},student",  # 3
            f"a/b,{GOOD_PW},",  # 4
            f"carol,{GOOD_PW},boss",  # 5
            "dave,short,",  # 6
            f"erin,{'x' * (MAX_PASSWORD_LENGTH + 1)},",  # 7
            "frank-the-user,Frank-The-User,",  # 8
            f"GOOD1,{GOOD_PW}2,",  # 9
            f"gina,{GOOD_PW}",  # 10: fewer fields
            f"hank,{GOOD_PW},student,extra",  # 11: more fields
            f"ivan, {GOOD_PW},",  # 12
            "judy,,teacher",  # 13: fine
            "bad:name,short,boss",  # 14: three problems
            ",,",  # 15: blank row, skipped
            f"   ,{GOOD_PW},",  # 16: empty username
        ]
    )
    rows = parse(text)
    errs = errors(rows)
    assert set(errs) == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16}
    assert errs[3] == "invalid username: the username contains a space or an invisible character"
    assert errs[4] == "invalid username: the username contains a slash"
    assert errs[5] == "unknown role 'boss': use admin, teacher or student"
    assert "at least 10 characters" in errs[6]
    assert f"at most {MAX_PASSWORD_LENGTH} characters" in errs[7]
    assert errs[8] == "the password cannot be the username"
    assert errs[9] == "the username good1 is also on line 2"
    assert errs[10] == "this line has 2 fields but the header has 3"
    assert errs[11] == "this line has 4 fields but the header has 3"
    assert errs[12] == "the password starts or ends with a space"
    assert errs[14].count(";") == 2 and "colon" in errs[14] and "boss" in errs[14]
    assert errs[16] == "invalid username: the username is empty"
    by_line = {r.line: r for r in rows}
    assert by_line[3].username == "bad name"  # shown so the admin finds the row
    assert by_line[10].username == by_line[11].username == ""  # columns shifted: show nothing
    assert by_line[13].error is None and by_line[13].generated
    for message in errs.values():
        assert GOOD_PW not in message and "short" not in message.replace("too short", "")
        assert "Frank-The-User" not in message


def test_unprintable_username_is_made_safe_to_show():
    rows = parse(f'username,password\n"ev\x1bil\u202e{"x" * 60}",{GOOD_PW}\n')
    assert rows[0].error and rows[0].username.startswith("ev?il?x")
    assert rows[0].username.endswith("...") and len(rows[0].username) == 43


def test_repr_never_shows_a_password():
    rows = parse(f"username,password\nalice,{GOOD_PW}\nbob\n".replace("bob", "bob,"))
    report = ac.build_report(rows, set(), skip_existing=False, applied=True)
    for obj in (*rows, *report.rows, report):
        assert GOOD_PW not in repr(obj)
        assert rows[1].password not in repr(obj)


# ----------------------------------------------------------------------------- report


def test_report_applied_lists_every_row_and_generated_passwords_once():
    rows = parse(f"username,password\nalice,{GOOD_PW}\nbob,\ncarol,\n")
    assert not ac.is_blocked(rows, {"carol"}, skip_existing=True)
    report = ac.build_report(rows, {"carol"}, skip_existing=True, applied=True)
    assert report.applied and report.total == 3
    assert [(r.line, r.username, r.status) for r in report.rows] == [
        (2, "alice", "created"),
        (3, "bob", "created"),
        (4, "carol", "exists"),
    ]
    assert report.rows[0].password is None  # the admin chose it: not repeated
    assert report.rows[1].password == rows[1].password
    assert report.rows[2].password is None and "left unchanged" in report.rows[2].message
    assert report.summary() == "2 account(s) created, 1 existing left unchanged"
    assert [r.username for r in ac.rows_to_create(rows, {"carol"})] == ["alice", "bob"]


def test_report_not_applied_lists_only_problems_and_no_passwords():
    rows = parse(f"username,password\nalice,\nbob,short\ncarol,{GOOD_PW}\n")
    assert ac.is_blocked(rows, set(), skip_existing=True)
    assert ac.is_blocked(rows[:1] + rows[2:], {"carol"}, skip_existing=False)
    assert not ac.is_blocked(rows[:1] + rows[2:], {"carol"}, skip_existing=True)
    report = ac.build_report(rows, {"carol"}, skip_existing=False, applied=False)
    assert not report.applied and report.total == 3
    assert [(r.line, r.status) for r in report.rows] == [(3, "error"), (4, "exists")]
    assert all(r.password is None for r in report.rows)
    assert "remove the line, or skip existing" in report.rows[1].message
    assert report.summary() == (
        "nothing was written: 1 row(s) with errors and 1 row(s) with an existing username (of 3)"
    )


# ----------------------------------------------------------------------------- rules


@pytest.mark.parametrize("role", ["admin", "Teacher", " student "])
def test_roles(role):
    assert check_role(role) == role.strip().lower()


def test_password_rules_never_echo_the_password():
    for bad in ("123456789", "x" * (MAX_PASSWORD_LENGTH + 1)):
        with pytest.raises(AccountError) as e:
            check_password(bad)
        assert bad not in str(e.value)
    with pytest.raises(AccountError, match="cannot be the username"):
        check_password(" Alice-Smith ", "alice-smith")
    assert check_password("x" * 10) == "x" * 10
    assert generate_password() != generate_password()
