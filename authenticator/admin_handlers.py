"""Admin-only API and pages: live sessions (list, end) and local accounts (create, import).

API (JSON, hub scopes ``admin:users``):

- ``GET    /hub/api/classhub/sessions``            every live session
- ``DELETE /hub/api/classhub/sessions/<user>``     end that person's session now
- ``GET    /hub/api/classhub/accounts``            local accounts, ``?q=&offset=&limit=``
  (a page of the names containing ``q``, and the ``total``)
- ``POST   /hub/api/classhub/accounts``            ``{"username", "role", "password"?}``
- ``PATCH  /hub/api/classhub/accounts/<user>``     ``{"role"?, "disabled"?, "password"?,
  "generate_password"?}``
- ``DELETE /hub/api/classhub/accounts/<user>``     the account and the hub user
- ``GET    /hub/api/classhub/account-audit``       ``?username=``: the newest changes
- ``POST   /hub/api/classhub/accounts/import``     ``{"csv": text, "default_role"?,
  "skip_existing"?}``; a per-row report, nothing written unless every row is good

Pages: ``/hub/classhub/sessions`` and ``/hub/classhub/accounts``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from urllib.parse import unquote

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import maybe_future
from tornado import web

from common.errors import StoreUnavailable
from common.scopes import STUDENT_ACCOUNTS
from common.usernames import InvalidUsername, normalize_username

from . import accounts_csv as ac
from .account_access import Actor, Target, search_params, self_lockout
from .account_rules import (
    AccountError,
    AccountExists,
    AccountNotFound,
    check_username,
    generate_password,
)
from .accounts import STORE as ACCOUNTS
from .messages import describe_agent
from .roles import roles_for

MAX_CSV_BYTES = 1024 * 1024
_ACCOUNT_FIELDS = {"username", "role", "password"}
_PATCH_FIELDS = {"role", "disabled", "password", "generate_password"}
_IMPORT_FIELDS = {"csv", "default_role", "skip_existing"}


class _AdminAPI(APIHandler):
    """JSON in and out; store failures become 503s, bad input 4xx with a clear message."""

    async def _call(self, coro):
        try:
            return await coro
        except StoreUnavailable as e:
            if e.store == ACCOUNTS:
                raise web.HTTPError(503, "The account database is unreachable; retry.") from None
            raise web.HTTPError(503, "The session store (Redis) is unreachable; retry.") from None
        except AccountExists as e:
            raise web.HTTPError(409, str(e)) from None
        except AccountNotFound as e:
            raise web.HTTPError(404, str(e)) from None
        except AccountError as e:
            raise web.HTTPError(400, str(e)) from None

    def json_object(self, allowed: set[str]) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise web.HTTPError(
                400,
                f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.",
            )
        return body

    def username_arg(self, raw: str) -> str:
        try:
            return normalize_username(unquote(raw))
        except InvalidUsername as e:
            raise web.HTTPError(400, f"Invalid username: {e}.") from None

    def apply_hub_role(self, name: str, role: str) -> None:
        """Give the hub user ``name`` the hub roles of classhub role ``role`` now (what
        their next sign-in would set), so the hub and the classes service know it before
        that: teachers may enrol and reach only students, and a local student account an
        admin made is one before its first sign-in."""
        user = self.user_from_username(name)
        user.admin = role == "admin"
        user.sync_roles(roles_for(role, self.authenticator.roles()))

    def accounts(self):
        if self.authenticator.accounts is None:
            raise web.HTTPError(404, "Local accounts are switched off on this hub.")
        return self.authenticator.accounts


def session_json(session, expires_in: float) -> dict:
    data = asdict(session)
    data.pop("session_id")  # the session id is a bearer secret of that browser
    data["device"] = describe_agent(session.agent)
    data["idle_expires_in"] = round(expires_in)
    return data


class SessionsAPIHandler(_AdminAPI):
    @needs_scope("admin:users")
    async def get(self):
        await self.authenticator.ready()
        sessions = await self._call(self.authenticator.sessions.list())
        self.write({"sessions": [session_json(s, ttl) for s, ttl in sessions]})


class SessionAPIHandler(_AdminAPI):
    @needs_scope("admin:users")
    async def delete(self, name):
        name = self.username_arg(name)
        ended = await self._call(self.authenticator.end_session(self.db, name))
        if ended is None:
            raise web.HTTPError(404, f"{name} has no active session.")
        self.log.info("Admin %s ended the session of %s", self.current_user.name, name)
        self.set_status(204)


class AccountsAPIHandler(_AdminAPI):
    @needs_scope("admin:users")
    async def get(self):
        await self.authenticator.ready()
        try:
            text, offset, limit = search_params(
                self.get_argument("q", ""),
                self.get_argument("offset", ""),
                self.get_argument("limit", ""),
            )
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from None
        accounts, total = await self._call(self.accounts().search(text, offset, limit))
        self.write(
            {
                "accounts": [account_json(a) for a in accounts],
                "total": total,
                "offset": offset,
                "limit": limit,
                "q": text,
            }
        )

    @needs_scope("admin:users")
    async def post(self):
        await self.authenticator.ready()
        body = self.json_object(_ACCOUNT_FIELDS)
        if not isinstance(body.get("username"), str):
            raise web.HTTPError(400, "Give the new account a 'username'.")
        role = body.get("role", "student")
        password = body.get("password") or None
        generated = password is None
        if generated:
            password = generate_password()
        if not isinstance(password, str) or not isinstance(role, str):
            raise web.HTTPError(400, "'password' and 'role' must be strings.")
        account = await self._call(
            self.accounts().create(body["username"], password, role, actor=self.current_user.name)
        )
        self.apply_hub_role(account.username, account.role)  # in the admin panel at once
        self.log.info("Admin %s created account %s", self.current_user.name, account.username)
        out = account_json(account)
        if generated:
            out["password"] = password  # shown once, to the admin who created it
        self.set_status(201)
        self.write(out)


class AccountAPIHandler(_AdminAPI):
    def refuse_self_lockout(self, name: str, action: str, new_role: str | None = None) -> None:
        me = self.current_user.name
        problem = self_lockout(Actor(me, "admin"), Target(name, None), action, new_role)
        if problem:
            raise web.HTTPError(400, problem)

    @needs_scope("admin:users")
    async def patch(self, name):
        await self.authenticator.ready()
        name = self.username_arg(name)
        body = self.json_object(_PATCH_FIELDS)
        actor = self.current_user.name
        if "disabled" in body and not isinstance(body["disabled"], bool):
            raise web.HTTPError(400, "'disabled' must be true or false.")
        if body.get("generate_password", False) not in (True, False):
            raise web.HTTPError(400, "'generate_password' must be true or false.")
        if body.get("generate_password") and "password" in body:
            raise web.HTTPError(400, "Send either a 'password' or 'generate_password', not both.")
        if not {"role", "disabled", "password"} & body.keys() and not body.get("generate_password"):
            raise web.HTTPError(400, "Nothing to change: send role, disabled or a password.")
        if body.get("disabled"):
            self.refuse_self_lockout(name, "disable")
        if "role" in body:
            self.refuse_self_lockout(name, "role", _str(body, "role").strip().lower())
        store = self.accounts()
        if await self._call(store.get(name)) is None:
            raise web.HTTPError(404, f"There is no local account {name!r}.")
        generated = generate_password() if body.get("generate_password") else None
        if "role" in body:
            await self._call(store.set_role(name, _str(body, "role"), actor=actor))
            self.apply_hub_role(name, (await self._call(store.get(name))).role)
        if "password" in body or generated:
            password = generated or _str(body, "password")
            await self._call(store.set_password(name, password, actor=actor))
        if "disabled" in body:
            await self._call(store.set_disabled(name, body["disabled"], actor=actor))
        if body.get("disabled") or "password" in body or generated or "role" in body:
            # the new rules apply from the next sign-in: end the current session
            await self._call(self.authenticator.end_session(self.db, name))
        self.log.info("Admin %s changed account %s (%s)", actor, name, ", ".join(sorted(body)))
        out = account_json(await self._call(store.get(name)))
        if generated:
            out["password"] = generated  # shown once, to the admin who reset it
        self.write(out)

    @needs_scope("admin:users")
    async def delete(self, name):
        await self.authenticator.ready()
        name = self.username_arg(name)
        self.refuse_self_lockout(name, "delete")
        user = self.find_user(name)
        if user is not None and any(s._stop_pending for s in user.spawners.values()):
            raise web.HTTPError(409, f"A server of {name} is stopping; try again in a minute.")
        await self._call(self.accounts().delete(name, actor=self.current_user.name))
        await self._call(self.authenticator.end_session(self.db, name))
        if user is not None:
            await self.delete_hub_user(user)
        self.log.info("Admin %s deleted account %s", self.current_user.name, name)
        self.set_status(204)

    async def delete_hub_user(self, user) -> None:
        """Stop the person's servers and remove the hub user (with its groups, roles and
        tokens), as JupyterHub's own user deletion does. Home volumes stay."""
        for server_name, spawner in list(user.spawners.items()):
            if spawner.active:
                await self.stop_single_user(user, server_name)
        await maybe_future(self.authenticator.delete_user(user))
        await user.delete_spawners()
        self.users.delete(user)


