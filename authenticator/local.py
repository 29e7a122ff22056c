"""LocalPasswordAuthenticator: username and password checked against local accounts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from .users_file import verify


class LocalPasswordAuthenticator(Authenticator):
    """Sign in with a local account created by an admin (``classhub-user add``).

    Keeps JupyterHub's standard login form (``/hub/login``, fields ``username`` and
    ``password``, XSRF-protected). There is no open or password-less login: a user
    without an account cannot sign in.

    Select it with ``c.JupyterHub.authenticator_class = "classhub-local"``.
    """

    users_file = Unicode(
        config=True,
        help="""JSON file of local accounts with argon2 hashes (mode 0600).

        Manage it with ``classhub-user add NAME [--admin]``.

        Example: ``c.LocalPasswordAuthenticator.users_file = "/srv/classhub/users.json"``
        """,
    )

    @default("users_file")
    def _default_users_file(self):
        data_dir = os.environ.get("CLASSHUB_DATA_DIR", "/srv/classhub")
        return os.environ.get("CLASSHUB_USERS_FILE", os.path.join(data_dir, "users.json"))

    @default("allow_all")
    def _default_allow_all(self):
        # every account in the users file may sign in; no account, no sign-in
        return True

    async def authenticate(self, handler, data):
        username = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if not username or not password:
            return None
        loop = asyncio.get_running_loop()
        entry = await loop.run_in_executor(None, verify, Path(self.users_file), username, password)
        if entry is None:
            self.log.warning("Failed login for %s", username)
            return None
        # an admin account grants admin; otherwise leave admin rights to admin_users and
        # the admin panel (returning admin=False would demote admins at every sign-in)
        return {"name": username, "admin": True} if entry.get("admin") else {"name": username}
