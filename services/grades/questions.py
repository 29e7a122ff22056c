"""An assignment's questions and their points (pure: no I/O).

A teacher may give an assignment questions, each with a label and the points it is worth;
the assignment's maximum is then their sum, and a grade is the sum of the points given per
question (the grade's overall points are derived, never typed). Questions are optional: an
assignment without them is graded with one number as before.

The questions can be imported from the assignment's starting notebook
(:func:`questions_from_notebook`): its cells tagged ``question`` (JupyterLab's cell tags;
``metadata.tags``), or its level-2 Markdown headings (``## Question 1``). Points are read
from the cell's metadata (``"points": 5``, as nbgrader writes them) or from the label
(``## Question 1 (5 points)``, ``[5 pts]``), else 1; the teacher edits them afterwards.

Each question has a key (``q1``, ``q2``, ...) that never changes once given, so points
given per question stay with their question when others are added, removed or renamed.
Points per question are stored with a source, ``manual`` (a teacher typed them) or
``auto`` (for the autograding to come), and the grade's points are their sum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from common.errors import BadRequest

from . import rules

MAX_QUESTIONS = 100
MAX_LABEL = 200
MANUAL = "manual"
AUTO = "auto"
SOURCES = (MANUAL, AUTO)
BY_TAG = "tag"
BY_HEADING = "heading"
DEFAULT_TAG = "question"
DEFAULT_POINTS = Decimal(1)
KEY_RE = re.compile(r"^q[1-9][0-9]{0,3}$")
_CENT = Decimal("0.01")
_POINTS_RE = re.compile(
    r"[(\[]\s*(\d{1,5}(?:[.,]\d{1,2})?)\s*(?:points?|pts?|p)\s*\.?\s*[)\]]", re.IGNORECASE
)
_HEADING_RE = re.compile(r"^##(?!#)\s*(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    points: Decimal  # what the question is worth
    position: int = 0
    #: where it came from: "manual", "tag" or "heading" (imported from the notebook)
    origin: str = "manual"


# ----------------------------------------------------------------------------- notebooks


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _points_in(text: str) -> Decimal | None:
    found = _POINTS_RE.search(text)
    if not found:
        return None
    try:
        return Decimal(found.group(1).replace(",", "."))
    except InvalidOperation:
        return None


def _clean_label(text: str) -> str:
    text = _POINTS_RE.sub("", text)
    text = re.sub(r"^#+\s*", "", text.strip())
    text = " ".join(text.split())
    return text[:MAX_LABEL].strip() or "Question"


def _metadata_points(cell: Mapping[str, Any]) -> Decimal | None:
    metadata = cell.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    for holder in (metadata, metadata.get("nbgrader")):
        if isinstance(holder, Mapping):
            value = holder.get("points")
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    return Decimal(str(value))
                except InvalidOperation:
                    return None
    return None


def _sane_points(value: Decimal | None) -> Decimal:
    if value is None or not value.is_finite() or value <= 0 or value > rules.MAX_POINTS:
        return DEFAULT_POINTS
    return value.quantize(_CENT, ROUND_HALF_UP)


def questions_from_notebook(
    notebook: Any, *, by: str = BY_TAG, tag: str = DEFAULT_TAG
) -> list[dict]:
    """The questions a notebook (nbformat 4 JSON, as a dict) defines: ``[{"label",
    "points", "origin"}]`` in order. ``by="tag"``: cells whose tags include ``tag``, the
    label their first non-empty line; ``by="heading"``: level-2 Markdown headings. Only
    ``cells``, each cell's ``source`` and ``metadata`` are read (outputs may be left out).
    BadRequest for anything that is not a notebook."""
    if not isinstance(notebook, Mapping) or not isinstance(notebook.get("cells"), list):
        raise BadRequest("That is not a Jupyter notebook (it has no list of cells).")
    if by not in (BY_TAG, BY_HEADING):
        raise BadRequest('Import questions "by" a cell tag ("tag") or headings ("heading").')
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
        raise BadRequest("The cell tag must be a word such as question.")
    tag = tag.strip().lower()
    found: list[dict] = []
    for cell in notebook["cells"]:
        if not isinstance(cell, Mapping):
            continue
        text = _source(cell)
        if by == BY_TAG:
            metadata = cell.get("metadata") if isinstance(cell.get("metadata"), Mapping) else {}
            tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
            if not isinstance(tags, list) or tag not in {
                t.strip().lower() for t in tags if isinstance(t, str)
            }:
                continue
            first = next((line for line in text.splitlines() if line.strip()), "")
            points = _metadata_points(cell) or _points_in(first)
            found.append(
                {"label": _clean_label(first), "points": _sane_points(points), "origin": BY_TAG}
            )
        elif cell.get("cell_type") == "markdown":
            in_code = False
            for line in text.splitlines():
                if line.lstrip().startswith("```"):
                    in_code = not in_code
                    continue
                heading = None if in_code else _HEADING_RE.match(line.strip())
                if heading:
                    found.append(
                        {
                            "label": _clean_label(heading.group(1)),
                            "points": _sane_points(_points_in(heading.group(1))),
                            "origin": BY_HEADING,
                        }
                    )
        if len(found) > MAX_QUESTIONS:
            raise BadRequest(f"The notebook defines more than {MAX_QUESTIONS} questions.")
    return found


# ----------------------------------------------------------------------------- validation


def next_key(taken: set[str]) -> str:
    n = 1
    while f"q{n}" in taken:
        n += 1
    return f"q{n}"


def parse_questions(body: Any, current: list[Question]) -> list[Question]:
    """The assignment's new list of questions from ``[{"key"?, "label", "points",
    "origin"?}]`` (in order; an empty list removes them all). A ``key`` names a question
    that exists (its points given stay with it); without one a new key is made."""
    if not isinstance(body, list):
        raise BadRequest("The questions must be a list of {label, points}.")
    if len(body) > MAX_QUESTIONS:
        raise BadRequest(f"An assignment can have at most {MAX_QUESTIONS} questions.")
    known = {q.key for q in current}
    taken = {item.get("key") for item in body if isinstance(item, Mapping)} & known
    seen: set[str] = set()
    result: list[Question] = []
    for position, item in enumerate(body, start=1):
        if not isinstance(item, Mapping):
            raise BadRequest("Each question must be an object with a label and points.")
        unknown = sorted(str(k) for k in item if k not in {"key", "label", "points", "origin"})
        if unknown:
            raise BadRequest(f'Unknown field "{unknown[0][:40]}" in a question.')
        key = item.get("key")
        if key is None:
            key = next_key(taken | seen)
        elif not isinstance(key, str) or key not in known:
            raise BadRequest(f"Question {position}: there is no question {str(key)[:20]!r}.")
        if key in seen:
            raise BadRequest(f"Question {position}: {key} is listed twice.")
        seen.add(key)
        label = item.get("label")
        if not isinstance(label, str) or not label.strip():
            raise BadRequest(f"Question {position} needs a label.")
        if len(label.strip()) > MAX_LABEL:
            raise BadRequest(
                f"Question {position}: a label can have at most {MAX_LABEL} characters."
            )
        points = rules.parse_decimal(
            item.get("points"), "points", low=Decimal(0), high=rules.MAX_POINTS, low_open=True
        )
        origin = item.get("origin", MANUAL)
        if origin not in (MANUAL, BY_TAG, BY_HEADING):
            origin = MANUAL
        result.append(Question(key, " ".join(label.split()), points, position, origin))
    if sum((q.points for q in result), Decimal(0)) > rules.MAX_POINTS:
        raise BadRequest(f"The questions' points add up to more than {rules.MAX_POINTS}.")
    return result


def total(questions: list[Question]) -> Decimal:
    """What the assignment is worth with these questions."""
    return sum((q.points for q in questions), Decimal(0))


def parse_question_points(
    body: Any, questions: list[Question], existing: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """A grade's points per question: ``{"<key>": points}``. A question left out keeps
    the points it has (e.g. given by the autograding); one that has none must be given.
    Each is at most what the question is worth."""
    if not isinstance(body, Mapping):
        raise BadRequest('The points per question must be an object: {"q1": 2, "q2": 3.5}.')
    by_key = {q.key: q for q in questions}
    unknown = sorted(str(k) for k in body if k not in by_key)
    if unknown:
        raise BadRequest(f"This assignment has no question {unknown[0][:20]!r}.")
    result: dict[str, Decimal] = {}
    for q in questions:
        if q.key in body:
            points = rules.parse_decimal(
                body[q.key], "points", low=Decimal(0), high=rules.MAX_POINTS, low_open=False
            )
        elif q.key in existing:
            points = existing[q.key]
        else:
            raise BadRequest(f'Give the points for "{q.label}" (0 is allowed).')
        if points > q.points:
            raise BadRequest(f'"{q.label}" is worth {q.points.normalize():f} points, not {points}.')
        result[q.key] = points
    return result
