"""MongoDB with authentication and a user per service (an identity per component in the
data stores), against the
real classhub-mongo (nx-27017 behind SCRAM-SHA-256) with real pymongo, set up by the real
``classhub-stores mongo``: each service's user does its work through the service's own store
code and is refused on the other service's database, on listing every database, on user
management and admin commands; wrong passwords, unknown users and unauthenticated clients
are refused as MongoDB refuses them; a cursor or a session of one user is refused to
another; and the tricks nx-27017 alone would run (a second command in one document, legacy
OP_QUERY, OP_MSG's internal section kind) do nothing."""

from __future__ import annotations

import os
import secrets
import socket
import struct
import subprocess

import bson
import gridfs
import pytest
from bson.son import SON
from pymongo import InsertOne, MongoClient
from pymongo.errors import ClientBulkWriteException, OperationFailure

from common.blocking import BlockingCalls
from common.errors import Unavailable
from harness.stack import VENV_BIN, start_mongo
from hub.stores import mongo as mongo_stores
from services.classes.store import ClassStore
from services.files.pushstore import PushStore

pytestmark = pytest.mark.integration

ROOT_PW = secrets.token_hex(12)
PASSWORDS = {"classes": secrets.token_hex(12), "files": secrets.token_hex(12)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mongo-auth")
    proc, port = start_mongo(workdir)
    address = f"127.0.0.1:{port}"
    # as `make up` runs it: root through the localhost exception, then the services' users
    env = {
        **os.environ,
        "MONGO_ROOT_PASSWORD": ROOT_PW,
        "CLASSHUB_MONGO_CLASSES_PASSWORD": PASSWORDS["classes"],
        "CLASSHUB_MONGO_FILES_PASSWORD": PASSWORDS["files"],
    }
    r = subprocess.run(
        [str(VENV_BIN / "classhub-stores"), "mongo", "--address", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "created the user root (the deployment had no users)" in r.stdout
    assert "created user classhub_classes (readWrite on classhub)" in r.stdout
    info = {"proc": proc, "port": port, "address": address, "workdir": workdir}
    try:
        yield info
    finally:
        info["proc"].stop()  # a test restarts it
        log = proc.log_path.read_text()
        for secret in (ROOT_PW, *PASSWORDS.values()):
            assert secret not in log


def url(server, service: str) -> str:
    user = {"classes": mongo_stores.CLASSES, "files": mongo_stores.FILES}[service]
    return mongo_stores.service_url(user, server["address"], PASSWORDS[service])


def client(url_: str) -> MongoClient:
    return MongoClient(url_, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)


@pytest.fixture(scope="module")
def clients(server):
    made = {
        "classes": client(url(server, "classes")),
        "files": client(url(server, "files")),
        "root": client(f"mongodb://root:{ROOT_PW}@{server['address']}/?authSource=admin"),
        "anonymous": client(f"mongodb://{server['address']}/"),
    }
    yield made
    for c in made.values():
        c.close()


def refused(fn, code: int = 13) -> str:
    with pytest.raises(OperationFailure) as e:
        fn()
    assert e.value.code == code, (e.value.code, e.value.details)
    return e.value.details.get("errmsg", "")


async def test_each_service_works_through_its_own_store_code(server):
    blocking = BlockingCalls(threads=2, timeout=60, name="mongo-auth-test")
    classes = ClassStore(url(server, "classes"), blocking=blocking, timeout=5)
    pushes = PushStore(url(server, "files"), blocking=blocking, timeout=5)
    try:
        await classes.ping()
        await classes.create({"code": "bio7", "name": "Biology", "teachers": [], "students": []})
        await classes.add_students("bio7", ["ann", "bob"], now=1.0)
        assert (await classes.require("bio7"))["students"] == ["ann", "bob"]
        assert [c["code"] for c in await classes.list_for("ann")] == ["bio7"]
        await pushes.ping()
        await pushes.add({"_id": "p7", "code": "bio7", "status": "scheduled", "created": 1})
        assert (await pushes.claim("p7", ["scheduled"]))["status"] == "running"
        await pushes.record({"_id": "p7", "code": "bio7"}, "ann", {"status": "delivered"})
        assert await pushes.statuses(["p7"]) == {"p7": {"delivered": 1}}
        # the same store code with the other service's user (its database in the URL is
        # not that user's), or with a wrong password, answers 503 naming the credentials
        files_user_on_classes = url(server, "files").replace("/classhub_files?", "/classhub?")
        classes_user_on_files = url(server, "classes").replace("/classhub?", "/classhub_files?")
        wrong_password = url(server, "classes").replace(PASSWORDS["classes"], "x" * 24)
        for store, call in (
            (ClassStore(files_user_on_classes, blocking=blocking, timeout=5), "get"),
            (PushStore(classes_user_on_files, blocking=blocking, timeout=5), "get"),
            (ClassStore(wrong_password, blocking=blocking, timeout=5), "ping"),
            (PushStore(wrong_password, blocking=blocking, timeout=5), "ping"),
        ):
            try:
                with pytest.raises(Unavailable, match="refused the service's credentials") as e:
                    await (getattr(store, call)("bio7") if call == "get" else store.ping())
                assert e.value.status_code == 503
                assert e.value.detail in ("13 Unauthorized", "18 AuthenticationFailed")
            finally:
                store.close()
    finally:
        classes.close()
        pushes.close()
        blocking.close()


def test_each_user_reads_and_writes_its_own_database(clients):
    coll = clients["classes"].classhub.roster
    coll.drop()
    coll.create_index("n", unique=True)
    coll.insert_many([{"n": i, "even": i % 2 == 0} for i in range(250)])
    # more than one batch: getMore on the user's own cursor
    assert len(list(coll.find({}, batch_size=20))) == 250
    assert coll.count_documents({"even": True}) == 125
    assert coll.find_one_and_update({"n": 3}, {"$set": {"x": 1}}, return_document=True)["x"] == 1
    refused(lambda: coll.insert_one({"n": 3}), 11000)
    assert [
        d["n"] for d in coll.aggregate([{"$match": {"n": {"$lt": 3}}}, {"$sort": {"n": 1}}])
    ] == [0, 1, 2]
    assert "roster" in clients["classes"].classhub.list_collection_names()
    with clients["classes"].start_session() as s, s.start_transaction():
        coll.insert_one({"n": 1000}, session=s)
    assert coll.count_documents({"n": 1000}) == 1
    assert coll.delete_many({"n": {"$gte": 200}}).deleted_count == 51
    files = clients["files"].classhub_files.notes
    files.insert_one({"k": "v"})
    assert files.find_one({"k": "v"}, {"_id": 0}) == {"k": "v"}


def test_each_user_is_refused_on_the_other_services_database(clients):
    root = clients["root"]
    root.classhub.classes.insert_one({"code": "chem7", "secret": True})
    root.classhub_files.material_pushes.insert_one({"_id": "secret-push"})
    before = (
        root.classhub.classes.count_documents({}),
        root.classhub_files.material_pushes.count_documents({}),
    )
    for me, other, coll in (
        ("files", "classhub", "classes"),
        ("classes", "classhub_files", "material_pushes"),
    ):
        c = clients[me]
        theirs = c[other][coll]
        msg = refused(lambda t=theirs: t.find_one())
        assert msg.startswith(f"not authorized on {other} to execute command {{ find: ")
        refused(lambda t=theirs: t.insert_one({"planted": True}))
        refused(lambda t=theirs: t.update_many({}, {"$set": {"planted": True}}))
        refused(lambda t=theirs: t.delete_many({}))
        refused(lambda t=theirs: t.find_one_and_delete({}))
        refused(lambda t=theirs: t.count_documents({}))
        refused(lambda t=theirs: list(t.aggregate([])))
        refused(lambda t=theirs: t.drop())
        refused(lambda t=theirs: t.create_index("planted"))
        refused(lambda c=c, o=other: c[o].list_collection_names())
        refused(lambda c=c, o=other: c[o].command("dbStats"))
        # ... nor through a pipeline on its own database
        mine = c[{"files": "classhub_files", "classes": "classhub"}[me]].anything
        refused(
            lambda m=mine, o=other, cl=coll: list(
                m.aggregate(
                    [
                        {
                            "$lookup": {
                                "from": cl,
                                "db": o,
                                "localField": "a",
                                "foreignField": "a",
                                "as": "x",
                            }
                        }
                    ]
                )
            )
        )
        refused(lambda m=mine, o=other: list(m.aggregate([{"$out": {"db": o, "coll": "planted"}}])))
        # ... nor through a client-level bulk write naming it
        with pytest.raises(ClientBulkWriteException) as e:
            c.bulk_write([InsertOne({"planted": 1}, namespace=f"{other}.{coll}")])
        assert e.value.error.code == 13
        # every other database: admin, config, a new one
        for db in ("admin", "config", "local", "planted"):
            refused(lambda c=c, d=db: c[d].anything.insert_one({"planted": True}))
            refused(lambda c=c, d=db: c[d].anything.find_one())
    after = (
        root.classhub.classes.count_documents({}),
        root.classhub_files.material_pushes.count_documents({}),
    )
    assert after == before
    assert "planted" not in root.list_database_names()


def test_listing_databases_shows_only_the_users_own(clients):
    clients["root"].classhub_files.material_pushes.insert_one({"_id": "listed"})
    assert clients["classes"].list_database_names() == ["classhub"]
    assert clients["files"].list_database_names() == ["classhub_files"]
    assert {"admin", "classhub", "classhub_files"} <= set(clients["root"].list_database_names())
    refused(lambda: clients["classes"].admin.command("listDatabases", authorizedDatabases=False))
    refused(lambda: clients["anonymous"].list_database_names())


def test_user_management_and_admin_commands_are_roots(clients):
    for me in ("classes", "files"):
        admin = clients[me].admin
        msg = refused(
            lambda a=admin: a.command(
                "createUser", "planted", pwd="x" * 12, roles=[{"role": "root", "db": "admin"}]
            )
        )
        assert msg.startswith("not authorized on admin to execute command { createUser:")
        refused(lambda a=admin: a.command("updateUser", "classhub_classes", roles=["root"]))
        refused(lambda a=admin: a.command("dropUser", "root"))
        refused(lambda a=admin: a.command("usersInfo", 1))
        refused(lambda a=admin: a.command("serverStatus"))
        refused(lambda a=admin: a.command("shutdown"))
        own = {"classes": "classhub", "files": "classhub_files"}[me]
        c = clients[me]
        refused(lambda c=c, o=own: c.drop_database(o))
        refused(lambda c=c, o=own: c[o].anything.rename("other"))
        # a user sees its own user document, not others'
        users = admin.command("usersInfo", f"classhub_{me}")["users"]
        assert [(u["user"], u["roles"]) for u in users] == [
            (f"classhub_{me}", [{"role": "readWrite", "db": own}])
        ]
    root = clients["root"].admin
    assert {u["user"] for u in root.command("usersInfo", 1)["users"]} == {
        "root",
        "classhub_classes",
        "classhub_files",
    }
    assert "credentials" not in str(root.command("usersInfo", 1))
    refused(
        lambda: clients["anonymous"].admin.command(
            "createUser", "planted", pwd="x" * 12, roles=["root"]
        )
    )


def test_wrong_passwords_unknown_users_and_anonymous_clients_are_refused(server, clients):
    a = server["address"]
    wrong = f"mongodb://classhub_classes:{'x' * 24}@{a}/classhub?authSource=admin"
    for bad in (
        wrong,
        f"mongodb://nobody:{PASSWORDS['classes']}@{a}/classhub?authSource=admin",
        # the right password, but the user lives in admin
        url(server, "classes").replace("authSource=admin", "authSource=classhub"),
        # the other service's password
        f"mongodb://classhub_classes:{PASSWORDS['files']}@{a}/classhub?authSource=admin",
    ):
        c = client(bad)
        try:
            msg = refused(lambda c=c: c.classhub.classes.find_one(), 18)
            assert msg == "Authentication failed."
            refused(lambda c=c: c.admin.command("ping"), 18)
        finally:
            c.close()
    anonymous = clients["anonymous"]
    msg = refused(lambda: anonymous.classhub.classes.find_one())
    assert msg == "command find requires authentication"
    refused(lambda: anonymous.classhub.classes.insert_one({"planted": 1}))
    refused(lambda: anonymous.classhub_files.material_pushes.delete_many({}))
    refused(lambda: anonymous.classhub.command("dbStats"))
    # what MongoDB answers before sign-in
    assert anonymous.admin.command("ping")["ok"] == 1
    assert anonymous.admin.command("hello")["isWritablePrimary"] is True
    assert anonymous.admin.command("buildInfo")["process"] == "classhub-mongo"
    assert anonymous.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"] == []


def test_a_cursor_of_one_user_is_refused_to_another(clients):
    coll = clients["classes"].classhub.cursor_test
    coll.drop()
    coll.insert_many([{"i": i} for i in range(30)])
    cursor = coll.find({}, batch_size=5)
    first = [next(cursor) for _ in range(5)]
    cursor_id = cursor.cursor_id
    assert cursor_id
    for me, db in (("files", "classhub_files"), ("root", "classhub")):
        c = clients[me]
        msg = refused(
            lambda c=c, d=db: c[d].command("getMore", cursor_id, collection="cursor_test")
        )
        assert msg == f"cursor id {cursor_id} was not created by the authenticated user"
        refused(lambda c=c, d=db: c[d].command("killCursors", "cursor_test", cursors=[cursor_id]))
    refused(
        lambda: clients["anonymous"].classhub.command(
            "getMore", cursor_id, collection="cursor_test"
        )
    )
    # its own user reads on, untouched
    assert [d["i"] for d in first + list(cursor)] == list(range(30))


def test_a_change_stream_of_one_user_is_refused_to_another(clients):
    coll = clients["classes"].classhub.stream_test
    coll.insert_one({"i": 0})
    stream = coll.watch()
    try:
        stream_id = stream._cursor.cursor_id
        assert stream_id
        for me, db in (("files", "classhub_files"), ("root", "classhub")):
            c = clients[me]
            msg = refused(
                lambda c=c, d=db: c[d].command("getMore", stream_id, collection="stream_test")
            )
            assert msg == f"cursor id {stream_id} was not created by the authenticated user"
        # nor may the other service open one on the classes database, or on every database
        refused(lambda: clients["files"].classhub.stream_test.watch().try_next())
        refused(lambda: clients["files"].watch().try_next())
        coll.insert_one({"i": 1})
        change = stream.try_next()
        assert change["operationType"] == "insert" and change["ns"]["coll"] == "stream_test"
    finally:
        stream.close()


def test_gridfs_of_one_service_is_refused_to_the_other(clients):
    mine = gridfs.GridFS(clients["classes"].classhub)
    file_id = mine.put(b"the classes' file", filename="notes.txt")
    assert mine.get(file_id).read() == b"the classes' file"
    theirs = gridfs.GridFS(clients["files"].classhub)
    refused(lambda: theirs.get(file_id).read())
    refused(lambda: theirs.put(b"planted", filename="notes.txt"))
    assert [f.filename for f in mine.find()] == ["notes.txt"]


def test_a_session_of_one_user_is_refused_to_another(clients):
    classes, files = clients["classes"], clients["files"]
    classes.classhub.tx_test.insert_one({"pending": False})
    mine = classes.start_session()
    mine.start_transaction()
    classes.classhub.tx_test.insert_one({"pending": True}, session=mine)
    theirs = files.start_session()
    assert theirs.session_id != mine.session_id  # materialises its server session
    # an attacker who learned the lsid sends it as their own
    theirs._server_session.session_id = mine.session_id
    refused(lambda: files.classhub_files.anything.find_one({}, session=theirs))
    refused(lambda: files.admin.command("commitTransaction", session=theirs))
    mine.abort_transaction()
    assert classes.classhub.tx_test.count_documents({"pending": True}) == 0
    mine.end_session()


def test_a_second_command_in_one_document_is_refused(clients):
    root = clients["root"]
    root.classhub.victim.insert_one({"keep": True})
    files = clients["files"]
    # nx-27017 alone would run the dropDatabase (it dispatches on any key it knows)
    msg = refused(
        lambda: files.classhub_files.command(
            SON([("find", "material_pushes"), ("dropDatabase", "classhub")])
        ),
        40415,
    )
    assert msg == "BSON field 'find.dropDatabase' is an unknown field."
    refused(
        lambda: files.classhub.command(SON([("find", "victim"), ("drop", "victim")])),
        40415,
    )
    # before sign-in, ping is answered by the stand-in itself: the drop never runs
    clients["anonymous"].classhub.command(SON([("ping", 1), ("drop", "victim")]))
    assert root.classhub.victim.count_documents({"keep": True}) == 1


def raw(port: int, opcode: int, body: bytes) -> list[dict]:
    """One wire message on a fresh (unauthenticated) connection; the reply's documents."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack("<iiii", 16 + len(body), 77, 0, opcode) + body)
        header = b""
        while len(header) < 16:
            header += s.recv(16 - len(header))
        length, _, _, reply_op = struct.unpack("<iiii", header)
        data = b""
        while len(data) < length - 16:
            data += s.recv(length - 16 - len(data))
    if reply_op == 1:  # OP_REPLY: flags, cursor id, starting from, count, documents
        return bson.decode_all(data[20:])
    return [bson.decode(data[5:])]  # OP_MSG: flags, kind 0, the body


def test_legacy_op_query_and_op_msg_kind_2_do_nothing(server, clients):
    root = clients["root"]
    root.classhub.legacy.insert_one({"secret": "s"})
    port = server["port"]

    def op_query(ns: str, query: dict) -> list[dict]:
        body = struct.pack("<i", 0) + ns.encode() + b"\0" + struct.pack("<ii", 0, 10)
        return raw(port, 2004, body + bson.encode(query))

    # a legacy find (no sign-in on this connection): refused, nothing read
    [reply] = op_query("classhub.legacy", {})
    assert reply["code"] == 5739101 and "secret" not in reply
    [reply] = op_query("classhub.$cmd", {"find": "legacy"})
    assert reply["code"] == 352
    [reply] = op_query("admin.$cmd", {"isMaster": 1})
    assert reply["ismaster"] is True
    # OP_MSG with a kind 2 section, which nx-27017 alone inserts without a look at the user
    docs = bson.encode({"planted": True})
    msg = (
        struct.pack("<I", 0)
        + b"\0"
        + bson.encode({"insert": "legacy", "$db": "classhub"})
        + b"\2"
        + struct.pack("<I", 1)
        + docs
    )
    [reply] = raw(port, 2013, msg)
    assert reply["ok"] == 0 and reply["code"] == 40432
    assert root.classhub.legacy.count_documents({"planted": True}) == 0


def test_users_persist_and_a_dropped_user_is_out_at_once(server, clients):
    root = clients["root"]
    root.admin.command(
        "createUser", "temp", pwd="temp-password-1", roles=[{"role": "readWrite", "db": "classhub"}]
    )
    temp = client(f"mongodb://temp:temp-password-1@{server['address']}/?authSource=admin")
    try:
        assert temp.classhub.anything.find_one() is None or True
        root.admin.command("dropUser", "temp")
        refused(lambda: temp.classhub.anything.find_one())
    finally:
        temp.close()
    # a restart keeps the users; the localhost exception stays closed
    server["proc"].stop()
    proc, _ = start_mongo(server["workdir"], port=server["port"])
    server["proc"] = proc
    c = client(url(server, "classes"))
    try:
        assert c.classhub.roster.count_documents({}) > 0
    finally:
        c.close()
    anonymous = client(f"mongodb://{server['address']}/")
    try:
        refused(
            lambda: anonymous.admin.command("createUser", "planted", pwd="x" * 12, roles=["root"])
        )
    finally:
        anonymous.close()


def test_root_from_the_environment_as_in_the_offline_image(tmp_path):
    env = {"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": "env-root-pw-1"}
    proc, port = start_mongo(tmp_path / "mongo", env=env)
    try:
        root = client(f"mongodb://root:env-root-pw-1@127.0.0.1:{port}/?authSource=admin")
        status = root.admin.command("connectionStatus")["authInfo"]
        assert status["authenticatedUserRoles"] == [{"role": "root", "db": "admin"}]
        root.close()
        # a user exists: no localhost exception, and the set-up signs in as root
        anonymous = client(f"mongodb://127.0.0.1:{port}/")
        refused(lambda: anonymous.admin.command("createUser", "x", pwd="y" * 12, roles=["root"]))
        anonymous.close()
        done = mongo_stores.bootstrap(
            f"127.0.0.1:{port}", root_password="env-root-pw-1", passwords=PASSWORDS
        )
        assert "created the user root (the deployment had no users)" not in done
        with pytest.raises(mongo_stores.SetupError, match="MONGO_ROOT_PASSWORD"):
            mongo_stores.bootstrap(
                f"127.0.0.1:{port}", root_password="not-the-root-pw", passwords=PASSWORDS
            )
    finally:
        proc.stop()


def test_upgrade_of_an_offline_deployment_keeps_its_data(tmp_path):
    # the offline image before this version: nx-27017 alone, the files service's pushes
    # still in the classes database, no users
    workdir = tmp_path / "mongo"
    bare, port = start_mongo(workdir, bare=True)
    try:
        old = client(f"mongodb://127.0.0.1:{port}/")
        old.classhub.classes.insert_one({"code": "geo1", "students": ["ann"]})
        old.classhub.material_pushes.insert_one({"_id": "push1", "code": "geo1"})
        old.close()
    finally:
        bare.stop()
    # this version's image on the same data: root from the environment, then `make up`'s set-up
    env = {"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": ROOT_PW}
    proc, port = start_mongo(workdir, port=port, env=env)
    try:
        done = mongo_stores.bootstrap(
            f"127.0.0.1:{port}", root_password=ROOT_PW, passwords=PASSWORDS
        )
        assert "moved 1 documents of classhub.material_pushes to classhub_files" in done
        server = {"address": f"127.0.0.1:{port}"}
        classes, files = client(url(server, "classes")), client(url(server, "files"))
        assert classes.classhub.classes.find_one({"code": "geo1"})["students"] == ["ann"]
        assert files.classhub_files.material_pushes.find_one({"_id": "push1"})["code"] == "geo1"
        refused(lambda: files.classhub.classes.find_one())
        anonymous = client(f"mongodb://127.0.0.1:{port}/")
        refused(lambda: anonymous.classhub.classes.find_one())
        for c in (classes, files, anonymous):
            c.close()
    finally:
        proc.stop()
