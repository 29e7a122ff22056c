"""The sign-in and sign-out pages, on JupyterHub's own handlers.

``/hub/login`` keeps JupyterHub's form contract (fields ``username``, ``password``,
``_xsrf``) and adds token sign-in: ``Authorization: Bearer <jwt>`` on GET or POST, or a
POSTed ``token`` field. A token in the URL is refused before anything reads it.
"""

from __future__ import annotations

import re

from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from jupyterhub.handlers.login import LogoutHandler as HubLogoutHandler
from jupyterhub.utils import new_token
from tornado import web

from common.errors import StoreUnavailable

from .bearer import bearer_token

# parameter names that carry credentials, and anything shaped like a JWT
_SECRET_PARAMS = {"token", "jwt", "access_token", "id_token", "password"}
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.")

TOKEN_IN_URL = (
    "Sign-in tokens are not accepted in web addresses, where they leak into logs and "
    "browser history. Send the token in an 'Authorization: Bearer' header, or POST it as "
    "the 'token' form field."
)


def credential_in_query(query_arguments: dict) -> bool:
    for name, values in query_arguments.items():
        if name.lower() in _SECRET_PARAMS:
            return True
        if any(JWT_SHAPE.search(v.decode("utf-8", "replace")) for v in values):
            return True
    return False


class LoginHandler(HubLoginHandler):
    """JupyterHub's login page plus token sign-in and one-session bookkeeping."""

    def initialize(self):
        super().initialize()
        self._held = []

    def hold_until_finished(self, lock) -> None:
        """Keep ``lock`` (one person's sign-in lock) until this response is complete."""
        self._held.append(lock)

    def on_finish(self):
        while self._held:
            self._held.pop().release()
        super().on_finish()

    async def prepare(self):
        if credential_in_query(self.request.query_arguments):
            raise web.HTTPError(400, TOKEN_IN_URL)
        await super().prepare()

    def check_xsrf_cookie(self):
        # A portal's auto-submitted form carries a signed, single-use, short-lived token and
        # cannot carry our XSRF cookie; the token itself is the proof of intent.
        args = self.request.body_arguments
        if "token" in args and "password" not in args:
            return
        if bearer_token(self):
            return
        super().check_xsrf_cookie()

    async def get(self):
        if bearer_token(self):
            await self._token_login()
        else:
            await super().get()

    async def post(self):
        if bearer_token(self) or "token" in self.request.body_arguments:
            await self._token_login()
        else:
            await super().post()

    async def _token_login(self):
        data = {}
        if "token" in self.request.body_arguments:
            data["token"] = self.get_body_argument("token", strip=True)
        user = await self.login_user(data)
        if user is None:
            # the token was good (authenticate raises on every token failure), but
            # JupyterHub's allow/block lists or a post_auth_hook turned the person away
            raise web.HTTPError(
                403, "Your account may not sign in to this hub; ask an admin if that is wrong."
            )
        self._jupyterhub_user = user
        self.redirect(self.get_next_url(user))

    def set_login_cookie(self, user):
        session_id = getattr(self, "classhub_session_id", None)
        if session_id:
            # a new sign-in: its own session id, and a new cookie id, which ends every
            # other browser's hub cookie for this person
            self._session_id = session_id
            self.set_session_cookie()
            user.orm_user.cookie_id = new_token()
            self.db.commit()
        super().set_login_cookie(user)


class LogoutHandler(HubLogoutHandler):
    """Logout also ends the session in Redis and rotates the hub cookie id."""

    async def handle_logout(self):
        user = self.current_user
        session_id = self.get_cookie("jupyterhub-session-id", "")
        if user and session_id:
            try:
                await self.authenticator.end_session(self.db, user.name, session_id)
            except StoreUnavailable:
                # the hub cookie and this session's tokens are gone already (JupyterHub's
                # own logout); the Redis record expires by itself
                self.log.warning("Could not end the session of %s in Redis", user.name)
