"""The autograder's runner inside a sealed container (docs/autograding.md).

Started as the container's command (``python3 -I -m classhub_singleuser.grader``, PID 1):

1. makes itself non-dumpable, so no other process of the same uid can read its memory or
   its ``/proc/1/{mem,environ,fd}``, moves its stdout to a private descriptor (fd 1 becomes
   ``/dev/null``) and ignores SIGINT;
2. reads on stdin, as ``<length>\\n<bytes>`` messages: the run's secret (hex), then the
   plan (JSON: the student-phase cells in order, time limits);
3. starts a kernel (ipykernel, spoken to over ZeroMQ) with stdin, stdout and stderr on
   ``/dev/null``, runs the guard (:mod:`classhub_singleuser.grader_guard`) and then each
   student cell with its time limit;
4. kills every other process of the container, says ``student-done``, and only then reads
   the tests message (JSON: id, source, timeout of each test);
5. runs the guard's integrity check and each test, rewritten (:func:`rewrite_test`), and
   writes one frame per result.

Frames are single lines ``CHAG1 <seq> <hmac> <json>``, ``hmac`` = HMAC-SHA256 of
``"<seq> <json>"`` with the secret; student code never sees the secret and cannot write
to the channel. The service verifies every frame (services/grades/autograde/frames.py).

Standard library plus pyzmq and ipykernel (in every image built from classhub/singleuser).
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .nodump import make_non_dumpable

PREFIX = "CHAG1"
SECRET_BYTES = 32
MAX_SECRET_MESSAGE = 200
MAX_PLAN_BYTES = 64 << 20
MAX_TESTS_BYTES = 16 << 20
MAX_FRAME_BYTES = 64 << 10
MAX_TEXT = 500
MAX_FLAGS = 50
INTERRUPT_GRACE = 3.0
KERNEL_START_SECONDS = 60.0
POLL = 0.1
SELF_DESTRUCT_GRACE = 60


class BadInput(ValueError):
    """The service sent something this runner does not accept."""


# ----- the framing (pure)


def frame_line(secret: bytes, seq: int, payload: dict) -> bytes:
    """One output frame: ``CHAG1 <seq> <hmac> <json>\\n`` (the JSON is ASCII, one line)."""
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    signed = f"{seq} {body}".encode()
    mac = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return f"{PREFIX} {seq} {mac} {body}\n".encode()


def read_message(stream, cap: int) -> bytes:
    """One input message ``<decimal length>\\n<bytes>`` of at most ``cap`` bytes."""
    header = stream.readline(24)
    if not header.endswith(b"\n") or not header[:-1].isdigit():
        raise BadInput("a message must start with its length")
    size = int(header[:-1])
    if size > cap:
        raise BadInput(f"a message of {size} bytes is over its cap of {cap}")
    data = stream.read(size)
    if len(data) != size:
        raise BadInput("the input ended inside a message")
    return data


def _text(value, limit: int = MAX_TEXT) -> str:
    return str(value)[:limit]


# ----- the plan and the tests (checked: the runner trusts the service, not blindly)


def parse_plan(data: bytes) -> dict:
    plan = json.loads(data)
    if not isinstance(plan, dict) or not isinstance(plan.get("cells"), list):
        raise BadInput("the plan has no cells")
    cells = []
    for cell in plan["cells"]:
        if not (
            isinstance(cell, dict)
            and isinstance(cell.get("key"), str)
            and isinstance(cell.get("source"), str)
        ):
            raise BadInput("a cell needs a key and a source")
        cells.append({"key": cell["key"], "source": cell["source"]})
    timeout = plan.get("cell_timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise BadInput("cell_timeout must be a positive number")
    run_timeout = plan.get("run_timeout", 3600)
    if (
        isinstance(run_timeout, bool)
        or not isinstance(run_timeout, int | float)
        or run_timeout <= 0
    ):
        raise BadInput("run_timeout must be a positive number")
    watch = plan.get("watch", [])
    if not isinstance(watch, list) or not all(isinstance(w, str) for w in watch):
        raise BadInput("watch must be a list of module names")
    return {
        "cells": cells,
        "cell_timeout": float(timeout),
        "run_timeout": float(run_timeout),
        "watch": watch,
    }


def parse_tests(data: bytes) -> list[dict]:
    tests = json.loads(data)
    if not isinstance(tests, dict) or not isinstance(tests.get("tests"), list):
        raise BadInput("no tests")
    out = []
    for test in tests["tests"]:
        if not (
            isinstance(test, dict)
            and isinstance(test.get("id"), str)
            and isinstance(test.get("source"), str)
        ):
            raise BadInput("a test needs an id and a source")
        timeout = test.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise BadInput("a test's timeout must be a positive number")
        out.append({"id": test["id"], "source": test["source"], "timeout": float(timeout)})
    return out


# ----- the test rewrite (pure; runs here, outside the kernel)


class _Rewriter(ast.NodeTransformer):
    """Every comparison through ``<guard>.compare`` and every ``assert`` through
    ``<guard>.truth``, so that the guard checks the types before Python's operators run."""

    def __init__(self, guard_name: str):
        self.guard = guard_name

    def _call(self, method: str, args: list[ast.expr]) -> ast.Call:
        return ast.Call(
            func=ast.Attribute(value=ast.Name(self.guard, ast.Load()), attr=method, ctx=ast.Load()),
            args=args,
            keywords=[],
        )

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        ops = ast.Tuple([ast.Constant(type(op).__name__) for op in node.ops], ast.Load())
        rights = ast.Tuple(
            [
                ast.Lambda(
                    args=ast.arguments(
                        posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]
                    ),
                    body=comp,
                )
                for comp in node.comparators
            ],
            ast.Load(),
        )
        return self._call("compare", [node.left, ops, rights])

    def visit_Assert(self, node: ast.Assert):
        self.generic_visit(node)
        node.test = self._call("truth", [node.test])
        return node


