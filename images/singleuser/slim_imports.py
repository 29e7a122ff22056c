"""Build-time patch: keep the hub's database layer out of every student server's start-up.

jupyterhub-singleuser imports ``jupyterhub.log``, which imports the hub's page handlers
(for one ``isinstance`` check) and ``jupyterhub.metrics``, which imports the hub's ORM
(for one hub-only query). Together that loads SQLAlchemy, Alembic and the hub's handlers,
about 0.3 CPU-seconds of every server start, on 2 cores the bound of a class starting at
once (docs/performance.md). This makes both imports lazy; behaviour is unchanged.

It also defers the rest of the database layer that jupyterhub-singleuser only names in
hub-side functions: ``jupyterhub.scopes`` and ``jupyterhub.roles`` import the ORM (with
SQLAlchemy and Alembic, about 0.2 CPU-seconds) for queries and ``isinstance`` checks the
single-user server never runs, and ``jupyterhub.utils`` imports one SQLAlchemy exception
for an ``except`` clause of a hub-only helper. Those names become lazy modules (see
``LAZY_MODULE`` below) that import the real module on first attribute access, so the hub's
code paths behave exactly as before if they are ever reached.

aiohttp (jupyterhub's HTTP client, used by the server for its calls to the hub API) makes
two TLS contexts when it is imported, each loading the system's CA bundle: about 0.1
CPU-seconds apiece with OpenSSL 3, for HTTPS requests a student's server never sends (the
hub API is plain HTTP on the student network, and an internal-TLS hub passes its own
context). They are made on first use instead.

Each replacement asserts the exact text it replaces, so a different jupyterhub or aiohttp
version fails the image build loudly instead of being patched wrongly (constraints.txt
pins the versions).
"""

import os

import aiohttp
import jupyterhub

ROOT = os.path.dirname(jupyterhub.__file__)
AIOHTTP_ROOT = os.path.dirname(aiohttp.__file__)

LAZY_MODULE = '''"""classhub build-time patch: modules imported on first attribute access."""

import importlib


class LazyModule:
    """Stands in for a module (or a module attribute) until something is read from it."""

    def __init__(self, module, attribute=None):
        self._classhub_module = module
        self._classhub_attribute = attribute

    def __getattr__(self, name):
        target = importlib.import_module(self._classhub_module)
        if self._classhub_attribute:
            target = getattr(target, self._classhub_attribute)
        return getattr(target, name)
'''

PATCHES = {
    "log.py": [
        ("from .handlers.pages import HealthCheckHandler\n", ""),
        (
            "isinstance(handler, StaticFileHandler | HealthCheckHandler)",
            "(isinstance(handler, StaticFileHandler)"
            ' or type(handler).__name__ == "HealthCheckHandler")',
        ),
    ],
    "scopes.py": [
        ("import sqlalchemy as sa\n", ""),
        (
            "from . import orm, roles\n",
            "from . import roles\nfrom ._classhub_lazy import LazyModule\n\n"
            'orm = LazyModule("jupyterhub.orm")\nsa = LazyModule("sqlalchemy")\n',
        ),
    ],
    "roles.py": [
        ("from sqlalchemy import func\n", ""),
        (
            "from . import orm, scopes\n",
            "from . import scopes\nfrom ._classhub_lazy import LazyModule\n\n"
            'orm = LazyModule("jupyterhub.orm")\nfunc = LazyModule("sqlalchemy", "func")\n',
        ),
    ],
    "utils.py": [
        ("from sqlalchemy.exc import SQLAlchemyError\n", ""),
        (
            "        except SQLAlchemyError:\n",
            '        except __import__("sqlalchemy.exc").exc.SQLAlchemyError:\n',
        ),
    ],
    "metrics.py": [
        ("from . import orm\n", ""),
        (
            "self.db.query(orm.User).filter(orm.User.last_activity >= cutoff)",
            "self.db.query(_orm().User).filter(_orm().User.last_activity >= cutoff)",
        ),
        (
            "from .utils import utcnow\n",
            "from .utils import utcnow\n\n\ndef _orm():\n    from . import orm\n\n    return orm\n",
        ),
    ],
}


AIOHTTP_PATCHES = {
    "connector.py": [
        ("import functools\n", "import functools\n"),
        (
            "_SSL_CONTEXT_VERIFIED = _make_ssl_context(True)\n"
            "_SSL_CONTEXT_UNVERIFIED = _make_ssl_context(False)\n",
            "@functools.cache\n"
            "def _classhub_ssl_context(verified: bool) -> SSLContext:\n"
            "    # classhub build-time patch: made on first use, not at import\n"
            "    return _make_ssl_context(verified)\n",
        ),
        (
            "            # not verified or fingerprinted\n"
            "            return _SSL_CONTEXT_UNVERIFIED\n"
            "        sslcontext = self._ssl\n",
            "            # not verified or fingerprinted\n"
            "            return _classhub_ssl_context(False)\n"
            "        sslcontext = self._ssl\n",
        ),
        (
            "            # not verified or fingerprinted\n"
            "            return _SSL_CONTEXT_UNVERIFIED\n"
            "        return _SSL_CONTEXT_VERIFIED\n",
            "            # not verified or fingerprinted\n"
            "            return _classhub_ssl_context(False)\n"
            "        return _classhub_ssl_context(True)\n",
        ),
    ],
}


def patch(root: str, patches: dict) -> None:
    for name, pairs in patches.items():
        path = os.path.join(root, name)
        with open(path) as f:
            text = f.read()
        for old, new in pairs:
            if text.count(old) != 1:
                raise SystemExit(f"slim_imports: {path} changed upstream; review {old!r}")
            text = text.replace(old, new)
        if "_SSL_CONTEXT_" in text:
            raise SystemExit(f"slim_imports: {path} still names _SSL_CONTEXT_*; review it")
        with open(path, "w") as f:
            f.write(text)


def main() -> None:
    with open(os.path.join(ROOT, "_classhub_lazy.py"), "w") as f:
        f.write(LAZY_MODULE)
    patch(ROOT, PATCHES)
    patch(AIOHTTP_ROOT, AIOHTTP_PATCHES)


if __name__ == "__main__":
    main()
