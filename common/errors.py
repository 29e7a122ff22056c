"""Errors classhub's own code raises, each with the HTTP status it answers with.

Stores, SDK wrappers and rule checks raise these (they know nothing about HTTP): in the
services :class:`services.base.handlers.BaseHandler` turns them into ``web.HTTPError``
with the same message, so a person sees one clear sentence and never a traceback; the
hub's authenticator answers :class:`StoreUnavailable` with a 503 of its own.
"""

from __future__ import annotations

import json


class ConfigError(ValueError):
    """A setting an admin must fix, with a message saying how (raised while the hub reads
    its configuration, see ``hub/config.py`` and ``services/config.py``)."""


class ServiceError(Exception):
    """An error whose ``str()`` is shown to the caller as it is."""

    status_code = 500


class BadRequest(ServiceError):
    status_code = 400


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Unavailable(ServiceError):
    """A dependency (database, hub, object store) is down or too slow: retry later.

    ``str()`` is fit for a 503 answer; ``detail`` holds the technical cause for logs."""

    status_code = 503

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class StoreUnavailable(Unavailable):
    """A data store (PostgreSQL, MongoDB, Redis) is unreachable or too slow: retry later.

    The one error every store raises for it. ``str()`` is the store's sentence for people
    (a 503 answer), ``detail`` the technical cause for logs and the command line, and
    ``store`` names the store (``"accounts"``, ``"sessions"``, ``"grades"``,
    ``"classes"``, ``"material"``) for a caller that uses two and answers each its own way.
    """

    def __init__(self, message: str, detail: str = "", *, store: str = ""):
        super().__init__(message, detail)
        self.store = store


class BadGateway(ServiceError):
    """A dependency answered, but not as expected (a configuration problem)."""

    status_code = 502


def answer_message(body: bytes) -> str:
    """The ``message`` of a service's JSON error answer, or "" for anything else (a
    proxy's page, garbage): at most 300 characters."""
    try:
        return str(json.loads(body[:4096]).get("message", ""))[:300]
    except (ValueError, AttributeError, RecursionError):
        return ""
