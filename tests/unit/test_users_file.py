import json

import pytest

from authenticator.cli import main as user_cli
from authenticator.users_file import UserFileError, load_users, set_user, verify

pytestmark = pytest.mark.unit


def test_set_and_verify(tmp_path):
    f = tmp_path / "users.json"
    set_user(f, "alice", "correct horse battery", admin=True)
    assert verify(f, "alice", "correct horse battery")["admin"] is True
    assert verify(f, "alice", "wrong password!!") is None
    assert verify(f, "nobody", "correct horse battery") is None
    stored = json.loads(f.read_text())
    assert "correct horse" not in f.read_text()
    assert stored["users"]["alice"]["hash"].startswith("$argon2")
    assert (f.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("name", ["", "Alice", "a b", "../x", "a" * 65, "é"])
def test_bad_usernames(tmp_path, name):
    with pytest.raises(UserFileError):
        set_user(tmp_path / "u.json", name, "x" * 12)


def test_short_password(tmp_path):
    with pytest.raises(UserFileError, match="12 characters"):
        set_user(tmp_path / "u.json", "bob", "short")


def test_cli_add_prints_password_once(tmp_path, capsys):
    f = tmp_path / "u.json"
    assert user_cli(["--file", str(f), "add", "admin", "--admin"]) == 0
    password = capsys.readouterr().out.strip()
    assert len(password) >= 16
    assert verify(f, "admin", password)["admin"] is True
    assert user_cli(["--file", str(f), "add", "admin", "--if-missing"]) == 0
    assert capsys.readouterr().out == ""
    assert verify(f, "admin", password)
    assert user_cli(["--file", str(f), "add", "Bad Name"]) == 2
    assert list(load_users(f)) == ["admin"]


async def test_authenticator(tmp_path):
    from authenticator import LocalPasswordAuthenticator

    f = tmp_path / "u.json"
    set_user(f, "root1", "a-long-admin-password", admin=True)
    set_user(f, "stud1", "a-long-student-password")
    auth = LocalPasswordAuthenticator(users_file=str(f))
    assert await auth.authenticate(
        None, {"username": "root1", "password": "a-long-admin-password"}
    ) == {
        "name": "root1",
        "admin": True,
    }
    # a non-admin account never carries admin=False, which would demote admin_users
    assert await auth.authenticate(
        None, {"username": "stud1", "password": "a-long-student-password"}
    ) == {"name": "stud1"}
    assert (
        await auth.authenticate(None, {"username": "stud1", "password": "wrong-password!!"}) is None
    )
    assert await auth.authenticate(None, {"username": "stud1", "password": ""}) is None
    assert await auth.authenticate(None, {"username": "ghost", "password": "whatever-pass"}) is None
