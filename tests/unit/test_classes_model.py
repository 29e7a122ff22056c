"""Class records: codes, names, environments within the admin's limits, changes."""

import math
from datetime import UTC, datetime

import pytest

from common.images import ImageChoice
from common.units import format_size
from services.classes import model as m

pytestmark = pytest.mark.unit

G = 1024**3
M = 1024**2

LIMITS = m.Limits(
    images=(
        ImageChoice("classhub/singleuser:latest", "Python", "JupyterLab and Python"),
        ImageChoice("classhub/datascience:1", "Data science", "numpy, pandas"),
    ),
    default_image="classhub/singleuser:latest",
    max_cpu_limit=2.0,
    max_mem_limit=4 * G,
    default_cpu_limit=1.0,
    default_mem_limit=1 * G,
    default_idle_timeout=3600,
    min_idle_timeout=300,
    max_idle_timeout=86400,
    max_students=3,
)


@pytest.mark.parametrize("code", ["a", "bio101", "bio-101-a", "x" * 32, "0", "a1"])
def test_valid_codes(code):
    assert m.check_code(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "-bio",
        "bio-",
        "Bio101",
        "bio_101",
        "bio 101",
        "x" * 33,
        "bio/1",
        "bío",
        "..",
        "bio101\n",
        7,
        None,
    ],
)
def test_invalid_codes_say_what_a_code_is(code):
    with pytest.raises(m.InvalidClass, match="lowercase letters|must be a string"):
        m.check_code(code)


def test_invalid_code_is_a_400():
    assert m.InvalidClass("x").status_code == 400
    assert m.ClassExists("a").status_code == 409
    assert m.ClassNotFound("a").status_code == 404


def test_names_and_terms():
    assert m.check_name("  Biology 101 ") == "Biology 101"
    assert m.check_term("") == ""
    for bad, match in [("", "cannot be empty"), ("x" * 201, "longer"), (3, "string")]:
        with pytest.raises(m.InvalidClass, match=match):
            m.check_name(bad)
    with pytest.raises(m.InvalidClass, match="control"):
        m.check_name("Bio\x00logy")
    with pytest.raises(m.InvalidClass, match="longer"):
        m.check_term("t" * 101)


def test_usernames_are_normalised_and_deduplicated():
    assert m.check_usernames(["Alice", "bob", "alice"], "teachers", limit=5) == ["alice", "bob"]
    with pytest.raises(m.InvalidClass, match="Invalid username 'a/b'"):
        m.check_usernames(["a/b"], "teachers", limit=5)
    with pytest.raises(m.InvalidClass, match="list"):
        m.check_usernames("alice", "teachers", limit=5)
    with pytest.raises(m.InvalidClass, match="limit is 2"):
        m.check_usernames(["a", "b", "c"], "teachers", limit=2)


@pytest.mark.parametrize(
    "text,size",
    [("512M", 512 * M), ("1G", G), ("1.5G", 1536 * M), ("2GiB", 2 * G), ("1g", G), (1024, 1024)],
)
def test_memory_sizes(text, size):
    assert m.parse_mem(text) == size


@pytest.mark.parametrize("bad", ["lots", "1X", "-1G", "", True, None, 1.5])
def test_bad_memory_sizes(bad):
    with pytest.raises(m.InvalidClass, match="mem_limit"):
        m.parse_mem(bad)


def test_memory_is_stored_in_the_hubs_notation():
    assert format_size(2 * G) == "2G"
    assert format_size(1536 * M) == "1536M"
    assert format_size(1000) == "1000"


def test_default_environment_comes_from_the_limits():
    env = m.check_environment({}, LIMITS)
    assert env == {
        "image": "classhub/singleuser:latest",
        "cpu_limit": 1.0,
        "mem_limit": "1G",
        "idle_timeout": 3600,
    }


def test_environment_within_limits_is_normalised():
    env = m.check_environment(
        {
            "image": "classhub/datascience:1",
            "cpu_limit": 2,
            "mem_limit": "4096M",
            "idle_timeout": 300,
        },
        LIMITS,
    )
    assert env == {
        "image": "classhub/datascience:1",
        "cpu_limit": 2.0,
        "mem_limit": "4G",
        "idle_timeout": 300,
    }


