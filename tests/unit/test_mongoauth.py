"""classhub-mongo's parts without a network: SCRAM-SHA-256 against RFC 7677's test vector,
the user store, the authorization table, and one connection's checks against a fake
nx-27017 handler (tests/integration/test_mongo_auth.py runs the real server with pymongo)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import os
import re
import stat
from pathlib import Path

import pytest
from bson import Binary

from hub.stores.mongoauth import authz, scram
from hub.stores.mongoauth.authz import Principal, Refused
from hub.stores.mongoauth.connection import Connection, Shared
from hub.stores.mongoauth.server import NX_VERSION, initial_root
from hub.stores.mongoauth.users import FILENAME, UserError, UserStore, parse_roles

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# RFC 7677, section 3
RFC_PASSWORD = "pencil"
RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_conversation() -> scram.Conversation:
    creds = scram.credentials(RFC_PASSWORD, salt=base64.b64decode(RFC_SALT), iterations=4096)
    return scram.Conversation(creds, nonce=lambda: RFC_SERVER_NONCE)


# ----- SCRAM-SHA-256


def test_scram_matches_rfc_7677_test_vector():
    conv = rfc_conversation()
    assert conv.start(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert conv.finish(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert conv.done


@pytest.mark.parametrize(
    "final",
    [
        # the proof of another password
        RFC_CLIENT_FINAL.replace(b"p=dHzb", b"p=dHzc"),
        # another nonce than the one the server chose
        RFC_CLIENT_FINAL.replace(b"k0,p", b"k1,p"),
        # a channel binding that does not match the first message's
        RFC_CLIENT_FINAL.replace(b"c=biws", b"c=eSws"),
        # no proof at all
        RFC_CLIENT_FINAL.split(b",p=")[0],
        b"garbage",
    ],
)
def test_scram_refuses_a_wrong_client_final(final):
    conv = rfc_conversation()
    conv.start(RFC_CLIENT_FIRST)
    with pytest.raises(scram.ScramError):
        conv.finish(final)
    assert not conv.done


def test_scram_finishes_once():
    conv = rfc_conversation()
    conv.start(RFC_CLIENT_FIRST)
    conv.finish(RFC_CLIENT_FINAL)
    with pytest.raises(scram.ScramError, match="out of order"):
        conv.finish(RFC_CLIENT_FINAL)
    with pytest.raises(scram.ScramError, match="out of order"):
        rfc_conversation().finish(RFC_CLIENT_FINAL)


@pytest.mark.parametrize(
    "first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding
        b"n,a=admin,n=user,r=abc",  # an authorization identity
        b"n,,m=ext,n=user,r=abc",  # a mandatory extension
        b"n,,n=us=2Xer,r=abc",  # a bad escape
        b"n,,n=user",  # no nonce
        b"n,,r=abc,n=user",  # out of order
    ],
)
def test_scram_refuses_client_first_messages_it_does_not_support(first):
    with pytest.raises(scram.ScramError):
        rfc_conversation().start(first)


def test_scram_user_names_are_unescaped():
    assert scram.parse_client_first(b"n,,n=a=2Cb=3Dc,r=xyz")[2] == "a,b=c"


def test_credentials_never_hold_the_password_and_apply_saslprep():
    salt = os.urandom(28)
    password = "correct-horse-\u00adbattery"  # a soft hyphen is mapped to nothing
    a = scram.credentials(password, salt=salt)
    b = scram.credentials("correct-horse-battery", salt=salt)
    assert a == b and a.iterations == scram.ITERATIONS
    # (a password long enough that base64 of random keys never holds it by chance)
    assert "correct-horse-battery" not in str(a.to_json())
    assert scram.credentials("correct-horse-battery") != b  # a new salt each time
    with pytest.raises(ValueError):
        scram.credentials("x", iterations=1000)


def client_scram(password: str, first_bare: bytes, server_first: bytes) -> tuple[bytes, bytes]:
    """The client's side (as pymongo computes it): (client-final, expected server-final)."""
    attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    without_proof = b"c=biws,r=" + attrs[b"r"]
    auth_message = b",".join((first_bare, server_first, without_proof))
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, "sha256").digest()
    proof = bytes(x ^ y for x, y in zip(client_key, signature, strict=True))
    server_sig = hmac.new(server_key, auth_message, "sha256").digest()
    return (
        without_proof + b",p=" + base64.b64encode(proof),
        b"v=" + base64.b64encode(server_sig),
    )


