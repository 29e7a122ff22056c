"""One client connection of the stand-in: sign-in, user management, and the checks every
command passes before nx-27017 runs it.

nx-27017's connection loop (``nx_27017.server.handle_client``) reads and parses the wire
messages and calls a handler's ``handle_command``, ``handle_insert`` and ``handle_query``;
:class:`Connection` stands in that handler's place, one per connection, so the loop stays
nx-27017's own while every message passes through here first:

- ``hello``/``isMaster`` (with ``saslSupportedMechs`` and ``speculativeAuthenticate``),
  ``saslStart``/``saslContinue`` (SCRAM-SHA-256), ``logout``, ``connectionStatus``,
  ``buildInfo``, ``ping``, ``whatsmyuri`` and the user management commands are answered
  here and never reach nx-27017.
- Every other command is checked by :func:`.authz.authorize` against the connection's user
  (its roles are read again for every command, so ``dropUser``/``updateUser`` take effect
  at once), then handed to nx-27017.
- Cursors and sessions belong to the user who opened them (:class:`Shared`): ``getMore``,
  ``killCursors``, ``endSessions`` and any command naming a session (``lsid``, transactions
  included) are refused for another user. nx-27017 hands out cursor ids from a counter and
  checks no owner itself.
- Legacy OP_QUERY carries only the handshake (``hello``/``isMaster`` on ``$cmd``), as in
  MongoDB 5.1 and later; OP_MSG's internal section kind 2 is refused.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from nx_27017 import wire_protocol as wire

from . import authz, scram
from .authz import Principal, Refused
from .users import UserError, UserStore, parse_roles

log = logging.getLogger("classhub.mongo")

AUTH_FAILED = Refused(18, "Authentication failed.", "AuthenticationFailed")
HELLO = frozenset({"hello", "Hello", "isMaster", "ismaster"})
_MAX_SESSIONS = 100_000
#: stands for "everyone may do everything" when the server runs without --auth
_OPEN = Principal("", "", (("root", "admin"),))

Owner = tuple[str, str] | None


class Shared:
    """What the connections of one server share: the users, who owns which cursor and
    session, and nx-27017's handler."""

    def __init__(self, handler, store: UserStore, *, auth: bool, version: str = ""):
        self.handler, self.store, self.auth = handler, store, auth
        self.version = version
        self._lock = threading.Lock()
        self._cursors: dict[int, tuple[Owner, str]] = {}
        self._sessions: OrderedDict[str, Owner] = OrderedDict()
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def cursor(self, cursor_id: int) -> tuple[Owner, str] | None:
        with self._lock:
            return self._cursors.get(cursor_id)

    def add_cursor(self, cursor_id: int, owner: Owner, db: str) -> None:
        with self._lock:
            self._cursors.setdefault(cursor_id, (owner, db))

    def forget_cursors(self, ids) -> None:
        with self._lock:
            for cursor_id in ids:
                self._cursors.pop(cursor_id, None)

    def bind_session(self, session_id: str, owner: Owner) -> Owner:
        """The session's owner: ``owner`` if it had none."""
        with self._lock:
            found = self._sessions.setdefault(session_id, owner)
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
            return found

    def session_owner(self, session_id: str) -> Owner | bool:
        with self._lock:
            return self._sessions.get(session_id, False)

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


@dataclass
class _Sasl:
    key: tuple[str, str]
    conversation: scram.Conversation
    skip_empty: bool
    proved: bool = False


def _session_id(lsid) -> str:
    try:
        sid = wire._extract_session_id(lsid) if isinstance(lsid, dict) else None
    except Exception:  # noqa: BLE001 - nx's parser on a malformed lsid
        sid = None
    if not sid:
        raise Refused(2, "lsid must be a document with an id", "BadValue")
    return sid


