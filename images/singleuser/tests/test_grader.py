"""The autograder's runner (classhub_singleuser.grader) and in-kernel guard
(grader_guard): the input messages, the frames, the test rewrite and what the guard refuses
and restores. The guard is exercised in this process (no kernel); the sealed runs with a
real kernel in a real container are tests/integration/test_autograde_seal.py."""

import hashlib
import hmac
import io
import json
import math
import secrets

import pytest

from classhub_singleuser import grader, grader_guard

pytestmark = pytest.mark.unit


def test_read_message_reads_exact_lengths_and_refuses_bad_headers():
    stream = io.BytesIO(b"5\nhello3\nabc")
    assert grader.read_message(stream, 10) == b"hello"
    assert grader.read_message(stream, 10) == b"abc"
    with pytest.raises(grader.BadInput, match="over its cap"):
        grader.read_message(io.BytesIO(b"11\nhello world"), 10)
    with pytest.raises(grader.BadInput, match="length"):
        grader.read_message(io.BytesIO(b"x\n"), 10)
    with pytest.raises(grader.BadInput, match="ended inside"):
        grader.read_message(io.BytesIO(b"9\nabc"), 10)


def test_frame_line_is_signed_over_sequence_and_body():
    secret = secrets.token_bytes(32)
    line = grader.frame_line(secret, 7, {"type": "end"})
    prefix, seq, mac, body = line.rstrip(b"\n").split(b" ", 3)
    assert (prefix, seq, json.loads(body)) == (b"CHAG1", b"7", {"type": "end"})
    expected = hmac.new(secret, b"7 " + body, hashlib.sha256).hexdigest().encode()
    assert mac == expected
    assert line.count(b"\n") == 1  # one line, whatever the payload holds
    assert grader.frame_line(secret, 0, {"m": "a\nb"}).count(b"\n") == 1


def test_plan_and_tests_are_checked():
    plan = grader.parse_plan(b'{"cells": [{"key": "c0", "source": "x = 1"}], "cell_timeout": 5}')
    assert plan["cells"] == [{"key": "c0", "source": "x = 1"}]
    for bad in (b"{}", b'{"cells": [{"key": 1}]}', b'{"cells": [], "cell_timeout": -1}'):
        with pytest.raises(grader.BadInput):
            grader.parse_plan(bad)
    tests = grader.parse_tests(b'{"tests": [{"id": "t", "source": "assert 1"}]}')
    assert tests == [{"id": "t", "source": "assert 1", "timeout": 30.0}]
    with pytest.raises(grader.BadInput):
        grader.parse_tests(b'{"tests": [{"id": "t", "source": "x", "timeout": true}]}')


@pytest.fixture
def guard():
    token = "_classhub_test" + secrets.token_hex(4)
    g = grader_guard.install(token, ("math",))
    yield token, g
    import sys

    sys.modules.pop(token, None)


def run_test(token, g, source, namespace):
    nonce = secrets.token_hex(8)
    code = grader.rewrite_test(source, token, nonce)
    namespace[token] = g
    exec(compile(code, "<test>", "exec"), namespace)
    return g.last == nonce


def test_rewritten_tests_pass_on_honest_values(guard):
    token, g = guard
    ns = {"add": lambda a, b: a + b}
    assert run_test(token, g, "assert add(1, 2) == 3\nassert [add(1, 1)] == [2]", ns)
    assert run_test(token, g, "assert 1 < add(1, 1) < 3\nassert 2 in {2: 'x'}", ns)
    assert run_test(token, g, "assert math.isclose(add(0.1, 0.2), 0.3)", {**ns, "math": math})
    with pytest.raises(AssertionError):
        run_test(token, g, "assert add(1, 2) == 4", ns)


def test_chained_comparison_stays_lazy(guard):
    token, g = guard
    calls = []

    def f(x):
        calls.append(x)
        return x

    assert run_test(token, g, "assert not (f(3) < f(1) < f(2))", {"f": f})
    assert calls == [3, 1]  # f(2) never evaluated, as in Python


