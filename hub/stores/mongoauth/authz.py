"""Who may run which command on which database: the authorization table of the stand-in.

Every command a client sends reaches :func:`authorize` before nx-27017 sees it. The table
follows MongoDB's built-in roles (:mod:`.users`) as far as classhub uses them:

- Answered before sign-in, never by nx-27017: ``hello``/``isMaster``, ``buildInfo``,
  ``ping``, ``saslStart``/``saslContinue``, ``logout``, ``connectionStatus``,
  ``whatsmyuri``, ``endSessions`` (which ends only the caller's own sessions).
- ``read`` on ``$db``: ``find``, ``count``, ``distinct``, ``listCollections``,
  ``listIndexes``, ``listSearchIndexes``, ``dbStats``, ``collStats``, ``explain``,
  ``startSession``, ``aggregate``; ``getMore`` and ``killCursors`` on the user's own cursors
  only.
- ``write`` on ``$db``: ``insert``, ``update``, ``delete``, ``findAndModify``, ``create``,
  ``drop``, ``createIndexes``, ``dropIndexes``, the search index commands, and an
  ``aggregate`` with ``$out``/``$merge`` (also on their target database). ``$lookup``,
  ``$unionWith`` and ``$graphLookup`` naming another ``db`` need ``read`` there.
- On ``admin`` only: ``bulkWrite`` (``write`` on every namespace's database);
  ``listDatabases`` (signed in; the answer lists only the databases the user may read),
  ``commitTransaction``/``abortTransaction`` (signed in; the user's own sessions only).
- ``root``: ``createUser``, ``updateUser``, ``dropUser``, ``usersInfo`` (a user may read
  their own; the first user may be created from a loopback address without signing in),
  and everything else: ``dropDatabase``, ``renameCollection`` (nx-27017 renames inside
  ``$db``, not across databases), ``serverStatus``, nx-27017's own commands, ...
- Refused for everyone: MongoDB's role management and other sign-in mechanisms
  (:data:`UNSUPPORTED`).

``readWrite`` grants ``read`` and ``write`` on its database, ``read`` only ``read``, ``root``
everything. A refusal is MongoDB's: code 13 (``Unauthorized``), "command find requires
authentication" before sign-in, "not authorized on <db> to execute command { ... }" after.

nx-27017 0.8.1 picks the branch that runs a command by the *presence* of a key anywhere in
the document (``"drop" in cmd``), not by its first key as MongoDB does: ``{ping: 1, drop:
"classes"}`` would drop a collection. So a document whose other keys name a command nx
dispatches on (:data:`NX_DISPATCH_KEYS`, checked against nx's source by the unit tests) is
refused unless that key is a documented option of the command (``findAndModify``'s
``update``, ``aggregate``'s ``explain``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNAUTHORIZED = 13

#: answered by the stand-in itself, before and after sign-in
ANYONE = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "buildInfo",
        "buildinfo",
        "ping",
        "saslStart",
        "saslContinue",
        "logout",
        "connectionStatus",
        "whatsmyuri",
        "endSessions",
    }
)
USER_ADMIN = frozenset({"createUser", "updateUser", "dropUser", "usersInfo"})
#: MongoDB's other user and role management: not implemented, refused for everyone
UNSUPPORTED = frozenset(
    {
        "authenticate",
        "getnonce",
        "createRole",
        "updateRole",
        "dropRole",
        "dropAllRolesFromDatabase",
        "dropAllUsersFromDatabase",
        "grantRolesToUser",
        "revokeRolesFromUser",
        "grantRolesToRole",
        "revokeRolesFromRole",
        "grantPrivilegesToRole",
        "revokePrivilegesFromRole",
        "rolesInfo",
        "invalidateUserCache",
        "_mergeAuthzCollections",
    }
)
READ = frozenset(
    {
        "find",
        "count",
        "distinct",
        "listCollections",
        "listIndexes",
        "listSearchIndexes",
        "dbStats",
        "collStats",
        "explain",
        "getMore",
        "killCursors",
        "startSession",
    }
)
WRITE = frozenset(
    {
        "insert",
        "update",
        "delete",
        "findAndModify",
        "create",
        "drop",
        "createIndexes",
        "dropIndexes",
        "createSearchIndexes",
        "updateSearchIndex",
        "dropSearchIndex",
    }
)
#: run against ``admin`` only; any signed-in user (the server narrows what they touch)
SIGNED_IN_ON_ADMIN = frozenset({"listDatabases", "commitTransaction", "abortTransaction"})
#: OP_MSG document sequences (kind 1) each command may carry
PAYLOADS = {
    "insert": {"documents"},
    "update": {"updates"},
    "delete": {"deletes"},
    "bulkWrite": {"ops", "nsInfo"},
}
#: keys nx-27017 0.8.1 dispatches on wherever they stand in a document (handler.py
#: ``handle_command``, server.py's choice of ``handle_insert``)
NX_DISPATCH_KEYS = frozenset(
    {
        "hello",
        "Hello",
        "isMaster",
        "ismaster",
        "startSession",
        "commitTransaction",
        "abortTransaction",
        "endSessions",
        "create",
        "drop",
        "dropDatabase",
        "dropdatabase",
        "renameCollection",
        "createIndexes",
        "dropIndexes",
        "createIndex",
        "dropIndex",
        "createSearchIndexes",
        "createsearchindexes",
        "updateSearchIndex",
        "updatesearchindex",
        "dropSearchIndex",
        "dropsearchindex",
        "delete",
        "bulkWrite",
        "upload",
        "openDownloadStream",
        "findAndModify",
        "update",
        "find",
        "count",
        "distinct",
        "aggregate",
        "listCollections",
        "serverStatus",
        "buildInfo",
        "dbStats",
        "dbstats",
        "collStats",
        "collstats",
        "listDatabases",
        "listdatabases",
        "listIndexes",
        "listindexes",
        "listSearchIndexes",
        "listsearchindexes",
        "explain",
        "getMore",
        "killCursors",
        "vacuum",
        "compact",
        "compactcollection",
        "validate",
        "reindex",
        "reIndex",
        "insert",
    }
)
#: dispatch keys that are a documented option of a command
OPTION_KEYS = {"findAndModify": {"update"}, "aggregate": {"explain"}}
#: aggregation stages that read the server's state rather than a database
CLUSTER_STAGES = frozenset(
    {
        "$currentOp",
        "$listLocalSessions",
        "$listSessions",
        "$listCachedAndActiveUsers",
        "$listCatalog",
        "$shardedDataDistribution",
        "$querySettings",
    }
)


class Refused(Exception):
    """A command the server answers with an error instead of running it."""

    def __init__(self, code: int, message: str, code_name: str = "Unauthorized"):
        super().__init__(message)
        self.code, self.code_name = code, code_name

    def reply(self) -> dict:
        return {"ok": 0.0, "errmsg": str(self), "code": self.code, "codeName": self.code_name}


@dataclass(frozen=True)
class Principal:
    """A signed-in user and their roles (read from the user store for every command)."""

    user: str
    db: str
    roles: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.user, self.db)

    @property
    def is_root(self) -> bool:
        return ("root", "admin") in self.roles

    def can(self, action: str, db: str) -> bool:
        """``action`` (read, write, cluster) on database ``db``."""
        if self.is_root:
            return True
        for role, role_db in self.roles:
            if role_db != db or action == "cluster":
                continue
            if role == "readWrite" and action in ("read", "write"):
                return True
            if role == "read" and action == "read":
                return True
        return False


def summary(name: str, doc: dict) -> str:
    """A command as MongoDB names it in a refusal: ``{ find: "c", $db: "d" }``."""
    value = doc.get(name)
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f'{{ {name}: {shown}, $db: "{doc.get("$db")}" }}'


def command_name(doc: dict) -> str:
    name = next(iter(doc), None) if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name or name.startswith("$"):
        raise Refused(59, "no such command", "CommandNotFound")
    return name


def _walk(value) -> Iterable[dict]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def pipeline_needs(pipeline, db: str) -> list[tuple[str, str]]:
    """What an aggregation pipeline on ``db`` needs, nested pipelines included."""
    needs = [("read", db)]
    for stage in _walk(pipeline):
        for key, spec in stage.items():
            if key in CLUSTER_STAGES:
                needs.append(("cluster", ""))
            elif key == "$changeStream":
                if isinstance(spec, dict) and spec.get("allChangesForCluster"):
                    needs.append(("cluster", ""))
            elif key == "$out":
                target = spec.get("db", db) if isinstance(spec, dict) else db
                needs.append(("write", target))
            elif key == "$merge":
                into = spec.get("into") if isinstance(spec, dict) else spec
                target = into.get("db", db) if isinstance(into, dict) else db
                needs.append(("write", target))
            elif key in ("$lookup", "$unionWith", "$graphLookup") and isinstance(spec, dict):
                if "db" in spec:
                    needs.append(("read", spec["db"]))
                source = spec.get("from")  # {db, coll} in MongoDB 7+
                if isinstance(source, dict) and "db" in source:
                    needs.append(("read", source["db"]))
    return needs


def _namespaces(doc: dict, payloads: dict[str, list]) -> list[str]:
    infos = list(doc.get("nsInfo") or []) + list(payloads.get("nsInfo") or [])
    out = []
    for info in infos:
        ns = info.get("ns") if isinstance(info, dict) else None
        if not isinstance(ns, str):
            raise Refused(2, "bulkWrite: every nsInfo needs an ns", "BadValue")
        out.append(ns.partition(".")[0] or "test")
    return out


def check_shape(name: str, doc: dict, payloads: dict[str, list]) -> str:
    """The document's ``$db``, once the document is one a MongoDB server would take."""
    db = doc.get("$db")
    if not isinstance(db, str) or not db:
        raise Refused(40571, "OP_MSG requests require a $db argument", "Location40571")
    for ident in payloads:
        if ident not in PAYLOADS.get(name, ()):
            raise Refused(
                40415, f"BSON field '{name}.{ident}' is an unknown field.", "Location40415"
            )
    return db