class AccountAuditAPIHandler(_AdminAPI):
    @needs_scope("admin:users")
    async def get(self):
        await self.authenticator.ready()
        raw = self.get_argument("username", "")
        name = self.username_arg(raw) if raw else None
        entries = await self._call(self.accounts().audit_log(name))
        self.write(
            {
                "entries": [
                    {
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "username": e.username,
                        "detail": e.detail,
                    }
                    for e in entries
                ]
            }
        )


class AccountsImportAPIHandler(_AdminAPI):
    @needs_scope("admin:users")
    async def post(self):
        await self.authenticator.ready()
        if len(self.request.body) > MAX_CSV_BYTES:
            raise web.HTTPError(413, "The CSV file is larger than 1 MB; split it.")
        body = self.json_object(_IMPORT_FIELDS)
        text, default_role = body.get("csv"), body.get("default_role", "student")
        skip_existing = body.get("skip_existing", False)
        if not isinstance(text, str) or not text.strip():
            raise web.HTTPError(400, "Send the CSV file's text as the 'csv' field.")
        if not isinstance(default_role, str) or not isinstance(skip_existing, bool):
            raise web.HTTPError(400, "'default_role' must be a string, 'skip_existing' true/false.")
        report = await self._call(
            self.accounts().import_csv(
                text.lstrip("\ufeff"),
                default_role=default_role,
                skip_existing=skip_existing,
                actor=self.current_user.name,
            )
        )
        if report.applied:
            for row in report.rows:
                if row.status == "created":
                    self.apply_hub_role(row.username, row.role)
            self.set_status(201)
        else:
            self.set_status(400)
        self.write(
            {
                "applied": report.applied,
                "message": "All rows imported."
                if report.applied
                else (
                    "Nothing was imported: fix the rows listed (errors, and usernames that "
                    "already exist) and upload again."
                ),
                "rows": [asdict(r) for r in report.rows],
            }
        )


