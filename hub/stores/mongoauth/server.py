"""``classhub-mongo``: nx-27017 behind SCRAM-SHA-256 sign-in and MongoDB's built-in roles.

    classhub-mongo --auth --data-dir DIR [--host 127.0.0.1] [--port 27017]

``--auth`` (or ``CLASSHUB_MONGO_AUTH=1``) makes every command but the handshake need a
signed-in user with the right role (:mod:`.authz`); without it, sign-in works but nothing
is refused (as ``mongod`` without ``--auth``). Databases are SQLite files in ``DIR``, one per
database (nx-27017's ``--data-dir`` mode; the single-file mode would let every database
share one file), and the users are in ``DIR/.classhub-users.json``.

``MONGO_INITDB_ROOT_USERNAME`` and ``MONGO_INITDB_ROOT_PASSWORD`` (as for the official
``mongo`` image) create that ``root`` user in ``admin`` at start when there is no user yet.
Without them, the first user can be created from a loopback address without signing in
(MongoDB's localhost exception); once a user exists, nobody can.

The server runs nx-27017 |NX_VERSION| exactly: the authorization table depends on how
that version dispatches commands (:data:`.authz.NX_DISPATCH_KEYS`); another version is
refused at start until the table has been checked against it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import signal
import sys
from pathlib import Path

from .users import FILENAME, UserError, UserStore

NX_VERSION = "0.8.1"
__doc__ = (__doc__ or "").replace("|NX_VERSION|", NX_VERSION)

log = logging.getLogger("classhub.mongo")


def nx_version() -> str:
    return importlib.metadata.version("nx-27017")


def make_handler(data_dir: Path):
    """nx-27017's handler over one SQLite file per database, none of which can ATTACH
    another (SQLITE_LIMIT_ATTACHED 0: defence in depth, should a query ever reach SQL)."""
    from nx_27017.handler import NeoSQLiteHandler

    class Handler(NeoSQLiteHandler):
        def _open_db_conn(self, db_name):
            conn = super()._open_db_conn(db_name)
            raw = getattr(conn, "db", None)
            setlimit = getattr(raw, "setlimit", None)
            if setlimit is not None:
                import sqlite3

                setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            return conn

    handler = Handler(str(data_dir), data_dir=str(data_dir))
    if handler._mode != "files":
        raise SystemExit(f"classhub-mongo: {data_dir} must be a directory")
    return handler


def initial_root(store: UserStore, env) -> str | None:
    """Create ``root`` from ``MONGO_INITDB_ROOT_*`` when there is no user; the name."""
    name = env.get("MONGO_INITDB_ROOT_USERNAME")
    password = env.get("MONGO_INITDB_ROOT_PASSWORD")
    if not name or not password or len(store):
        return None
    store.create(name, "admin", password, [("root", "admin")], only_if_empty=True)
    return name


async def serve(shared, host: str, port: int, ready=None) -> None:
    from nx_27017.server import handle_client

    from .connection import Connection

    async def on_client(reader, writer):
        conn = Connection(shared, writer.get_extra_info("peername"))
        await handle_client(reader, writer, conn)

    server = await asyncio.start_server(on_client, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening on %s:%s (authentication %s)", host, port, "on" if shared.auth else "OFF")
    if ready:
        ready()
    async with server:
        await stop.wait()
    log.info("stopping")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="classhub-mongo",
        description="A MongoDB stand-in with users and roles: nx-27017 behind SCRAM-SHA-256.",
    )
    p.add_argument("--data-dir", required=True, help="one SQLite file per database, and users")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=27017, help="port (27017)")
    p.add_argument(
        "--auth",
        action="store_true",
        default=os.environ.get("CLASSHUB_MONGO_AUTH", "") in ("1", "true", "yes"),
        help="require a signed-in user with the right role for every command "
        "(also CLASSHUB_MONGO_AUTH=1)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # nx-27017 logs whole commands at INFO, neosqlite each query plan fallback as a WARNING
    if args.log_level != "DEBUG":
        logging.getLogger("nx_27017").setLevel(logging.WARNING)
        logging.getLogger("neosqlite").setLevel(logging.ERROR)
    version = nx_version()
    if version != NX_VERSION:
        sys.stderr.write(
            f"classhub-mongo: nx-27017 {version} is installed, this server is made for "
            f"{NX_VERSION} (its command dispatch decides what the authorization table must "
            "cover); install nx-27017=={NX_VERSION}\n"
        )
        return 2
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = UserStore(data_dir / FILENAME)
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.stderr.write(
            f"classhub-mongo: cannot read the users in {data_dir / FILENAME}: "
            f"{type(e).__name__}: {e}\n"
        )
        return 2
    try:
        created = initial_root(store, os.environ)
    except UserError as e:
        sys.stderr.write(f"classhub-mongo: cannot create the root user: {e}\n")
        return 2
    if created:
        log.info("created user %s@admin (root) from MONGO_INITDB_ROOT_USERNAME", created)
    from .connection import Shared

    shared = Shared(make_handler(data_dir), store, auth=args.auth, version=version)
    try:
        asyncio.run(serve(shared, args.host, args.port))
    finally:
        shared.handler.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