@pytest.mark.parametrize(
    "change,match",
    [
        (
            {"image": "evil/miner:latest"},
            "'evil/miner:latest' is not in this hub's image catalogue; choose one of: Python",
        ),
        ({"image": 3}, "not in this hub's image catalogue"),
        ({"image": "classhub/singleuser"}, "not in this hub's image catalogue"),
        ({"cpu_limit": 2.5}, "between 0.1 and 2 CPUs"),
        ({"cpu_limit": 0}, "between 0.1 and 2"),
        ({"cpu_limit": "1"}, "must be a number"),
        ({"cpu_limit": True}, "must be a number"),
        ({"cpu_limit": math.nan}, "finite"),
        ({"cpu_limit": math.inf}, "finite"),
        ({"mem_limit": "8G"}, "between 128M and 4G"),
        ({"mem_limit": "1M"}, "between 128M and 4G"),
        ({"idle_timeout": 10}, "between 300 and 86400"),
        ({"idle_timeout": 10**9}, "between 300 and 86400"),
        ({"idle_timeout": 600.5}, "whole number"),
        ({"gpu": 1}, "Unknown environment field"),
    ],
)
def test_environment_outside_limits_is_refused(change, match):
    with pytest.raises(m.InvalidClass, match=match):
        m.check_environment(change, LIMITS)


def test_environment_change_merges_into_the_stored_one():
    stored = {
        "image": "classhub/datascience:1",
        "cpu_limit": 0.5,
        "mem_limit": "2G",
        "idle_timeout": 900,
    }
    env = m.check_environment({"cpu_limit": 1.5}, LIMITS, base=stored)
    assert env == {**stored, "cpu_limit": 1.5}


def test_environment_must_be_an_object():
    with pytest.raises(m.InvalidClass, match="object"):
        m.check_environment(["image"], LIMITS)


def test_new_class_record():
    record = m.new_class(
        {"code": "bio101", "name": " Biology ", "teachers": ["Tina"]},
        LIMITS,
        creator="admin",
        now=1_800_000_000,
    )
    when = datetime.fromtimestamp(1_800_000_000, UTC)
    assert record == {
        "code": "bio101",
        "name": "Biology",
        "term": "",
        "teachers": ["tina"],
        "students": [],
        "environment": LIMITS.default_environment(),
        "archived": False,
        "created_at": when,
        "updated_at": when,
        "created_by": "admin",
    }


@pytest.mark.parametrize("missing", ["code", "name"])
def test_new_class_needs_code_and_name(missing):
    body = {"code": "bio101", "name": "Biology"}
    del body[missing]
    with pytest.raises(m.InvalidClass, match=missing):
        m.new_class(body, LIMITS, creator="admin", now=0)


def test_changes_are_checked_one_by_one():
    current = {"code": "bio101", "environment": LIMITS.default_environment(), "archived": False}
    changes = m.class_changes(
        {"name": "Bio", "term": "2026", "archived": True, "environment": {"idle_timeout": 600}},
        LIMITS,
        current,
    )
    assert changes == {
        "name": "Bio",
        "term": "2026",
        "archived": True,
        "environment": {**LIMITS.default_environment(), "idle_timeout": 600},
    }
    with pytest.raises(m.InvalidClass, match="true or false"):
        m.class_changes({"archived": "yes"}, LIMITS, current)


def test_roster_size_limit():
    assert m.roster_size_problem(["a", "b"], ["b", "c"], LIMITS) == ""
    assert "limit is 3" in m.roster_size_problem(["a", "b"], ["c", "d"], LIMITS)


def test_limits_report_inconsistent_settings():
    bad = m.Limits(
        images=(ImageChoice("a:1", "a"),),
        default_image="b:1",
        max_cpu_limit=0.5,
        max_mem_limit=512 * M,
        default_cpu_limit=1.0,
        default_mem_limit=G,
        default_idle_timeout=10,
        min_idle_timeout=300,
        max_idle_timeout=600,
        max_students=0,
    )
    problems = " | ".join(bad.problems())
    assert "'b:1' is not in the image catalogue (CLASSHUB_IMAGES: a:1)" in problems
    assert "CLASSHUB_MAX_CPU_LIMIT (0.5)" in problems
    assert "CLASSHUB_MAX_MEM_LIMIT (512M)" in problems
    assert "CLASSHUB_DEFAULT_IDLE_TIMEOUT (10)" in problems
    assert "at least one student" in problems
    assert LIMITS.problems() == []
    assert LIMITS.as_json()["max_mem_limit"] == "4G"


def test_limits_offer_the_catalogue():
    data = LIMITS.as_json()
    assert data["images"] == [
        {
            "name": "classhub/singleuser:latest",
            "display_name": "Python",
            "description": "JupyterLab and Python",
        },
        {
            "name": "classhub/datascience:1",
            "display_name": "Data science",
            "description": "numpy, pandas",
        },
    ]
    assert data["allowed_images"] == ["classhub/singleuser:latest", "classhub/datascience:1"]
