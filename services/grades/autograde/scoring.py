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
    status: str
    error: str


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
    stopped = next(
        (f"the kernel ended during cell {k}" for k, f in by_cell.items() if f["status"] == "died"),
        "",
    )
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
        tests.append(
            TestOutcome(
                spec.id,
                frame["status"],
                spec.points if passed else 0.0,
                spec.points,
                spec.visibility,
                frame["message"],
                tuple(frame["flags"]),
            )
        )
    cells = []
    for cell in plan.cells:
        frame = by_cell.get(cell.key)
        status, error = (frame["status"], frame["error"]) if frame else ("not-run", reason)
        cells.append(CellOutcome(cell.key, cell.grade_id, cell.origin, status, error))
    return RunResult(tests, cells, flags, list(plan.flags), complete, reason, facts.error)