def to_python(source: str) -> str:
    """A cell's source as plain Python (IPython's magics and ``!`` lines translated)."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def rewrite_test(source: str, guard_name: str, nonce: str) -> str:
    """The test's code as the kernel runs it: comparisons and asserts through the guard,
    ``begin()`` first and ``mark(nonce)`` last (a test passes only if its end was reached).
    SyntaxError when the test is not Python."""
    tree = ast.parse(to_python(source))
    tree = _Rewriter(guard_name).visit(tree)
    guard = ast.Name(guard_name, ast.Load())
    begin = ast.Expr(ast.Call(ast.Attribute(guard, "begin", ast.Load()), args=[], keywords=[]))
    mark = ast.Expr(
        ast.Call(ast.Attribute(guard, "mark", ast.Load()), args=[ast.Constant(nonce)], keywords=[])
    )
    tree.body = [begin, *tree.body, mark]
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def guard_code(token: str, watch: list[str]) -> str:
    """The guard cell: the guard module's source run in a namespace of its own."""
    source = (Path(__file__).with_name("grader_guard.py")).read_text()
    from .grader_guard import DEFAULT_WATCH

    modules = list(dict.fromkeys([*DEFAULT_WATCH, *watch]))
    return (
        "def __classhub_guard():\n"
        "    ns = {'__name__': 'classhub_guard'}\n"
        # the launcher kept debugpy out of the kernel's start (LAUNCH): importable again,
        # before the guard imports the modules it watches
        "    import sys\n"
        "    if 'debugpy' in sys.modules and sys.modules['debugpy'] is None:\n"
        "        del sys.modules['debugpy']\n"
        f"    exec(compile({source!r}, 'classhub_guard', 'exec'), ns)\n"
        f"    ns['install']({token!r}, {tuple(modules)!r})\n"
        # printing is discarded in the kernel (nothing reads it while grading): a flood of
        # output costs neither memory nor time
        "    import os, sys\n"
        "    sys.stdout = sys.stderr = open(os.devnull, 'w')\n"
        "__classhub_guard()\n"
        "del __classhub_guard\n"
    )


def parse_expression_result(reply: dict, name: str) -> dict | None:
    """A JSON object a guard method returned through ``user_expressions`` (its repr is a
    Python string literal), or None."""
    content = reply.get("content")
    expressions = content.get("user_expressions") if isinstance(content, dict) else None
    result = expressions.get(name) if isinstance(expressions, dict) else None
    if not isinstance(result, dict) or result.get("status") != "ok":
        return None
    data = result.get("data")
    text = data.get("text/plain") if isinstance(data, dict) else None
    if not isinstance(text, str) or len(text) > 1 << 20:
        return None
    try:
        value = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _flags(values) -> list[str]:
    if not isinstance(values, list):
        return []
    return [_text(v, 200) for v in values[:MAX_FLAGS] if isinstance(v, str)]


