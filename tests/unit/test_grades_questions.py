"""services.grades.questions: questions from a notebook, their validation and the points
given per question (pure)."""

from decimal import Decimal as D

import pytest

from common.errors import BadRequest
from services.grades import gradebook as gb
from services.grades import questions as qs
from services.grades.questions import Question

pytestmark = pytest.mark.unit


def cell(source, kind="markdown", tags=None, **metadata):
    if tags is not None:
        metadata["tags"] = tags
    return {"cell_type": kind, "source": source, "metadata": metadata, "outputs": []}


NOTEBOOK = {
    "nbformat": 4,
    "cells": [
        cell("# Lab 3\nRead all of it."),
        cell(["## Question 1 (2 points)\n", "Compute the mean.\n"], tags=["question"]),
        cell("x = 1", kind="code"),
        cell("Plot it [3 pts]\n\nUse matplotlib.", tags=["Question", "other"]),
        cell("print('no tag')", kind="code", tags=["solution"]),
        cell("# answer\nmean = 2", kind="code", tags=["question"], nbgrader={"points": 4}),
        cell("## Bonus\n```\n## not a heading in a code block\n```\n## Last one (1.5 p)"),
    ],
}


def test_questions_from_tagged_cells():
    found = qs.questions_from_notebook(NOTEBOOK, by="tag")
    assert found == [
        {"label": "Question 1", "points": D("2.00"), "origin": "tag"},
        {"label": "Plot it", "points": D("3.00"), "origin": "tag"},
        {"label": "answer", "points": D("4.00"), "origin": "tag"},
    ]
    # another tag
    assert [q["label"] for q in qs.questions_from_notebook(NOTEBOOK, tag="solution")] == [
        "print('no tag')"
    ]


def test_questions_from_level_two_headings():
    found = qs.questions_from_notebook(NOTEBOOK, by="heading")
    assert [(q["label"], q["points"]) for q in found] == [
        ("Question 1", D("2.00")),
        ("Bonus", D(1)),  # no points given: 1, the teacher edits them
        ("Last one", D("1.50")),
    ]


@pytest.mark.parametrize(
    "bad",
    [None, [], {"cells": "x"}, {"nbformat": 4}, "{}"],
)
def test_not_a_notebook_is_refused(bad):
    with pytest.raises(BadRequest, match="not a Jupyter notebook"):
        qs.questions_from_notebook(bad)


def test_bad_cells_are_skipped_and_odd_points_become_one():
    nb = {
        "cells": [
            "not a cell",
            cell("Q (0 points)", tags=["question"]),
            cell("Q2", tags=["question"], points=True),
            cell("Q3 (999999 points)", tags=["question"]),
        ]
    }
    assert [q["points"] for q in qs.questions_from_notebook(nb)] == [D(1), D(1), D(1)]
    with pytest.raises(BadRequest, match="by"):
        qs.questions_from_notebook(nb, by="magic")


def test_parse_questions_keeps_keys_and_makes_new_ones():
    current = [Question("q1", "A", D(2), 1), Question("q2", "B", D(3), 2)]
    new = qs.parse_questions(
        [
            {"key": "q2", "label": "  B,   renamed ", "points": 4},
            {"label": "C", "points": "1.5", "origin": "heading"},
        ],
        current,
    )
    assert [(q.key, q.label, q.points, q.position, q.origin) for q in new] == [
        ("q2", "B, renamed", D("4.00"), 1, "manual"),
        ("q1", "C", D("1.50"), 2, "heading"),  # q1 is free: it was dropped
    ]
    assert qs.total(new) == D("5.50")


@pytest.mark.parametrize(
    "body, message",
    [
        ("x", "must be a list"),
        ([{"label": "A"}], "points"),
        ([{"label": "", "points": 1}], "needs a label"),
        ([{"label": "A", "points": 0}], "greater than 0"),
        ([{"label": "A", "points": 1, "key": "q9"}], "no question"),
        (
            [{"label": "A", "points": 1, "key": "q1"}, {"key": "q1", "label": "B", "points": 1}],
            "twice",
        ),
        ([{"label": "A", "points": 1, "extra": 1}], "Unknown field"),
        ([{"label": "A", "points": 6000}, {"label": "B", "points": 6000}], "add up"),
    ],
)
def test_parse_questions_refuses(body, message):
    with pytest.raises(BadRequest, match=message):
        qs.parse_questions(body, [Question("q1", "A", D(2), 1)])


def test_points_per_question():
    questions = [Question("q1", "Mean", D(2), 1), Question("q2", "Plot", D(3), 2)]
    assert qs.parse_question_points({"q1": 2, "q2": "2.5"}, questions, {}) == {
        "q1": D("2.00"),
        "q2": D("2.50"),
    }
    # a question left out keeps what it has (e.g. from the autograding)
    assert qs.parse_question_points({"q1": 1}, questions, {"q2": D(3)}) == {
        "q1": D("1.00"),
        "q2": D(3),
    }
    with pytest.raises(BadRequest, match='Give the points for "Plot"'):
        qs.parse_question_points({"q1": 1}, questions, {})
    with pytest.raises(BadRequest, match='"Mean" is worth 2 points'):
        qs.parse_question_points({"q1": 3, "q2": 0}, questions, {})
    with pytest.raises(BadRequest, match="no question 'q7'"):
        qs.parse_question_points({"q7": 1}, questions, {})


def test_the_gradebook_and_its_csv_show_points_per_question():
    assignments = [
        {
            "slug": "lab",
            "title": "Lab",
            "max_points": 5,
            "questions": [("q1", "Mean", D(2)), ("q2", "=Plot", D(3))],
        },
        {"slug": "hw", "title": "HW", "max_points": 10},
    ]
    rows = [
        {
            "username": "ann",
            "slug": "lab",
            "points": D(4),
            "final_points": D("3.20"),
            "late": True,
            "penalty_percent": D(20),
            "submitted": True,
            "questions": {"q1": D(2), "q2": D(2)},
        },
        {"username": "bob", "slug": "lab", "state": gb.NOT_YET, "submitted": False},
        {"username": "ann", "slug": "hw", "state": gb.MISSING, "reason": "no home folder"},
    ]
    book = gb.build_gradebook(["ann", "bob"], assignments, rows)
    ann = book.row("ann")
    assert ann.cell("lab").questions == (D(2), D(2)) and ann.cell("lab").points == D("3.20")
    assert ann.cell("hw").reason == "no home folder"
    assert book.cell("bob", "lab").state == gb.NOT_YET
    assert book.stats_for("lab").not_handed_in_yet == 1
    text = gb.gradebook_csv(book).decode("utf-8-sig").splitlines()
    assert text[0] == (
        "Student,HW (10),Lab (5),Lab: Mean (2),Lab: =Plot (3),Total,Possible,Percent,Late"
    )  # undated assignments by slug
    assert text[1] == "ann,,3.2,2,2,3.2,5,64,lab"
    assert text[2] == "bob,,,,,0,0,,"
