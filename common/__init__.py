"""What every part of classhub builds on: the bottom layer.

The hub plugins (``hub``, ``spawner``, ``authenticator``) and the services (``services``)
import from here; ``common`` imports none of them (``make lint`` checks it, see the
import-linter contracts in ``pyproject.toml``). Each module is small and loads nothing
heavy at import time:

- :mod:`.clock`: the one clock, so tests can move time;
- :mod:`.errors`: errors with the HTTP status they answer with, and the one
  :class:`~common.errors.StoreUnavailable` of every data store;
- :mod:`.groups`: class codes and the hub groups ``class-<code>``/``teachers-<code>``;
- :mod:`.usernames`: the one rule that turns an identity into a username;
- :mod:`.units`: sizes such as ``512M`` and ``2G``;
- :mod:`.naming`: Docker object names of a student's server (containers, home volumes);
- :mod:`.routing`: JupyterHub route specs as Traefik rules (the proxy and the labels);
- :mod:`.blocking`: the thread pool for blocking SDKs (pymongo, docker, minio);
- :mod:`.postgres` and :mod:`.pgmigrate`: the PostgreSQL pool and its migrations;
- :mod:`.mongo`: the MongoDB wrapper.

Import the modules themselves (``from common.postgres import PgPool``): this package
imports nothing.
"""
