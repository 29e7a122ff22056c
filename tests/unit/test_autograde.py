"""Autograding's pure parts: the plan from a source and a submitted notebook
(cells matched, restored and flagged), the frames' verification, the scoring (never a
pass without a pass frame), the sealed container's configuration and the traits."""

import dataclasses
import json
import secrets
import struct

import pytest
from traitlets import TraitError
from traitlets.config import Config

from classhub_singleuser.grader import frame_line
from services.grades.autograde import frames, notebook, sandbox, scoring, settings

pytestmark = pytest.mark.unit


def code(source, cell_id=None, **metadata):
    cell = {"cell_type": "code", "source": source, "metadata": metadata, "outputs": []}
    if cell_id:
        cell["id"] = cell_id
    return cell


def md(source, **metadata):
    return {"cell_type": "markdown", "source": source, "metadata": metadata}


def nbg(grade_id, *, solution=False, grade=False, locked=False, points=0):
    return {
        "nbgrader": {
            "grade_id": grade_id,
            "solution": solution,
            "grade": grade,
            "locked": locked,
            "points": points,
        }
    }


SOURCE = {
    "nbformat": 4,
    "cells": [
        md("# Homework"),
        code("import math", **nbg("setup", locked=True)),
        code("def area(r):\n    raise NotImplementedError", **nbg("area", solution=True)),
        code("assert area(1) == math.pi", **nbg("t_area", grade=True, locked=True, points=2)),
        code("def double(x):\n    raise NotImplementedError", **nbg("double", solution=True)),
        code(
            "assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(-1) == -2\n"
            "### END HIDDEN TESTS",
            **nbg("t_double", grade=True, locked=True, points=3),
        ),
    ],
}


def student(*cells):
    return {"nbformat": 4, "cells": list(cells)}


def honest():
    return student(
        md("# Homework"),
        code("import math", **nbg("setup", locked=True)),
        code("def area(r):\n    return math.pi * r * r", **nbg("area", solution=True)),
        code("assert area(1) == math.pi", **nbg("t_area", grade=True, locked=True, points=2)),
        code("scratch = 1"),
        code("def double(x):\n    return 2 * x", **nbg("double", solution=True)),
        code("assert double(2) == 4\n", **nbg("t_double", grade=True, locked=True, points=3)),
    )


def sources(plan):
    return [(c.origin, c.grade_id, c.source) for c in plan.cells]


# ----- roles and the plan


def test_roles_from_nbgrader_metadata_and_from_tags():
    assert notebook.graded(SOURCE["cells"][1]) == notebook.Graded("locked", "setup")
    assert notebook.graded(SOURCE["cells"][3]) == notebook.Graded("test", "t_area", 2.0)
    assert notebook.graded(SOURCE["cells"][5]).visibility == "hidden"
    tagged = code("assert f() == 1", "cell-1", tags=["test"], classhub={"points": 4})
    assert notebook.graded(tagged) == notebook.Graded("test", "cell-1", 4.0)
    assert notebook.graded(code("x = 1", "cell-2")) is None
    assert notebook.graded(code("x", "c", classhub={"points": -5}, tags=["test"])).points == 0


def test_honest_submission_runs_its_cells_without_tests():
    plan = notebook.make_plan(SOURCE, honest())
    assert sources(plan) == [
        ("source", "setup", "import math"),
        ("student", "area", "def area(r):\n    return math.pi * r * r"),
        ("student", "", "scratch = 1"),
        ("student", "double", "def double(x):\n    return 2 * x"),
    ]
    assert [(t.id, t.points, t.visibility) for t in plan.tests] == [
        ("t_area", 2.0, "visible"),
        ("t_double", 3.0, "hidden"),
    ]
    # the tests come from the source: the hidden part, which the student never had
    assert "double(-1)" in plan.tests[1].source
    assert plan.flags == []
    assert "assert" not in json.dumps(plan.runner_plan(cell_timeout=5))


def test_edited_locked_and_test_cells_run_from_the_source_and_are_flagged():
    nb = honest()
    nb["cells"][1]["source"] = "import math\nmath.pi = 3"
    nb["cells"][3]["source"] = "pass"
    plan = notebook.make_plan(SOURCE, nb)
    assert sources(plan)[0] == ("source", "setup", "import math")
    assert {(f.grade_id, f.kind) for f in plan.flags} == {("setup", "edited"), ("t_area", "edited")}
    assert plan.tests[0].source == "assert area(1) == math.pi"