def _str(body: dict, key: str) -> str:
    if not isinstance(body[key], str):
        raise web.HTTPError(400, f"'{key}' must be a string.")
    return body[key]


def account_json(account) -> dict:
    return {
        "username": account.username,
        "role": account.role,
        "disabled": account.disabled,
        "created_at": account.created_at.isoformat() if account.created_at else None,
    }


class _AdminPage(BaseHandler):
    template = ""

    @web.authenticated
    @needs_scope("admin:users")
    async def get(self):
        html = await self.render_template(self.template, authenticator=self.authenticator)
        self.finish(html)


class SessionsPage(_AdminPage):
    template = "classhub-sessions.html"


class AccountsPage(_AdminPage):
    template = "classhub-accounts.html"


def admin_handlers() -> list[tuple[str, type]]:
    user = r"([^/]+)"
    return [
        ("/api/classhub/sessions", SessionsAPIHandler),
        (f"/api/classhub/sessions/{user}", SessionAPIHandler),
        ("/api/classhub/accounts", AccountsAPIHandler),
        ("/api/classhub/accounts/import", AccountsImportAPIHandler),
        ("/api/classhub/account-audit", AccountAuditAPIHandler),
        (f"/api/classhub/accounts/{user}", AccountAPIHandler),
        ("/classhub/sessions", SessionsPage),
        ("/classhub/accounts", AccountsPage),
        *student_handlers(),
    ]


# ----------------------------------------------------------------------------- students
#
# The classes service creates student accounts for a class's teachers and resets their
# students' passwords (it checks that the teacher teaches the class and that the student
# is on its roster). Its token holds STUDENT_ACCOUNTS_SCOPE, which reaches only accounts
# whose role is student: never a teacher or admin, never an existing account's role.

STUDENT_ACCOUNTS_SCOPE = STUDENT_ACCOUNTS
_STUDENT_FIELDS = {"username", "password", "csv", "by", "max_accounts"}
_STUDENT_PATCH_FIELDS = {"password", "generate_password", "by"}


class _StudentAccountsAPI(_AdminAPI):
    def require_scope(self) -> None:
        # a custom scope: jupyterhub's needs_scope knows only the built-in ones at import
        if self.current_user is None or not self.has_scope(STUDENT_ACCOUNTS_SCOPE):
            raise web.HTTPError(
                403,
                f"Action is not authorized with current scopes; requires {STUDENT_ACCOUNTS_SCOPE}",
            )

    def by(self, body: dict) -> str:
        """The audit log's actor: the teacher the service acts for, and the service."""
        who = body.get("by")
        if not isinstance(who, str) or not who.strip():
            raise web.HTTPError(400, "Say for whom: 'by' (the teacher's username).")
        service = getattr(self.current_user, "name", "?")
        return f"{self.username_arg(who)} via {service}"[:300]