def check_unambiguous(name: str, doc: dict) -> None:
    for key in list(doc)[1:]:
        if key in NX_DISPATCH_KEYS and key not in OPTION_KEYS.get(name, ()):
            raise Refused(40415, f"BSON field '{name}.{key}' is an unknown field.", "Location40415")


def needs(name: str, doc: dict, db: str, payloads: dict[str, list]) -> list[tuple[str, str]]:
    """The (action, database) pairs running ``doc`` takes; ``[("cluster", "")]``: root."""
    if name in READ:
        return [("read", db)]
    if name in WRITE:
        return [("write", db)]
    if name == "aggregate":
        return pipeline_needs(doc.get("pipeline"), db)
    if name in SIGNED_IN_ON_ADMIN or name == "bulkWrite":
        if db != "admin":
            raise Refused(UNAUTHORIZED, f"{name} may only be run against the admin database.")
        if name == "bulkWrite":
            return [("write", ns_db) for ns_db in _namespaces(doc, payloads)]
        if name == "listDatabases" and doc.get("authorizedDatabases") is False:
            return [("cluster", "")]
        return []
    return [("cluster", "")]


def authorize(
    principal: Principal | None, doc: dict, payloads: dict[str, list] | None = None
) -> str:
    """Raise :class:`Refused` unless ``principal`` (None: not signed in) may run ``doc`` (an
    OP_MSG body; ``payloads``: its document sequences by identifier) as nx-27017 will run
    it. Returns the command's name. Commands of :data:`ANYONE` and :data:`USER_ADMIN` are
    the server's own and checked there."""
    payloads = payloads or {}
    name = command_name(doc)
    db = check_shape(name, doc, payloads)
    if name in UNSUPPORTED:
        raise Refused(115, f"{name} is not supported by this server", "CommandNotSupported")
    if name in ANYONE:
        return name
    if principal is None:
        raise Refused(UNAUTHORIZED, f"command {name} requires authentication")
    if principal.is_root:
        return name
    check_unambiguous(name, doc)
    if name in USER_ADMIN:
        return name  # the server checks (a user may read their own usersInfo)
    for action, target in needs(name, doc, db, payloads):
        if not principal.can(action, target):
            where = target or db
            raise Refused(
                UNAUTHORIZED, f"not authorized on {where} to execute command {summary(name, doc)}"
            )
    return name


def not_authorized(name: str, doc: dict, db: str) -> Refused:
    return Refused(UNAUTHORIZED, f"not authorized on {db} to execute command {summary(name, doc)}")


def readable(principal: Principal, names: Sequence[str]) -> list[str]:
    """The databases of ``names`` the principal may read (``listDatabases``)."""
    return [n for n in names if principal.can("read", n)]
