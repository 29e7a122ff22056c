"""Errors a service's own code raises, each with the HTTP status a handler answers with.

Stores, SDK wrappers and rule checks raise these (they know nothing about HTTP);
:class:`services.base.handlers.BaseHandler` turns them into ``web.HTTPError`` with the
same message, so a person sees one clear sentence and never a traceback.
"""

from __future__ import annotations

import json


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