# ----- users


def test_user_store_keeps_users_in_a_private_file(tmp_path):
    store = UserStore(tmp_path / FILENAME)
    store.create("classhub_classes", "admin", "s3cret-pw", [("readWrite", "classhub")])
    path = tmp_path / FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-pw" not in path.read_text()
    again = UserStore(path)
    user = again.get("classhub_classes", "admin")
    assert user.roles == (("readWrite", "classhub"),)
    assert user.info()["mechanisms"] == ["SCRAM-SHA-256"]
    with pytest.raises(UserError) as e:
        again.create("classhub_classes", "admin", "x", [])
    assert e.value.code == 51003
    again.update("classhub_classes", "admin", password="new-pw", roles=[("read", "classhub")])
    third = UserStore(path)
    assert third.get("classhub_classes", "admin").roles == (("read", "classhub"),)
    assert third.get("classhub_classes", "admin").creds != user.creds
    third.drop("classhub_classes", "admin")
    assert UserStore(path).get("classhub_classes", "admin") is None
    for call in (lambda: third.drop("nobody", "admin"), lambda: third.update("x", "admin")):
        with pytest.raises(UserError) as e:
            call()
        assert e.value.code == 11


def test_user_store_localhost_exception_is_for_the_first_user_only(tmp_path):
    store = UserStore(tmp_path / FILENAME)
    store.create("root", "admin", "pw", [("root", "admin")], only_if_empty=True)
    with pytest.raises(UserError) as e:
        store.create("second", "admin", "pw", [("root", "admin")], only_if_empty=True)
    assert e.value.code == 13
    with pytest.raises(UserError, match="must not be empty"):
        store.create("x", "admin", "", [])


def test_roles_as_mongodb_writes_them():
    assert parse_roles(["readWrite", {"role": "read", "db": "other"}], "classhub") == (
        ("readWrite", "classhub"),
        ("read", "other"),
    )
    assert parse_roles([{"role": "root", "db": "admin"}], "admin") == (("root", "admin"),)
    for bad in ([{"role": "root", "db": "classhub"}], ["dbOwner"], [{"role": "userAdmin"}]):
        with pytest.raises(UserError) as e:
            parse_roles(bad, "classhub")
        assert e.value.code == 31
    with pytest.raises(UserError):
        parse_roles("readWrite", "classhub")


def test_initial_root_only_on_an_empty_store(tmp_path):
    store = UserStore(tmp_path / FILENAME)
    env = {"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": "pw"}
    assert initial_root(store, {}) is None and len(store) == 0
    assert initial_root(store, env) == "root"
    assert store.get("root", "admin").roles == (("root", "admin"),)
    assert initial_root(store, {**env, "MONGO_INITDB_ROOT_USERNAME": "other"}) is None
    assert store.get("other", "admin") is None


# ----- the authorization table

CLASSES = Principal("classhub_classes", "admin", (("readWrite", "classhub"),))
READER = Principal("reader", "admin", (("read", "classhub"),))
ROOT = Principal("root", "admin", (("root", "admin"),))


def cmd(name, value="c", db="classhub", **fields):
    return {name: value, **fields, "$db": db}


