"""Build-time patch: keep the hub's database layer out of every student server's start-up.

jupyterhub-singleuser imports ``jupyterhub.log``, which imports the hub's page handlers
(for one ``isinstance`` check) and ``jupyterhub.metrics``, which imports the hub's ORM
(for one hub-only query). Together that loads SQLAlchemy, Alembic and the hub's handlers,
about 0.3 CPU-seconds of every server start, on 2 cores the bound of a class starting at
once (docs/performance.md). This makes both imports lazy; behaviour is unchanged.

Each replacement asserts the exact text it replaces, so a different jupyterhub version
fails the image build loudly instead of being patched wrongly.
"""

import os

import jupyterhub

ROOT = os.path.dirname(jupyterhub.__file__)

PATCHES = {
    "log.py": [
        ("from .handlers.pages import HealthCheckHandler\n", ""),
        (
            "isinstance(handler, StaticFileHandler | HealthCheckHandler)",
            "(isinstance(handler, StaticFileHandler)"
            ' or type(handler).__name__ == "HealthCheckHandler")',
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


def main() -> None:
    for name, pairs in PATCHES.items():
        path = os.path.join(ROOT, name)
        with open(path) as f:
            text = f.read()
        for old, new in pairs:
            if text.count(old) != 1:
                raise SystemExit(f"slim_imports: {name} changed upstream; review {old!r}")
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
