"""What every classhub service shares: the app (settings, start, graceful stop), the
handler base (hub sign-in, JSON in and out, errors, health), the blocking-SDK wrapper,
the hub API client and the PostgreSQL migration runner. See ``services/classes`` for a
service built on it.

Import the modules themselves (``from services.base.app import ServiceApp``): this package
imports nothing, so a light user such as the ``classhub-user`` command, which needs only
:mod:`.pgmigrate`, does not load tornado and JupyterHub.
"""
