"""services.grades.rules: deadlines, lateness, release and assignment validation (pure)."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from common.errors import BadRequest
from services.grades import rules
from services.grades.rules import AssignmentFields, Outcome

pytestmark = pytest.mark.unit

DUE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
SEC = timedelta(seconds=1)


# ----------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("now", "policy", "expected"),
    [
        (DUE - SEC, "refuse", Outcome("on_time")),
        (DUE - US, "accept", Outcome("on_time")),
        (DUE, "refuse", Outcome("on_time")),  # exactly at the instant: on time
        (DUE, "accept", Outcome("on_time")),
        (DUE + US, "refuse", Outcome("refused")),
        (DUE + US, "accept", Outcome("late", D("12.5"))),
        (DUE + SEC, "accept", Outcome("late", D("12.5"))),
        (DUE + timedelta(days=400), "refuse", Outcome("refused")),
    ],
)
def test_classify_edges(now, policy, expected):
    got = rules.classify(now, DUE, policy, D("12.5") if policy == "accept" else 0)
    assert got == expected
    assert got.late == (expected.status != "on_time")


def test_classify_without_deadline_and_bad_input():
    assert rules.classify(DUE + timedelta(days=999), None, "refuse") == Outcome("on_time")
    assert rules.classify(DUE + US, DUE, "accept").penalty_percent == 0
    with pytest.raises(ValueError, match="aware"):
        rules.classify(datetime(2025, 3, 1, 8), DUE, "accept")
    with pytest.raises(ValueError, match="aware"):
        rules.classify(DUE, datetime(2025, 3, 1, 8), "accept")
    with pytest.raises(ValueError, match="policy"):
        rules.classify(DUE, DUE, "maybe")


def test_same_instant_in_other_time_zones():
    tokyo = timezone(timedelta(hours=9))
    in_tokyo = datetime(2025, 3, 1, 17, 0, tzinfo=tokyo)
    assert in_tokyo == DUE
    assert rules.classify(in_tokyo, DUE, "refuse") == Outcome("on_time")
    assert rules.classify(in_tokyo + US, DUE, "refuse") == Outcome("refused")
    a = rules.parse_datetime("2025-03-01T17:00:00+09:00", "due_at")
    b = rules.parse_datetime("2025-03-01T08:00:00Z", "due_at")
    c = rules.parse_datetime("2025-03-01T03:00:00-05:00", "due_at")
    assert a == b == c == DUE
    assert a.tzinfo == UTC and a.hour == 8  # stored in UTC
    assert rules.parse_datetime("2025-03-01T08:00:00.000001Z", "due_at") == DUE + US


def test_extensions():
    later = DUE + timedelta(days=2)
    assert rules.due_for(DUE, None) == DUE
    assert rules.due_for(DUE, later) == later
    assert rules.due_for(DUE, DUE - timedelta(days=1)) == DUE  # never earlier
    assert rules.due_for(None, later) is None  # no deadline to extend
    assert rules.due_for(None, None) is None
    due = rules.due_for(DUE, later)
    assert rules.classify(later - SEC, due, "refuse") == Outcome("on_time")
    assert rules.classify(later, due, "refuse") == Outcome("on_time")
    assert rules.classify(later + SEC, due, "refuse") == Outcome("refused")
    assert rules.parse_extension_due("2025-03-03T08:00:00Z", DUE) == later
    for value, assignment_due, message in [
        ("2025-03-01T08:00:00Z", DUE, "after the assignment's due date"),
        ("2025-03-01T17:00:00+09:00", DUE, "after the assignment's due date"),
        ("2025-03-03T08:00:00", DUE, "has no time zone"),
        (None, DUE, "needs a new due date"),
        ("2025-03-03T08:00:00Z", None, "no due date"),
    ]:
        with pytest.raises(BadRequest, match=message):
            rules.parse_extension_due(value, assignment_due)
    with pytest.raises(ValueError, match="aware"):
        rules.due_for(DUE, datetime(2025, 3, 3))


def test_release():
    release = DUE - timedelta(days=7)
    assert rules.is_released(None, DUE)
    assert not rules.is_released(release, release - US)
    assert rules.is_released(release, release)
    assert rules.visible_to_student(release, False, release + SEC)
    assert not rules.visible_to_student(release, True, release + SEC)  # archived
    assert not rules.visible_to_student(release, False, release - SEC)


@pytest.mark.parametrize(
    ("points", "penalty", "expected"),
    [
        (10, 0, D("10.00")),
        (10, D("12.5"), D("8.75")),
        (D("7.5"), 10, D("6.75")),
        (D("0.05"), 50, D("0.03")),  # 0.025 rounds half-up
        (D("3.33"), D("33.33"), D("2.22")),
        (10, 100, D("0.00")),
        (10, 150, D("0.00")),  # clamped
        (10, -5, D("10.00")),
        (0.1, 0, D("0.10")),
    ],
)
def test_apply_penalty(points, penalty, expected):
    assert rules.apply_penalty(points, penalty) == expected


# ----------------------------------------------------------------------------- validation

BODY = {
    "slug": "hw-1",
    "title": "  Homework 1 ",
    "max_points": 10,
    "release_at": "2025-02-22T09:00:00+01:00",
    "due_at": "2025-03-01T09:00:00+01:00",
    "late_policy": "accept",
    "late_penalty_percent": 12.5,
    "starting_files": ["hw1/notebook.ipynb", "data/a.csv"],
    "instructions": "Do it.",
}


def test_parse_assignment_creation():
    f = rules.parse_assignment(BODY)
    assert f == AssignmentFields(
        slug="hw-1",
        title="Homework 1",
        max_points=D("10.00"),
        instructions="Do it.",
        release_at=datetime(2025, 2, 22, 8, tzinfo=UTC),
        due_at=DUE,
        late_policy="accept",
        late_penalty_percent=D("12.50"),
        starting_files=("hw1/notebook.ipynb", "data/a.csv"),
    )
    minimal = rules.parse_assignment({"slug": "a", "title": "A", "max_points": "0.5"})
    assert minimal == AssignmentFields(slug="a", title="A", max_points=D("0.50"))
    assert minimal.late_policy == "accept" and minimal.due_at is None
    # refuse without a penalty given: 0
    refuse = rules.parse_assignment({**BODY, "late_policy": "refuse", "late_penalty_percent": 0})
    assert refuse.late_penalty_percent == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slug": "Homework 1"}, 'folder name is not valid: "Homework 1": an assignment name'),
        ({"slug": "../x"}, "folder name is not valid"),
        ({"slug": 5}, "folder name is not valid"),
        ({"title": "   "}, "The title cannot be empty."),
        ({"title": "x" * 201}, "The title can be at most 200 characters long."),
        ({"title": 3}, "The title must be text."),
        (
            {"max_points": 0},
            "maximum points must be a number greater than 0 and at most 10000, not 0",
        ),
        ({"max_points": -1}, "greater than 0 and at most 10000"),
        ({"max_points": 10001}, "greater than 0 and at most 10000, not 10001"),
        ({"max_points": "lots"}, "greater than 0 and at most 10000, not lots"),
        ({"max_points": True}, "greater than 0 and at most 10000"),
        ({"max_points": float("nan")}, "greater than 0 and at most 10000"),
        ({"max_points": 1.234}, "at most two decimal places"),
        ({"due_at": "2025-03-01T09:00:00"}, 'The due date "2025-03-01T09:00:00" has no time zone'),
        ({"release_at": "2025-02-22"}, 'The release date "2025-02-22" has no time zone'),
        ({"due_at": "next friday"}, 'The due date "next friday" is not a date and time'),
        ({"due_at": 1740816000}, "The due date must be a date and time as text"),
        ({"due_at": "2025-02-22T08:00:00Z"}, "The due date must be after the release date."),
        ({"due_at": "2025-02-22T09:00:00+01:00"}, "must be after the release date"),
        ({"late_policy": "sometimes"}, 'late policy must be "refuse" or "accept"'),
        ({"late_penalty_percent": 101}, "late penalty must be a number from 0 to 100"),
        ({"late_penalty_percent": -1}, "late penalty must be a number from 0 to 100"),
        ({"late_policy": "refuse"}, "A late penalty only applies when late work is accepted"),
        ({"starting_files": "a.ipynb"}, "starting files must be a list"),
        ({"starting_files": ["../etc/passwd"]}, "A starting file is not valid"),
        ({"starting_files": ["a.ipynb", "a.ipynb"]}, 'starting file "a.ipynb" is listed twice'),
        ({"instructions": ["x"]}, "The instructions must be text."),
        ({"colour": "red"}, 'Unknown field "colour"'),
    ],
)
def test_parse_assignment_refusals(change, message):
    with pytest.raises(BadRequest) as e:
        rules.parse_assignment({**BODY, **change})
    assert message in str(e.value)
    assert e.value.status_code == 400


def test_parse_assignment_required_and_shape():
    for missing, label in [("slug", "slug"), ("title", "title"), ("max_points", "maximum points")]:
        body = {k: v for k, v in BODY.items() if k != missing}
        with pytest.raises(BadRequest, match=f"The {label} is required."):
            rules.parse_assignment(body)
    with pytest.raises(BadRequest, match="must be a JSON object"):
        rules.parse_assignment(["slug"])


def test_parse_assignment_edit():
    current = rules.parse_assignment(BODY)
    edited = rules.parse_assignment({"title": "HW 1", "due_at": None}, current)
    assert edited.title == "HW 1" and edited.due_at is None
    assert edited.max_points == current.max_points and edited.slug == "hw-1"
    assert rules.parse_assignment({}, current) == current
    assert rules.parse_assignment({"slug": "hw-1"}, current) == current
    with pytest.raises(BadRequest, match="folder name cannot change"):
        rules.parse_assignment({"slug": "hw-2"}, current)
    # checked as a whole: a new release date after the current due date
    with pytest.raises(BadRequest, match="after the release date"):
        rules.parse_assignment({"release_at": "2025-03-02T00:00:00Z"}, current)
    # switching to "refuse" drops the penalty; a penalty given with it is refused
    assert rules.parse_assignment({"late_policy": "refuse"}, current).late_penalty_percent == 0
    with pytest.raises(BadRequest, match="only applies when late work is accepted"):
        rules.parse_assignment({"late_policy": "refuse", "late_penalty_percent": 5}, current)


def test_points_and_feedback():
    assert rules.parse_points(0) == D("0.00")
    assert rules.parse_points("7.5") == D("7.50")
    assert rules.parse_points(9.25) == D("9.25")
    for bad in (-0.01, "x", None, True, 1.001, float("inf")):
        with pytest.raises(BadRequest, match="points"):
            rules.parse_points(bad)
    assert rules.parse_feedback(None) == ""
    assert rules.parse_feedback("  Good \n") == "  Good \n"
    with pytest.raises(BadRequest, match="at most 50000"):
        rules.parse_feedback("x" * 50_001)
