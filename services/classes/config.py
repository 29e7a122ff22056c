"""The hub-side configuration of the classes service (a pure function, no I/O).

``services/config.py`` calls :func:`classes_service_config` and appends the two results to
``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from common import scopes
from services.base.homesapp import HOMES_TABLE
from services.base.hubconfig import service_s3_keys

from .settings import TABLE

SERVICE_NAME = "classes"
ROLE_NAME = "classhub-classes-service"

#: the hub API scopes of the service's own token: the least that its work needs
SCOPES = [
    # create the groups class-<code> and teachers-<code>: POST /groups/<name> needs
    # admin:groups, and no narrower scope can create a group (a !group= filter cannot name
    # groups that do not exist yet). It also covers what the sync needs besides: members
    # (POST/DELETE /groups/<name>/users), the class environment (PUT .../properties) and
    # reading them (GET /groups for the reconciliation). It deletes groups only when an
    # admin deletes an archived class (DELETE /groups/<name>, also admin:groups).
    "admin:groups",
    # GET /users?state=active: the one listing of running and pending servers that the
    # idle culler, the teacher's server view and archiving work from (as
    # jupyterhub-idle-culler does).
    "list:users",
    # server models (ready, pending, started, last_activity) in those user models; it
    # includes read:users:name, enough for GET /users/<name> to check that a teacher or
    # student is a hub user. Not read:users: the service needs no groups of users.
    # Also GET /classhub/homes/<name> (hub/homes_api.py): a person's home folder use for
    # their My classes page.
    "read:servers",
    # POST /users/<name>/servers/<code>: a teacher starts a student's class server, or
    # every student's with "Start all servers" (a bounded number of calls at a time).
    "start:servers",
    # DELETE /users/<name>/servers/<code> (never with "remove", so volumes stay): culling,
    # archiving, unenrolling, a teacher stopping a student's server ("Stop all servers").
    "delete:servers",
    # the "last_activity" of the user models: the warm-up before class stops a warm
    # server only when its student did nothing since it was ready
    # (services/classes/warmup.py). Times only; it cannot change them.
    "read:users:activity",
    # the "roles" of GET /users/<name>: a person's classhub role (classhub-student,
    # classhub-teacher, admin), so that teachers enrol, start and stop only students. Role
    # names only; it cannot change a role (that would need admin:users).
    "read:roles:users",
    # POST /classhub/student-accounts, PATCH /classhub/student-accounts/<name>
    # (authenticator/admin_handlers.py): create student accounts for a class's teachers and
    # reset their students' passwords. It reaches only accounts whose role is student:
    # never a teacher's or an admin's, never a role change. Defined by hub.config.configure_auth.
    scopes.STUDENT_ACCOUNTS,
]
#: on a Swarm only (CLASSHUB_HOMES_SWARM): which homes exist and on which node one is (a
#: stopped one is first brought from the store onto a node), so that a teacher's
#: read-only look into a student's home runs as a helper service there (hub/homes_api.py).
#: No file of a home, no server start or stop. Defined by hub.config.configure_homes.
SWARM_SCOPES = [scopes.HOMES]
# Not granted, on purpose: admin:users (it never creates users or changes admin rights),
# access:servers (it never opens a server), admin:server_state, tokens, proxy.

#: what the hub computes for the service itself instead of passing its own value
#: (CLASSHUB_SERVICES: hub.config.configure_web passes the services the hub runs)
HUB_COMPUTED = (
    "CLASSHUB_MONGO_URL",
    # its own S3 identity, on a Swarm only (below)
    "CLASSHUB_S3_ACCESS_KEY",
    "CLASSHUB_S3_SECRET_KEY",
    "CLASSHUB_SERVICE_COOKIE_SECRET",
    "CLASSHUB_SERVICES",
    "CLASSHUB_SERVERS_ORIGIN",
)

#: settings passed from the hub's environment to the service: its settings table
PASSED_ENV = tuple(v for v in TABLE.passed_variables if v not in HUB_COMPUTED)


def classes_service_config(
    *, port: int, host: str = "127.0.0.1", mongo_url: str, env: Mapping[str, str]
) -> tuple[dict, dict]:
    """``(service, role)``: the ``c.JupyterHub.services`` entry of the managed classes
    service (listening on ``host``:``port``, served at ``/services/classes/``) and the
    ``c.JupyterHub.load_roles`` entry with its scopes.

    Every person must also hold ``access:services!service=classes`` (add it to the
    ``user`` role) to sign in to the service."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"The classes service port must be 1-65535, got {port!r}")
    if not mongo_url.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError(
            "CLASSHUB_MONGO_URL must be a mongodb:// URL, e.g. mongodb://127.0.0.1:17017/classhub"
        )
    environment = TABLE.passed(env, leave_out=HUB_COMPUTED)
    environment["CLASSHUB_MONGO_URL"] = mongo_url
    on_swarm = HOMES_TABLE.get("homes_swarm").read(environ=env)
    if on_swarm:
        access_key, secret_key = service_s3_keys(env, SERVICE_NAME)
        environment["CLASSHUB_S3_ACCESS_KEY"] = access_key
        environment["CLASSHUB_S3_SECRET_KEY"] = secret_key
    if env.get("CLASSHUB_CLASSES_COOKIE_SECRET"):
        # keeps people signed in to the service across hub restarts (the hub gives the
        # service a new API token, from which the cookie secret derives otherwise)
        environment["CLASSHUB_SERVICE_COOKIE_SECRET"] = env["CLASSHUB_CLASSES_COOKIE_SECRET"]
    service = {
        "name": SERVICE_NAME,
        "url": f"http://{host}:{port}",
        "command": [sys.executable, "-m", "services.classes"],
        "environment": environment,
        # run by the admin for every person: no "allow this service?" page
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "Classes: rosters, class environments, students' servers"},
    }
    role = {
        "name": ROLE_NAME,
        "description": "The classes service: class groups and class servers",
        "scopes": list(SCOPES) + (list(SWARM_SCOPES) if on_swarm else []),
        "services": [SERVICE_NAME],
    }
    return service, role