# ----- the run


class Output:
    """The private channel to the service: frames on the runner's own stdout."""

    def __init__(self, secret: bytes, fd: int):
        self.secret = secret
        self.fd = fd
        self.seq = 0

    def send(self, payload: dict) -> None:
        line = frame_line(self.secret, self.seq, payload)
        if len(line) > MAX_FRAME_BYTES:
            payload = {k: v for k, v in payload.items() if k in ("type", "key", "id", "status")}
            payload["message"] = "(cut: the frame was too large)"
            line = frame_line(self.secret, self.seq, payload)
        self.seq += 1
        view = memoryview(line)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


#: ipykernel_launcher's code (the kernel spec's ``-m ipykernel_launcher``) with one change:
#: debugpy is not imported. ipykernel loads it (and pydevd) at start for JupyterLab's
#: debugger, about a quarter of a CPU-second of every grading kernel, for a debugger nobody
#: attaches here; the guard cell takes the marker out again (:func:`guard_code`).
LAUNCH = (
    "import sys\n"
    "sys.modules['debugpy'] = None\n"
    "if sys.path[0] == '':\n"
    "    del sys.path[0]\n"  # added back by the kernel's shell, as ipykernel_launcher says
    "from ipykernel import kernelapp\n"
    "kernelapp.launch_new_instance()\n"
)


