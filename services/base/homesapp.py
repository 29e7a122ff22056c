"""The settings of the helper containers that read and write students' homes.

:class:`HomesSettings` is mixed into the services that need it (files: material pushes and
releases; grades: snapshots and feedback): ``class FilesApp(HomesSettings, ServiceApp)``.
Its traits are set like the service's own (``c.FilesApp.homes_concurrency = 2``) or from
the ``CLASSHUB_HOMES_*`` variables, which ``services/config.py`` passes to both services.
"""

from __future__ import annotations

import os
import re

from traitlets import Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from .homes import HelperSettings, Homes

#: the hub's variables a service that uses helper containers needs (hub-side config of the
#: files, grades and classes services passes them through)
HOMES_ENV = (
    "CLASSHUB_CONTAINER_PREFIX",
    "CLASSHUB_HOMES_HELPER_IMAGE",
    "CLASSHUB_HOMES_BATCH_SIZE",
    "CLASSHUB_HOMES_CONCURRENCY",
    "CLASSHUB_HOMES_MEM_LIMIT",
    "CLASSHUB_HOMES_CPU_LIMIT",
    "CLASSHUB_HOMES_SECONDS_PER_HOME",
    "DOCKER_HOST",
)

_MEM = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name, "").strip() or fallback


def _env_number(name: str, fallback, kind):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return fallback
    try:
        return kind(raw)
    except ValueError:
        raise TraitError(f"{name} must be a number, got {raw[:40]!r}") from None


class HomesSettings(Configurable):
    """Traits of the helper containers (see :mod:`services.base.homes`)."""

    homes_helper_image = Unicode(
        config=True,
        help="""The image of the throwaway helper containers in which the service reads and
        writes students' home folders (snapshots, material, releases, feedback), so that
        nothing is ever sent to a student's own server. Built by
        ``images/build.sh homes-helper``. Set from ``CLASSHUB_HOMES_HELPER_IMAGE``.

        Example: ``c.FilesApp.homes_helper_image = "classhub/homes-helper:latest"``
        """,
    )

    @default("homes_helper_image")
    def _default_homes_helper_image(self):
        return _env("CLASSHUB_HOMES_HELPER_IMAGE", "classhub/homes-helper:latest")

    homes_deployment = Unicode(
        config=True,
        help="""The spawner's prefix (``c.ClassroomSpawner.prefix``): students' home
        volumes are named ``<prefix>-home-<user>-<server>-<hash>``, and the helper
        containers carry it in their ``classhub.homes-helper`` label. Must be the hub's
        ``CLASSHUB_CONTAINER_PREFIX``, from which it is set.

        Example: ``c.GradesApp.homes_deployment = "classhub"``
        """,
    )

    @default("homes_deployment")
    def _default_homes_deployment(self):
        return _env("CLASSHUB_CONTAINER_PREFIX", "classhub")

    homes_batch_size = Int(
        config=True,
        help="""The most homes one helper container handles. Starting a container costs
        about half a second whatever it does, so work that arrives together (a push to a
        class, a collect, a deadline) goes in batches; a single request (one Submit) gets a
        container of its own at once. Larger batches cost fewer containers but a failure or
        a time limit hits more students at once. Set from ``CLASSHUB_HOMES_BATCH_SIZE``.

        Example: ``c.FilesApp.homes_batch_size = 25``
        """,
    )

    @default("homes_batch_size")
    def _default_homes_batch_size(self):
        return _env_number("CLASSHUB_HOMES_BATCH_SIZE", 25, int)

    homes_concurrency = Int(
        config=True,
        help="""How many helper containers the service runs at once. Each uses at most one
        CPU (``homes_cpu_limit``); on a 2-core machine 2 keeps the hub and the students'
        servers responsive while a class's push or collect runs. Set from
        ``CLASSHUB_HOMES_CONCURRENCY``.

        Example: ``c.GradesApp.homes_concurrency = 4``
        """,
    )

    @default("homes_concurrency")
    def _default_homes_concurrency(self):
        return _env_number("CLASSHUB_HOMES_CONCURRENCY", 2, int)

    homes_mem_limit = Unicode(
        config=True,
        help="""The memory limit of one helper container (Docker's units: ``256M``, ``1G``),
        swap included. A snapshot and a delivery stream files, so little is needed. Set
        from ``CLASSHUB_HOMES_MEM_LIMIT``.

        Example: ``c.FilesApp.homes_mem_limit = "512M"``
        """,
    )

    @default("homes_mem_limit")
    def _default_homes_mem_limit(self):
        return _env("CLASSHUB_HOMES_MEM_LIMIT", "256M")

    homes_cpu_limit = Float(
        config=True,
        help="""How many CPUs one helper container may use (``CLASSHUB_HOMES_CPU_LIMIT``).

        Example: ``c.FilesApp.homes_cpu_limit = 0.5``
        """,
    )

    @default("homes_cpu_limit")
    def _default_homes_cpu_limit(self):
        return _env_number("CLASSHUB_HOMES_CPU_LIMIT", 1.0, float)

    homes_seconds_per_home = Float(
        config=True,
        help="""The time limit of a helper container: 30 s to start plus this many seconds
        per home it handles. A container still running then is killed; the homes it had not
        finished get "try again" (a push retries by itself, a Submit says so). A 100 MiB
        snapshot takes a few seconds. Set from ``CLASSHUB_HOMES_SECONDS_PER_HOME``.

        Example: ``c.GradesApp.homes_seconds_per_home = 120``
        """,
    )

    @default("homes_seconds_per_home")
    def _default_homes_seconds_per_home(self):
        return _env_number("CLASSHUB_HOMES_SECONDS_PER_HOME", 60.0, float)

    @validate("homes_batch_size", "homes_concurrency")
    def _check_homes_counts(self, proposal):
        if not 1 <= proposal.value <= 200:
            raise TraitError(f"{proposal.trait.name} must be 1 to 200, got {proposal.value}")
        return proposal.value

    @validate("homes_cpu_limit", "homes_seconds_per_home")
    def _check_homes_positive(self, proposal):
        if not proposal.value > 0:
            raise TraitError(f"{proposal.trait.name} must be positive, got {proposal.value}")
        return proposal.value

    @validate("homes_mem_limit")
    def _check_homes_mem(self, proposal):
        if not _MEM.match(proposal.value):
            raise TraitError(
                f"homes_mem_limit must be a size such as 256M or 1G, got {proposal.value!r}"
            )
        return proposal.value

    @validate("homes_helper_image", "homes_deployment")
    def _check_homes_names(self, proposal):
        if not proposal.value or any(c.isspace() for c in proposal.value):
            raise TraitError(f"{proposal.trait.name} must be a name without spaces")
        return proposal.value

    def make_homes(self, service: str, log) -> Homes:
        """The :class:`Homes` these settings describe, for the service ``service``."""
        settings = HelperSettings(
            image=self.homes_helper_image,
            deployment=self.homes_deployment,
            service=service,
            mem_limit=self.homes_mem_limit,
            cpu_limit=self.homes_cpu_limit,
            seconds_per_home=self.homes_seconds_per_home,
        )
        return Homes(
            settings,
            max_batch=self.homes_batch_size,
            concurrency=self.homes_concurrency,
            log=log,
        )