OWN_DB = [
    cmd("find", filter={}),
    cmd("insert", documents=[{}]),
    cmd("update", updates=[]),
    cmd("delete", deletes=[]),
    cmd("findAndModify", query={}, update={"$set": {"a": 1}}),
    cmd("count"),
    cmd("distinct", key="a"),
    cmd("aggregate", pipeline=[{"$match": {}}], cursor={}, explain=False),
    cmd("aggregate", pipeline=[{"$lookup": {"from": "d", "as": "x"}}, {"$out": "e"}]),
    cmd("aggregate", pipeline=[{"$changeStream": {}}], cursor={}),
    cmd("create"),
    cmd("drop"),
    cmd("createIndexes", indexes=[]),
    cmd("dropIndexes", index="*"),
    cmd("listCollections", 1),
    cmd("listIndexes"),
    cmd("dbStats", 1),
    cmd("collStats"),
    cmd("explain", {"find": "c"}),
    cmd("getMore", 1000000000001, collection="c"),
    cmd("killCursors", cursors=[1]),
    cmd("listDatabases", 1, db="admin"),
    cmd("commitTransaction", 1, db="admin"),
    cmd("abortTransaction", 1, db="admin"),
    cmd("bulkWrite", 1, db="admin", ops=[], nsInfo=[{"ns": "classhub.c"}]),
    cmd("endSessions", [], db="admin"),
]
OTHER_DB = [
    cmd("find", db="classhub_files"),
    cmd("insert", db="classhub_files", documents=[{}]),
    cmd("drop", db="classhub_files"),
    cmd("find", db="admin"),
    cmd("listCollections", 1, db="admin"),
    cmd("getMore", 1000000000001, db="classhub_files", collection="c"),
    cmd("aggregate", pipeline=[{"$lookup": {"from": "p", "db": "classhub_files", "as": "x"}}]),
    cmd("aggregate", pipeline=[{"$unionWith": {"coll": "p", "db": "classhub_files"}}]),
    cmd("aggregate", pipeline=[{"$lookup": {"from": {"db": "classhub_files", "coll": "p"}}}]),
    cmd(
        "aggregate", pipeline=[{"$facet": {"a": [{"$out": {"db": "classhub_files", "coll": "x"}}]}}]
    ),
    cmd("aggregate", pipeline=[{"$merge": {"into": {"db": "classhub_files", "coll": "x"}}}]),
    cmd("aggregate", 1, pipeline=[{"$changeStream": {"allChangesForCluster": True}}], db="admin"),
    cmd("aggregate", 1, pipeline=[{"$currentOp": {}}], db="admin"),
    cmd("bulkWrite", 1, db="admin", nsInfo=[{"ns": "classhub.c"}, {"ns": "classhub_files.p"}]),
    cmd("listDatabases", 1, db="admin", authorizedDatabases=False),
    # root's only (readWrite does not cover them, or nx-27017 runs them another way)
    cmd("dropDatabase", 1),
    cmd("dropDatabase", "classhub_files"),
    cmd("renameCollection", "classhub.c", db="admin", to="classhub.d"),
    cmd("serverStatus", 1),
    cmd("validate"),
    cmd("compact"),
    cmd("reIndex"),
    cmd("vacuum", 1),
    cmd("createIndex", keys={"a": 1}),
    cmd("upload", filename="f"),
    cmd("shutdown", 1, db="admin"),
    cmd("getCmdLineOpts", 1, db="admin"),
    cmd("table_info"),  # neosqlite's PRAGMA fallback
]


@pytest.mark.parametrize("doc", OWN_DB, ids=lambda d: next(iter(d)))
def test_readwrite_user_runs_its_commands_on_its_database(doc):
    assert authz.authorize(CLASSES, dict(doc)) == next(iter(doc))
    assert authz.authorize(ROOT, dict(doc)) == next(iter(doc))


@pytest.mark.parametrize("doc", OTHER_DB, ids=lambda d: next(iter(d)))
def test_readwrite_user_is_refused_elsewhere_and_root_is_not(doc):
    with pytest.raises(Refused) as e:
        authz.authorize(CLASSES, dict(doc))
    assert e.value.code == 13
    assert "not authorized on" in str(e.value) or "admin database" in str(e.value)
    assert authz.authorize(ROOT, dict(doc)) == next(iter(doc))


def test_refusal_names_the_database_and_command_as_mongodb_does():
    with pytest.raises(Refused) as e:
        authz.authorize(CLASSES, cmd("find", "material_pushes", db="classhub_files"))
    assert str(e.value) == (
        "not authorized on classhub_files to execute command "
        '{ find: "material_pushes", $db: "classhub_files" }'
    )
    assert e.value.reply() == {
        "ok": 0.0,
        "errmsg": str(e.value),
        "code": 13,
        "codeName": "Unauthorized",
    }


@pytest.mark.parametrize("doc", OWN_DB + OTHER_DB, ids=lambda d: next(iter(d)))
def test_nothing_but_the_handshake_before_sign_in(doc):
    name = next(iter(doc))
    if name in authz.ANYONE:
        assert authz.authorize(None, dict(doc)) == name
        return
    with pytest.raises(Refused) as e:
        authz.authorize(None, dict(doc))
    assert (e.value.code, str(e.value)) == (13, f"command {name} requires authentication")


