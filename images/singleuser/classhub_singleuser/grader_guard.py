"""The grader's in-kernel guard: sent as source text by the runner
(:mod:`classhub_singleuser.grader`) and executed in the student's kernel *before* any
student cell, then asked for an integrity check *after* the last one.

It is the one part of the grader that runs in the same process as student code, so
nothing here is a proof (see docs/autograding.md, "In-kernel tricks"): it captures the
original objects of ``builtins``, the watched modules and IPython's hooks before student
code runs, and puts them back (and says so) before the tests run; and the tests, rewritten
by the runner, compare values only through :func:`compare` and :func:`truth`, which refuse
objects whose comparison comes from student code.

This file uses the standard library only; :func:`install` is called once per kernel with
the run's random token, under which the guard is kept (``sys.modules[token]``).
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import operator
import sys
import sysconfig
import threading
import types

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a type made at run time (a class statement)
_COMPARE_DUNDERS = (
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__bool__",
    "__len__",
    "__contains__",
    "__iter__",
    "__array_ufunc__",
    "__array_function__",
    "__array_priority__",
)
_OPS = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
    "In": lambda a, b: operator.contains(b, a),
    "NotIn": lambda a, b: not operator.contains(b, a),
    "Is": operator.is_,
    "IsNot": operator.is_not,
}
_CONTAINERS = (list, tuple, set, frozenset, dict)
MAX_ELEMENTS = 1_000_000
MAX_FLAGS = 50
#: names IPython itself swaps in ``builtins`` while a cell runs (its builtin trap)
IPYTHON_BUILTINS = frozenset({"input", "get_ipython", "exit", "quit", "display", "getpass"})
DEFAULT_WATCH = ("math", "cmath", "operator", "unittest", "numpy", "numpy.testing")
_C_CALLABLES = (
    types.BuiltinFunctionType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    type(object.__dict__["__init_subclass__"]),
)


def _task_count() -> int:
    """The kernel's OS threads (``_thread.start_new_thread`` ones included, which
    ``threading.enumerate`` does not list); 0 where /proc is not there."""
    import os

    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


class UntrustedComparison(AssertionError):
    """A test compared an object whose comparison comes from student code."""


class Guard:
    """What the guard captured before student code, and the checks made with it."""

    def __init__(self, token: str, watch=DEFAULT_WATCH):
        self.token = token
        self.flags: list[str] = []
        self.last = ""
        self._bool = bool
        self._type = type
        self._isinstance = isinstance
        self._len = len
        self._trusted_prefixes = tuple(
            {
                p
                for p in (
                    sys.prefix,
                    sys.base_prefix,
                    sysconfig.get_paths().get("stdlib"),
                    sysconfig.get_paths().get("purelib"),
                    sysconfig.get_paths().get("platlib"),
                )
                if p
            }
        )
        self.builtins = dict(vars(builtins))
        self.modules: dict[str, types.ModuleType] = {}
        for name in watch:
            try:
                if importlib.util.find_spec(name) is None:
                    continue
                __import__(name)
            except Exception:  # noqa: BLE001, S112 - a module that cannot load is not watched
                continue
            self.modules[name] = sys.modules[name]
        self.module_dicts = {name: dict(vars(m)) for name, m in self.modules.items()}
        self.classes = self._watched_classes()
        self.class_dicts = {c: dict(vars(c)) for c in self.classes}
        self.trace = sys.gettrace()
        self.profile = sys.getprofile()
        self.thread_trace = getattr(threading, "_trace_hook", None)
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.threads = set(threading.enumerate())
        self.tasks = _task_count()
        self.shell = self._shell()
        self.hooks = self._hooks()

    # ----- what is captured

    def _shell(self):
        get = getattr(builtins, "get_ipython", None)
        return get() if get else None

    def _watched_classes(self) -> list[type]:
        classes: list[type] = []
        unittest = self.modules.get("unittest")
        if unittest is not None:
            classes.append(unittest.TestCase)
        shell = self._shell()
        if shell is not None:
            for obj in (shell, getattr(shell, "kernel", None), getattr(shell, "compile", None)):
                if obj is None:
                    continue
                for cls in type(obj).__mro__:
                    if cls is not object and cls.__flags__ & _HEAPTYPE and cls not in classes:
                        classes.append(cls)
        return classes

    def _hooks(self) -> dict:
        shell = self.shell
        if shell is None:
            return {}
        hooks = {
            name: list(getattr(shell, name, []) or [])
            for name in (
                "input_transformers_cleanup",
                "input_transformers_post",
                "ast_transformers",
            )
        }
        manager = getattr(shell, "input_transformer_manager", None)
        hooks["manager"] = manager
        if manager is not None:
            for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
                hooks[f"manager.{name}"] = list(getattr(manager, name, []) or [])
        events = getattr(shell, "events", None)
        hooks["events"] = {k: list(v) for k, v in (getattr(events, "callbacks", {}) or {}).items()}
        hooks["shell_dict"] = set(vars(shell))
        return hooks

    # ----- the integrity check: put back what student code changed, say what it was

    def _flag(self, text: str) -> None:
        if len(self.flags) < MAX_FLAGS:
            self.flags.append(text[:200])

    def _restore_dict(self, label: str, target: dict, saved: dict, setter) -> None:
        for name, obj in saved.items():
            if name not in target or target[name] is not obj:
                self._flag(f"patched: {label}.{name}")
                setter(name, obj)

    def check(self) -> str:
        """Restore and report (JSON: ``{"flags": [...]}``); run after the last student cell."""
        self.flags = []
        bdict = vars(builtins)
        for name, obj in self.builtins.items():
            if name in IPYTHON_BUILTINS:
                continue
            if bdict.get(name, self) is not obj:
                self._flag(f"patched: builtins.{name}")
                bdict[name] = obj
        for name in [n for n in bdict if n not in self.builtins]:
            if name != self.token and name not in IPYTHON_BUILTINS:
                self._flag(f"added: builtins.{name}")
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                self._flag(f"replaced: sys.modules[{name!r}]")
                sys.modules[name] = module
            current = vars(module)
            for attr, obj in self.module_dicts[name].items():
                if current.get(attr, self) is not obj:
                    self._flag(f"patched: {name}.{attr}")
                    setattr(module, attr, obj)
        for cls, saved in self.class_dicts.items():
            current = vars(cls)
            for attr, obj in saved.items():
                if attr == "__dict__" or attr == "__weakref__":
                    continue
                if current.get(attr, self) is not obj:
                    self._flag(f"patched: {cls.__qualname__}.{attr}")
                    try:
                        setattr(cls, attr, obj)
                    except (TypeError, AttributeError):
                        pass
            for attr in [a for a in current if a not in saved]:
                self._flag(f"added: {cls.__qualname__}.{attr}")
                try:
                    delattr(cls, attr)
                except (TypeError, AttributeError):
                    pass
        if sys.gettrace() is not self.trace:
            self._flag("patched: sys.settrace")
            sys.settrace(self.trace)
        if sys.getprofile() is not self.profile:
            self._flag("patched: sys.setprofile")
            sys.setprofile(self.profile)
        if getattr(threading, "_trace_hook", None) is not self.thread_trace:
            self._flag("patched: threading.settrace")
            threading.settrace(self.thread_trace)
        if sys.meta_path != self.meta_path:
            self._flag("patched: sys.meta_path")
            sys.meta_path[:] = self.meta_path
        if sys.path_hooks != self.path_hooks:
            self._flag("patched: sys.path_hooks")
            sys.path_hooks[:] = self.path_hooks
        self._check_shell()
        extra = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
        tasks = _task_count() - self.tasks
        if extra or tasks > 0:
            # threads left running by student code may change things while the tests run
            self._flag(f"background threads: {max(len(extra), tasks)}")
        if self.shell is not None:
            self.shell.user_ns[self.token] = self
        return json.dumps({"flags": self.flags})

    def _check_shell(self) -> None:
        shell = self.shell
        if shell is None:
            return
        hooks = self.hooks
        for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            if list(getattr(shell, name, []) or []) != hooks[name]:
                self._flag(f"patched: IPython {name}")
                setattr(shell, name, list(hooks[name]))
        if getattr(shell, "input_transformer_manager", None) is not hooks["manager"]:
            self._flag("patched: IPython input_transformer_manager")
            shell.input_transformer_manager = hooks["manager"]
        manager = hooks["manager"]
        if manager is not None:
            for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
                if list(getattr(manager, name, []) or []) != hooks[f"manager.{name}"]:
                    self._flag(f"patched: IPython {name}")
                    setattr(manager, name, list(hooks[f"manager.{name}"]))
        events = getattr(shell, "events", None)
        callbacks = getattr(events, "callbacks", None)
        if isinstance(callbacks, dict):
            for key, saved in hooks["events"].items():
                if list(callbacks.get(key, [])) != saved:
                    self._flag(f"patched: IPython event {key}")
                    callbacks[key] = list(saved)
        for name in [n for n in vars(shell) if n not in hooks["shell_dict"]]:
            if callable(vars(shell)[name]) and hasattr(type(shell), name):
                self._flag(f"patched: IPython shell.{name}")
                delattr(shell, name)

    # ----- what the rewritten tests call

    def _code_trusted(self, fn) -> bool:
        if isinstance(fn, _C_CALLABLES):
            return True
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        code = getattr(fn, "__code__", None)
        if type(fn) is not types.FunctionType or code is None:
            return False
        return code.co_filename.startswith(self._trusted_prefixes)

    def type_trusted(self, cls) -> bool:
        """A C type (its methods cannot be changed from Python), or a class of an installed
        library whose comparison methods all come from installed files."""
        if not cls.__flags__ & _HEAPTYPE:
            return True
        for klass in cls.__mro__:
            if klass is object:
                continue
            if klass.__flags__ & _HEAPTYPE and klass.__module__ in ("__main__", "builtins"):
                return False
            own = vars(klass)
            for name in _COMPARE_DUNDERS:
                if name in own and own[name] is not None and name != "__array_priority__":
                    if not self._code_trusted(own[name]):
                        return False
        return True

    def value_trusted(self, value) -> str:
        """'' when ``value`` (and everything a comparison of it looks at) compares with code
        classhub trusts; else the name of the first type that does not."""
        budget = [MAX_ELEMENTS]
        stack = [value]
        while stack:
            item = stack.pop()
            cls = type(item)
            if not self.type_trusted(cls):
                return f"{cls.__module__}.{cls.__qualname__}"
            budget[0] -= 1
            if budget[0] < 0:
                return "a value too large to check"
            if cls in _CONTAINERS:
                if cls is dict:
                    stack.extend(item.keys())
                    stack.extend(item.values())
                else:
                    stack.extend(item)
            elif cls.__name__ == "ndarray" and cls.__module__ == "numpy":
                if item.dtype.hasobject:
                    stack.extend(item.flat)
        return ""

    def compare(self, left, ops, rights):
        """``left op0 right0 op1 right1 ...`` as Python evaluates it (lazily, left to right),
        each pair checked first. ``rights`` are zero-argument functions (the rewrite passes
        lambdas, so a chain evaluates its operands only as far as Python would)."""
        result = True
        for n, (op, right_fn) in enumerate(zip(ops, rights, strict=True)):
            right = right_fn()
            if op not in ("Is", "IsNot"):
                for side in (left, right):
                    bad = self.value_trusted(side)
                    if bad:
                        self._flag(f"untrusted comparison: {bad}")
                        raise UntrustedComparison(
                            f"untrusted comparison: an object of type {bad} compares with"
                            " code of its own"
                        )
            result = _OPS[op](left, right)
            if len(ops) == 1:
                return result  # as is: a numpy comparison gives an array
            if n < len(ops) - 1 and not self.truth(result):
                return result
            left = right
        return result

    def truth(self, value) -> bool:
        if self._type(value) is bool:
            return value
        bad = self.value_trusted(value)
        if bad:
            self._flag(f"untrusted truth value: {bad}")
            raise UntrustedComparison(f"untrusted truth value: an object of type {bad}")
        return self._bool(value)

    def begin(self) -> None:
        self.last = ""
        self.flags = []

    def mark(self, nonce: str) -> None:
        self.last = nonce

    def take(self) -> str:
        last, self.last = self.last, ""
        return json.dumps({"nonce": last, "flags": self.flags[:MAX_FLAGS]})


def install(token: str, watch=DEFAULT_WATCH) -> Guard:
    """Make the guard and keep it as ``sys.modules[token]`` (a random name per run)."""
    guard = Guard(token, watch)
    sys.modules[token] = guard  # type: ignore[assignment]
    return guard
