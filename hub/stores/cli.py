"""``classhub-stores``: set the data stores up with an identity per component.

Secrets are read from the environment (or ``--env-file``, the stack's
``.run/classhub.env``), never from the command line, and never printed. Each subcommand is
idempotent; ``scripts/up.sh`` runs them on every ``make up``::

    classhub-stores postgres --host 127.0.0.1 --port 5432
        # POSTGRES_PASSWORD, CLASSHUB_PG_{HUB,ACCOUNTS,GRADES}_PASSWORD
    classhub-stores mongo --address 127.0.0.1:27017
        # MONGO_ROOT_PASSWORD, CLASSHUB_MONGO_{CLASSES,FILES}_PASSWORD
    classhub-stores s3-config --out .run/seaweedfs/s3.json
        # S3_ADMIN_*, CLASSHUB_S3_{FILES,GRADES}_{ACCESS,SECRET}_KEY
    classhub-stores s3-bucket --endpoint http://127.0.0.1:8333
    classhub-stores hub-env --out .run/hub.env

Exit status 0 when done, 1 when a store refused or is unreachable, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from . import hubenv, mongo, postgres, s3

log = logging.getLogger("classhub.stores")


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.env_file:
        try:
            env.update(hubenv.read_env_file(Path(args.env_file).read_text()))
        except OSError as e:
            raise SystemExit(
                f"classhub-stores: cannot read {args.env_file}: {e.strerror}"
            ) from None
    return env


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise postgres.SetupError(f"set {', '.join(missing)} (scripts/up.sh generates them)")
    return [env[n] for n in names]


def _write_private(path: str, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically with ``mode``."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cmd_postgres(args, env) -> list[str]:
    (admin_password,) = _need(env, "POSTGRES_PASSWORD")
    passwords = dict(
        zip(
            [c.name for c in postgres.COMPONENTS],
            _need(env, *(c.password_env for c in postgres.COMPONENTS)),
            strict=True,
        )
    )
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(
        "",
        host=args.host,
        port=str(args.port),
        dbname=args.database,
        user=args.admin_user,
        password=admin_password,
        application_name="classhub-stores",
    )
    with postgres.connect_admin(conninfo, timeout=args.timeout) as conn:
        return postgres.bootstrap(conn, passwords)


def cmd_mongo(args, env) -> list[str]:
    root, classes, files = _need(
        env, "MONGO_ROOT_PASSWORD", mongo.CLASSES.password_env, mongo.FILES.password_env
    )
    return mongo.bootstrap(
        args.address,
        root_password=root,
        passwords={"classes": classes, "files": files},
        timeout=args.timeout,
    )


def _keys(env, access: str, secret: str) -> s3.Keys:
    return s3.Keys(*_need(env, access, secret))


def cmd_s3_config(args, env) -> list[str]:
    text = s3.identities_json(
        env.get("CLASSHUB_S3_BUCKET") or s3.DEFAULT_BUCKET,
        admin=_keys(env, s3.ADMIN_ACCESS_ENV, s3.ADMIN_SECRET_ENV),
        files=_keys(env, s3.FILES.access_env, s3.FILES.secret_env),
        grades=_keys(env, s3.GRADES.access_env, s3.GRADES.secret_env),
        # a Swarm stack's saved homes (scripts/swarm/deploy.sh sets the keys)
        homes=(
            _keys(env, s3.HOMES.access_env, s3.HOMES.secret_env)
            if env.get(s3.HOMES.access_env)
            else None
        ),
        # the classes service's helper jobs on a Swarm (scripts/swarm/deploy.sh sets them)
        classes=(
            _keys(env, s3.CLASSES.access_env, s3.CLASSES.secret_env)
            if env.get(s3.CLASSES.access_env)
            else None
        ),
    )
    # read by the S3 container as another user: 0644 inside the 0700 directory .run/
    _write_private(args.out, text, 0o644)
    return [f"wrote {args.out}"]


def cmd_s3_bucket(args, env) -> list[str]:
    bucket = env.get("CLASSHUB_S3_BUCKET") or s3.DEFAULT_BUCKET
    admin = _keys(env, s3.ADMIN_ACCESS_ENV, s3.ADMIN_SECRET_ENV)
    created = s3.ensure_bucket(args.endpoint, admin, bucket, timeout=args.timeout)
    return [f"created bucket {bucket}"] if created else []


def cmd_hub_env(args, env) -> list[str]:
    source = hubenv.read_env_file(Path(args.env_file).read_text()) if args.env_file else env
    out = hubenv.hub_environment(
        source,
        pg_address=args.pg_address,
        mongo_address=args.mongo_address,
    )
    header = (
        "The hub's environment, made from .run/classhub.env by `classhub-stores hub-env`\n"
        "(scripts/up.sh) on every run: edit .run/classhub.env, not this file."
    )
    _write_private(args.out, hubenv.format_env_file(out, header), 0o600)
    return [f"wrote {args.out}"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="classhub-stores",
        description="Set classhub's data stores up with an identity per component.",
    )
    p.add_argument("--env-file", help="read the settings from this file (e.g. .run/classhub.env)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per store call (10)")
    sub = p.add_subparsers(dest="command", required=True)

    pg = sub.add_parser("postgres", help="roles, schemas and owners in PostgreSQL")
    pg.add_argument("--host", default="127.0.0.1")
    pg.add_argument("--port", type=int, default=5432)
    pg.add_argument("--database", default="jupyterhub")
    pg.add_argument("--admin-user", default="classhub", help="the superuser (classhub)")
    pg.set_defaults(run=cmd_postgres)

    mg = sub.add_parser("mongo", help="users per service in MongoDB")
    mg.add_argument("--address", default="127.0.0.1:27017", help="host:port")
    mg.set_defaults(run=cmd_mongo)

    sc = sub.add_parser("s3-config", help="write SeaweedFS's identities file")
    sc.add_argument("--out", required=True)
    sc.set_defaults(run=cmd_s3_config)

    sb = sub.add_parser("s3-bucket", help="create the bucket with the admin identity")
    sb.add_argument("--endpoint", default="http://127.0.0.1:8333")
    sb.set_defaults(run=cmd_s3_bucket)

    he = sub.add_parser("hub-env", help="write the hub's environment file")
    he.add_argument("--out", required=True)
    he.add_argument("--pg-address", default="127.0.0.1:15432")
    he.add_argument("--mongo-address", default="127.0.0.1:17017")
    he.set_defaults(run=cmd_hub_env)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="classhub-stores: %(message)s")
    args = parser().parse_args(argv)
    env = _env(args)
    try:
        done = args.run(args, env)
    except (postgres.SetupError, mongo.SetupError, ValueError) as e:
        sys.stderr.write(f"classhub-stores {args.command}: {e}\n")
        return 1
    except Exception as e:  # noqa: BLE001 - an SDK's error, reported without a traceback
        sys.stderr.write(f"classhub-stores {args.command}: {type(e).__name__}: {e}\n")
        return 1
    for line in done:
        sys.stdout.write(f"classhub-stores {args.command}: {line}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