def test_read_role_reads_only():
    assert authz.authorize(READER, cmd("find")) == "find"
    assert authz.authorize(READER, cmd("aggregate", pipeline=[])) == "aggregate"
    for doc in (cmd("insert"), cmd("aggregate", pipeline=[{"$out": "x"}]), cmd("drop")):
        with pytest.raises(Refused):
            authz.authorize(READER, doc)


@pytest.mark.parametrize(
    "doc",
    [
        # nx-27017 runs the first branch whose key is *present*: these would drop, insert, ...
        {"find": "c", "drop": "c", "$db": "classhub"},
        {"find": "c", "dropDatabase": "classhub_files", "$db": "classhub"},
        {"count": "c", "insert": "c", "documents": [{}], "$db": "classhub"},
        {"listDatabases": 1, "endSessions": [], "$db": "admin"},
        {"getMore": 5, "collection": "c", "killCursors": "c", "$db": "classhub"},
        {"findAndModify": "c", "update": {}, "renameCollection": "x", "$db": "classhub"},
        {"commitTransaction": 1, "serverStatus": 1, "$db": "admin"},
    ],
)
def test_documents_naming_a_second_command_are_refused(doc):
    with pytest.raises(Refused) as e:
        authz.authorize(CLASSES, doc)
    assert e.value.code == 40415


def test_document_shape():
    with pytest.raises(Refused) as e:
        authz.authorize(CLASSES, {"find": "c"})  # no $db: nx-27017 would use "test"
    assert e.value.code == 40571
    with pytest.raises(Refused) as e:
        authz.authorize(CLASSES, cmd("find"), {"documents": [{}]})
    assert e.value.code == 40415
    assert authz.authorize(CLASSES, cmd("insert"), {"documents": [{}]}) == "insert"
    with pytest.raises(Refused) as e:
        authz.authorize(ROOT, {"$db": "admin", "find": "c"})
    assert e.value.code == 59
    with pytest.raises(Refused) as e:
        authz.authorize(ROOT, cmd("grantRolesToUser", "classhub_classes", db="admin"))
    assert e.value.code == 115


def nx_source(name: str) -> str:
    import nx_27017

    return (Path(nx_27017.__file__).parent / name).read_text()


def test_dispatch_keys_are_those_of_the_pinned_nx_27017():
    # every key nx-27017's handler dispatches on by presence ("x" in cmd_copy), so a new or
    # renamed one in another version fails here before it can carry a second command
    found = set(
        re.findall(
            r'"(\w+)" in (?:cmd_copy|command_doc|section_data)',
            nx_source("handler.py") + nx_source("server.py"),
        )
    )
    hello = set(re.findall(r"for key in \[([^\]]*)\]", nx_source("handler.py"))[0].split(","))
    found |= {h.strip().strip('"') for h in hello}
    options = {"dryRun", "freeSpaceTargetMB", "hint", "limit", "max", "min", "skip", "sort"}
    assert found - options == set(authz.NX_DISPATCH_KEYS)


def test_nx_27017_version_is_pinned_everywhere():
    assert importlib.metadata.version("nx-27017") == NX_VERSION
    assert f'"nx-27017=={NX_VERSION}"' in (REPO / "pyproject.toml").read_text()
    assert f"nx-27017=={NX_VERSION}" in (REPO / "images/build.sh").read_text()


# ----- one connection, against a fake nx-27017 handler


class FakeNx:
    """Records what reaches nx-27017; answers ``reply`` (or ``replies[name]``)."""

    def __init__(self):
        self.seen: list[dict] = []
        self.replies: dict[str, dict] = {}
        self.closed: list = []

    def handle_command(self, msg):
        body = msg["sections"][0][1]
        self.seen.append(body)
        return msg["request_id"], dict(self.replies.get(next(iter(body)), {"ok": 1.0}))

    handle_insert = handle_command

    def close_streams_for_connection(self, conn_id):
        self.closed.append(conn_id)

    def increment_connections(self):
        pass

    def decrement_connections(self):
        pass


@pytest.fixture
def server(tmp_path):
    store = UserStore(tmp_path / FILENAME)
    store.create("root", "admin", "root-pw", [("root", "admin")])
    store.create("classhub_classes", "admin", "classes-pw", [("readWrite", "classhub")])
    store.create("classhub_files", "admin", "files-pw", [("readWrite", "classhub_files")])
    return Shared(FakeNx(), store, auth=True)


