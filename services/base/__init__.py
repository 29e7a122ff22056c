"""What every classhub service shares: the app (settings, start, graceful stop), the
handler base (hub sign-in, JSON in and out, errors, health), the hub API client, the
helper containers that read and write students' homes, and what the grades and files
services share of the bucket (names, membership, the object store). See
``services/classes`` for a service built on it; what the hub plugins share too (errors,
the clock, the blocking-SDK wrapper, the PostgreSQL and MongoDB wrappers) is in
``common``.

Import the modules themselves (``from services.base.app import ServiceApp``): this package
imports nothing, so a light user of one module does not load tornado and JupyterHub.
"""
