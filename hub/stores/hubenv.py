"""The hub container's environment (``.run/hub.env``), made from ``.run/classhub.env``.

``.run/classhub.env`` holds every setting and secret of the stack, the data stores'
administrator credentials included (the PostgreSQL superuser's password, MongoDB's root
password, the S3 admin keys): ``scripts/up.sh`` and the set-up (``classhub-stores``) need
them, the running hub and its services do not. :func:`hub_environment` keeps every other
setting (an admin's own additions too), leaves those out, and writes the components' own
connection URLs, derived from their passwords on every ``make up``:

| variable                      | identity                                      |
|-------------------------------|-----------------------------------------------|
| ``CLASSHUB_DB_URL``             | PostgreSQL role ``classhub_hub`` (JupyterHub)   |
| ``CLASSHUB_ACCOUNTS_DB_URL``    | PostgreSQL role ``classhub_auth``               |
| ``CLASSHUB_GRADES_DB_URL``      | PostgreSQL role ``classhub_grades``             |
| ``CLASSHUB_CLASSES_MONGO_URL``  | MongoDB user ``classhub_classes``, database ``classhub`` |
| ``CLASSHUB_FILES_MONGO_URL``    | MongoDB user and database ``classhub_files``    |
| ``CLASSHUB_S3_{FILES,GRADES}_*`` | the services' S3 identities (kept as they are) |

An earlier version's ``CLASSHUB_DB_URL`` (the superuser's), ``CLASSHUB_MONGO_URL`` and
``CLASSHUB_S3_ACCESS_KEY``/``CLASSHUB_S3_SECRET_KEY`` (an S3 identity with every right)
are left out as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from . import mongo, postgres, s3

#: never in the hub's environment: the stores' administrator credentials, and what the
#: components' own settings replace
WITHHELD = frozenset(
    {
        "POSTGRES_PASSWORD",
        "MONGO_ROOT_PASSWORD",
        s3.ADMIN_ACCESS_ENV,
        s3.ADMIN_SECRET_ENV,
        # an earlier version's: the superuser's URL, one MongoDB URL without a user, the S3
        # identity with every right
        "CLASSHUB_DB_URL",
        "CLASSHUB_MONGO_URL",
        "CLASSHUB_S3_ACCESS_KEY",
        "CLASSHUB_S3_SECRET_KEY",
        # the passwords themselves: the hub gets them inside the URLs below
        *(c.password_env for c in postgres.COMPONENTS),
        *(u.password_env for u in mongo.USERS),
    }
)
DERIVED = (
    "CLASSHUB_DB_URL",
    "CLASSHUB_ACCOUNTS_DB_URL",
    "CLASSHUB_GRADES_DB_URL",
    "CLASSHUB_CLASSES_MONGO_URL",
    "CLASSHUB_FILES_MONGO_URL",
)


def pg_url(c: postgres.Component, password: str, address: str, database: str) -> str:
    return (
        f"postgresql+psycopg://{quote(c.role, safe='')}:{quote(password, safe='')}"
        f"@{address}/{database}"
    )


def hub_environment(
    env: Mapping[str, str],
    *,
    pg_address: str = "127.0.0.1:15432",
    mongo_address: str = "127.0.0.1:17017",
    database: str = "jupyterhub",
) -> dict[str, str]:
    """The hub's variables from the stack's."""
    need = [c.password_env for c in postgres.COMPONENTS]
    need += [u.password_env for u in mongo.USERS]
    need += [name for s in s3.SERVICES for name in (s.access_env, s.secret_env)]
    missing = [n for n in need if not env.get(n)]
    if missing:
        raise ValueError(f"missing in the stack's settings: {', '.join(missing)}")
    out = {k: v for k, v in env.items() if k not in WITHHELD and k not in DERIVED}
    urls = {
        c.name: pg_url(c, env[c.password_env], pg_address, database) for c in postgres.COMPONENTS
    }
    out["CLASSHUB_DB_URL"] = urls["hub"]
    out["CLASSHUB_ACCOUNTS_DB_URL"] = urls["accounts"]
    out["CLASSHUB_GRADES_DB_URL"] = urls["grades"]
    for u, name in (
        (mongo.CLASSES, "CLASSHUB_CLASSES_MONGO_URL"),
        (mongo.FILES, "CLASSHUB_FILES_MONGO_URL"),
    ):
        out[name] = mongo.service_url(u, mongo_address, env[u.password_env])
    return out


def read_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines as docker-compose reads an ``env_file`` (no quotes, no
    expansion); comments and blank lines skipped, the last of a repeated name wins."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        env[name.strip()] = value
    return env


def format_env_file(env: Mapping[str, str], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for name, value in env.items():
        if "\n" in value or "\n" in name:
            raise ValueError(f"{name}: a value in an env file is one line")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"