def connect(shared, user: str | None = None, peer=("127.0.0.1", 40000)) -> Connection:
    conn = Connection(shared, peer)
    if user:
        conn.user_key = (user, "admin")
    return conn


def run(conn, body, **payloads) -> dict:
    sections = [("body", body)] + [("payload", {k: v}) for k, v in payloads.items()]
    return conn.handle_command({"request_id": 7, "sections": sections, "_conn_id": "x"})[1]


def sign_in(conn, user: str, password: str, *, speculative: bool) -> dict:
    """SCRAM as pymongo runs it: speculatively inside the handshake, or with saslStart."""
    first_bare = b"n=" + user.encode() + b",r=" + base64.b64encode(os.urandom(24))
    start = {
        "saslStart": 1,
        "mechanism": "SCRAM-SHA-256",
        "payload": Binary(b"n,," + first_bare),
        "autoAuthorize": 1,
        "options": {"skipEmptyExchange": True},
    }
    if speculative:
        hello = conn.handle_query(
            {
                "request_id": 1,
                "collection": "$cmd",
                "query": {
                    "isMaster": 1,
                    "helloOk": True,
                    "saslSupportedMechs": f"admin.{user}",
                    "speculativeAuthenticate": {**start, "db": "admin"},
                },
            }
        )[1][0]
        reply = hello.get("speculativeAuthenticate")
        if reply is None:
            return hello
        assert hello["saslSupportedMechs"] == ["SCRAM-SHA-256"]
    else:
        reply = run(conn, {**start, "$db": "admin"})
        if not reply.get("ok"):
            return reply
    final, expected = client_scram(password, first_bare, bytes(reply["payload"]))
    done = run(
        conn,
        {"saslContinue": 1, "conversationId": 1, "payload": Binary(final), "$db": "admin"},
    )
    if done.get("ok"):
        assert bytes(done["payload"]) == expected and done["done"] is True
    return done


@pytest.mark.parametrize("speculative", [True, False])
def test_sign_in_with_scram(server, speculative):
    conn = connect(server)
    assert sign_in(conn, "classhub_classes", "classes-pw", speculative=speculative)["ok"]
    assert conn.user_key == ("classhub_classes", "admin")
    status = run(conn, {"connectionStatus": 1, "$db": "admin"})["authInfo"]
    assert status["authenticatedUserRoles"] == [{"role": "readWrite", "db": "classhub"}]


@pytest.mark.parametrize("speculative", [True, False])
def test_wrong_password_and_unknown_user_fail_alike(server, speculative):
    for user, password in (("classhub_classes", "wrong"), ("nobody", "classes-pw")):
        conn = connect(server)
        reply = sign_in(conn, user, password, speculative=speculative)
        if speculative and user == "nobody":
            # no speculative answer and no mechanisms for an unknown user (as MongoDB)
            assert "speculativeAuthenticate" not in reply and "saslSupportedMechs" not in reply
            reply = sign_in(conn, user, password, speculative=False)
        assert (reply["code"], reply["errmsg"]) == (18, "Authentication failed.")
        assert conn.user_key is None


def test_one_user_per_connection(server):
    conn = connect(server)
    assert sign_in(conn, "classhub_classes", "classes-pw", speculative=False)["ok"]
    assert sign_in(conn, "classhub_classes", "classes-pw", speculative=False)["ok"]
    reply = sign_in(conn, "root", "root-pw", speculative=False)
    assert reply["code"] == 5626701 and "classhub_classes@admin" in reply["errmsg"]
    assert conn.user_key == ("classhub_classes", "admin")
    run(conn, {"logout": 1, "$db": "admin"})
    assert run(conn, cmd("find"))["code"] == 13
    assert sign_in(conn, "root", "root-pw", speculative=False)["ok"]


def test_other_mechanisms_are_refused(server):
    conn = connect(server)
    reply = run(conn, {"saslStart": 1, "mechanism": "PLAIN", "payload": b"", "$db": "admin"})
    assert reply["code"] == 334
    reply = run(
        conn,
        {"saslStart": 1, "mechanism": "SCRAM-SHA-1", "payload": b"n,,n=root,r=x", "$db": "admin"},
    )
    assert reply["code"] == 18
    reply = run(conn, {"saslContinue": 1, "conversationId": 1, "payload": b"", "$db": "admin"})
    assert reply["code"] == 17