#: what the kernel inherits of the runner's environment (the service sets it: nothing
#: secret): its folders, and the thread counts of numerical libraries, which the service
#: sets to the container's CPU limit (without them numpy ran at half speed under it)
KERNEL_ENV = (
    "HOME",
    "LANG",
    "PATH",
    "IPYTHONDIR",
    "MPLCONFIGDIR",
    "JUPYTER_RUNTIME_DIR",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: capture_fd_output off: the kernel's fd 1 and 2 stay /dev/null (ipykernel would otherwise
#: pipe them into its output messages, which nobody reads here)
KERNEL_OPTIONS = ["--IPKernelApp.capture_fd_output=False"]


class Kernel:
    """One ipykernel with no inherited output, driven through its shell channel.

    Spoken to directly over ZeroMQ (the Jupyter messaging protocol, version 5.3: a signed
    multipart message per request) on ``ipc`` sockets in a private folder, not through
    jupyter_client: its import and its KernelManager (kernel specs, provisioners found
    through package metadata) cost about a fifth of a CPU-second of every run, for a
    kernel started in one known way. Started as jupyter_client starts it (the kernel
    spec's ``python -m ipykernel_launcher -f <connection file>``, a new session so that a
    signal reaches the kernel's children too, ``JPY_PARENT_PID``; :data:`LAUNCH`),
    interrupted with SIGINT to its process group, killed with SIGKILL."""

    def __init__(self, workdir: str):
        import zmq  # loaded only when a kernel starts (the unit tests import this module)

        self.key = secrets.token_hex(32).encode()
        self.session = uuid.uuid4().hex
        self.dead = False
        self.proc: subprocess.Popen | None = None
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR") or tempfile.gettempdir()
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        self.folder = tempfile.mkdtemp(prefix="kernel-", dir=runtime)
        base = os.path.join(self.folder, "k")
        info = {
            "transport": "ipc",
            "ip": base,
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "key": self.key.decode(),
            "signature_scheme": "hmac-sha256",
            "kernel_name": "python3",
        }
        connection = os.path.join(self.folder, "kernel.json")
        fd = os.open(connection, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        env = {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}
        argv, spec_env = kernel_command(find_kernel_spec("python3"), connection)
        env.update(spec_env)
        env["JPY_PARENT_PID"] = str(os.getpid())
        self.context = zmq.Context()
        # the shell channel only: the kernel's output (iopub) is never read, so a flood of
        # it costs the runner nothing (the container's memory limit bounds what the kernel
        # can queue on this one)
        self.shell = self.context.socket(zmq.DEALER)
        self.shell.setsockopt(zmq.LINGER, 0)
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - the kernel spec's interpreter
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
            self.shell.connect(f"ipc://{base}-1")
            ready = self._send("kernel_info_request", {})
            if self._wait(ready, KERNEL_START_SECONDS) is None:
                raise RuntimeError("the kernel did not start")
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return not self.dead and self.proc is not None and self.proc.poll() is None

    def _send(self, msg_type: str, content: dict) -> str:
        header = {
            "msg_id": uuid.uuid4().hex,
            "session": self.session,
            "username": "grader",
            "date": datetime.now(UTC).isoformat(),
            "msg_type": msg_type,
            "version": "5.3",
        }
        parts = [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        self.shell.send_multipart([b"<IDS|MSG>", mac.hexdigest().encode(), *parts])
        return header["msg_id"]

    def _wait(self, msg_id: str, timeout: float) -> dict | None:
        """The reply to ``msg_id`` within ``timeout`` seconds (None: none, or the kernel
        ended). Anything else on the channel, malformed messages included, is skipped."""
        deadline = time.monotonic() + timeout
        while self.alive():
            reply = self._reply(msg_id, min(POLL, max(0.0, deadline - time.monotonic())))
            if reply is not None:
                return reply
            if time.monotonic() >= deadline:
                return None
        return None

    def execute(self, code: str, timeout: float, expressions: dict | None = None) -> dict:
        """``{"status": ok|error|timeout|died, "ename", "evalue", "reply"}``."""
        if not self.alive():
            return {"status": "died"}
        # stop_on_error off: after a cell or a test raised, ipykernel otherwise answers the
        # requests that reach it in the next moments "aborted" (no ename) without running
        # them, so whether the next test ran would depend on the machine's load.
        # allow_stdin off (as before, with no stdin channel): input() raises at once.
        msg_id = self._send(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": expressions or {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
        )
        deadline = time.monotonic() + timeout
        interrupted = False
        while True:
            reply = self._reply(msg_id, POLL)
            if reply is not None:
                content = reply.get("content", {})
                status = content.get("status")
                if interrupted:
                    return {"status": "timeout", "reply": reply}
                if status == "aborted":  # never asked for (above); never a pass either
                    return {"status": "error", "ename": "Aborted", "evalue": "", "reply": reply}
                return {
                    "status": "ok" if status == "ok" else "error",
                    "ename": _text(content.get("ename", ""), 200),
                    "evalue": _text(content.get("evalue", "")),
                    "reply": reply,
                }
            if self.proc.poll() is not None:
                self.dead = True
                return {"status": "died"}
            now = time.monotonic()
            if not interrupted and now > deadline:
                interrupted = True
                try:
                    os.killpg(self.proc.pid, signal.SIGINT)
                except OSError:  # then the grace below kills it
                    pass
                deadline = now + INTERRUPT_GRACE
            elif interrupted and now > deadline:
                self.kill()
                return {"status": "timeout", "killed": True}

    def _reply(self, msg_id: str, timeout: float) -> dict | None:
        """The next message on the shell channel if it answers ``msg_id``, within
        ``timeout`` seconds; None otherwise."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.shell.poll(int(left * 1000) + 1):
                return None
            frames = self.shell.recv_multipart()
            message = parse_message(frames)
            if message is not None and message["parent_header"].get("msg_id") == msg_id:
                return message

    def kill(self) -> None:
        self.dead = True
        proc = self.proc
        if proc is None:
            return
        # the kernel's session: its children too. Once the kernel is reaped its pid (the
        # group's id) may be another process's outside a container; inside one (PID 1 here)
        # the group's leftovers are still ours to end
        if proc.returncode is None or os.getpid() == 1:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        try:
            self.shell.close(0)
            self.context.term()
        finally:
            self.kill()
            shutil.rmtree(self.folder, ignore_errors=True)


def find_kernel_spec(name: str) -> dict | None:
    """The kernel spec ``name`` (its ``kernel.json``) where Jupyter looks for it (the
    user's, the environment's, then the system's folders, as jupyter_client does); None
    when there is none (ipykernel's own then: this interpreter)."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("kernels"):
        path = os.path.join(folder, name, "kernel.json")
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(spec, dict) and isinstance(spec.get("argv"), list) and spec["argv"]:
            return spec
    return None


def kernel_command(spec: dict | None, connection: str) -> tuple[list[str], dict[str, str]]:
    """The command and the extra environment that start the kernel of ``spec`` on
    ``connection``, as jupyter_client would (``python`` names this interpreter; the
    spec's ``env``). The usual spec (``<python> -m ipykernel_launcher -f ...``) starts
    through :data:`LAUNCH` instead, which leaves debugpy out."""
    argv = [str(a) for a in (spec or {}).get("argv") or []]
    env = {str(k): str(v) for k, v in ((spec or {}).get("env") or {}).items()}
    major, minor = sys.version_info[:2]
    pythons = {"python", f"python{major}", f"python{major}.{minor}"}
    if not argv:
        return [sys.executable, "-c", LAUNCH, "-f", connection, *KERNEL_OPTIONS], env
    if argv[0] in pythons:
        argv[0] = sys.executable
    if argv[1:3] == ["-m", "ipykernel_launcher"]:
        return [argv[0], "-c", LAUNCH, "-f", connection, *KERNEL_OPTIONS], env
    return [a.replace("{connection_file}", connection) for a in argv] + KERNEL_OPTIONS, env


def parse_message(frames: list[bytes]) -> dict | None:
    """A Jupyter message from its ZeroMQ frames (``[identities..., <IDS|MSG>, signature,
    header, parent_header, metadata, content, buffers...]``), None when it is not one.
    The signature is not checked: the kernel, which holds the key, runs student code, so
    a signature proves nothing here (what a reply may claim is limited by the guard)."""
    try:
        i = frames.index(b"<IDS|MSG>")
        header, parent, _metadata, content = (json.loads(f) for f in frames[i + 2 : i + 6])
    except (ValueError, RecursionError, MemoryError):  # UnicodeDecodeError is a ValueError
        return None
    if not all(isinstance(x, dict) for x in (header, parent, content)):
        return None
    return {"header": header, "parent_header": parent, "content": content}


def kill_others(keep: set[int]) -> int:
    """SIGKILL every process of the container but ``keep`` and this one; reap; how many."""
    me = os.getpid()
    if me != 1:
        return 0  # only as a container's PID 1: never outside a sealed container
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me or pid in keep:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            continue
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return killed


def run(stdin, out: Output, workdir: str) -> None:
    plan = parse_plan(read_message(stdin, MAX_PLAN_BYTES))
    # should the service be gone (its container then lingers, waiting on stdin), the
    # runner ends itself a little after the run's limit; the service kills it before
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(int(plan["run_timeout"]) + SELF_DESTRUCT_GRACE)
    out.send({"type": "hello", "runner": 1, "cells": len(plan["cells"])})
    token = "_classhub_" + secrets.token_hex(12)
    kernel = Kernel(workdir)
    try:
        _run_kernel(stdin, out, plan, token, kernel)
    finally:
        kernel.close()


def _run_kernel(stdin, out: Output, plan: dict, token: str, kernel: Kernel) -> None:
    guard = kernel.execute(guard_code(token, plan["watch"]), KERNEL_START_SECONDS)
    if guard["status"] != "ok":
        out.send(
            {
                "type": "error",
                "message": _text(f"the grader could not prepare the kernel: {guard.get('ename')}"),
            }
        )
        return
    stopped = ""
    for cell in plan["cells"]:
        if stopped:
            out.send({"type": "cell", "key": cell["key"], "status": "not-run", "error": stopped})
            continue
        result = kernel.execute(cell["source"], plan["cell_timeout"])
        status = result["status"]
        error = ""
        if status == "error":
            error = f"{result['ename']}: {result['evalue']}"
        elif status == "timeout":
            error = f"the cell ran over its time limit of {plan['cell_timeout']:g} s"
        elif status == "died":
            error = "the kernel ended during this cell (os._exit, a crash, or out of memory)"
        out.send({"type": "cell", "key": cell["key"], "status": status, "error": _text(error)})
        if not kernel.alive():
            stopped = f"not run: the kernel had ended during cell {cell['key']}"[:MAX_TEXT]
    keep = {kernel.pid} if kernel.alive() and kernel.pid else set()
    others = kill_others(keep)
    flags = [f"background processes killed: {others}"] if others else []
    out.send({"type": "student-done", "flags": flags})

    tests = parse_tests(read_message(stdin, MAX_TESTS_BYTES))
    if not kernel.alive():
        for test in tests:
            out.send(
                {
                    "type": "test",
                    "id": test["id"],
                    "status": "died",
                    "message": stopped,
                    "flags": [],
                }
            )
        out.send({"type": "end"})
        return
    check = kernel.execute(
        "", KERNEL_START_SECONDS, {"r": f"__import__('sys').modules[{token!r}].check()"}
    )
    report = parse_expression_result(check.get("reply") or {}, "r")
    if check["status"] != "ok" or report is None:
        out.send(
            {
                "type": "integrity",
                "ok": False,
                "flags": ["the grader's checks could not run in the kernel (tampered with)"],
            }
        )
        for test in tests:
            out.send(
                {
                    "type": "test",
                    "id": test["id"],
                    "status": "not-run",
                    "message": "not run: the grader's checks could not run in the kernel",
                    "flags": [],
                }
            )
        out.send({"type": "end"})
        return
    out.send({"type": "integrity", "ok": True, "flags": _flags(report.get("flags"))})
    for test in tests:
        out.send(_run_test(kernel, token, test))
    out.send({"type": "end"})


def _run_test(kernel: Kernel, token: str, test: dict) -> dict:
    frame = {"type": "test", "id": test["id"], "flags": []}
    if not kernel.alive():
        return {**frame, "status": "died", "message": "not run: the kernel had ended"}
    nonce = secrets.token_hex(16)
    try:
        code = rewrite_test(test["source"], token, nonce)
    except SyntaxError as e:
        return {**frame, "status": "error", "message": _text(f"the test is not Python: {e}")}
    result = kernel.execute(code, test["timeout"], {"m": f"{token}.take()"})
    status = result["status"]
    mark = parse_expression_result(result.get("reply") or {}, "m") or {}
    flags = _flags(mark.get("flags"))
    if status == "ok":
        if mark.get("nonce") != nonce:
            return {
                **frame,
                "status": "fail",
                "message": "the test did not run to its end (its code was changed in the kernel)",
                "flags": ["tampered: the test's end was not reached", *flags][:MAX_FLAGS],
            }
        return {**frame, "status": "pass", "message": "", "flags": flags}
    if status == "error":
        ename = result["ename"]
        kind = "fail" if ename in ("AssertionError", "UntrustedComparison") else "error"
        if ename == "UntrustedComparison":
            flags = [*flags, _text(result["evalue"], 200)][:MAX_FLAGS]
        message = _text(f"{ename}: {result['evalue']}")
        return {**frame, "status": kind, "message": message, "flags": flags}
    if status == "timeout":
        message = f"the test ran over its time limit of {test['timeout']:g} s"
        return {**frame, "status": "timeout", "message": message, "flags": flags}
    return {
        **frame,
        "status": "died",
        "message": "the kernel ended during this test",
        "flags": flags,
    }


def main() -> int:
    make_non_dumpable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the frames' channel: a private descriptor (close-on-exec); fd 1 becomes /dev/null so
    # that nothing else ever writes to the container's stdout
    channel = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    stdin = os.fdopen(os.dup(0), "rb")
    null_in = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_in, 0)
    os.close(null_in)
    try:
        secret_hex = read_message(stdin, MAX_SECRET_MESSAGE).decode("ascii").strip()
        secret = bytes.fromhex(secret_hex)
        if len(secret) < SECRET_BYTES:
            raise BadInput("the secret is too short")
    except (BadInput, ValueError, UnicodeDecodeError) as e:
        sys.stderr.write(f"classhub grader: no secret: {e}\n")
        return 2
    out = Output(secret, channel)
    workdir = os.environ.get("HOME", "/tmp")
    try:
        run(stdin, out, workdir)
    except BadInput as e:
        out.send({"type": "error", "message": _text(f"bad input: {e}")})
        return 2
    except Exception as e:  # noqa: BLE001 - reported, never a pass
        out.send({"type": "error", "message": _text(f"the grader failed: {type(e).__name__}: {e}")})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
