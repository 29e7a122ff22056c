"""The hub-side configuration of the grades service (a pure function, no I/O).

``services/config.py`` calls :func:`grades_service_config` and appends the two results to
``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from common import scopes
from services.base.hubconfig import service_s3_keys

from .settings import TABLE

SERVICE_NAME = "grades"
ROLE_NAME = "classhub-grades-service"

#: the hub API scopes of the service's own token: the least that its work needs. The
#: service never calls a student's server: snapshots and feedback go through helper
#: containers that mount the student's home (services/base/homes.py), so it holds no
#: access:servers and never starts or stops a server.
SCOPES = [
    # GET /groups/class-<code>, /groups/teachers-<code>: who are a class's students and
    # teachers. Reading only.
    "read:groups",
    # GET /groups: an admin's Grades page lists every class (the class-<code> groups and
    # their names). Listing only; it adds no right to change a group or its members.
    "list:groups",
    # the files service's API with the service's own token, for releases only: list an
    # assignment's starting files, push them, read that push (the files service allows
    # the grades service nothing else: FilesApp.release_services). Only this one service.
    "access:services!service=files",
    # On a Swarm only (hub/homes_api.py): which homes exist and on which node one is (a
    # stopped home is first brought from the store onto a node), so its helper services
    # run there. No file of a home, no server start or stop. Defined by
    # hub.config.configure_homes.
    scopes.HOMES,
]
# Not granted, on purpose: access:servers, start/stop of servers, read:servers, users,
# tokens.

#: what the hub computes for the service itself instead of passing its own value
HUB_COMPUTED = (
    "CLASSHUB_GRADES_DB_URL",
    "CLASSHUB_S3_ACCESS_KEY",
    "CLASSHUB_S3_SECRET_KEY",
    "CLASSHUB_SERVICE_COOKIE_SECRET",
    # hub.config.configure_web passes the services the hub runs
    "CLASSHUB_SERVICES",
)

#: settings passed from the hub's environment to the service: its settings table
PASSED_ENV = tuple(v for v in TABLE.passed_variables if v not in HUB_COMPUTED)


def grades_service_config(
    *, port: int, host: str = "127.0.0.1", db_url: str, env: Mapping[str, str]
) -> tuple[dict, dict]:
    """``(service, role)``: the managed grades service at ``/services/grades/`` on
    ``host``:``port``, and its role."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"The grades service port must be 1-65535, got {port!r}")
    if not db_url.startswith(("postgresql", "postgres")):
        raise ValueError(
            "The grades service needs PostgreSQL: set CLASSHUB_GRADES_DB_URL or CLASSHUB_DB_URL."
        )
    access_key, secret_key = service_s3_keys(env, SERVICE_NAME)
    environment = TABLE.passed(env, leave_out=HUB_COMPUTED)
    environment.update(
        CLASSHUB_GRADES_DB_URL=db_url,
        CLASSHUB_S3_ACCESS_KEY=access_key,
        CLASSHUB_S3_SECRET_KEY=secret_key,
    )
    if env.get("CLASSHUB_GRADES_COOKIE_SECRET"):
        environment["CLASSHUB_SERVICE_COOKIE_SECRET"] = env["CLASSHUB_GRADES_COOKIE_SECRET"]
    service = {
        "name": SERVICE_NAME,
        "url": f"http://{host}:{port}",
        "command": [sys.executable, "-m", "services.grades"],
        "environment": environment,
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "Grades: assignments, submissions and the gradebook"},
    }
    role = {
        "name": ROLE_NAME,
        "description": (
            "The grades service: class membership, releases through the files service "
            "(snapshots and feedback go through helper containers, not the hub)"
        ),
        "scopes": list(SCOPES),
        "services": [SERVICE_NAME],
    }
    return service, role