def test_only_authorized_commands_reach_nx(server):
    nx = server.handler
    conn = connect(server, "classhub_classes")
    assert run(conn, cmd("find", filter={}))["ok"]
    assert run(conn, cmd("find", db="classhub_files"))["code"] == 13
    assert run(conn, {"find": "c", "drop": "c", "$db": "classhub"})["code"] == 40415
    assert run(connect(server), cmd("find"))["code"] == 13
    # answered by the server itself, before sign-in too
    for body in ({"ping": 1, "drop": "c", "$db": "classhub"}, {"buildInfo": 1, "$db": "admin"}):
        assert run(connect(server), body)["ok"]
    assert [next(iter(b)) for b in nx.seen] == ["find"]
    assert nx.seen[0]["$db"] == "classhub"


def test_a_dropped_user_loses_its_rights_at_once(server):
    conn = connect(server, "classhub_classes")
    assert run(conn, cmd("find"))["ok"]
    server.store.drop("classhub_classes", "admin")
    assert run(conn, cmd("find"))["code"] == 13


def test_cursors_belong_to_their_user(server):
    nx = server.handler
    nx.replies["find"] = {"ok": 1.0, "cursor": {"id": 1000000000007, "ns": "classhub.c"}}
    classes = connect(server, "classhub_classes")
    assert run(classes, cmd("find"))["cursor"]["id"] == 1000000000007
    # another connection of the same user continues it (pymongo's pool does)
    nx.replies["getMore"] = {"ok": 1.0, "cursor": {"id": 1000000000007, "nextBatch": []}}
    same_user = connect(server, "classhub_classes")
    assert run(same_user, cmd("getMore", 1000000000007, collection="c"))["ok"]
    # root and another user may neither read nor kill it
    for user, db in (("root", "classhub"), ("classhub_files", "classhub_files")):
        other = connect(server, user)
        reply = run(other, cmd("getMore", 1000000000007, db=db, collection="c"))
        assert reply["code"] == 13 and "not created by the authenticated user" in reply["errmsg"]
        assert run(other, cmd("killCursors", "c", db=db, cursors=[1000000000007]))["code"] == 13
    # a cursor id nobody opened is not found, whatever nx-27017 has
    assert run(classes, cmd("getMore", 1000000000008, collection="c"))["code"] == 43
    nx.replies["killCursors"] = {"ok": 1.0, "cursorsKilled": [1000000000007]}
    reply = run(classes, cmd("killCursors", "c", cursors=[1000000000007, 42]))
    assert reply["cursorsNotFound"] == [42]
    assert nx.seen[-1]["cursors"] == [1000000000007]
    assert server.cursor(1000000000007) is None


def test_cursors_are_forgotten_when_their_connection_closes(server):
    server.handler.replies["aggregate"] = {"ok": 1.0, "cursor": {"id": 1005, "ns": "classhub.c"}}
    conn = connect(server, "classhub_classes")
    run(conn, cmd("aggregate", pipeline=[{"$changeStream": {}}]))
    assert server.cursor(1005) == (("classhub_classes", "admin"), "classhub")
    conn.close_streams_for_connection("x")
    assert server.cursor(1005) is None and server.handler.closed == ["x"]


def test_sessions_belong_to_their_user(server):
    lsid = {"id": Binary(os.urandom(16), 4)}
    classes = connect(server, "classhub_classes")
    assert run(classes, cmd("insert", lsid=lsid, startTransaction=True), documents=[{}])["ok"]
    files = connect(server, "classhub_files")
    for body in (
        cmd("commitTransaction", 1, db="admin", lsid=lsid),
        cmd("abortTransaction", 1, db="admin", lsid=lsid),
        cmd("find", db="classhub_files", lsid=lsid),
    ):
        assert run(files, body)["code"] == 13
    # ending it: only its own user's reaches nx-27017
    nx = server.handler
    assert run(files, cmd("endSessions", [lsid], db="admin"))["ok"]
    assert "endSessions" not in [next(iter(b)) for b in nx.seen]
    assert run(classes, cmd("commitTransaction", 1, db="admin", lsid=lsid))["ok"]
    assert run(classes, cmd("endSessions", [lsid], db="classhub"))["ok"]
    assert nx.seen[-1] == {"endSessions": [lsid], "$db": "admin"}


