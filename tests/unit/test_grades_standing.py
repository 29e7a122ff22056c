"""services.grades.standing: the one computation of which version counts, on time or
late, the penalty and the points."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from services.grades import standing as st
from services.grades.standing import Version

pytestmark = pytest.mark.unit

DUE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
H = timedelta(hours=1)


def v(n, at, **kw):
    return Version(id=100 + n, version=n, submitted_at=at, **kw)


def test_nothing_handed_in_is_not_yet_before_the_deadline_and_missing_after():
    before = st.standing([], due=DUE, now=DUE)  # exactly at the deadline: not passed
    assert (before.state, before.deadline_passed, before.counting) == (st.NOT_YET, False, None)
    after = st.standing([], due=DUE, now=DUE + US, missing_reason="no home folder")
    assert (after.state, after.deadline_passed, after.missing_reason) == (
        st.MISSING,
        True,
        "no home folder",
    )
    # the reason of a deadline that has not come is not shown
    assert st.standing([], due=DUE, now=DUE, missing_reason="x").missing_reason is None
    # no deadline: never missing
    assert st.standing([], due=None, now=DUE + 1000 * H).state == st.NOT_YET


def test_the_last_on_time_version_counts_and_a_late_one_never_displaces_it():
    versions = [
        v(1, DUE - 2 * H, points=D("9.5"), returned=True),
        v(2, DUE - H),
        v(3, DUE + H, kind=st.COLLECT, points=D(5)),  # late: collected after
    ]
    s = st.standing(versions, due=DUE, now=DUE + 2 * H, penalty_percent=D(20))
    assert (s.counting.version, s.why, s.late) == (2, st.LAST_ON_TIME, False)
    assert s.state == st.HANDED_IN and s.points is None  # the counting version is ungraded
    assert [x.version for x in s.versions] == [3, 2, 1]  # newest first
    assert [(x.on_time, x.counts) for x in s.versions] == [
        (False, False),
        (True, True),
        (True, False),
    ]
    # each version keeps its own grade; the late one would lose 20 % if it counted
    assert s.version(103).final_points == D("4.00") and s.version(103).penalty_percent == 20
    assert s.version(101).final_points == D("9.50")


def test_the_issue_scenario_graded_on_time_then_a_late_collect():
    """On time and graded 9.5, returned; after the deadline a collect records a late
    version: the grade and the counting version stay."""
    graded = v(1, DUE - H, points=D("9.5"), returned=True)
    s = st.standing([graded], due=DUE, now=DUE + H, penalty_percent=D(20))
    late = v(2, DUE + H, kind=st.COLLECT)
    t = st.standing([graded, late], due=DUE, now=DUE + 2 * H, penalty_percent=D(20))
    for x in (s, t):
        assert (x.counting.id, x.state, x.final_points, x.late, x.returned) == (
            101,
            st.GRADED,
            D("9.50"),
            False,
            True,
        )


def test_only_late_versions_the_first_counts_with_the_penalty():
    versions = [v(1, DUE + H, points=D(10)), v(2, DUE + 2 * H, points=D(8))]
    s = st.standing(versions, due=DUE, now=DUE + 3 * H, penalty_percent=D("12.5"))
    assert (s.counting.version, s.why, s.late) == (1, st.FIRST_LATE, True)
    assert (s.penalty_percent, s.penalty_source, s.points, s.final_points) == (
        D("12.5"),
        st.PENALTY_ASSIGNMENT,
        D(10),
        D("8.75"),
    )


def test_exactly_at_the_deadline_is_on_time_one_microsecond_after_is_late():
    s = st.standing([v(1, DUE), v(2, DUE + US)], due=DUE, now=DUE + H)
    assert [(x.version, x.on_time) for x in s.versions] == [(2, False), (1, True)]
    assert s.counting.version == 1


def test_a_deadline_snapshot_stands_for_its_deadline_even_when_taken_late():
    """The service was down: the snapshot was taken an hour after the deadline, it is
    on time by construction; a Submit in between is late."""
    late_submit = v(1, DUE + 10 * US)
    snapshot = v(2, DUE + H, kind=st.DEADLINE, deadline_for=DUE)
    s = st.standing([late_submit, snapshot], due=DUE, now=DUE + 2 * H, penalty_percent=D(50))
    assert (s.counting.version, s.late, s.penalty_percent) == (2, False, D(0))
    assert snapshot.timed_at == DUE and late_submit.timed_at == late_submit.submitted_at
    # a deadline snapshot whose deadline is no longer the student's (the due date moved
    # earlier) is timed against the current one
    earlier = st.standing([snapshot], due=DUE - H, now=DUE + 2 * H)
    assert earlier.late is True


def test_an_extension_granted_after_the_deadline_re_times_the_versions():
    versions = [v(1, DUE - H, points=D(6)), v(2, DUE + H, points=D(9))]
    before = st.standing(versions, due=DUE, now=DUE + 2 * H, penalty_percent=D(10))
    assert (before.counting.version, before.final_points) == (1, D("6.00"))
    extended = st.standing(versions, due=DUE + 3 * H, now=DUE + 2 * H, penalty_percent=D(10))
    assert [x.on_time for x in extended.versions] == [True, True]
    assert (extended.counting.version, extended.final_points, extended.late) == (2, D(9), False)
    assert extended.deadline_passed is False


def test_the_teacher_chooses_a_version_and_the_penalty():
    versions = [v(1, DUE - H, points=D(6)), v(2, DUE + H, points=D(9))]
    chosen = st.standing(versions, due=DUE, now=DUE + 2 * H, penalty_percent=D(20), chosen_id=102)
    assert (chosen.counting.version, chosen.why, chosen.late) == (2, st.CHOSEN, True)
    assert (chosen.penalty_source, chosen.final_points) == (st.PENALTY_ASSIGNMENT, D("7.20"))
    waived = st.standing(
        versions,
        due=DUE,
        now=DUE + 2 * H,
        penalty_percent=D(20),
        chosen_id=102,
        penalty_override=D(0),
    )
    assert (waived.penalty_source, waived.penalty_percent, waived.final_points) == (
        st.PENALTY_WAIVED,
        D(0),
        D("9.00"),
    )
    override = st.standing(
        versions,
        due=DUE,
        now=DUE + 2 * H,
        penalty_percent=D(20),
        chosen_id=102,
        penalty_override=D(5),
    )
    assert (override.penalty_source, override.final_points) == (st.PENALTY_OVERRIDE, D("8.55"))
    # an override does nothing to an on-time version
    on_time = st.standing(versions, due=DUE, now=DUE + 2 * H, penalty_override=D(5))
    assert (on_time.counting.version, on_time.penalty_source, on_time.final_points) == (
        1,
        st.PENALTY_NONE,
        D("6.00"),
    )
    # a chosen id that is not one of the versions is ignored (the default rule)
    stray = st.standing(versions, due=DUE, now=DUE + 2 * H, chosen_id=999)
    assert (stray.counting.version, stray.why) == (1, st.LAST_ON_TIME)


def test_returned_only_when_the_counting_versions_grade_was_returned():
    versions = [v(1, DUE - 2 * H, points=D(7), returned=True), v(2, DUE - H, points=D(8))]
    s = st.standing(versions, due=DUE, now=DUE + H)
    assert (s.counting.version, s.state, s.returned) == (2, st.GRADED, False)


def test_without_a_deadline_everything_is_on_time_and_the_newest_counts():
    s = st.standing([v(1, DUE), v(2, DUE + 1000 * H)], due=None, now=DUE + 2000 * H)
    assert (s.counting.version, s.late, s.deadline_passed) == (2, False, False)


def test_penalty_for():
    assert st.penalty_for(False, 20, None) == (D(0), st.PENALTY_NONE)
    assert st.penalty_for(True, 20, None) == (D(20), st.PENALTY_ASSIGNMENT)
    assert st.penalty_for(True, 20, 0) == (D(0), st.PENALTY_WAIVED)
    assert st.penalty_for(True, 20, D("2.5")) == (D("2.5"), st.PENALTY_OVERRIDE)
