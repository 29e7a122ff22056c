"""The gradebook of a class: a table of students × assignments, and its CSV export (pure).

:func:`build_gradebook` turns the roster, the class's assignments and the grade rows read
from the database into a :class:`Gradebook`; :func:`gradebook_csv` writes it as a CSV that
Excel, LibreOffice and Google Sheets open as-is. No I/O here.

Points are :class:`~decimal.Decimal` throughout (a float is read through its shortest
``repr``, so ``0.1`` is ``Decimal("0.1")``). The rules:

* A cell is ``graded`` when its row has points, else ``submitted`` when the row says so,
  else ``not_handed_in_yet`` when the row's ``state`` says so (the student's deadline is
  still to come), else ``missing`` (also when there is no row at all).
* Late work loses ``penalty_percent`` (0..100): ``final = points * (1 - penalty / 100)``.
  Final points are always rounded half-up to cents (``ROUND_HALF_UP``, 2 decimals); the
  raw points are kept as given. A row may carry its ``final_points`` already (the
  grades service gives those of :func:`services.grades.standing.standing`, so the
  gradebook shows exactly what the student's page does).
* An assignment may have questions (``questions``: ``[(key, label, points)]``); a graded
  cell then carries the points per question of the version that counts (``questions``
  in its row: ``{key: points}``), and the CSV has a column per question.
* An assignment may have automatic tests (``tests``: ``[(id, points)]``); a cell then
  carries the score of each test in the stored autograde result of the version that
  counts (``tests`` in its row: ``{id: score}``; absent: not graded automatically), and
  the CSV has a column per test.
* A student's ``earned`` is the sum of their final points; ``possible_graded`` the sum of
  ``max_points`` of the assignments graded for them, ``possible_all`` of all assignments;
  ``percentage`` is ``earned / possible_graded × 100`` (2 decimals, half-up), ``None``
  when nothing is graded (or only assignments worth 0 points).
* Per assignment: how many handed in (the rows' ``submitted`` flag), how many are graded,
  ungraded and missing, and the mean and median of the final points (2 decimals, half-up;
  ``None`` when nothing is graded).

Data that does not fit is ignored, never an error: grade rows for a student not on the
roster or for an unknown assignment, and repeats (the last row for a student and an
assignment wins). Values that cannot be right raise :class:`ValueError`: negative points
or maximum, a penalty outside 0..100, a slug given to two assignments.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

GRADED = "graded"
SUBMITTED = "submitted"  # handed in, not graded yet
MISSING = "missing"  # nothing handed in, no grade (the deadline passed)
NOT_YET = "not_handed_in_yet"  # nothing handed in, the deadline is still to come

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)

# OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UNGRADED_TEXT = "ungraded"


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    points: Decimal


@dataclass(frozen=True)
class Assignment:
    slug: str
    title: str
    max_points: Decimal
    due_at: Any = None  # a datetime (all naive or all aware) or None: last
    questions: tuple[Question, ...] = ()
    #: automatic tests (key: the test's id, label: the same, points: its points)
    tests: tuple[Question, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One student's result for one assignment."""

    slug: str
    state: str  # GRADED, SUBMITTED or MISSING
    points: Decimal | None = None  # final points, after any late penalty (graded only)
    raw_points: Decimal | None = None  # points as given by the grader (graded only)
    submitted: bool = False
    late: bool = False  # never set on a missing cell
    penalty_percent: Decimal = ZERO  # the penalty applied (0 unless late)
    #: graded cells of an assignment with questions: the points per question, in the
    #: assignment's order (None: not given)
    questions: tuple[Decimal | None, ...] = ()
    #: why nothing was handed in (missing cells), e.g. no home folder at the deadline
    reason: str | None = None
    #: the score of each automatic test of the assignment, in its order, for the version
    #: that counts (None: that version has no result for the test)
    tests: tuple[Decimal | None, ...] = ()


@dataclass(frozen=True)
class StudentRow:
    username: str
    cells: tuple[Cell, ...]  # one per assignment, in the gradebook's assignment order
    earned: Decimal
    possible_graded: Decimal
    possible_all: Decimal
    percentage: Decimal | None

    @property
    def late_slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.cells if c.late)

    def cell(self, slug: str) -> Cell:
        for c in self.cells:
            if c.slug == slug:
                return c
        raise KeyError(slug)


@dataclass(frozen=True)
class AssignmentStats:
    slug: str
    submitted: int  # rows flagged as handed in (graded or not)
    graded: int
    ungraded: int  # handed in, waiting for a grade
    missing: int
    mean: Decimal | None
    median: Decimal | None
    not_handed_in_yet: int = 0