class StudentAccountsAPIHandler(_StudentAccountsAPI):
    async def post(self):
        self.require_scope()
        await self.authenticator.ready()
        if len(self.request.body) > MAX_CSV_BYTES:
            raise web.HTTPError(413, "The CSV file is larger than 1 MB; split it.")
        body = self.json_object(_STUDENT_FIELDS)
        actor = self.by(body)
        room = body.get("max_accounts")
        if room is not None and (not isinstance(room, int) or isinstance(room, bool) or room < 1):
            raise web.HTTPError(400, "'max_accounts' must be a positive whole number.")
        if "csv" in body:
            await self.import_students(body, actor)
            return
        if not isinstance(body.get("username"), str):
            raise web.HTTPError(400, "Give the new account a 'username'.")
        password = body.get("password") or None
        generated = password is None
        if generated:
            password = generate_password()
        if not isinstance(password, str):
            raise web.HTTPError(400, "'password' must be a string.")
        name = await self._call(_checked(body["username"]))
        if self.find_user(name) is not None:
            # a hub user without a local account (signed in through the portal) is a
            # person too: a password for them would be a way into their account
            raise web.HTTPError(409, f"An account named {name} already exists.")
        account = await self._call(self.accounts().create(name, password, "student", actor=actor))
        self.apply_hub_role(account.username, "student")
        self.log.info("%s created student account %s", actor, account.username)
        out = account_json(account)
        if generated:
            out["password"] = password
        self.set_status(201)
        self.write(out)

    async def import_students(self, body: dict, actor: str) -> None:
        text = body["csv"]
        if not isinstance(text, str) or not text.strip():
            raise web.HTTPError(400, "Send the CSV file's text as the 'csv' field.")
        text = text.lstrip("\ufeff")
        try:
            parsed = ac.parse_accounts_csv(text, default_role="student")
        except AccountError as e:
            raise web.HTTPError(400, str(e)) from None
        room = body.get("max_accounts")
        if room is not None and len(parsed) > room:
            raise web.HTTPError(
                400, f"The file has {len(parsed)} accounts; the class has room for {room} more."
            )
        taken = [r for r in parsed if r.error is None and self.find_user(r.username) is not None]
        if taken:
            lines = ", ".join(f"{r.line} ({r.username})" for r in taken[:20])
            raise web.HTTPError(
                400,
                f"Nothing was created: these people have accounts already, on line(s) {lines}. "
                "Enrol them on the roster instead.",
            )
        others = [r for r in parsed if r.error is None and r.role != "student"]
        if others:
            lines = ", ".join(str(r.line) for r in others[:20])
            raise web.HTTPError(
                400,
                f"Teachers can create student accounts only: line(s) {lines} give another "
                "role. Remove the role column or set it to student.",
            )
        report = await self._call(
            self.accounts().import_csv(text, default_role="student", actor=actor)
        )
        if not report.applied:
            problems = "; ".join(f"line {r.line}: {r.message}" for r in report.rows[:10])
            raise web.HTTPError(400, f"Nothing was created: {problems}.")
        for row in report.rows:
            if row.status == "created":
                self.apply_hub_role(row.username, "student")
        self.set_status(201)
        self.write(
            {
                "applied": True,
                "message": report.summary(),
                "rows": [asdict(r) for r in report.rows],
            }
        )


class StudentAccountAPIHandler(_StudentAccountsAPI):
    async def patch(self, name):
        self.require_scope()
        await self.authenticator.ready()
        name = self.username_arg(name)
        body = self.json_object(_STUDENT_PATCH_FIELDS)
        actor = self.by(body)
        if body.get("generate_password", False) not in (True, False):
            raise web.HTTPError(400, "'generate_password' must be true or false.")
        if ("password" in body) == bool(body.get("generate_password")):
            raise web.HTTPError(400, "Send either a 'password' or 'generate_password': true.")
        account = await self._call(self.accounts().get(name))
        user = self.find_user(name)
        is_student = (
            account is not None
            and account.role == "student"
            and (user is None or (not user.admin and "classhub-student" in _role_names(user)))
        )
        if not is_student:
            # the same answer whether the account is missing or not a student's
            raise web.HTTPError(
                409, f"{name} has no local student account; only those can be reset here."
            )
        generated = generate_password() if body.get("generate_password") else None
        password = generated or _str(body, "password")
        await self._call(self.accounts().set_password(name, password, actor=actor))
        await self._call(self.authenticator.end_session(self.db, name))
        self.log.info("%s reset the password of student %s", actor, name)
        out = account_json(await self._call(self.accounts().get(name)))
        if generated:
            out["password"] = generated
        self.write(out)


async def _checked(raw: str) -> str:
    return check_username(raw)


def _role_names(user) -> set[str]:
    return {r.name for r in user.orm_user.roles}


def student_handlers() -> list[tuple[str, type]]:
    return [
        ("/api/classhub/student-accounts", StudentAccountsAPIHandler),
        (r"/api/classhub/student-accounts/([^/]+)", StudentAccountAPIHandler),
    ]
