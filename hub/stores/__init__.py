"""Least privilege in the data stores: an identity per component.

Each component reaches its data store with an identity of its own that covers only its own
data, and nothing at run time uses an administrator's identity:

- :mod:`.postgres`: a PostgreSQL role per component (the hub, the accounts store, the
  grades service), each owning only its schema; the set-up also upgrades a database whose
  tables the superuser made.
- :mod:`.mongo`: a MongoDB user per service (classes, files), each limited to its database.
- :mod:`.s3`: an S3 identity per service (files, grades), limited to its key prefixes.
- :mod:`.hubenv`: the hub's environment file, with the components' credentials and
  without the stores' administrator credentials.

``classhub-stores`` (:mod:`.cli`) runs them; ``scripts/up.sh`` and the test harness
(``harness/stack.py``) use the same code.
"""