def test_deleted_cells_are_restored_in_place_and_flagged():
    nb = honest()
    del nb["cells"][5]  # the double solution
    del nb["cells"][1]  # the locked setup cell
    del nb["cells"][2]  # the area test (index after the deletion above)
    plan = notebook.make_plan(SOURCE, nb)
    assert sources(plan) == [
        ("source", "setup", "import math"),
        ("student", "area", "def area(r):\n    return math.pi * r * r"),
        ("student", "", "scratch = 1"),
        ("source", "double", "def double(x):\n    raise NotImplementedError"),
    ]
    kinds = {(f.grade_id, f.kind) for f in plan.flags}
    assert kinds == {("setup", "deleted"), ("t_area", "deleted"), ("double", "deleted")}
    assert [t.id for t in plan.tests] == ["t_area", "t_double"]  # tests never lost


def test_a_restored_answer_never_brings_the_teachers_solution_back():
    source = student(
        code(
            "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION",
            **nbg("f", solution=True),
        ),
        code(
            "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 3\n### END HIDDEN TESTS",
            **nbg("t", grade=True, points=1),
        ),
    )
    assert notebook.released(source["cells"][0]["source"]) == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )
    # the student received the released test (no hidden part): not an edit
    nb = student(code("assert f(1) == 2\n", **nbg("t", grade=True, points=1)))
    plan = notebook.make_plan(source, nb)
    assert sources(plan) == [("source", "f", notebook.released(source["cells"][0]["source"]))]
    assert "return x + 1" not in json.dumps(plan.runner_plan(cell_timeout=5))
    assert {(f.grade_id, f.kind) for f in plan.flags} == {("f", "deleted")}
    assert "f(2) == 3" in plan.tests[0].source


def test_retyped_cells_are_restored_and_flagged():
    nb = honest()
    nb["cells"][6] = md("assert double(2) == 4", **nbg("t_double", grade=True, points=3))
    nb["cells"][2] = md("def area(r): return 3", **nbg("area", solution=True))
    plan = notebook.make_plan(SOURCE, nb)
    assert ("source", "area", "def area(r):\n    raise NotImplementedError") in sources(plan)
    assert {(f.grade_id, f.kind) for f in plan.flags} == {
        ("area", "retyped"),
        ("t_double", "retyped"),
    }


def test_duplicated_cells_are_flagged():
    nb = honest()
    nb["cells"].append(code("def double(x):\n    return 4", **nbg("double", solution=True)))
    nb["cells"].append(code("assert True", **nbg("t_area", grade=True, points=2)))
    nb["cells"].append(code("import os", **nbg("setup", locked=True)))
    plan = notebook.make_plan(SOURCE, nb)
    # the extra solution runs as an ordinary cell; extra locked and test copies never run
    assert sources(plan)[-1] == ("student", "", "def double(x):\n    return 4")
    assert "import os" not in json.dumps(sources(plan))
    assert {(f.grade_id, f.kind) for f in plan.flags} == {
        ("double", "duplicated"),
        ("t_area", "duplicated"),
        ("setup", "duplicated"),
    }


def test_cells_stripped_of_their_metadata_are_matched_by_id_or_checksum():
    source = student(
        code("import math", "id-setup", **nbg("setup", locked=True)),
        code("assert 1 == 1", "id-test", **nbg("t", grade=True, points=1)),
    )
    nb = student(code("import math"), code("assert True", "id-test"))
    plan = notebook.make_plan(source, nb)
    assert sources(plan) == [("source", "setup", "import math")]
    assert {(f.grade_id, f.kind) for f in plan.flags} == {
        ("setup", "unmarked"),
        ("t", "unmarked"),
        ("t", "edited"),
    }


def test_bad_notebooks_are_refused_with_a_message():
    with pytest.raises(notebook.NotebookError, match="not JSON"):
        notebook.load_notebook(b"{")
    with pytest.raises(notebook.NotebookError, match="no cells"):
        notebook.load_notebook(b"{}")
    with pytest.raises(notebook.NotebookError, match="format 4"):
        notebook.load_notebook({"nbformat": 3, "cells": []})
    twice = student(code("x", **nbg("a", solution=True)), code("y", **nbg("a", solution=True)))
    with pytest.raises(notebook.NotebookError, match="two cells"):
        notebook.make_plan(twice, honest())


# ----- frames


def stream(secret, payloads):
    return b"".join(frame_line(secret, n, p) for n, p in enumerate(payloads))