def test_object_whose_eq_is_always_true_scores_nothing(guard):
    token, g = guard
    ns = {}
    exec("class Always:\n    def __eq__(self, other):\n        return True\n", ns)
    ns["Always"].__module__ = "__main__"
    ns["answer"] = ns["Always"]()
    with pytest.raises(grader_guard.UntrustedComparison, match="Always"):
        run_test(token, g, "assert answer == 42", ns)
    # hidden inside a list, a dict, or as the truth value of an assert
    ns["listed"] = [1, ns["answer"]]
    with pytest.raises(grader_guard.UntrustedComparison):
        run_test(token, g, "assert listed == [1, 2]", ns)
    ns["mapped"] = {"k": ns["answer"]}
    with pytest.raises(grader_guard.UntrustedComparison):
        run_test(token, g, "assert mapped == {'k': 3}", ns)
    exec("class Truthy:\n    def __bool__(self):\n        return True\n", ns)
    ns["Truthy"].__module__ = "__main__"
    ns["t"] = ns["Truthy"]()
    with pytest.raises(grader_guard.UntrustedComparison):
        run_test(token, g, "assert t", ns)
    assert any("untrusted" in f for f in g.flags)


def test_subclass_of_int_with_own_eq_is_refused(guard):
    token, g = guard
    ns = {}
    exec("class Liar(int):\n    __eq__ = lambda self, other: True\n", ns)
    ns["x"] = ns["Liar"](1)
    with pytest.raises(grader_guard.UntrustedComparison):
        run_test(token, g, "assert x == 2", ns)
    # `is` compares identity: no method of the object runs, nothing to refuse
    assert run_test(token, g, "assert x is not None", ns)


def test_a_test_that_does_not_reach_its_end_has_no_mark(guard):
    token, g = guard
    code = grader.rewrite_test("assert 1 == 1", token, "n1")
    assert code.splitlines()[0] == f"{token}.begin()"
    assert code.splitlines()[-1] == f"{token}.mark('n1')"
    g.mark("old")
    g.begin()  # what an emptied cell still would not do: the mark stays unset
    assert g.take() == json.dumps({"nonce": "", "flags": []})


def test_magics_in_a_test_are_translated():
    code = grader.rewrite_test("%time x = 1\nassert x == 1", "_g", "n")
    assert "run_line_magic" in code
    with pytest.raises(SyntaxError):
        grader.rewrite_test("def (:", "_g", "n")


def test_guard_restores_patched_modules_and_builtins_and_says_so(guard):
    token, g = guard
    import builtins

    original_isclose, original_len = math.isclose, builtins.len
    try:
        math.isclose = lambda *a, **k: True
        builtins.len = lambda x: 3
        report = json.loads(g.check())
        assert math.isclose is original_isclose
        assert builtins.len is original_len
        assert "patched: math.isclose" in report["flags"]
        assert "patched: builtins.len" in report["flags"]
    finally:
        math.isclose, builtins.len = original_isclose, original_len


def test_guard_restores_a_trace_function(guard):
    import sys

    token, g = guard
    previous = sys.gettrace()
    try:
        sys.settrace(lambda *a: None)
        report = json.loads(g.check())
        assert sys.gettrace() is previous
        assert "patched: sys.settrace" in report["flags"]
    finally:
        sys.settrace(previous)


def test_guard_code_cell_installs_under_its_token():
    token = "_classhub_cell" + secrets.token_hex(4)
    code = grader.guard_code(token, ["json"])
    import sys

    try:
        exec(compile(code, "<guard>", "exec"), {})
        installed = sys.modules[token]
        assert "json" in installed.modules
        assert type(installed).__name__ == "Guard"
    finally:
        sys.modules.pop(token, None)


def test_expression_results_are_parsed_as_literals_only():
    reply = {
        "content": {
            "user_expressions": {
                "r": {"status": "ok", "data": {"text/plain": repr(json.dumps({"flags": ["x"]}))}}
            }
        }
    }
    assert grader.parse_expression_result(reply, "r") == {"flags": ["x"]}
    evil = {
        "content": {
            "user_expressions": {"r": {"status": "ok", "data": {"text/plain": "__import__('os')"}}}
        }
    }
    assert grader.parse_expression_result(evil, "r") is None
    assert grader.parse_expression_result({}, "r") is None


def test_kill_others_does_nothing_outside_a_container():
    # only as PID 1 of a container: here it must not kill anybody's processes
    assert grader.kill_others(set()) == 0


# ----- the kernel driver (a real ipykernel in a child process; no container)


def frames_of(header: dict, parent: dict, content: dict) -> list[bytes]:
    parts = [json.dumps(x).encode() for x in (header, parent, {}, content)]
    return [b"id", b"<IDS|MSG>", b"sig", *parts]


