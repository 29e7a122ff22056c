"""The classes API against the real hub and a real MongoDB wire-protocol server: every
access rule tried from the wrong side, rosters and CSV import (all or nothing), the hub
groups that carry each class, and a battery of bad input (always a clear 4xx)."""

import pytest
import requests

from harness.classes import (
    SERVICE,
    Person,
    assert_error,
    group,
    members,
)

pytestmark = pytest.mark.integration

IMAGE = "classhub/singleuser:latest"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    for name in ("uma11", "ulf11", "sue11"):  # local students who never sign in
        r = stack.api("POST", "/classhub/accounts", json={"username": name, "role": "student"})
        assert r.status_code == 201, r.text
    stack.create_user("nora11")  # a hub user without a classhub role (never signed in)
    return {
        "admin": Person(stack, "admin", "admin"),
        "tina11": Person(stack, "tina11", "teacher"),
        "tom11": Person(stack, "tom11", "teacher"),
        "sam11": Person(stack, "sam11", "student"),
        "sid11": Person(stack, "sid11", "student"),
    }


@pytest.fixture(scope="module")
def world(people):
    """bio11 (teacher tina11; students sam11, sue11) and chem11 (teacher tom11; student sid11)."""
    admin = people["admin"]
    for code, teacher in (("bio11", "tina11"), ("chem11", "tom11")):
        r = admin.post("api/classes", {"code": code, "name": code.title(), "teachers": [teacher]})
        assert r.status_code == 201, r.text
    for code, student, teacher in (
        ("bio11", "sam11", "tina11"),
        ("bio11", "sue11", "tina11"),
        ("chem11", "sid11", "tom11"),
    ):
        r = people[teacher].post(f"api/classes/{code}/students", {"username": student})
        assert r.status_code == 201, r.text
    return people


