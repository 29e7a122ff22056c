"""``classhub-mongo``: a MongoDB stand-in with authentication, for the offline stack and the
tests (production runs the official ``mongo`` image with ``--auth``).

nx-27017 (a MongoDB wire-protocol server on SQLite, pinned to one version in
``pyproject.toml`` and ``images/build.sh``) has no users: it answers ``saslStart`` and
``createUser`` with ``ok`` and runs every command for anyone. This package puts MongoDB's
access control in front of it without changing it:

- :mod:`.scram`: SCRAM-SHA-256 (RFC 5802/7677) as MongoDB runs it.
- :mod:`.users`: users with the built-in roles ``root``, ``readWrite`` and ``read``, in a
  file of the data directory.
- :mod:`.authz`: which command needs which role on which database.
- :mod:`.connection`: one client connection; it stands in nx-27017's handler for nx's own
  connection loop, answers sign-in and user management itself, checks every other command
  and keeps cursors and sessions to the user who opened them.
- :mod:`.server`: the ``classhub-mongo`` command.

It imports nothing of classhub outside this package, so the offline image
``classhub/mongo`` carries only it and nx-27017.
"""
