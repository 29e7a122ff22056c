"""The limits of autograding's sealed containers, as traits (docs/autograding.md).

:class:`AutogradeSettings` is meant to be mixed into the grades service's app
(``class GradesApp(AutogradeSettings, HomesSettings, ServiceApp)``, with the grading
queue); its traits are set as ``c.GradesApp.autograde_mem_limit = "2G"`` or
from the ``CLASSHUB_AUTOGRADE_*`` variables (``AUTOGRADE_ENV``, which the hub-side
config must pass to the service).
"""

from __future__ import annotations

import os
import re

from traitlets import Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from .sandbox import Autograder, Limits

AUTOGRADE_ENV = (
    "CLASSHUB_AUTOGRADE_MEM_LIMIT",
    "CLASSHUB_AUTOGRADE_PIDS_LIMIT",
    "CLASSHUB_AUTOGRADE_CPU_LIMIT",
    "CLASSHUB_AUTOGRADE_TIMEOUT",
    "CLASSHUB_AUTOGRADE_CELL_TIMEOUT",
    "CLASSHUB_AUTOGRADE_OUTPUT_LIMIT",
    "CLASSHUB_AUTOGRADE_TMPFS_SIZE",
    "CLASSHUB_AUTOGRADE_CONCURRENCY",
)

_SIZE = re.compile(r"^([1-9][0-9]*)([kKmMgG]?)$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size_bytes(text: str) -> int:
    """``"512M"`` -> 536870912 (Docker's units: k, m, g, powers of 1024). ValueError."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 512M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _env(name: str, fallback):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return fallback
    if isinstance(fallback, str):
        return raw
    try:
        return type(fallback)(raw)
    except ValueError:
        raise TraitError(f"{name} must be a number, got {raw[:40]!r}") from None


class AutogradeSettings(Configurable):
    """Traits of the sealed grading containers (see :mod:`.sandbox`)."""

    autograde_mem_limit = Unicode(
        config=True,
        help="""The memory limit of one grading container, swap included (Docker's units:
        ``512M``, ``2G``); the memory of a student's server is a good guide. A notebook
        that needs more is stopped and its remaining tests score 0 ("over its memory
        limit"). Set from ``CLASSHUB_AUTOGRADE_MEM_LIMIT``.

        Example: ``c.GradesApp.autograde_mem_limit = "2G"``
        """,
    )

    @default("autograde_mem_limit")
    def _default_mem(self):
        return _env("CLASSHUB_AUTOGRADE_MEM_LIMIT", "1G")

    autograde_pids_limit = Int(
        config=True,
        help="""The most processes and threads in one grading container: stops a fork
        bomb; the kernel and numpy's threads need a few dozen. Set from
        ``CLASSHUB_AUTOGRADE_PIDS_LIMIT``.

        Example: ``c.GradesApp.autograde_pids_limit = 512``
        """,
    )

    @default("autograde_pids_limit")
    def _default_pids(self):
        return _env("CLASSHUB_AUTOGRADE_PIDS_LIMIT", 256)

    autograde_cpu_limit = Float(
        config=True,
        help="""How many CPUs one grading container may use. With several runs at once
        (``autograde_concurrency``) keep their sum at or below the machine's cores so the
        students' servers stay responsive. Set from ``CLASSHUB_AUTOGRADE_CPU_LIMIT``.

        Example: ``c.GradesApp.autograde_cpu_limit = 0.5``
        """,
    )

    @default("autograde_cpu_limit")
    def _default_cpu(self):
        return _env("CLASSHUB_AUTOGRADE_CPU_LIMIT", 1.0)

    autograde_timeout = Float(
        config=True,
        help="""The wall-clock limit of one whole grading run in seconds (start, every
        student cell, every test). The container is then killed and every test without a
        result scores 0 ("stopped at its time limit"). Set from
        ``CLASSHUB_AUTOGRADE_TIMEOUT``.

        Example: ``c.GradesApp.autograde_timeout = 600``
        """,
    )

    @default("autograde_timeout")
    def _default_timeout(self):
        return _env("CLASSHUB_AUTOGRADE_TIMEOUT", 300.0)

    autograde_cell_timeout = Float(
        config=True,
        help="""The limit of each student cell and each test in seconds. A cell over it is
        interrupted (and its kernel stopped if it ignores the interrupt); a test over it
        scores 0. Must be below ``autograde_timeout``. Set from
        ``CLASSHUB_AUTOGRADE_CELL_TIMEOUT``.

        Example: ``c.GradesApp.autograde_cell_timeout = 30``
        """,
    )

    @default("autograde_cell_timeout")
    def _default_cell_timeout(self):
        return _env("CLASSHUB_AUTOGRADE_CELL_TIMEOUT", 60.0)

    autograde_output_limit = Unicode(
        config=True,
        help="""The most the service reads of a grading container's output (Docker's
        units). Only the grader's own result frames are on it (the student's printing is
        not), so 4M is far more than a notebook of hundreds of tests needs; a run over it is
        stopped and flagged. Set from ``CLASSHUB_AUTOGRADE_OUTPUT_LIMIT``.

        Example: ``c.GradesApp.autograde_output_limit = "8M"``
        """,
    )

    @default("autograde_output_limit")
    def _default_output(self):
        return _env("CLASSHUB_AUTOGRADE_OUTPUT_LIMIT", "4M")

    autograde_tmpfs_size = Unicode(
        config=True,
        help="""The size of each of the grading container's two writable folders (``/tmp``
        and the work folder; both in memory, counted in ``autograde_mem_limit``). Files a
        notebook writes beyond it fail with "No space left on device". Set from
        ``CLASSHUB_AUTOGRADE_TMPFS_SIZE``.

        Example: ``c.GradesApp.autograde_tmpfs_size = "256M"``
        """,
    )

    @default("autograde_tmpfs_size")
    def _default_tmpfs(self):
        return _env("CLASSHUB_AUTOGRADE_TMPFS_SIZE", "128M")

    autograde_concurrency = Int(
        config=True,
        help="""How many grading containers the service runs at once (the grading queue's
        workers). Each uses up to ``autograde_cpu_limit`` CPUs. Default: the number of
        cores. Set from ``CLASSHUB_AUTOGRADE_CONCURRENCY``.

        Example: ``c.GradesApp.autograde_concurrency = 4``
        """,
    )

    @default("autograde_concurrency")
    def _default_concurrency(self):
        return _env("CLASSHUB_AUTOGRADE_CONCURRENCY", os.cpu_count() or 1)

    @validate("autograde_mem_limit", "autograde_output_limit", "autograde_tmpfs_size")
    def _check_size(self, proposal):
        name = proposal.trait.name
        try:
            value = size_bytes(proposal.value)
        except ValueError:
            raise TraitError(
                f"{name} must be a size such as 512M or 2G, got {proposal.value!r}"
            ) from None
        low = {"autograde_mem_limit": 64 << 20, "autograde_tmpfs_size": 1 << 20}.get(name, 4096)
        if value < low:
            raise TraitError(f"{name} must be at least {low >> 10}K, got {proposal.value!r}")
        return proposal.value

    @validate("autograde_pids_limit")
    def _check_pids(self, proposal):
        if not 16 <= proposal.value <= 65536:
            raise TraitError(
                f"autograde_pids_limit must be 16 to 65536 (a kernel needs about 16), got"
                f" {proposal.value}"
            )
        return proposal.value

    @validate("autograde_concurrency")
    def _check_concurrency(self, proposal):
        if not 1 <= proposal.value <= 256:
            raise TraitError(f"autograde_concurrency must be 1 to 256, got {proposal.value}")
        return proposal.value

    @validate("autograde_cpu_limit", "autograde_timeout", "autograde_cell_timeout")
    def _check_positive(self, proposal):
        if not proposal.value > 0:
            raise TraitError(f"{proposal.trait.name} must be positive, got {proposal.value}")
        return proposal.value

    def autograde_limits(self, deployment: str = "classhub") -> Limits:
        """The :class:`Limits` these traits describe (TraitError when the cell limit is not
        below the run's)."""
        if self.autograde_cell_timeout >= self.autograde_timeout:
            raise TraitError(
                "autograde_cell_timeout must be below autograde_timeout (the run's limit):"
                f" {self.autograde_cell_timeout:g} >= {self.autograde_timeout:g}"
            )
        return Limits(
            mem_limit=self.autograde_mem_limit.lower(),
            pids_limit=self.autograde_pids_limit,
            cpu_limit=self.autograde_cpu_limit,
            timeout=self.autograde_timeout,
            cell_timeout=self.autograde_cell_timeout,
            output_limit=size_bytes(self.autograde_output_limit),
            tmpfs_size=self.autograde_tmpfs_size.lower(),
            deployment=deployment,
        )

    def make_autograder(self, log, deployment: str = "classhub") -> Autograder:
        return Autograder(
            self.autograde_limits(deployment), concurrency=self.autograde_concurrency, log=log
        )
