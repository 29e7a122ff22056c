"""Make the single-user server's process non-dumpable (defence in depth: the
student shares its uid).

Everything in a student's container runs as the student's uid, the server included, and
the kernel has no Yama ptrace restriction: any process of the student (a terminal, a
kernel) could read ``/proc/<server pid>/mem`` and ``/proc/<server pid>/environ`` and find
the server's hub token and the cookies and tokens of the requests it handles.

``prctl(PR_SET_DUMPABLE, 0)`` changes that for this process: its ``/proc/<pid>`` entries
that need ptrace access (``mem``, ``environ``, ``maps``, ``fd``, ...) become root's, and
``ptrace`` and ``process_vm_readv`` need ``CAP_SYS_PTRACE``, which no student process
has (the container drops every capability and sets no-new-privileges). The process
itself still reads its own ``/proc/self``.

Kernels and terminals are separate programs: ``execve`` makes a process dumpable again, so
a student can still debug their own code. Nothing here changes what the server does.

:func:`make_non_dumpable` is called from the extension's very first hook (when
jupyter-server discovers the extension, before it links or loads any extension), so the
window in which the server is dumpable is its start-up before any student process exists
in the container (the container starts with the server alone).
"""

from __future__ import annotations

import ctypes
import logging

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc():
    # the running program's own symbols, libc's among them: find_library("c") ran ldconfig
    # in four child processes at every start
    return ctypes.CDLL(None, use_errno=True)


def dumpable() -> int:
    """The process's dumpable flag as the kernel reports it (1 dumpable, 0 not), or -1
    when it cannot be read (not Linux)."""
    try:
        return int(_libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError):
        return -1


def make_non_dumpable(log: logging.Logger | None = None) -> bool:
    """Set this process non-dumpable (idempotent). True when the kernel confirms it.

    Logged (info) when ``log`` is given, so the server's log says it once. A failure is
    logged as an error and never stops the server: the rest of classhub's protections do
    not depend on it."""
    quiet = log is None
    log = log or logging.getLogger(__name__)
    try:
        libc = _libc()
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            log.error("classhub: prctl(PR_SET_DUMPABLE, 0) failed (errno %d)", err)
            return False
    except (OSError, AttributeError) as e:
        log.error("classhub: could not make the server non-dumpable: %s", e)
        return False
    ok = dumpable() == 0
    if ok and not quiet:
        log.info("classhub: the server process is non-dumpable (its memory is not readable)")
    return ok
