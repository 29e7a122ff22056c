"""Plain pytest files as an assignment's tests (pure; docs/autograding.md, "Pytest files").

A teacher attaches ``test_*.py`` files with points and a visibility. Each top-level
``def test_*():`` (no arguments) becomes one test of the plan: the file's code followed by
a call of that function, run like a notebook's test cell, in the student's kernel after
the student's cells (the student's functions and variables are the file's globals), sent
to the sealed container only once the student phase is over, rewritten by the runner
(comparisons and asserts through the guard) and framed the same way. The file's points are
shared equally by its test functions.

Not supported, on purpose: fixtures and parametrized tests (a test function with
arguments is refused with a message), conftest.py, and pytest's own runner (its plugins
and collection would run inside the student's kernel, which student code controls).
``pytest.raises`` and ``pytest.approx`` work when the image has pytest installed.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import Any

from .notebook import MAX_POINTS, VISIBILITIES, NotebookError, TestSpec

MAX_FILES = 20
MAX_FILE_BYTES = 256 << 10
MAX_TESTS_PER_FILE = 200
NAME_RE = re.compile(r"^test_[A-Za-z0-9_]{1,80}\.py$")


@dataclasses.dataclass(frozen=True)
class TestFile:
    name: str
    source: str
    points: float
    visibility: str
    question: str | None = None

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def test_functions(name: str, source: str) -> list[str]:
    """The names of the file's top-level test functions, in order; NotebookError when the
    file is not Python or has none, or a test function takes arguments."""
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as e:
        raise NotebookError(f"{name} is not valid Python (line {e.lineno}: {e.msg}).") from None
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            if isinstance(node, ast.AsyncFunctionDef):
                raise NotebookError(f"{name}: {node.name} is async; write a plain function.")
            a = node.args
            if a.args or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg:
                raise NotebookError(
                    f"{name}: {node.name} takes arguments; fixtures and parametrized tests"
                    " are not supported (write one test function per case)."
                )
            found.append(node.name)
    if not found:
        raise NotebookError(f"{name} has no test function (def test_...():).")
    if len(found) > MAX_TESTS_PER_FILE:
        raise NotebookError(f"{name} has more than {MAX_TESTS_PER_FILE} test functions.")
    return found


def parse_files(body: Any) -> list[TestFile]:
    """The teacher's files: ``[{"name": "test_hw.py", "source": "...", "points": 4,
    "visibility": "visible", "question"?: "q1"}]``; NotebookError with a message."""
    if not isinstance(body, list) or len(body) > MAX_FILES:
        raise NotebookError(f"The test files must be a list of at most {MAX_FILES} files.")
    files: list[TestFile] = []
    for item in body:
        if not isinstance(item, dict) or set(item) - {
            "name",
            "source",
            "points",
            "visibility",
            "question",
        }:
            raise NotebookError(
                "Each test file is {name, source, points, visibility, question (optional)}."
            )
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise NotebookError("A test file's name must look like test_something.py.")
        if name in {f.name for f in files}:
            raise NotebookError(f"{name} is attached twice.")
        source = item.get("source")
        if not isinstance(source, str) or len(source.encode()) > MAX_FILE_BYTES:
            raise NotebookError(f"{name} must be text of at most {MAX_FILE_BYTES >> 10} KiB.")
        points = item.get("points", 1)
        if (
            isinstance(points, bool)
            or not isinstance(points, int | float)
            or not (0 <= points <= MAX_POINTS)
        ):
            raise NotebookError(f"{name}: the points must be a number from 0 to {MAX_POINTS}.")
        visibility = item.get("visibility", "visible")
        if visibility not in VISIBILITIES:
            raise NotebookError(f"{name}: the visibility must be one of {', '.join(VISIBILITIES)}.")
        question = item.get("question")
        if question is not None and not isinstance(question, str):
            raise NotebookError(f"{name}: the question must be a key such as q1.")
        test_functions(name, source)
        files.append(TestFile(name, source, float(points), visibility, question))
    return files


def file_tests(files: list[TestFile]) -> list[TestSpec]:
    """One test per test function: the file's code, then the call of that function."""
    specs = []
    for f in files:
        names = test_functions(f.name, f.source)
        share = round(f.points / len(names), 2)
        for fn in names:
            specs.append(
                TestSpec(f"{f.name}::{fn}", f"{f.source}\n\n{fn}()\n", share, f.visibility)
            )
    return specs


def file_questions(files: list[TestFile]) -> dict[str, str]:
    """``{test id: question key}`` for the files that name a question."""
    return {
        f"{f.name}::{fn}": f.question
        for f in files
        if f.question
        for fn in test_functions(f.name, f.source)
    }
