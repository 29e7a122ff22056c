"""Which of classhub's services the hub runs, from the ``CLASSHUB_*`` variables (pure
functions that set a ``traitlets.config.Config``, no I/O).

``jupyterhub_config.py`` (the composition root) calls :func:`hub.config.apply_env` for the
hub itself, then :func:`apply_env` here: the classes service when MongoDB is configured,
the files service when S3 is too, and the grades service when PostgreSQL is as well. Each
service's own ``config.py`` says what it is passed and which scopes its role holds; this
module only appends them to ``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from traitlets import TraitError
from traitlets.config import Config

from common.errors import ConfigError
from common.hubenv import BIND_IP, own_address

from .base.hubconfig import PORTS
from .classes.config import classes_service_config
from .files.config import files_service_config
from .grades.config import grades_service_config


def _port(env: Mapping[str, str], service: str) -> int:
    try:
        return PORTS[service].read(environ=env)
    except TraitError as e:
        raise ConfigError(str(e)) from None


def _register(c: Config, service_config: Callable[..., tuple[dict, dict]], **kwargs) -> None:
    """Append the service and its role that ``service_config(**kwargs)`` makes; its
    ValueError (a setting to fix) becomes a ConfigError."""
    try:
        service, role = service_config(**kwargs)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    c.JupyterHub.services = [*c.JupyterHub.get("services", []), service]
    c.JupyterHub.load_roles = [*c.JupyterHub.get("load_roles", []), role]


def configure_classes(
    c: Config, *, port: int, host: str = "127.0.0.1", mongo_url: str, env: Mapping[str, str]
) -> None:
    """The classes service (services/classes), run by the hub, with its least-privilege role."""
    _register(c, classes_service_config, port=port, host=host, mongo_url=mongo_url, env=env)


def configure_files(
    c: Config, *, port: int, host: str = "127.0.0.1", mongo_url: str, env: Mapping[str, str]
) -> None:
    """The files service (services/files), run by the hub, with its least-privilege role."""
    _register(c, files_service_config, port=port, host=host, mongo_url=mongo_url, env=env)


def configure_grades(
    c: Config, *, port: int, host: str = "127.0.0.1", db_url: str, env: Mapping[str, str]
) -> None:
    """The grades service (services/grades), run by the hub, with its least-privilege role."""
    _register(c, grades_service_config, port=port, host=host, db_url=db_url, env=env)


def apply_env(c: Config, env: Mapping[str, str]) -> None:
    """Register the services the environment configures (see docs/admin-guide.md)."""
    db_url = env.get("CLASSHUB_DB_URL", "")
    # where they listen: beside the hub (common.hubenv.BIND_IP)
    try:
        host = own_address(BIND_IP.read(environ=env))
    except TraitError as e:
        raise ConfigError(str(e)) from None
    # each service its own MongoDB user and database (hub/stores/mongo.py); one shared
    # CLASSHUB_MONGO_URL still works for both (a deployment without authentication)
    classes_mongo = env.get("CLASSHUB_CLASSES_MONGO_URL") or env.get("CLASSHUB_MONGO_URL", "")
    files_mongo = env.get("CLASSHUB_FILES_MONGO_URL") or env.get("CLASSHUB_MONGO_URL", "")
    if classes_mongo:
        classes_port = _port(env, "classes")
        configure_classes(c, port=classes_port, host=host, mongo_url=classes_mongo, env=env)
        if env.get("CLASSHUB_S3_ENDPOINT"):
            if not files_mongo:
                raise ConfigError(
                    "The files service needs MongoDB: set CLASSHUB_FILES_MONGO_URL "
                    "(scripts/up.sh derives it)."
                )
            files_port = _port(env, "files")
            configure_files(c, port=files_port, host=host, mongo_url=files_mongo, env=env)
            grades_db = env.get("CLASSHUB_GRADES_DB_URL") or db_url
            if grades_db.startswith(("postgresql", "postgres")):
                grades_port = _port(env, "grades")
                configure_grades(c, port=grades_port, host=host, db_url=grades_db, env=env)
