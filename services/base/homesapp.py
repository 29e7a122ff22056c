"""The settings of the helper containers that read and write students' homes.

:class:`HomesSettings` is mixed into the services that need it (files: material pushes and
releases; grades: snapshots and feedback): ``class FilesApp(HomesSettings, ServiceApp)``.
Its traits are set like the service's own (``c.FilesApp.homes_concurrency = 2``) or from
the ``CLASSHUB_HOMES_*`` variables, which ``services/config.py`` passes to both services.
"""

from __future__ import annotations

import re

from traitlets import Bool, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from common.hubenv import CONTAINER_PREFIX, STUDENT_NETWORK
from common.settings import EnvSetting, EnvTable, named, number, switch, whole

from .homes import HelperSettings, Homes

_MEM = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")

#: the helper containers' settings from the hub's environment: the @defaults of the traits
#: below and what the hub passes to every service that mixes them in
HOMES_TABLE = EnvTable(
    (
        EnvSetting(
            "homes_helper_image", "CLASSHUB_HOMES_HELPER_IMAGE", "classhub/homes-helper:latest"
        ),
        CONTAINER_PREFIX.of("homes_deployment"),
        EnvSetting("homes_batch_size", "CLASSHUB_HOMES_BATCH_SIZE", 25, whole, "a number"),
        EnvSetting("homes_concurrency", "CLASSHUB_HOMES_CONCURRENCY", 2, whole, "a number"),
        EnvSetting("homes_mem_limit", "CLASSHUB_HOMES_MEM_LIMIT", "256M"),
        EnvSetting("homes_cpu_limit", "CLASSHUB_HOMES_CPU_LIMIT", 1.0, number, "a number"),
        EnvSetting(
            "homes_seconds_per_home", "CLASSHUB_HOMES_SECONDS_PER_HOME", 60.0, number, "a number"
        ),
        EnvSetting(
            "homes_swarm",
            "CLASSHUB_HOMES_SWARM",
            False,
            switch,
            "1, true or yes (on), or 0, false or no (off)",
        ),
        STUDENT_NETWORK.of("homes_network"),
    ),
    # the Docker engine the helpers run on, read by the docker SDK itself
    extra=("DOCKER_HOST",),
)

#: the hub's variables a service that uses helper containers needs
HOMES_ENV = HOMES_TABLE.variables


@HOMES_TABLE.install
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

    homes_deployment = Unicode(
        config=True,
        help="""The spawner's prefix (``c.ClassroomSpawner.prefix``): students' home
        volumes are named ``<prefix>-home-<user>-<server>-<hash>``, and the helper
        containers carry it in their ``classhub.homes-helper`` label. Must be the hub's
        ``CLASSHUB_CONTAINER_PREFIX``, from which it is set.

        Example: ``c.GradesApp.homes_deployment = "classhub"``
        """,
    )

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

    homes_concurrency = Int(
        config=True,
        help="""How many helper containers the service runs at once. Each uses at most one
        CPU (``homes_cpu_limit``); on a 2-core machine 2 keeps the hub and the students'
        servers responsive while a class's push or collect runs. Set from
        ``CLASSHUB_HOMES_CONCURRENCY``.

        Example: ``c.GradesApp.homes_concurrency = 4``
        """,
    )

    homes_mem_limit = Unicode(
        config=True,
        help="""The memory limit of one helper container (Docker's units: ``256M``, ``1G``),
        swap included. A snapshot and a delivery stream files, so little is needed. Set
        from ``CLASSHUB_HOMES_MEM_LIMIT``.

        Example: ``c.FilesApp.homes_mem_limit = "512M"``
        """,
    )

    homes_cpu_limit = Float(
        config=True,
        help="""How many CPUs one helper container may use (``CLASSHUB_HOMES_CPU_LIMIT``).

        Example: ``c.FilesApp.homes_cpu_limit = 0.5``
        """,
    )

    homes_seconds_per_home = Float(
        config=True,
        help="""The time limit of a helper container: 30 s to start plus this many seconds
        per home it handles. A container still running then is killed; the homes it had not
        finished get "try again" (a push retries by itself, a Submit says so). A 100 MiB
        snapshot takes a few seconds. Set from ``CLASSHUB_HOMES_SECONDS_PER_HOME``.

        Example: ``c.GradesApp.homes_seconds_per_home = 120``
        """,
    )

    homes_swarm = Bool(
        config=True,
        help="""Run the helpers as one-shot services on a Docker Swarm, each on the node
        that holds the homes it works on (the hub says which), with their job and results
        through the service's own S3 keys ``helpers/<service>/`` and presigned URLs:
        on a Swarm a home is a volume on one worker, which the manager cannot reach into.
        The deploy script of the stack sets it. Set from ``CLASSHUB_HOMES_SWARM``.

        Example: ``c.GradesApp.homes_swarm = True``
        """,
    )

    homes_network = Unicode(
        config=True,
        help="""On a Swarm (``homes_swarm``): the network of the helper services, on which
        every node reaches the S3 store at the address the service signs its URLs for
        (the students network of the stack). Set from ``CLASSHUB_STUDENT_NETWORK``.

        Example: ``c.GradesApp.homes_network = "classhub-students"``
        """,
    )

    @validate("homes_batch_size", "homes_concurrency")
    def _check_homes_counts(self, proposal):
        if not 1 <= proposal.value <= 200:
            raise TraitError(f"{named(self, proposal)} must be 1 to 200, got {proposal.value}")
        return proposal.value

    @validate("homes_cpu_limit", "homes_seconds_per_home")
    def _check_homes_positive(self, proposal):
        if not proposal.value > 0:
            raise TraitError(f"{named(self, proposal)} must be positive, got {proposal.value}")
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
            raise TraitError(f"{named(self, proposal)} must be a name without spaces")
        return proposal.value

    def make_homes(self, service: str, log, *, hub=None, objects=None) -> Homes:
        """The :class:`Homes` these settings describe, for the service ``service``; on a
        Swarm (``homes_swarm``) its helpers ask ``hub`` (:class:`HubAPI`) where each home is
        and exchange their jobs through ``objects`` (the service's
        :class:`~services.base.s3.ObjectStore`; None: a service without S3, whose reads
        answer 501 there)."""
        settings = HelperSettings(
            image=self.homes_helper_image,
            deployment=self.homes_deployment,
            service=service,
            mem_limit=self.homes_mem_limit,
            cpu_limit=self.homes_cpu_limit,
            seconds_per_home=self.homes_seconds_per_home,
        )
        if self.homes_swarm:
            from .swarmhomes import SwarmHomes, SwarmIO

            swarm_io = None
            if objects is not None:
                swarm_io = SwarmIO(objects, f"helpers/{service}/", self.homes_network)
            return SwarmHomes(
                settings,
                hub=hub,
                swarm_io=swarm_io,
                max_batch=self.homes_batch_size,
                concurrency=self.homes_concurrency,
                log=log,
            )
        return Homes(
            settings,
            max_batch=self.homes_batch_size,
            concurrency=self.homes_concurrency,
            log=log,
        )
