"""classhub's own hub scopes (JupyterHub custom scopes), named once for every layer.

:data:`STUDENT_ACCOUNTS` is defined by ``hub.config.configure_auth``, checked by the
authenticator's student-account API (``authenticator/admin_handlers.py``) and held by the
classes service's role (``services/classes/config.py``).
"""

#: create student accounts, reset the passwords of student accounts; nothing else
STUDENT_ACCOUNTS = "custom:classhub:student-accounts"
STUDENT_ACCOUNTS_DESCRIPTION = (
    "Create student accounts and reset the passwords of student accounts (the classes "
    "service, for a class's teachers); never a teacher's or an admin's account"
)

#: where students' homes are on a Swarm (hub/homes_api.py): which homes exist, on which node
#: one is, and bringing a stopped one from the S3 store onto a node for a helper service
HOMES = "custom:classhub:homes"
HOMES_DESCRIPTION = (
    "On a Swarm: list which students' homes exist and find (or bring from the store) the "
    "node of one, for the services' helper services that read and write homes; no file "
    "of a home, no server start or stop"
)

#: a Swarm's backups (hub/backup_api.py): save every student's home into the S3 store now,
#: and make a home's archive from a backup its newest copy
BACKUP = "custom:classhub:backup"
BACKUP_DESCRIPTION = (
    "On a Swarm: save every student's home into the S3 store now (for a backup) and make "
    "an archive from a backup a stopped home's newest copy (a restore); no file of a home "
    "is read through it, no server started"
)
