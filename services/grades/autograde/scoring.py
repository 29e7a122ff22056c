"""Verified frames to points (pure): a test scores its points only when its own frame
says ``pass``; every other outcome (fail, error, timeout, the kernel ended, the run killed,
the output cap, a refused frame, no frame at all) scores 0 with the reason shown."""

from __future__ import annotations

import dataclasses

from .notebook import CellFlag, Plan


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What the sandbox saw of the container, besides the frames."""

    problem: str = ""  # the frame reader's refusal, if any
    timed_out: bool = False  # the run's wall-clock limit
    output_capped: bool = False
    oom_killed: bool = False
    exit_code: int | None = 0
    error: str = ""  # the sandbox could not run (Docker, image)


@dataclasses.dataclass(frozen=True)
class TestOutcome:
    id: str
    status: str  # pass, fail, error, timeout, died, not-run
    score: float
    points: float
    visibility: str
    message: str
    flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CellOutcome:
    key: str
    grade_id: str
    origin: str
    status: str  # ok, error, timeout, died, not-run
    error: str
    label: str = ""  # "cell 4 (q1)": how a teacher finds it (PlanCell.label)


#: cell statuses a teacher and the student are told about: the cell did not finish
#: cleanly, which explains the tests that fail or do not run after it
CELL_PROBLEMS = frozenset({"error", "timeout", "died"})


@dataclasses.dataclass(frozen=True)
class RunResult:
    tests: list[TestOutcome]
    cells: list[CellOutcome]
    flags: list[str]  # run-level: tampering found, background processes, edits, problems
    cell_flags: list[CellFlag]
    complete: bool  # every frame up to "end" arrived and checked
    reason: str  # why the run is incomplete (shown with every test scored 0 for it)
    #: the sandbox could not run at all (Docker, the image): not the student's doing, so
    #: the queue tries again rather than storing the zeros
    error: str = ""

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)


def _why_incomplete(frames: list[dict], facts: RunFacts) -> str:
    if facts.error:
        return f"the grading run could not start: {facts.error}"
    errors = [f["message"] for f in frames if f["type"] == "error"]
    if errors:
        return f"the grader stopped: {errors[0]}"
    if facts.problem:
        return facts.problem
    if facts.timed_out:
        return "the run was stopped at its time limit"
    if facts.output_capped:
        return "the run was stopped: its output went over the cap"
    if facts.oom_killed:
        return "the run was stopped: it went over its memory limit"
    if not frames:
        return "the grader produced no result (is the class image built FROM classhub/singleuser?)"
    return f"the run ended without its final result (exit code {facts.exit_code})"


def score_run(plan: Plan, frames: list[dict], facts: RunFacts) -> RunResult:
    """The result of one run from its verified ``frames`` (FrameReader.frames)."""
    complete = bool(frames) and frames[-1]["type"] == "end" and not facts.problem
    reason = "" if complete else _why_incomplete(frames, facts)
    by_test = {f["id"]: f for f in frames if f["type"] == "test"}
    by_cell = {f["key"]: f for f in frames if f["type"] == "cell"}
    flags: list[str] = []
    for frame in frames:
        if frame["type"] in ("student-done", "integrity"):
            flags.extend(frame["flags"])
    if reason:
        flags.append(reason)
    labels = {cell.key: cell.label or cell.key for cell in plan.cells}
    # Told by the service, not by the runner: the runner's own words name its internal
    # cell keys ("c3"), which no teacher can find in the notebook.
    died = [k for k, f in by_cell.items() if f["status"] == "died"]
    # a cell over its time limit whose kernel then ignored the interrupt and was stopped
    timed_out = [k for k, f in by_cell.items() if f["status"] == "timeout"]
    if died:
        stopped = f"not run: the kernel ended during {labels.get(died[0], died[0])}"
    elif timed_out:
        last = timed_out[-1]
        stopped = (
            f"not run: the kernel was stopped after {labels.get(last, last)} ran over its"
            " time limit"
        )
    else:
        stopped = ""
    tests = []
    for spec in plan.tests:
        frame = by_test.get(spec.id)
        if frame is None:
            message = reason or stopped or "no result for this test"
            tests.append(
                TestOutcome(spec.id, "not-run", 0.0, spec.points, spec.visibility, message, ())
            )
            continue
        passed = frame["status"] == "pass"
        message = frame["message"]
        if frame["status"] in ("died", "not-run") and stopped:
            message = stopped  # the kernel ended before the tests, in a cell
        tests.append(
            TestOutcome(
                spec.id,
                frame["status"],
                spec.points if passed else 0.0,
                spec.points,
                spec.visibility,
                message,
                tuple(frame["flags"]),
            )
        )
    cells = []
    for cell in plan.cells:
        frame = by_cell.get(cell.key)
        status, error = (frame["status"], frame["error"]) if frame else ("not-run", reason)
        cells.append(
            CellOutcome(cell.key, cell.grade_id, cell.origin, status, error, labels[cell.key])
        )
    return RunResult(tests, cells, flags, list(plan.flags), complete, reason, facts.error)


def cell_problems(cells: list[CellOutcome], limit: int = 50) -> list[dict]:
    """The cells that did not finish cleanly (an exception such as ``SystemExit``, the
    cell's time limit, the kernel ending), as stored and shown: ``{label, status, error}``.
    They say why the tests after them failed or did not run."""
    return [
        {"label": c.label or c.key, "status": c.status, "error": c.error}
        for c in cells
        if c.status in CELL_PROBLEMS
    ][:limit]