GOOD = [
    {"type": "hello", "runner": 1, "cells": 1},
    {"type": "cell", "key": "c0", "status": "ok", "error": ""},
    {"type": "student-done", "flags": []},
    {"type": "integrity", "ok": True, "flags": ["patched: math.isclose"]},
    {"type": "test", "id": "t1", "status": "pass", "message": "", "flags": []},
    {"type": "end"},
]


def test_the_runners_frames_are_accepted_in_chunks_of_any_size():
    secret = secrets.token_bytes(32)
    data = stream(secret, GOOD)
    for size in (1, 7, len(data)):
        reader = frames.FrameReader(secret, ["c0"], ["t1"])
        for i in range(0, len(data), size):
            reader.feed(data[i : i + size])
        reader.finish()
        assert reader.problem == ""
        assert reader.frames == GOOD
        assert reader.ended


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda s, d: d.replace(b"CHAG1 4", b"CHAG1 5"), "out of sequence"),
        (lambda s, d: frame_line(secrets.token_bytes(32), 0, GOOD[0]), "signature"),
        (lambda s, d: d[:-5] + b'"}}\n', "signature"),
        (lambda s, d: b"all tests passed\n", "not a frame"),
        (lambda s, d: stream(s, [{"type": "pwn"}]), "unknown frame type"),
        (lambda s, d: stream(s, [{**GOOD[4], "points": 100}]), "wrong fields"),
        (lambda s, d: stream(s, [{**GOOD[4], "id": "t9"}]), "did not send"),
        (lambda s, d: stream(s, [{**GOOD[4], "status": "passed"}]), "unknown test status"),
        (lambda s, d: stream(s, [{**GOOD[4], "message": "x" * 501}]), "text field"),
        (lambda s, d: stream(s, [GOOD[4], GOOD[4]]), "twice"),
        (lambda s, d: stream(s, [{"type": "end"}, GOOD[4]]), "after the end"),
        (lambda s, d: stream(s, [{**GOOD[0], "runner": True}]), "runner version"),
        (lambda s, d: b"CHAG1 0 " + b"a" * 70000, "64 KiB"),
    ],
)
def test_frames_that_fail_any_check_end_the_trusted_stream(mutate, problem):
    secret = secrets.token_bytes(32)
    reader = frames.FrameReader(secret, ["c0"], ["t1"])
    reader.feed(mutate(secret, stream(secret, GOOD)))
    assert problem in reader.problem
    reader.feed(stream(secret, GOOD))  # nothing counts after a refusal
    assert not any(f["type"] == "end" for f in reader.frames[len(reader.frames) :])
    assert reader.problem


def test_a_partial_last_line_is_never_a_frame():
    secret = secrets.token_bytes(32)
    reader = frames.FrameReader(secret, ["c0"], ["t1"])
    reader.feed(stream(secret, GOOD[:2])[:-1])
    reader.finish()
    assert len(reader.frames) == 1
    assert "inside a line" in reader.problem


# ----- scoring


PLAN = notebook.Plan(
    cells=[notebook.PlanCell("c0", "x = 1", "student")],
    tests=[
        notebook.TestSpec("t1", "assert x == 1", 2.0, "visible"),
        notebook.TestSpec("t2", "assert x == 1", 3.0, "hidden"),
    ],
    flags=[notebook.CellFlag("a", "deleted", "deleted")],
)


def test_only_a_pass_frame_scores_points():
    run = [
        *GOOD[:4],
        {"type": "test", "id": "t1", "status": "pass", "message": "", "flags": []},
        {"type": "test", "id": "t2", "status": "fail", "message": "AssertionError", "flags": []},
        {"type": "end"},
    ]
    result = scoring.score_run(PLAN, run, scoring.RunFacts())
    assert [(t.id, t.score) for t in result.tests] == [("t1", 2.0), ("t2", 0.0)]
    assert (result.score, result.points, result.complete) == (2.0, 5.0, True)
    assert "patched: math.isclose" in result.flags
    assert result.cell_flags == PLAN.flags


@pytest.mark.parametrize(
    "facts, reason",
    [
        (scoring.RunFacts(timed_out=True), "time limit"),
        (scoring.RunFacts(output_capped=True), "over the cap"),
        (scoring.RunFacts(oom_killed=True, exit_code=137), "memory limit"),
        (scoring.RunFacts(problem="the grader's output was refused: x"), "refused"),
        (scoring.RunFacts(exit_code=0), "without its final result"),
        (scoring.RunFacts(error="no such image"), "could not start"),
    ],
)
def test_a_run_that_did_not_finish_scores_its_missing_tests_zero_with_the_reason(facts, reason):
    partial = [
        *GOOD[:3],
        {"type": "integrity", "ok": True, "flags": []},
        {"type": "test", "id": "t1", "status": "pass", "message": "", "flags": []},
    ]
    result = scoring.score_run(PLAN, partial, facts)
    assert not result.complete
    assert reason in result.reason
    t1, t2 = result.tests
    assert (t1.status, t1.score) == ("pass", 2.0)  # a signed pass stands
    assert (t2.status, t2.score) == ("not-run", 0.0)
    assert reason in t2.message