@dataclass(frozen=True)
class Gradebook:
    assignments: tuple[Assignment, ...]  # by due date (undated last), then slug
    rows: tuple[StudentRow, ...]  # by username
    stats: tuple[AssignmentStats, ...]  # one per assignment, same order

    def row(self, username: str) -> StudentRow:
        for r in self.rows:
            if r.username == username:
                return r
        raise KeyError(username)

    def cell(self, username: str, slug: str) -> Cell:
        return self.row(username).cell(slug)

    def stats_for(self, slug: str) -> AssignmentStats:
        for s in self.stats:
            if s.slug == slug:
                return s
        raise KeyError(slug)


def to_decimal(value: Any, what: str = "points") -> Decimal:
    """A finite Decimal from a Decimal, int, float (via its repr) or numeric string."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: not a number: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what}: not a finite number: {value!r}")
        value = repr(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{what}: not a finite number: {value!r}")
    return result


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def final_points(points: Decimal, late: bool, penalty_percent: Decimal) -> Decimal:
    """Points after the late penalty, rounded half-up to cents."""
    if late and penalty_percent:
        points = points * (HUNDRED - penalty_percent) / HUNDRED
    return round_cents(points)


def _assignment(raw: Mapping[str, Any]) -> Assignment:
    max_points = to_decimal(raw["max_points"], f"max_points of {raw['slug']!r}")
    if max_points < 0:
        raise ValueError(f"max_points of {raw['slug']!r} is negative: {max_points}")
    questions = tuple(
        Question(str(key), str(label), to_decimal(points, f"points of question {key!r}"))
        for key, label, points in raw.get("questions") or ()
    )
    tests = tuple(
        Question(str(key), str(key), to_decimal(points, f"points of test {key!r}"))
        for key, points in raw.get("tests") or ()
    )
    return Assignment(
        slug=raw["slug"],
        title=raw.get("title") or raw["slug"],
        max_points=max_points,
        due_at=raw.get("due_at"),
        questions=questions,
        tests=tests,
    )


def _due_key(a: Assignment) -> tuple:
    # undated assignments after all dated ones; the first items differ, so a datetime is
    # never compared with a slug
    return (0, a.due_at, a.slug) if a.due_at is not None else (1, a.slug)


def _cell(assignment: Assignment, grade: Mapping[str, Any] | None) -> Cell:
    cell = _graded_cell(assignment, grade)
    scores = (grade or {}).get("tests") or {}
    if not assignment.tests or not scores:
        return cell
    return replace(
        cell,
        tests=tuple(
            None if scores.get(t.key) is None else to_decimal(scores[t.key], "a test's score")
            for t in assignment.tests
        ),
    )


def _graded_cell(assignment: Assignment, grade: Mapping[str, Any] | None) -> Cell:
    slug = assignment.slug
    if grade is None:
        return Cell(slug=slug, state=MISSING)
    submitted = bool(grade.get("submitted"))
    late = bool(grade.get("late"))
    points = grade.get("points")
    if points is None:
        if not submitted:
            if grade.get("state") == NOT_YET:
                return Cell(slug=slug, state=NOT_YET)
            return Cell(slug=slug, state=MISSING, reason=grade.get("reason"))
        return Cell(slug=slug, state=SUBMITTED, submitted=True, late=late)
    raw = to_decimal(points, f"points of {grade.get('username')!r} for {slug!r}")
    if raw < 0:
        raise ValueError(f"points of {grade.get('username')!r} for {slug!r} are negative")
    penalty = ZERO
    if late:
        given = grade.get("penalty_percent")
        penalty = ZERO if given is None else to_decimal(given, "penalty_percent")
        if not ZERO <= penalty <= HUNDRED:
            raise ValueError(f"penalty_percent must be 0..100, not {penalty}")
    given = grade.get("final_points")
    final = final_points(raw, late, penalty) if given is None else to_decimal(given)
    per_question = grade.get("questions") or {}
    return Cell(
        slug=slug,
        state=GRADED,
        points=final,
        raw_points=raw,
        submitted=submitted,
        late=late,
        penalty_percent=penalty,
        questions=tuple(
            None if per_question.get(q.key) is None else to_decimal(per_question[q.key])
            for q in assignment.questions
        ),
    )


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return round_cents((ordered[mid - 1] + ordered[mid]) / 2)


def _stats(slug: str, cells: list[Cell]) -> AssignmentStats:
    finals = [c.points for c in cells if c.points is not None]
    return AssignmentStats(
        slug=slug,
        submitted=sum(c.submitted for c in cells),
        graded=len(finals),
        ungraded=sum(c.state == SUBMITTED for c in cells),
        missing=sum(c.state == MISSING for c in cells),
        mean=round_cents(sum(finals, ZERO) / len(finals)) if finals else None,
        median=_median(finals) if finals else None,
        not_handed_in_yet=sum(c.state == NOT_YET for c in cells),
    )


def build_gradebook(
    students: Iterable[str],
    assignments: Iterable[Mapping[str, Any]],
    grades: Iterable[Mapping[str, Any]],
) -> Gradebook:
    """The gradebook of ``students`` (every one gets a row) for ``assignments``.

    An assignment has ``slug``, ``title``, ``max_points`` and ``due_at``; a grade row has
    ``username``, ``slug``, ``points`` (None until graded), ``submitted``, ``late`` and
    ``penalty_percent``. See the module's docstring for the rules.
    """
    with localcontext() as ctx:
        ctx.prec = 28  # the default, whatever the caller's thread has set
        return _build(students, assignments, grades)


def _build(students, assignments, grades) -> Gradebook:
    items = sorted((_assignment(a) for a in assignments), key=_due_key)
    slugs = [a.slug for a in items]
    if len(set(slugs)) != len(slugs):
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        raise ValueError(f"assignment slugs given twice: {', '.join(dupes)}")
    usernames = sorted(set(students))
    known_users, known_slugs = set(usernames), set(slugs)

    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for g in grades:
        key = (g.get("username"), g.get("slug"))
        if key[0] in known_users and key[1] in known_slugs:
            latest[key] = g  # the last row for a pair wins

    possible_all = sum((a.max_points for a in items), ZERO)
    rows = []
    columns: list[list[Cell]] = [[] for _ in items]
    for username in usernames:
        cells = tuple(_cell(a, latest.get((username, a.slug))) for a in items)
        earned = possible_graded = ZERO
        for a, c, column in zip(items, cells, columns, strict=True):
            column.append(c)
            if c.points is not None:
                earned += c.points
                possible_graded += a.max_points
        percentage = round_cents(earned * HUNDRED / possible_graded) if possible_graded else None
        rows.append(
            StudentRow(
                username=username,
                cells=cells,
                earned=earned,
                possible_graded=possible_graded,
                possible_all=possible_all,
                percentage=percentage,
            )
        )
    stats = tuple(_stats(a.slug, column) for a, column in zip(items, columns, strict=True))
    return Gradebook(assignments=tuple(items), rows=tuple(rows), stats=stats)


# -- CSV ------------------------------------------------------------------------------------


def safe_text(text: str) -> str:
    """``text`` as a spreadsheet cell that cannot run as a formula (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def plain_number(value: Decimal) -> str:
    """``12.5``, ``10``, ``0.25``: no exponent, no trailing zeros, a dot for decimals."""
    return format(value.normalize(), "f")


def _cell_text(cell: Cell) -> str:
    if cell.points is not None:
        return plain_number(cell.points)
    return UNGRADED_TEXT if cell.state == SUBMITTED else ""


def _question_texts(assignment: Assignment, cell: Cell) -> list[str]:
    if not assignment.questions:
        return []
    values = cell.questions or (None,) * len(assignment.questions)
    return ["" if v is None else plain_number(v) for v in values]


def _test_texts(assignment: Assignment, cell: Cell) -> list[str]:
    values = cell.tests or (None,) * len(assignment.tests)
    return ["" if v is None else plain_number(v) for v in values]


def gradebook_csv(book: Gradebook) -> bytes:
    """The gradebook as CSV bytes: UTF-8 with a BOM, CRLF line ends, comma separated.

    Header ``Student, <title (max points)>..., Total, Possible, Percent, Late``; a cell is
    the final points, empty when missing, ``ungraded`` when handed in but not graded. An
    assignment with questions is followed by a column per question, ``<title>: <label>
    (points)``, with the points given for it (before any late penalty), then by a column
    per automatic test, ``<title>: test <id> (points)``, with the test's score in the
    counting version's autograde result (empty: not graded automatically).
    ``Possible`` is the maximum of the graded assignments (so Percent = Total/Possible),
    ``Percent`` is empty when nothing is graded, ``Late`` lists the late assignments'
    slugs separated by spaces. Text (names, titles, the late list) that a spreadsheet
    would read as a formula is prefixed with ``'``; numbers are written as they are.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    header = ["Student"]
    for a in book.assignments:
        header.append(safe_text(f"{a.title} ({plain_number(a.max_points)})"))
        header += [
            safe_text(f"{a.title}: {q.label} ({plain_number(q.points)})") for q in a.questions
        ]
        header += [
            safe_text(f"{a.title}: test {t.key} ({plain_number(t.points)})") for t in a.tests
        ]
    writer.writerow([*header, "Total", "Possible", "Percent", "Late"])
    for row in book.rows:
        cells: list[str] = []
        for a, c in zip(book.assignments, row.cells, strict=True):
            cells.append(_cell_text(c))
            cells += _question_texts(a, c)
            cells += _test_texts(a, c)
        writer.writerow(
            [
                safe_text(row.username),
                *cells,
                plain_number(row.earned),
                plain_number(row.possible_graded),
                "" if row.percentage is None else plain_number(row.percentage),
                safe_text(" ".join(row.late_slugs)),
            ]
        )
    return out.getvalue().encode("utf-8-sig")
