"""Making an ended session lose access at once, in the hub's own database.

A browser's access has two parts: the hub cookie (it names ``User.cookie_id``) and the
OAuth tokens the hub issued to the browser's session for single-user servers and services
(``APIToken.session_id``). Ending a session deletes those tokens and rotates the cookie id,
so a copied or stale hub cookie stops working too.
"""

from __future__ import annotations

from jupyterhub import orm
from jupyterhub.utils import new_token


def delete_session_tokens(db, username: str, session_id: str) -> int:
    """Delete the OAuth tokens issued to ``session_id``; returns how many."""
    user = orm.User.find(db, username)
    if user is None or not session_id:
        return 0
    count = 0
    for token in db.query(orm.APIToken).filter_by(user_id=user.id, session_id=session_id):
        db.delete(token)
        count += 1
    if count:
        db.commit()
    return count


def rotate_cookie_id(db, username: str) -> None:
    """Invalidate every hub cookie of ``username`` (the next sign-in sets a new one)."""
    user = orm.User.find(db, username)
    if user is not None:
        user.cookie_id = new_token()
        db.commit()