def test_admin_creates_a_class_and_its_hub_groups(stack, people):
    admin = people["admin"]
    r = admin.post(
        "api/classes",
        {
            "code": "art11",
            "name": "Art11",
            "term": "2026",
            "teachers": ["tina11"],
            "environment": {"cpu_limit": 0.5, "mem_limit": "512M", "idle_timeout": 900},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["hub_sync"] == "done" and body["role"] == "admin"
    assert body["environment"] == {
        "image": IMAGE,
        "cpu_limit": 0.5,
        "mem_limit": "512M",
        "idle_timeout": 900,
    }
    students = group(stack, "class-art11")
    assert students["users"] == []
    assert students["properties"]["classhub"] == {
        "code": "art11",
        "name": "Art11",
        "image": IMAGE,
        "cpu_limit": 0.5,
        "mem_limit": "512M",
        "idle_timeout": 900,
        "archived": False,
    }
    assert members(stack, "teachers-art11") == {"tina11"}
    assert_error(
        admin.post("api/classes", {"code": "art11", "name": "Again"}), 409, "exists already"
    )
    assert_error(
        admin.post("api/classes", {"code": "ghosts11", "name": "G", "teachers": ["casper"]}),
        400,
        "Not users of this hub: casper",
    )
    assert admin.get("api/classes/ghosts11").status_code == 404
    assert group(stack, "class-ghosts11") is None


def test_only_admins_create_classes(stack, people):
    for who in ("tina11", "sam11"):
        assert_error(
            people[who].post("api/classes", {"code": f"mine-{who}", "name": "Mine"}),
            403,
            "Only an administrator can create classes",
        )
    assert group(stack, "class-mine-tina11") is None


def test_roster_add_remove_and_group_sync(stack, world):
    tina = world["tina11"]
    assert members(stack, "class-bio11") == {"sam11", "sue11"}
    r = tina.post("api/classes/bio11/students", {"username": "Uma11"})
    assert r.status_code == 201 and r.json()["username"] == "uma11"
    assert members(stack, "class-bio11") == {"sam11", "sue11", "uma11"}
    again = tina.post("api/classes/bio11/students", {"username": "uma11"})
    assert again.status_code == 200 and again.json()["added"] is False
    assert_error(
        tina.post("api/classes/bio11/students", {"username": "nobody-here"}),
        400,
        "nobody-here is not a user of this hub",
    )
    assert_error(
        tina.post("api/classes/bio11/students", {"username": "nora11"}),
        403,
        "nora11 has no student role on this hub yet",
    )
    assert tina.delete("api/classes/bio11/students/uma11").status_code == 204
    assert members(stack, "class-bio11") == {"sam11", "sue11"}
    assert_error(tina.delete("api/classes/bio11/students/uma11"), 404, "not on the roster")
    assert tina.get("api/classes/bio11/students").json() == {
        "code": "bio11",
        "students": ["sam11", "sue11"],
    }


def test_csv_import_is_all_or_nothing(stack, world):
    tina = world["tina11"]
    bad = "username\numa11\nghost-one\nulf11\nnot valid\n"
    r = tina.post("api/classes/bio11/import", {"csv": bad})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["applied"] is False and body["added"] == []
    assert "Nothing was imported" in body["message"]
    rows = {row["line"]: (row["username"], row["status"]) for row in body["rows"]}
    assert rows == {
        2: ("uma11", "valid"),
        3: ("ghost-one", "unknown_user"),
        4: ("ulf11", "valid"),
        5: ("not valid", "malformed"),
    }
    assert tina.get("api/classes/bio11/students").json()["students"] == ["sam11", "sue11"]
    assert members(stack, "class-bio11") == {"sam11", "sue11"}

    good = "\ufeffusername\r\nUma11\r\nulf11\r\numa11\r\nsam11\r\n\r\n"
    r = tina.post("api/classes/bio11/import", {"csv": good})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] is True and body["added"] == ["uma11", "ulf11"]
    assert [row["status"] for row in body["rows"]] == [
        "added",
        "added",
        "duplicate",
        "already_enrolled",
    ]
    assert members(stack, "class-bio11") == {"sam11", "sue11", "uma11", "ulf11"}
    for name in ("uma11", "ulf11"):
        assert tina.delete(f"api/classes/bio11/students/{name}").status_code == 204
    assert_error(tina.post("api/classes/bio11/import", {"csv": "name\nx\n"}), 400, "header")


def test_students_see_only_their_classes_and_never_a_roster(world):
    sam, sid = world["sam11"], world["sid11"]
    classes = sam.get("api/classes").json()["classes"]
    assert [c["code"] for c in classes] == ["bio11"]
    bio = classes[0]
    assert set(bio) == {"code", "name", "term", "archived", "role", "server"}
    assert bio["role"] == "student"
    assert bio["server"]["state"] == "stopped" and bio["server"]["url"] == "/user/sam11/bio11/"
    single = sam.get("api/classes/bio11").json()
    assert "students" not in single and "teachers" not in single
    assert [c["code"] for c in sid.get("api/classes").json()["classes"]] == ["chem11"]
    for path in ("api/classes/bio11/students", "api/classes/bio11/servers"):
        assert_error(sam.get(path), 403, "Only the teachers of class 'bio11'")
    assert_error(sid.get("api/classes/bio11"), 403, "not a teacher or student of class 'bio11'")
    assert_error(sam.post("api/classes/bio11/students", {"username": "sid11"}), 403)
    assert_error(sam.patch("api/classes/bio11", {"name": "Mine now"}), 403)
    assert_error(sam.post("api/classes/bio11/import", {"csv": "username\nsid11\n"}), 403)
    assert_error(sam.post("api/classes/bio11/servers/sue11"), 403, "other people's servers")
    assert_error(sam.delete("api/classes/bio11/students/sue11"), 403)


def test_teachers_stay_inside_their_own_classes(stack, world):
    tina, tom = world["tina11"], world["tom11"]
    assert [c["code"] for c in tina.get("api/classes").json()["classes"]] == ["art11", "bio11"]
    assert "students" not in tina.get("api/classes").json()["classes"][0]
    assert_error(tina.get("api/classes/chem11"), 403)
    assert_error(tina.get("api/classes/chem11/students"), 403)
    assert_error(tina.get("api/classes/chem11/servers"), 403)
    assert_error(tina.patch("api/classes/chem11", {"name": "Mine"}), 403)
    assert_error(tina.post("api/classes/chem11/students", {"username": "sam11"}), 403)
    assert_error(tina.delete("api/classes/chem11/students/sid11"), 403)
    assert_error(tina.post("api/classes/chem11/import", {"csv": "username\nsam11\n"}), 403)
    assert_error(tina.post("api/classes/chem11/servers/sid11"), 403)
    assert_error(tina.delete("api/classes/chem11/servers/sid11"), 403)
    assert_error(tina.post("api/classes/bio11/servers/sid11"), 403, "sid11 is not on the roster")
    assert_error(tom.get("api/classes/bio11/students"), 403)
    assert members(stack, "class-chem11") == {"sid11"}
    assert world["admin"].get("api/classes/chem11").json()["name"] == "Chem11"


def test_teacher_edits_own_class_within_limits(stack, world):
    tina = world["tina11"]
    r = tina.patch(
        "api/classes/bio11",
        {
            "name": "Biology",
            "term": "Spring",
            "environment": {"cpu_limit": 1.5, "idle_timeout": 1200},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["environment"]["cpu_limit"] == 1.5 and r.json()["hub_sync"] == "done"
    props = group(stack, "class-bio11")["properties"]["classhub"]
    assert (props["name"], props["cpu_limit"], props["idle_timeout"]) == ("Biology", 1.5, 1200)
    assert_error(
        tina.patch("api/classes/bio11", {"teachers": ["tina11", "sam11"]}), 403, "administrator"
    )
    assert_error(
        tina.patch("api/classes/bio11", {"environment": {"cpu_limit": 64}}), 400, "between"
    )
    assert_error(
        tina.patch("api/classes/bio11", {"environment": {"image": "evil/miner"}}),
        400,
        "not in this hub's image catalogue",
    )
    assert_error(tina.patch("api/classes/bio11", {"environment": {"mem_limit": "64G"}}), 400, "2G")
    assert_error(tina.patch("api/classes/bio11", {"code": "zoo"}), 400, "Unknown field(s): code")
    assert group(stack, "class-bio11")["properties"]["classhub"]["cpu_limit"] == 1.5


def test_admin_assigns_teachers(stack, world):
    admin = world["admin"]
    r = admin.patch("api/classes/chem11", {"teachers": ["tom11", "tina11"]})
    assert r.status_code == 200, r.text
    assert members(stack, "teachers-chem11") == {"tom11", "tina11"}
    assert_error(admin.patch("api/classes/chem11", {"teachers": ["nobody-x"]}), 400, "nobody-x")
    assert admin.patch("api/classes/chem11", {"teachers": ["tom11"]}).status_code == 200
    assert members(stack, "teachers-chem11") == {"tom11"}


def test_settings_show_the_admins_limits(world):
    settings = world["sam11"].get("api/settings").json()
    assert settings["allowed_images"] == [IMAGE]
    assert settings["max_mem_limit"] == "2G"


def test_bad_input_battery_is_always_a_clear_4xx(world):
    admin, tina = world["admin"], world["tina11"]
    raw = {"Content-Type": "application/json"}
    cases = [
        (admin.call("POST", "api/classes", data=b"{oops", headers=raw), 400, "not valid JSON"),
        (admin.call("POST", "api/classes", data=b"[1]", headers=raw), 400, "JSON object"),
        (admin.call("POST", "api/classes", data=b'"x"', headers=raw), 400, "JSON object"),
        (admin.call("POST", "api/classes", data=b"\xff\xfe", headers=raw), 400, "UTF-8"),
        (admin.post("api/classes", {"code": "x1", "name": "X", "owner": "me"}), 400, "owner"),
        (admin.post("api/classes", {"name": "No code"}), 400, "Missing field(s): code"),
        (admin.post("api/classes", {"code": "Bad_Code", "name": "X"}), 400, "Invalid class code"),
        (admin.post("api/classes", {"code": "-x", "name": "X"}), 400, "Invalid class code"),
        (admin.post("api/classes", {"code": "x" * 40, "name": "X"}), 400, "Invalid class code"),
        (admin.post("api/classes", {"code": 12, "name": "X"}), 400, "string"),
        (admin.post("api/classes", {"code": "x2", "name": ""}), 400, "empty"),
        (admin.post("api/classes", {"code": "x3", "name": "X", "teachers": "tina11"}), 400, "list"),
        (
            admin.post("api/classes", {"code": "x4", "name": "X", "environment": {"gpu": 1}}),
            400,
            "Unknown environment field",
        ),
        (
            admin.post(
                "api/classes", {"code": "x5", "name": "X", "environment": {"cpu_limit": "2"}}
            ),
            400,
            "number",
        ),
        (
            admin.call(
                "POST",
                "api/classes",
                data=b'{"code": "x6", "name": "X", "environment": {"cpu_limit": NaN}}',
                headers=raw,
            ),
            400,
            "NaN",
        ),
        (admin.post("api/classes", {"code": "bio11", "name": "Dup"}), 409, "exists already"),
        (admin.get("api/classes/Not_A_Code"), 400, "Invalid class code"),
        (admin.get("api/classes/nope"), 404, "no class with the code 'nope'"),
        (admin.patch("api/classes/bio11", {}), 400, "Nothing to change"),
        (admin.patch("api/classes/bio11", {"archived": "yes"}), 400, "true or false"),
        (tina.post("api/classes/bio11/students", {"username": "a/b"}), 400, "Invalid username"),
        (tina.post("api/classes/bio11/students", {"username": 5}), 400, "Invalid username"),
        (tina.post("api/classes/bio11/students", {"user": "sam11"}), 400, "Unknown field(s): user"),
        (
            tina.post("api/classes/bio11/students", {"username": "ghost"}),
            400,
            "not a user of this hub",
        ),
        (tina.post("api/classes/bio11/import", {"csv": ""}), 400, "empty"),
        (tina.post("api/classes/bio11/import", {"csv": 3}), 400, "empty"),
        (
            tina.post("api/classes/bio11/import", {"csv": "username\n" + "x\n" * 600_000}),
            413,
            "limit",
        ),
        (tina.post("api/classes/bio11/students", {"username": "x" * 2_000_000}), 413, "limit"),
        (tina.delete("api/classes/bio11/servers/bad%2Fname"), 400, "Invalid username"),
        (tina.call("PUT", "api/classes/bio11"), 405, ""),
        (tina.get("api/nothing-here"), 404, "nothing at"),
    ]
    for r, status, text in cases:
        assert_error(r, status, text)
    assert admin.get("api/classes/x1").status_code == 404


def test_cookie_requests_need_the_xsrf_token(world):
    tina = world["tina11"]
    r = tina.browser.post(
        tina.stack.url + SERVICE + "api/classes/bio11/students",
        json={"username": "sue11"},
        timeout=10,
    )
    assert_error(r, 403, "not signed in")


def test_api_token_clients(stack, world):
    r = stack.api(
        "POST",
        "/users/tina11/tokens",
        json={"scopes": ["access:services!service=classes"], "expires_in": 600},
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r = requests.get(
        stack.url + SERVICE + "api/classes/bio11/students",
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["students"] == ["sam11", "sue11"]
    r = requests.post(
        stack.url + SERVICE + "api/classes/chem11/students",
        headers={"Authorization": f"token {token}"},
        json={"username": "sam11"},
        timeout=10,
    )
    assert_error(r, 403)
    anonymous = requests.get(stack.url + SERVICE + "api/classes", timeout=10)
    assert_error(anonymous, 403, "not signed in")
    service = requests.get(
        stack.url + SERVICE + "api/classes",
        headers={"Authorization": f"token {stack.token}"},
        timeout=10,
    )
    assert service.status_code == 403
