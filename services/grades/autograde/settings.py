"""Autograding's settings as traits (docs/autograding.md): the limits of the sealed
containers and the grading queue's workers.

:class:`AutogradeSettings` is mixed into the grades service's app (``GradesApp``); its
traits are set as ``c.GradesApp.autograde_mem_limit = "2G"`` or from the
``CLASSHUB_AUTOGRADE_*`` variables of ``AUTOGRADE_TABLE`` (services/grades/settings.py),
which the hub passes to the service.
"""

from __future__ import annotations

import os

from traitlets import Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from common import images
from common.units import format_size, parse_size

from ..settings import AUTOGRADE_TABLE
from .sandbox import Autograder, Limits
from .worker import WorkerSettings


@AUTOGRADE_TABLE.install
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

    autograde_pids_limit = Int(
        config=True,
        help="""The most processes and threads in one grading container: stops a fork
        bomb; the kernel and numpy's threads need a few dozen. Set from
        ``CLASSHUB_AUTOGRADE_PIDS_LIMIT``.

        Example: ``c.GradesApp.autograde_pids_limit = 512``
        """,
    )

    autograde_cpu_limit = Float(
        config=True,
        help="""How many CPUs one grading container may use. With several runs at once
        (``autograde_concurrency``) keep their sum at or below the machine's cores so the
        students' servers stay responsive. Set from ``CLASSHUB_AUTOGRADE_CPU_LIMIT``.

        Example: ``c.GradesApp.autograde_cpu_limit = 0.5``
        """,
    )

    autograde_timeout = Float(
        config=True,
        help="""The wall-clock limit of one whole grading run in seconds (start, every
        student cell, every test). The container is then killed and every test without a
        result scores 0 ("stopped at its time limit"). Set from
        ``CLASSHUB_AUTOGRADE_TIMEOUT``.

        Example: ``c.GradesApp.autograde_timeout = 600``
        """,
    )

    autograde_cell_timeout = Float(
        config=True,
        help="""The limit of each student cell and each test in seconds. A cell over it is
        interrupted (and its kernel stopped if it ignores the interrupt); a test over it
        scores 0. Must be below ``autograde_timeout``. Set from
        ``CLASSHUB_AUTOGRADE_CELL_TIMEOUT``.

        Example: ``c.GradesApp.autograde_cell_timeout = 30``
        """,
    )

    autograde_output_limit = Unicode(
        config=True,
        help="""The most the service reads of a grading container's output (Docker's
        units). Only the grader's own result frames are on it (the student's printing is
        not), so 4M is far more than a notebook of hundreds of tests needs; a run over it is
        stopped and flagged. Set from ``CLASSHUB_AUTOGRADE_OUTPUT_LIMIT``.

        Example: ``c.GradesApp.autograde_output_limit = "8M"``
        """,
    )

    autograde_tmpfs_size = Unicode(
        config=True,
        help="""The size of each of the grading container's two writable folders (``/tmp``
        and the work folder; both in memory, counted in ``autograde_mem_limit``). Files a
        notebook writes beyond it fail with "No space left on device". Set from
        ``CLASSHUB_AUTOGRADE_TMPFS_SIZE``.

        Example: ``c.GradesApp.autograde_tmpfs_size = "256M"``
        """,
    )

    autograde_concurrency = Int(
        config=True,
        help="""How many grading containers the service runs at once (the grading queue's
        workers). Each uses up to ``autograde_cpu_limit`` CPUs. Default: the number of
        cores the service may use (its CPU affinity), at most 256. Set from
        ``CLASSHUB_AUTOGRADE_CONCURRENCY``.

        Example: ``c.GradesApp.autograde_concurrency = 4``
        """,
    )

    autograde_image = Unicode(
        config=True,
        help="""The image grading containers run when a teacher chooses none and the class's
        own image (the one its students' servers run, which is the default) is not in
        ``autograde_images``. It must have classhub's runner (every image built ``FROM
        classhub/singleuser`` has it). A teacher may choose another of
        ``autograde_images`` per assignment. Set from ``CLASSHUB_AUTOGRADE_IMAGE``.

        Example: ``c.GradesApp.autograde_image = "classhub/datascience:latest"``
        """,
    )

    autograde_images = List(
        Unicode(),
        config=True,
        help="""The images a teacher may choose to grade an assignment in: by default the
        students' image catalogue (``CLASSHUB_IMAGES``, ``CLASSHUB_ALLOWED_IMAGES``, the
        images the spawner allows) and ``autograde_image``. Any other is refused (400):
        a teacher never picks an arbitrary image.

        Example: ``c.GradesApp.autograde_images = ["classhub/singleuser:latest",
        "classhub/datascience:latest"]``
        """,
    )

    @default("autograde_images")
    def _default_autograde_images(self):
        try:
            entries = images.catalogue_from_env(os.environ, self.autograde_image)
            listed = images.names(images.parse_catalogue(entries))
        except images.CatalogueError as e:
            raise TraitError(str(e)) from None
        return listed + [self.autograde_image] * (self.autograde_image not in listed)

    autograde_lease = Float(
        config=True,
        help="""Seconds a worker's claim on a grading job holds without its heartbeat (it
        renews it every third of this while it grades). When the worker's process dies
        (``kill -9``, the machine stopped), another worker takes the job once this has
        passed: short enough not to delay a class much, long enough that a loaded machine
        does not take a job from a live worker. Set from ``CLASSHUB_AUTOGRADE_LEASE``.

        Example: ``c.GradesApp.autograde_lease = 60``
        """,
    )

    autograde_max_attempts = Int(
        config=True,
        help="""How many times a grading job is tried when it fails for a reason that is
        not the student's (Docker or the S3 store down, the worker's process killed) before
        it is marked failed with the reason (the teacher's "Grade all" queues it again).
        A notebook that crashes or times out is a result, not a failure. Set from
        ``CLASSHUB_AUTOGRADE_MAX_ATTEMPTS``.

        Example: ``c.GradesApp.autograde_max_attempts = 5``
        """,
    )

    autograde_retry_interval = Float(
        config=True,
        help="""Seconds before the second attempt of a failed grading job; each further
        attempt waits twice as long (at most 10 minutes). Set from
        ``CLASSHUB_AUTOGRADE_RETRY``.

        Example: ``c.GradesApp.autograde_retry_interval = 30``
        """,
    )

    autograde_poll_interval = Float(
        config=True,
        help="""Seconds between two looks of an idle worker at the grading queue. A job
        queued by this service process wakes its workers at once; this bounds the wait for
        jobs queued by another process. Set from ``CLASSHUB_AUTOGRADE_POLL``.

        Example: ``c.GradesApp.autograde_poll_interval = 2``
        """,
    )

    @validate("autograde_max_attempts")
    def _check_attempts(self, proposal):
        if not 1 <= proposal.value <= 100:
            raise TraitError(f"autograde_max_attempts must be 1 to 100, got {proposal.value}")
        return proposal.value

    @validate("autograde_lease", "autograde_retry_interval", "autograde_poll_interval")
    def _check_seconds(self, proposal):
        if not proposal.value > 0:
            raise TraitError(
                f"{proposal.trait.name} must be a positive number of seconds, got {proposal.value}"
            )
        return proposal.value

    @validate("autograde_mem_limit", "autograde_output_limit", "autograde_tmpfs_size")
    def _check_size(self, proposal):
        name = proposal.trait.name
        try:
            value = parse_size(proposal.value)
        except ValueError:
            raise TraitError(
                f"{name} must be a size such as 512M or 2G, got {proposal.value!r}"
            ) from None
        low = {"autograde_mem_limit": 64 << 20, "autograde_tmpfs_size": 1 << 20}.get(name, 4096)
        if value < low:
            raise TraitError(f"{name} must be at least {low >> 10}K, got {proposal.value!r}")
        # in the notation Docker and tmpfs read (``1.5G`` -> ``1536M``, ``2GiB`` -> ``2G``)
        return format_size(value)

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
            output_limit=parse_size(self.autograde_output_limit),
            tmpfs_size=self.autograde_tmpfs_size.lower(),
            deployment=deployment,
        )

    def autograde_worker_settings(self) -> WorkerSettings:
        return WorkerSettings(
            lease=self.autograde_lease,
            poll=self.autograde_poll_interval,
            max_attempts=self.autograde_max_attempts,
            retry_base=self.autograde_retry_interval,
        )

    def make_autograder(self, log, deployment: str = "classhub") -> Autograder:
        return Autograder(
            self.autograde_limits(deployment), concurrency=self.autograde_concurrency, log=log
        )