def test_no_frames_at_all_scores_zero():
    result = scoring.score_run(PLAN, [], scoring.RunFacts(exit_code=1))
    assert result.score == 0
    assert all(t.status == "not-run" and t.message for t in result.tests)
    assert "classhub/singleuser" in result.reason


def test_a_kernel_that_died_is_the_reason_of_its_tests():
    run = [
        GOOD[0],
        {"type": "cell", "key": "c0", "status": "died", "error": "the kernel ended"},
        {"type": "student-done", "flags": []},
        {
            "type": "test",
            "id": "t1",
            "status": "died",
            "message": "the kernel had ended",
            "flags": [],
        },
        {
            "type": "test",
            "id": "t2",
            "status": "died",
            "message": "the kernel had ended",
            "flags": [],
        },
        {"type": "end"},
    ]
    plan = dataclasses.replace(
        PLAN, cells=[notebook.PlanCell("c0", "import os; os._exit(0)", "student", "", "cell 4")]
    )
    result = scoring.score_run(plan, run, scoring.RunFacts())
    assert result.score == 0
    assert result.cells[0].status == "died"
    # the teacher's words, naming the cell as the notebook shows it, not the runner's key
    assert [t.message for t in result.tests] == ["not run: the kernel ended during cell 4"] * 2
    assert scoring.cell_problems(result.cells) == [
        {"label": "cell 4", "status": "died", "error": "the kernel ended"}
    ]


def test_a_cell_over_its_time_limit_whose_kernel_was_stopped_is_named():
    run = [
        GOOD[0],
        {"type": "cell", "key": "c0", "status": "timeout", "error": "over its time limit"},
        {"type": "student-done", "flags": []},
        *(
            {"type": "test", "id": t, "status": "died", "message": "cell c0", "flags": []}
            for t in ("t1", "t2")
        ),
        {"type": "end"},
    ]
    plan = dataclasses.replace(
        PLAN, cells=[notebook.PlanCell("c0", "while True: pass", "student", "", "cell 3")]
    )
    result = scoring.score_run(plan, run, scoring.RunFacts())
    assert {t.message for t in result.tests} == {
        "not run: the kernel was stopped after cell 3 ran over its time limit"
    }


def test_cells_that_stopped_are_the_reason_shown_and_ok_cells_are_not():
    plan = notebook.make_plan(SOURCE, honest())
    keys = [c.key for c in plan.cells]
    run = [
        {"type": "hello", "runner": 1, "cells": len(keys)},
        *(
            {"type": "cell", "key": k, "status": s, "error": e}
            for k, (s, e) in zip(
                keys,
                [("ok", ""), ("error", "SystemExit: 0"), ("timeout", "over its limit")]
                + [("not-run", "")] * len(keys),
                strict=False,
            )
        ),
    ]
    result = scoring.score_run(plan, run, scoring.RunFacts())
    labels = [c.label for c in plan.cells]
    assert scoring.cell_problems(result.cells) == [
        {"label": labels[1], "status": "error", "error": "SystemExit: 0"},
        {"label": labels[2], "status": "timeout", "error": "over its limit"},
    ]


def test_cells_are_labelled_as_the_teacher_finds_them():
    nb = honest()
    del nb["cells"][1]  # the locked setup cell: put back from the source
    plan = notebook.make_plan(SOURCE, nb)
    by_origin = [(c.origin, c.grade_id, c.label) for c in plan.cells]
    assert by_origin[0] == ("source", "setup", "setup (from the source notebook)")
    # the student's cells by their place in the student's notebook (from 1), with the
    # grade id when they have one
    assert ("student", "area", "cell 2 (area)") in by_origin, by_origin
    assert all(label.startswith("cell ") for origin, _, label in by_origin if origin == "student")


# ----- the sealed container


