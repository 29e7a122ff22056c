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