def _clean(value) -> str:
    """A client's text for a log line: one line, printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= 200 else text[:197] + "..."


def _cursor_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(14, "a cursor id must be a number", "TypeMismatch")
    return int(value)


class Connection:
    """The handler nx-27017's connection loop calls, for one connection; see the module."""

    def __init__(self, shared: Shared, peer):
        self.shared = shared
        self.id = shared.next_id()
        self.peer = peer if isinstance(peer, tuple) else ("", 0)
        self.user_key: tuple[str, str] | None = None
        self.sasl: _Sasl | None = None
        self._cursors: set[int] = set()
        self._local: dict[str, Callable[[dict], dict]] = {
            **dict.fromkeys(HELLO, self._hello),
            "buildInfo": self._build_info,
            "buildinfo": self._build_info,
            "ping": lambda body: {"ok": 1.0},
            "saslStart": self._sasl_start_command,
            "saslContinue": self._sasl_continue,
            "logout": self._logout,
            "connectionStatus": self._connection_status,
            "whatsmyuri": lambda body: {"you": self._peer_text(), "ok": 1.0},
            "createUser": self._create_user,
            "updateUser": self._update_user,
            "dropUser": self._drop_user,
            "usersInfo": self._users_info,
        }

    # ----- what nx-27017's connection loop calls

    def increment_connections(self) -> None:
        self.shared.handler.increment_connections()

    def decrement_connections(self) -> None:
        self.shared.handler.decrement_connections()

    def close_streams_for_connection(self, conn_id) -> None:
        # nx-27017 drops the cursors and change streams this connection opened
        self.shared.handler.close_streams_for_connection(conn_id)
        self.shared.forget_cursors(self._cursors)
        self._cursors.clear()

    def handle_command(self, msg: dict) -> tuple[int, dict]:
        return msg["request_id"], self._op_msg(msg, self.shared.handler.handle_command)

    def handle_insert(self, msg: dict) -> tuple[int, dict]:
        return msg["request_id"], self._op_msg(msg, self.shared.handler.handle_insert)

    def handle_query(self, msg: dict) -> tuple[int, list[dict]]:
        """Legacy OP_QUERY: only the handshake, as MongoDB 5.1 and later."""
        query = msg.get("query") if isinstance(msg.get("query"), dict) else {}
        if msg.get("collection") != "$cmd":
            return msg["request_id"], [
                {
                    "$err": "OP_QUERY is no longer supported; use OP_MSG",
                    "code": 5739101,
                    "ok": 0.0,
                }
            ]
        if isinstance(query.get("$query"), dict):
            query = query["$query"]
        name = next(iter(query), "")
        if name in HELLO:
            try:
                return msg["request_id"], [self._hello(query)]
            except Refused as e:
                return msg["request_id"], [e.reply()]
        return msg["request_id"], [
            {
                "ok": 0.0,
                "errmsg": f"Unsupported OP_QUERY command: {name}. The client driver may "
                "require an upgrade.",
                "code": 352,
                "codeName": "UnsupportedOpQueryCommand",
            }
        ]

    # ----- OP_MSG

    def _op_msg(self, msg: dict, forward) -> dict:
        try:
            return self._dispatch(msg, forward)
        except Refused as e:
            if e.code == 13:
                log.info("refused (%s) from %s: %s", e.code, self._who(), _clean(e))
            return e.reply()
        except UserError as e:
            return {"ok": 0.0, "errmsg": str(e), "code": e.code, "codeName": e.code_name}

    def principal(self) -> Principal | None:
        if not self.shared.auth:
            return _OPEN
        if self.user_key is None:
            return None
        user = self.shared.store.get(*self.user_key)
        if user is None:  # dropped since it signed in
            return None
        return Principal(user.name, user.db, user.roles)

    def _dispatch(self, msg: dict, forward) -> dict:
        body, payloads = None, {}
        for kind, data in msg.get("sections", ()):
            if kind == "body":
                if body is not None:
                    raise Refused(40430, "OP_MSG holds more than one body", "Location40430")
                body = data
            elif kind == "payload" and isinstance(data, dict):
                for ident, docs in data.items():
                    payloads.setdefault(ident, []).extend(docs)
            else:
                raise Refused(40432, "unknown OP_MSG section kind", "Location40432")
        if not isinstance(body, dict):
            raise Refused(40431, "OP_MSG holds no body", "Location40431")
        name = authz.command_name(body)
        local = self._local.get(name)
        if local is not None:
            return local(body)
        principal = self.principal()
        authz.authorize(principal, body, payloads)
        db = body["$db"]
        if name == "endSessions":
            return self._end_sessions(msg, body, principal, forward)
        owner = principal.key if self.shared.auth and principal else None
        if self.shared.auth and "lsid" in body:
            sid = _session_id(body["lsid"])
            if self.shared.bind_session(sid, owner) != owner:
                raise Refused(13, f"the session in lsid belongs to another user ({name})")
        extra_not_found: list[int] = []
        if name == "getMore" and self.shared.auth:
            self._own_cursor(_cursor_id(body.get("getMore")), owner)
        elif name == "killCursors" and self.shared.auth:
            msg, extra_not_found = self._own_cursors(msg, body, owner)
        _request, reply = forward(msg)
        if not isinstance(reply, dict):
            return reply
        self._after(name, body, db, reply, owner, principal, extra_not_found)
        return reply

    def _after(self, name, body, db, reply, owner, principal, extra_not_found) -> None:
        cursor = reply.get("cursor")
        if isinstance(cursor, dict) and isinstance(cursor.get("id"), int):
            if cursor["id"]:
                self.shared.add_cursor(cursor["id"], owner, db)
                self._cursors.add(cursor["id"])
            elif name == "getMore":
                self.shared.forget_cursors([body.get("getMore")])
        if name == "killCursors":
            self.shared.forget_cursors(reply.get("cursorsKilled") or [])
            reply["cursorsNotFound"] = list(reply.get("cursorsNotFound") or []) + extra_not_found
        elif name == "startSession" and self.shared.auth:
            sid = (reply.get("session") or {}).get("id") if reply.get("ok") else None
            if sid:
                self.shared.bind_session(_session_id(sid), owner)
        elif name == "listDatabases" and principal is not None and not principal.is_root:
            names = [d.get("name") for d in reply.get("databases") or []]
            mine = set(authz.readable(principal, names))
            reply["databases"] = [d for d in reply.get("databases") or [] if d.get("name") in mine]
            reply["totalSize"] = sum(d.get("sizeOnDisk", 0) for d in reply["databases"])

    def _own_cursor(self, cursor_id: int, owner: Owner) -> None:
        found = self.shared.cursor(cursor_id)
        if found is None:
            raise Refused(43, f"cursor id {cursor_id} not found", "CursorNotFound")
        if found[0] != owner:
            raise Refused(13, f"cursor id {cursor_id} was not created by the authenticated user")

    def _own_cursors(self, msg: dict, body: dict, owner: Owner) -> tuple[dict, list[int]]:
        ids = body.get("cursors")
        if not isinstance(ids, list):
            raise Refused(14, "cursors must be an array", "TypeMismatch")
        mine, not_found = [], []
        for raw in ids:
            cursor_id = _cursor_id(raw)
            found = self.shared.cursor(cursor_id)
            if found is None:
                not_found.append(cursor_id)
            elif found[0] != owner:
                raise Refused(13, f"not authorized to kill cursor {cursor_id}")
            else:
                mine.append(cursor_id)
        new_body = {**body, "cursors": mine}
        return {**msg, "sections": [("body", new_body)]}, not_found

    def _end_sessions(self, msg, body, principal, forward) -> dict:
        ids = body.get("endSessions")
        ids = ids if isinstance(ids, list) else []
        if self.shared.auth:
            if principal is None:
                return {"ok": 1.0}  # unauthenticated commands never open a session in nx
            mine = []
            for lsid in ids:
                sid = _session_id(lsid)
                if self.shared.session_owner(sid) == principal.key:
                    mine.append(lsid)
                    self.shared.forget_session(sid)
            ids = mine
        if ids:
            new = {"endSessions": ids, "$db": "admin"}
            forward({**msg, "sections": [("body", new)]})
        return {"ok": 1.0}

    # ----- handshake and sign-in

    def _hello(self, body: dict) -> dict:
        reply: dict[str, Any] = {
            "isWritablePrimary" if next(iter(body)) in ("hello", "Hello") else "ismaster": True,
            "maxBsonObjectSize": wire.MAX_BSON_DOCUMENT_SIZE,
            "maxMessageSizeBytes": wire.MAX_MESSAGE_SIZE_BYTES,
            "maxWriteBatchSize": wire.MAX_WRITE_BATCH_SIZE,
            "localTime": datetime.now(UTC),
            "logicalSessionTimeoutMinutes": wire.DEFAULT_SESSION_TIMEOUT_MINUTES,
            "connectionId": self.id,
            "minWireVersion": wire.MIN_WIRE_VERSION,
            "maxWireVersion": wire.MAX_WIRE_VERSION,
            "readOnly": False,
        }
        if body.get("helloOk"):
            reply["helloOk"] = True
        mechs = body.get("saslSupportedMechs")
        if isinstance(mechs, str) and "." in mechs:
            db, _, name = mechs.partition(".")
            if self.shared.store.get(name, db) is not None:
                reply["saslSupportedMechs"] = [scram.MECHANISM]
        spec = body.get("speculativeAuthenticate")
        if isinstance(spec, dict) and next(iter(spec), None) == "saslStart":
            try:
                reply["speculativeAuthenticate"] = self._sasl_start(
                    spec, spec.get("db"), quiet=True
                )
            except Refused:
                pass  # as MongoDB: the client signs in the long way and hears why
        reply["ok"] = 1.0
        return reply

    def _sasl_start_command(self, body: dict) -> dict:
        return {**self._sasl_start(body, body.get("$db")), "ok": 1.0}

    def _sasl_start(self, body: dict, db, *, quiet: bool = False) -> dict:
        """The first step; ``quiet``: a speculative one (a failure is logged when the
        client tries again the long way)."""
        self.sasl = None
        mechanism = body.get("mechanism")
        if mechanism not in (scram.MECHANISM, "SCRAM-SHA-1"):
            raise Refused(
                334,
                f"Received authentication for mechanism {mechanism} which is not enabled",
                "MechanismUnavailable",
            )
        payload = body.get("payload")
        if not isinstance(db, str) or not isinstance(payload, bytes | bytearray):
            raise AUTH_FAILED
        try:
            _gs2, _bare, name, _nonce = scram.parse_client_first(bytes(payload))
        except scram.ScramError as e:
            if not quiet:
                self._failed("?", str(db), str(e))
            raise AUTH_FAILED from None
        if self.user_key is not None and self.user_key != (name, db):
            previous = "@".join(self.user_key)
            raise Refused(
                5626701,
                "Each client connection may only be authenticated once. "
                f"Previously authenticated as: {previous}",
                "Location5626701",
            )
        user = self.shared.store.get(name, db)
        if user is None or mechanism != scram.MECHANISM:
            if not quiet:
                reason = "no such user" if user is None else f"no {mechanism} credentials"
                self._failed(name, db, reason)
            raise AUTH_FAILED
        conversation = scram.Conversation(user.creds)
        server_first = conversation.start(bytes(payload))
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        self.sasl = _Sasl(user.key, conversation, bool(options.get("skipEmptyExchange")))
        return {"conversationId": 1, "done": False, "payload": Binary(server_first)}

    def _sasl_continue(self, body: dict) -> dict:
        state = self.sasl
        if state is None or body.get("conversationId") != 1:
            raise Refused(17, "No SASL session state found", "ProtocolError")
        if state.proved:
            self.sasl = None
            return {"conversationId": 1, "done": True, "payload": Binary(b""), "ok": 1.0}
        payload = body.get("payload")
        try:
            if not isinstance(payload, bytes | bytearray):
                raise scram.ScramError("no payload")
            server_final = state.conversation.finish(bytes(payload))
        except scram.ScramError as e:
            self.sasl = None
            self._failed(*state.key, str(e))
            raise AUTH_FAILED from None
        if self.shared.store.get(*state.key) is None:
            self.sasl = None
            raise AUTH_FAILED
        self.user_key = state.key
        state.proved = True
        log.info("%s signed in from %s", _clean("@".join(state.key)), self._peer_text())
        if state.skip_empty:
            self.sasl = None
        return {
            "conversationId": 1,
            "done": state.skip_empty,
            "payload": Binary(server_final),
            "ok": 1.0,
        }

    def _failed(self, name: str, db: str, reason: str) -> None:
        log.warning(
            "authentication of %s from %s failed (%s)",
            _clean(f"{name}@{db}"),
            self._peer_text(),
            reason,
        )

    def _logout(self, body: dict) -> dict:
        self.user_key, self.sasl = None, None
        return {"ok": 1.0}

    def _connection_status(self, body: dict) -> dict:
        user = self.shared.store.get(*self.user_key) if self.user_key else None
        return {
            "authInfo": {
                "authenticatedUsers": [{"user": user.name, "db": user.db}] if user else [],
                "authenticatedUserRoles": (
                    [{"role": r, "db": d} for r, d in user.roles] if user else []
                ),
            },
            "ok": 1.0,
        }

    def _build_info(self, body: dict) -> dict:
        return {
            "version": "7.0.0",
            "gitVersion": "classhub",
            "versionArray": [7, 0, 0, 0],
            "process": "classhub-mongo",
            "storageEngines": [f"nx-27017 {self.shared.version}".strip()],
            "bits": 64,
            "maxBsonObjectSize": wire.MAX_BSON_DOCUMENT_SIZE,
            "ok": 1.0,
        }

    # ----- users

    def _user_admin(self, name: str, body: dict, *, first_user: bool = False) -> bool:
        """Whether this may run ``name``; True: through the localhost exception."""
        authz.check_shape(name, body, {})
        principal = self.principal()
        if principal is not None and principal.is_root:
            return False
        if principal is None and self.shared.auth:
            if first_user and self._from_loopback() and len(self.shared.store) == 0:
                return True
            raise Refused(13, f"command {name} requires authentication")
        raise authz.not_authorized(name, body, body["$db"])

    def _from_loopback(self) -> bool:
        try:
            address = ipaddress.ip_address(self.peer[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return address.is_loopback or bool(mapped and mapped.is_loopback)

    def _create_user(self, body: dict) -> dict:
        exception = self._user_admin("createUser", body, first_user=True)
        db, name = body["$db"], body.get("createUser")
        if "roles" not in body:
            raise Refused(2, '"createUser" command requires a "roles" array', "BadValue")
        roles = parse_roles(body["roles"], db)
        self._check_mechanisms(body)
        self.shared.store.create(name, db, body.get("pwd"), roles, only_if_empty=exception)
        log.info(
            "created user %s with roles %s%s (by %s)",
            _clean(f"{name}@{db}"),
            ", ".join(f"{r}@{d}" for r, d in roles) or "none",
            " through the localhost exception" if exception else "",
            self._who(),
        )
        return {"ok": 1.0}

    def _update_user(self, body: dict) -> dict:
        self._user_admin("updateUser", body)
        db, name = body["$db"], body.get("updateUser")
        if "pwd" not in body and "roles" not in body:
            raise Refused(2, "Must specify at least one field to update in updateUser", "BadValue")
        roles = parse_roles(body["roles"], db) if "roles" in body else None
        self._check_mechanisms(body)
        if "pwd" in body and not isinstance(body["pwd"], str):
            raise Refused(14, '"pwd" must be a string', "TypeMismatch")
        self.shared.store.update(name, db, password=body.get("pwd"), roles=roles)
        log.info("updated user %s (by %s)", _clean(f"{name}@{db}"), self._who())
        return {"ok": 1.0}

    def _drop_user(self, body: dict) -> dict:
        self._user_admin("dropUser", body)
        db, name = body["$db"], body.get("dropUser")
        self.shared.store.drop(name, db)
        log.info("dropped user %s (by %s)", _clean(f"{name}@{db}"), self._who())
        return {"ok": 1.0}

    def _users_info(self, body: dict) -> dict:
        authz.check_shape("usersInfo", body, {})
        db, spec = body["$db"], body.get("usersInfo")
        targets = self._user_targets(spec, db)
        principal = self.principal()
        if principal is None or not principal.is_root:
            if principal is None or targets is None or any(t != principal.key for t in targets):
                self._user_admin("usersInfo", body)
        store = self.shared.store
        if targets is None:
            users = store.all(None if isinstance(spec, dict) else db)
        else:
            users = [u for u in (store.get(*t) for t in targets) if u is not None]
        return {"users": [u.info() for u in users], "ok": 1.0}

    @staticmethod
    def _user_targets(spec, db: str) -> list[tuple[str, str]] | None:
        """The users ``usersInfo`` asks about; None: all (of ``db``, or every db)."""
        if spec is True or (isinstance(spec, int | float) and spec == 1):
            return None
        if isinstance(spec, dict) and spec.get("forAllDBs") is True:
            return None
        items = spec if isinstance(spec, list) else [spec]
        out = []
        for item in items:
            if isinstance(item, str):
                out.append((item, db))
            elif isinstance(item, dict) and isinstance(item.get("user"), str):
                out.append((item["user"], item.get("db", db)))
            else:
                raise Refused(2, "usersInfo takes 1, a name or {user, db}", "BadValue")
        return out

    @staticmethod
    def _check_mechanisms(body: dict) -> None:
        mechanisms = body.get("mechanisms")
        if mechanisms is not None and (
            not isinstance(mechanisms, list) or set(mechanisms) - {scram.MECHANISM}
        ):
            raise Refused(2, f"only {scram.MECHANISM} is supported", "BadValue")
        if body.get("digestPassword") is False:
            raise Refused(2, "the server digests passwords itself", "BadValue")

    # ----- log lines

    def _peer_text(self) -> str:
        host, port = self.peer[0], self.peer[1] if len(self.peer) > 1 else 0
        return f"{host}:{port}"

    def _who(self) -> str:
        who = _clean("@".join(self.user_key)) if self.user_key else "unauthenticated"
        return f"{who} ({self._peer_text()})"
