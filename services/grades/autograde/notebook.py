"""From a teacher's source notebook and a student's submitted one to a run plan (pure).

Graded cells are found by nbgrader's metadata (``metadata.nbgrader``: ``grade_id``,
``points``, ``grade``, ``solution``, ``locked``) or, in notebooks without it, by their
tags (``test``, ``locked``, ``solution``) and cell id. Each student cell is matched to the
source by that key; a cell whose metadata was removed is still matched by its cell id or
by the checksum of its source. The plan (docs/autograding.md, "Robust to edits"):

* locked cells run from the source (an edited copy is flagged ``edited``);
* test cells never run from the student's copy: the tests come from the source, after
  the student phase;
* solution cells run as the student wrote them; a deleted or retyped one is restored from
  the source and flagged; a duplicate runs as an ordinary cell, flagged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

MAX_NOTEBOOK_BYTES = 32 << 20
MAX_CELLS = 2000
MAX_CELL_SOURCE = 1 << 20
MAX_POINTS = 10_000
VISIBILITIES = ("visible", "after-due", "hidden")
HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
ROLES = ("test", "locked", "solution")
_TAG_ROLES = {
    "test": "test",
    "tests": "test",
    "autograder-tests": "test",
    "locked": "locked",
    "readonly": "locked",
    "solution": "solution",
    "answer": "solution",
}


class NotebookError(ValueError):
    """A notebook classhub cannot grade, with a message a teacher understands."""


@dataclasses.dataclass(frozen=True)
class Graded:
    """What a cell is for grading: its ``role`` and ``key`` (grade id or cell id)."""

    role: str  # "test", "locked" or "solution"
    key: str
    points: float = 0.0
    visibility: str = "visible"


@dataclasses.dataclass(frozen=True)
class TestSpec:
    """One test: a test cell of the source notebook."""

    id: str
    source: str
    points: float
    visibility: str


@dataclasses.dataclass(frozen=True)
class PlanCell:
    key: str  # "c<n>": unique in the plan, the runner's frames name it
    source: str
    origin: str  # "student", "source" (locked or restored)
    grade_id: str = ""
    #: how a teacher finds the cell: "cell 4" (its place in the student's notebook, from
    #: 1), with the grade id when it has one; a cell put back from the source notebook
    #: is named by its grade id
    label: str = ""


@dataclasses.dataclass(frozen=True)
class CellFlag:
    grade_id: str
    kind: str  # deleted, edited, retyped, duplicated, unmarked
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    cells: list[PlanCell]
    tests: list[TestSpec]
    flags: list[CellFlag]

    def runner_plan(
        self, *, cell_timeout: float, run_timeout: float = 3600.0, watch: list[str] | None = None
    ) -> dict:
        """The plan as the runner reads it (no test in it). ``run_timeout``: the runner
        ends itself a little after it, should the service be gone."""
        return {
            "cells": [{"key": c.key, "source": c.source} for c in self.cells],
            "cell_timeout": cell_timeout,
            "run_timeout": run_timeout,
            "watch": list(watch or []),
        }

    def runner_tests(self, *, timeout: float) -> dict:
        return {"tests": [{"id": t.id, "source": t.source, "timeout": timeout} for t in self.tests]}


# ----- reading cells


def load_notebook(data: bytes | str | dict) -> dict:
    """A notebook (nbformat 4 JSON) as a dict, checked for shape and size."""
    if isinstance(data, dict):
        nb = data
    else:
        if len(data) > MAX_NOTEBOOK_BYTES:
            raise NotebookError(f"The notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB.")
        try:
            nb = json.loads(data)
        except (ValueError, RecursionError):
            raise NotebookError("The file is not a notebook (it is not JSON).") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("The file is not a notebook (it has no cells).")
    if nb.get("nbformat", 4) != 4:
        raise NotebookError("Only notebooks of format 4 can be graded.")
    if len(nb["cells"]) > MAX_CELLS:
        raise NotebookError(f"The notebook has more than {MAX_CELLS} cells.")
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            raise NotebookError("The notebook has a cell that is not a cell.")
        if len(cell_source(cell)) > MAX_CELL_SOURCE:
            raise NotebookError("The notebook has a cell larger than 1 MiB.")
    return nb


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def checksum(source: str) -> str:
    """SHA-256 of a cell's source with line endings and trailing space normalised."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).strip().encode()).hexdigest()


SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_END = "### END HIDDEN TESTS"


def released(source: str) -> str:
    """A source cell as students received it (nbgrader's release): each solution region
    replaced by ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at its indentation,
    hidden test regions removed. A cell restored from the source is always this version:
    a deleted answer must never bring the teacher's solution back."""
    out: list[str] = []
    skipping = ""
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if skipping:
            if stripped.startswith(skipping):
                skipping = ""
            continue
        if stripped.startswith(SOLUTION_BEGIN):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n")
            skipping = SOLUTION_END
        elif stripped.startswith(HIDDEN_MARK):
            skipping = HIDDEN_END
        else:
            out.append(line)
    return "".join(out)


def _points(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0.0
    return float(min(max(value, 0), MAX_POINTS))


def graded(cell: dict) -> Graded | None:
    """The grading role of a cell, or None for an ordinary cell."""
    metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    source = cell_source(cell)
    classhub = metadata.get("classhub") if isinstance(metadata.get("classhub"), dict) else {}
    nbg = metadata.get("nbgrader")
    if isinstance(nbg, dict) and isinstance(nbg.get("grade_id"), str) and nbg["grade_id"]:
        grade, solution, locked = (bool(nbg.get(k)) for k in ("grade", "solution", "locked"))
        if grade and not solution and cell.get("cell_type") == "code":
            role = "test"
        elif solution:
            role = "solution"
        elif locked:
            role = "locked"
        else:
            return None
        key = nbg["grade_id"][:200]
        points = _points(nbg.get("points", 0))
    else:
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        roles = [_TAG_ROLES[t] for t in tags if isinstance(t, str) and t in _TAG_ROLES]
        cell_id = cell.get("id")
        if not roles or not isinstance(cell_id, str) or not cell_id:
            return None
        role = roles[0]
        if role == "test" and cell.get("cell_type") != "code":
            return None
        key = cell_id[:200]
        points = _points(classhub.get("points", 0))
    visibility = classhub.get("visibility")
    if visibility not in VISIBILITIES:
        visibility = "hidden" if HIDDEN_MARK in source else "visible"
    return Graded(role, key, points if role == "test" else 0.0, visibility)


# ----- matching and the plan


def cell_key(cell: dict) -> str | None:
    """The key a cell claims (its nbgrader grade id, or the cell id of a tagged cell),
    whatever its type now: a retyped cell still names its source cell."""
    metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    nbg = metadata.get("nbgrader")
    if isinstance(nbg, dict) and isinstance(nbg.get("grade_id"), str) and nbg["grade_id"]:
        return nbg["grade_id"][:200]
    tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
    cell_id = cell.get("id")
    if any(isinstance(t, str) and t in _TAG_ROLES for t in tags) and isinstance(cell_id, str):
        return cell_id[:200] or None
    return None


def _match_source(
    student_cells: list[dict], source_graded: dict[str, tuple[Graded, dict]]
) -> list[Graded | None]:
    """The source's graded entry each student cell stands for (None: an ordinary cell).
    By key first; a cell whose grading metadata is gone is matched by its cell id or by
    its checksum (it is then flagged by the caller as ``unmarked``)."""
    by_id = {c.get("id"): g for g, c in source_graded.values() if isinstance(c.get("id"), str)}
    by_sum = {}
    for g, c in source_graded.values():
        if g.role in ("locked", "test"):
            by_sum.setdefault(checksum(cell_source(c)), g)
            by_sum.setdefault(checksum(released(cell_source(c))), g)
    out: list[Graded | None] = []
    for cell in student_cells:
        mine = cell_key(cell)
        if mine is not None and mine in source_graded:
            out.append(source_graded[mine][0])
            continue
        if mine is None:
            found = by_id.get(cell.get("id")) if isinstance(cell.get("id"), str) else None
            if found is None and cell.get("cell_type") == "code":
                found = by_sum.get(checksum(cell_source(cell)))
            out.append(found)
            continue
        out.append(None)  # marked as graded, but with a key the source does not have
    return out


def restored_label(key: str) -> str:
    """What a teacher reads for a graded cell put back from the source notebook."""
    return f"{key} (from the source notebook)"


def make_plan(source_nb: dict, student_nb: dict) -> Plan:
    """The run plan for ``student_nb`` graded against the teacher's ``source_nb``."""
    source_cells = source_nb["cells"]
    student_cells = student_nb["cells"]
    source_graded: dict[str, tuple[Graded, dict]] = {}
    order: list[str] = []
    for cell in source_cells:
        g = graded(cell)
        if g is None:
            continue
        if g.key in source_graded:
            raise NotebookError(f"The source notebook has two cells with the id {g.key!r}.")
        source_graded[g.key] = (g, cell)
        order.append(g.key)
    tests = [
        TestSpec(key, cell_source(cell), g.points, g.visibility)
        for key, (g, cell) in source_graded.items()
        if g.role == "test"
    ]
    matches = _match_source(student_cells, source_graded)
    flags: list[CellFlag] = []
    seen: set[str] = set()
    # (source key or None, PlanCell-to-be) in the student's order
    # (key, source, origin, grade_id, label)
    entries: list[tuple[str | None, str, str, str, str]] = []
    for number, (cell, match) in enumerate(zip(student_cells, matches, strict=True), 1):
        kind = cell.get("cell_type")
        here = f"cell {number}"
        if match is None:
            if kind == "code":
                entries.append((None, cell_source(cell), "student", "", here))
            continue
        g, source_cell = source_graded[match.key]
        if cell_key(cell) is None:
            flags.append(
                CellFlag(
                    g.key,
                    "unmarked",
                    "The cell's grading metadata was removed; matched by its id or content.",
                )
            )
        if match.key in seen:
            flags.append(CellFlag(g.key, "duplicated", "The cell appears more than once."))
            if g.role == "solution" and kind == "code":
                entries.append(
                    (None, cell_source(cell), "student", "", f"{here} (a copy of {g.key})")
                )
            continue
        seen.add(match.key)
        here = f"{here} ({g.key})"
        restored = restored_label(g.key)
        given = cell_source(source_cell)
        edited = checksum(cell_source(cell)) not in (checksum(released(given)), checksum(given))
        retyped = kind != source_cell.get("cell_type")
        if retyped:
            flags.append(
                CellFlag(
                    g.key,
                    "retyped",
                    f"The cell was changed from {source_cell.get('cell_type')}"
                    f" to {kind}; the source's cell is used.",
                )
            )
        if g.role == "test":
            if edited and not retyped:
                flags.append(
                    CellFlag(g.key, "edited", "The test cell was edited; the source's tests run.")
                )
            entries.append((g.key, "", "marker", g.key, here))
            continue
        if g.role == "locked":
            if edited and not retyped:
                flags.append(
                    CellFlag(g.key, "edited", "The locked cell was edited; the source's cell runs.")
                )
            if source_cell.get("cell_type") == "code":
                entries.append((g.key, released(given), "source", g.key, restored))
            else:
                entries.append((g.key, "", "marker", g.key, here))
            continue
        # a solution cell
        if source_cell.get("cell_type") != "code":
            entries.append((g.key, "", "marker", g.key, here))
        elif retyped:
            entries.append((g.key, released(given), "source", g.key, restored))
        else:
            entries.append((g.key, cell_source(cell), "student", g.key, here))
    # graded cells the student deleted: back after the graded cell that precedes them
    for n, key in enumerate(order):
        if key in seen:
            continue
        g, source_cell = source_graded[key]
        flags.append(
            CellFlag(
                key,
                "deleted",
                "The cell was deleted; the source's cell is used."
                if g.role != "test"
                else "The test cell was deleted; the source's tests run.",
            )
        )
        if g.role == "test":
            continue
        restored = restored_label(key)
        if source_cell.get("cell_type") == "code":
            new = (key, released(cell_source(source_cell)), "source", key, restored)
        else:
            new = (key, "", "marker", key, restored)
        at = len(entries)
        following = [k for k in order[n + 1 :] if k in seen]
        preceding = [k for k in reversed(order[:n]) if k in seen]
        if following:
            at = min(i for i, e in enumerate(entries) if e[0] == following[0])
        elif preceding:
            at = max(i for i, e in enumerate(entries) if e[0] == preceding[0]) + 1
        entries.insert(at, new)
        seen.add(key)
    cells = [
        PlanCell(f"c{n}", source, origin, grade_id, label)
        for n, (_, source, origin, grade_id, label) in enumerate(
            e for e in entries if e[2] != "marker" and e[1].strip()
        )
    ]
    return Plan(cells, tests, flags)
