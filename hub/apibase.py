"""The base of classhub's own hub API handlers (hub/homes_api.py, hub/backup_api.py)."""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from tornado import web


class ClasshubAPIHandler(APIHandler):
    """JupyterHub's API handler with what classhub's handlers share: a custom scope checked
    at request time, a JSON body read without a 500, a JSON answer never cached."""

    def require_custom_scope(self, scope: str) -> None:
        """403 unless the caller holds ``scope`` (a custom scope: JupyterHub's
        ``needs_scope`` knows only the built-in ones when the handlers are imported)."""
        if self.current_user is None or not self.has_scope(scope):
            raise web.HTTPError(
                403, f"Action is not authorized with current scopes; requires {scope}"
            )

    def json_object(self) -> dict | None:
        """The request's body as a JSON object (``{}`` when empty), or None when it is not
        one: the caller answers 400 saying what it expects."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def answer(self, body: dict) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(body))