def test_list_databases_shows_only_the_users_own(server):
    server.handler.replies["listDatabases"] = {
        "ok": 1.0,
        "databases": [
            {"name": n, "sizeOnDisk": 10, "empty": False}
            for n in ("admin", "classhub", "classhub_files")
        ],
        "totalSize": 30,
    }
    reply = run(connect(server, "classhub_classes"), cmd("listDatabases", 1, db="admin"))
    assert [d["name"] for d in reply["databases"]] == ["classhub"] and reply["totalSize"] == 10
    reply = run(connect(server, "root"), cmd("listDatabases", 1, db="admin"))
    assert len(reply["databases"]) == 3


def test_user_management_is_roots(server):
    new = {"createUser": "x", "pwd": "pw", "roles": ["readWrite"], "$db": "admin"}
    assert run(connect(server), new)["code"] == 13  # users exist: no localhost exception
    assert run(connect(server, "classhub_classes"), new)["code"] == 13
    assert run(connect(server, "root"), new)["ok"]
    assert server.store.get("x", "admin").roles == (("readWrite", "admin"),)
    mine = run(connect(server, "classhub_files"), {"usersInfo": "classhub_files", "$db": "admin"})
    assert [u["user"] for u in mine["users"]] == ["classhub_files"]
    for spec in (1, "root", {"user": "x", "db": "admin"}):
        reply = run(connect(server, "classhub_files"), {"usersInfo": spec, "$db": "admin"})
        assert reply["code"] == 13
    assert "credentials" not in str(run(connect(server, "root"), {"usersInfo": 1, "$db": "admin"}))
    for body in (
        {"updateUser": "x", "pwd": "new", "$db": "admin"},
        {"dropUser": "x", "$db": "admin"},
    ):
        assert run(connect(server, "classhub_classes"), body)["code"] == 13
        assert run(connect(server, "root"), body)["ok"]
    assert server.store.get("x", "admin") is None


def test_localhost_exception(tmp_path):
    shared = Shared(FakeNx(), UserStore(tmp_path / FILENAME), auth=True)
    root = {"createUser": "root", "pwd": "pw", "roles": ["root"], "$db": "admin"}
    # not from a loopback address: refused even with no user at all
    assert run(connect(shared, peer=("172.17.0.1", 5000)), root)["code"] == 13
    assert run(connect(shared, peer=("::ffff:127.0.0.1", 5000, 0, 0)), root)["ok"]
    again = {**root, "createUser": "root2"}
    assert run(connect(shared), again)["code"] == 13
    assert len(shared.store) == 1


def test_legacy_op_query_carries_only_the_handshake(server):
    conn = connect(server, "root")
    _, [reply] = conn.handle_query(
        {"request_id": 1, "collection": "c", "db": "classhub", "query": {}}
    )
    assert reply["code"] == 5739101
    _, [reply] = conn.handle_query(
        {"request_id": 1, "collection": "$cmd", "db": "classhub", "query": {"find": "c"}}
    )
    assert reply["code"] == 352
    assert server.handler.seen == []


def test_op_msg_with_kind_2_or_two_bodies_is_refused(server):
    conn = connect(server, "root")
    body = cmd("insert")
    msg = {"request_id": 1, "sections": [("body", body), ("payload_docs", [{}])], "_conn_id": 1}
    assert conn.handle_insert(msg)[1]["code"] == 40432
    msg = {"request_id": 1, "sections": [("body", cmd("find")), ("body", body)], "_conn_id": 1}
    assert conn.handle_command(msg)[1]["code"] == 40430
    assert server.handler.seen == []


def test_without_auth_nothing_is_refused_but_sign_in_works(tmp_path):
    store = UserStore(tmp_path / FILENAME)
    store.create("u", "admin", "pw", [("read", "x")])
    shared = Shared(FakeNx(), store, auth=False)
    assert run(connect(shared), cmd("dropDatabase", 1, db="anything"))["ok"]
    assert sign_in(connect(shared), "u", "pw", speculative=True)["ok"]


def test_log_lines_keep_client_text_on_one_line(server, caplog):
    caplog.set_level("INFO", logger="classhub.mongo")
    conn = connect(server)
    reply = sign_in(conn, "evil\nclasshub.mongo INFO root@admin signed in", "x", speculative=False)
    assert reply["code"] == 18
    lines = [r.getMessage() for r in caplog.records]
    assert any("authentication of evil?classhub.mongo" in line for line in lines)
    assert not any("\n" in line for line in lines)