def test_container_config_is_sealed():
    limits = sandbox.Limits(mem_limit="512m", pids_limit=64, cpu_limit=0.5, tmpfs_size="32m")
    config = sandbox.container_config("classhub/datascience:latest", limits, "run1")
    assert config["network_mode"] == "none"
    assert config["read_only"] is True
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["privileged"] is False
    assert config["user"] == "1000:100"
    assert config["mem_limit"] == config["memswap_limit"] == "512m"
    assert (config["pids_limit"], config["nano_cpus"]) == (64, 500_000_000)
    assert config["mounts"] == [] and not config["volumes"]
    assert set(config["tmpfs"]) == {"/tmp", "/home/jovyan"}
    assert all("size=32m" in o and "noexec" in o for o in config["tmpfs"].values())
    assert config["command"] == ["python3", "-I", "-m", "classhub_singleuser.grader"]
    env = " ".join(f"{k}={v}" for k, v in config["environment"].items()).lower()
    for word in ("token", "key", "secret", "pass", "grad", "docker", "s3", "db_url"):
        assert word not in env
    # numpy's threads as many as the CPU limit (0.5 here: one)
    assert config["environment"]["OPENBLAS_NUM_THREADS"] == "1"
    assert config["environment"]["OMP_NUM_THREADS"] == "1"
    assert config["stdin_open"] is True and config["tty"] is False


def test_demux_reassembles_dockers_stream():
    def header(stream, data):
        return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data

    data = header(1, b"hello ") + header(2, b"noise") + header(1, b"world")
    demux = sandbox.Demux()
    out = []
    for i in range(len(data)):
        out.extend(demux.feed(data[i : i + 1]))
    assert out == [(1, b"hello "), (2, b"noise"), (1, b"world")]
    assert sandbox.message(b"abc") == b"3\nabc"


# ----- traits


def test_settings_defaults_env_and_validation(monkeypatch):
    s = settings.AutogradeSettings()
    limits = s.autograde_limits()
    assert (limits.mem_limit, limits.pids_limit, limits.output_limit) == ("1g", 256, 4 << 20)
    assert limits.timeout > limits.cell_timeout
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_MEM_LIMIT", "2G")
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_PIDS_LIMIT", "512")
    s = settings.AutogradeSettings()
    assert (s.autograde_mem_limit, s.autograde_pids_limit) == ("2G", 512)
    c = Config()
    c.AutogradeSettings.autograde_cpu_limit = 0.25
    assert settings.AutogradeSettings(config=c).autograde_limits().cpu_limit == 0.25
    for name, value, match in (
        ("autograde_mem_limit", "lots", "size such as"),
        ("autograde_mem_limit", "1M", "at least"),
        ("autograde_pids_limit", 4, "16 to 65536"),
        ("autograde_timeout", 0.0, "positive"),
        ("autograde_concurrency", 0, "1 to 256"),
    ):
        with pytest.raises(TraitError, match=match):
            setattr(settings.AutogradeSettings(), name, value)
    s = settings.AutogradeSettings(autograde_timeout=10.0, autograde_cell_timeout=20.0)
    with pytest.raises(TraitError, match="below autograde_timeout"):
        s.autograde_limits()
    # one size notation (common/units.py), written back as Docker and tmpfs read it
    s = settings.AutogradeSettings(autograde_mem_limit="1.5G", autograde_tmpfs_size="64MiB")
    assert (s.autograde_mem_limit, s.autograde_tmpfs_size) == ("1536M", "64M")
    assert s.autograde_limits().mem_limit == "1536m"
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_PIDS_LIMIT", "many")
    with pytest.raises(TraitError, match="must be a number"):
        settings.AutogradeSettings().autograde_pids_limit  # noqa: B018


def test_leftover_containers_of_this_deployment_only_are_removed():
    class Box:
        def __init__(self, deployment):
            self.labels = {sandbox.RUN_LABEL: deployment}
            self.removed = False
            self.short_id = deployment

        def remove(self, v, force):
            assert v and force
            self.removed = True

    ours, theirs = Box("classhub"), Box("other")

    class Containers:
        def list(self, all, filters):
            assert all and filters == {"label": sandbox.RUN_LABEL}
            return [ours, theirs]

    class Client:
        containers = Containers()

    assert sandbox.remove_leftovers(Client(), "classhub") == 1
    assert (ours.removed, theirs.removed) == (True, False)


def test_the_runner_gets_the_runs_limit_to_end_itself():
    plan = notebook.make_plan(SOURCE, honest())
    sent = plan.runner_plan(cell_timeout=5, run_timeout=120)
    assert (sent["cell_timeout"], sent["run_timeout"]) == (5, 120)
    from classhub_singleuser.grader import parse_plan

    assert parse_plan(json.dumps(sent).encode())["run_timeout"] == 120.0