def test_parse_message_reads_the_wire_format_and_skips_garbage():
    m = grader.parse_message(frames_of({"msg_type": "r"}, {"msg_id": "a"}, {"status": "ok"}))
    assert m == {
        "header": {"msg_type": "r"},
        "parent_header": {"msg_id": "a"},
        "content": {"status": "ok"},
    }
    assert grader.parse_message([b"no delimiter"]) is None
    assert grader.parse_message([b"<IDS|MSG>", b"sig", b"{"]) is None  # cut short
    assert grader.parse_message([b"<IDS|MSG>", b"s", b"[]", b"{}", b"{}", b"{}"]) is None
    assert grader.parse_message([b"<IDS|MSG>", b"s", b"\xff", b"{}", b"{}", b"{}"]) is None


def test_the_kernel_runs_cells_reports_errors_times_out_and_dies(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    kernel = grader.Kernel(str(tmp_path))
    try:
        ok = kernel.execute("x = 6 * 7", 30, {"x": "x"})
        assert ok["status"] == "ok"
        assert ok["reply"]["content"]["user_expressions"]["x"]["data"]["text/plain"] == "42"
        # started without the debugger (LAUNCH); the guard cell gives debugpy back
        probe = {"d": "sorted(m for m in __import__('sys').modules if 'pydevd' in m)"}
        loaded = kernel.execute("", 30, probe)["reply"]["content"]["user_expressions"]
        assert loaded["d"]["data"]["text/plain"] == "[]"
        bad = kernel.execute("1 / 0", 30)
        assert (bad["status"], bad["ename"]) == ("error", "ZeroDivisionError")
        # the next request runs (stop_on_error is off), and input() does not wait
        assert kernel.execute("input()", 30)["ename"] == "StdinNotImplementedError"
        slow = kernel.execute("import time\nwhile True: time.sleep(0.1)", 1)
        assert slow["status"] == "timeout" and kernel.alive()  # interrupted, still there
        assert kernel.execute("x", 30)["status"] == "ok"
        gone = kernel.execute("import os; os._exit(0)", 30)
        assert gone["status"] == "died" and not kernel.alive()
        assert kernel.execute("x", 30) == {"status": "died"}
    finally:
        kernel.close()
    assert kernel.proc.poll() is not None


def test_a_hostile_reply_is_skipped_or_read_as_nothing():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert grader.parse_message([b"<IDS|MSG>", b"s", deep, b"{}", b"{}", b"{}"]) is None
    for content in ({"user_expressions": ["x"]}, {"user_expressions": {"m": {"status": "ok",
                    "data": "text"}}}, "content", {"user_expressions": "x"}):  # fmt: skip
        assert grader.parse_expression_result({"content": content}, "m") is None


def test_the_kernel_starts_as_its_kernel_spec_says():
    import sys

    usual = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    argv, env = grader.kernel_command(usual, "/tmp/k.json")
    assert argv == [sys.executable, "-c", grader.LAUNCH, "-f", "/tmp/k.json",
                    *grader.KERNEL_OPTIONS]  # fmt: skip
    assert env == {}
    assert grader.kernel_command(None, "/c")[0][:3] == [sys.executable, "-c", grader.LAUNCH]
    # another interpreter with the usual launcher: that interpreter, without debugpy
    conda = "/opt/conda/bin/python"
    other = {"argv": [conda, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
             "env": {"OMP_NUM_THREADS": 1}}  # fmt: skip
    argv, env = grader.kernel_command(other, "/c")
    assert argv[:2] == [conda, "-c"] and env == {"OMP_NUM_THREADS": "1"}
    # anything else: the spec's own command, with the connection file
    custom = {"argv": ["/usr/bin/env", "mykernel", "--conn={connection_file}"]}
    argv, _ = grader.kernel_command(custom, "/c")
    assert argv == ["/usr/bin/env", "mykernel", "--conn=/c", *grader.KERNEL_OPTIONS]


def test_the_kernel_inherits_the_thread_counts_the_service_sets():
    from common.cputhreads import VARIABLES

    assert set(VARIABLES) <= set(grader.KERNEL_ENV)
    assert not [k for k in grader.KERNEL_ENV if any(w in k for w in ("TOKEN", "KEY", "SECRET"))]
