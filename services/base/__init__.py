"""What every classhub service shares: the app (settings, start, graceful stop), the
handler base (hub sign-in, JSON in and out, errors, health), the blocking-SDK wrapper and
the hub API client. See ``services/classes`` for a service built on it."""

from .app import ServiceApp
from .blocking import BlockingCalls, CallTimedOut
from .errors import BadGateway, BadRequest, Conflict, Forbidden, NotFound, ServiceError, Unavailable
from .handlers import BaseHandler
from .hubapi import HubAPI, HubAPIError, HubBadRequest, HubNotFound, HubUnavailable

__all__ = [
    "BadGateway",
    "BadRequest",
    "BaseHandler",
    "BlockingCalls",
    "CallTimedOut",
    "Conflict",
    "Forbidden",
    "HubAPI",
    "HubAPIError",
    "HubBadRequest",
    "HubNotFound",
    "HubUnavailable",
    "NotFound",
    "ServiceApp",
    "ServiceError",
    "Unavailable",
]
