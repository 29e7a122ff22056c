"""Who may do what to which local account (pure: no I/O).

The admin handlers ask these before they touch the store; every answer is ``None`` (go
ahead) or the message the person is shown (a 4xx). Admins may do everything to every
account but lock themselves out; teachers may only create students for the classes they
teach, and act only on students of those classes (the rule for teacher-made accounts,
which the hub will offer; see docs/admin-guide.md "Local accounts").
"""

from __future__ import annotations

from dataclasses import dataclass

#: the changes an account can undergo, as named in the audit log
ACTIONS = ("create", "password", "role", "disable", "enable", "delete")

#: search: how many accounts one page shows by default, and at most
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_QUERY_LENGTH = 128


@dataclass(frozen=True)
class Actor:
    """The person asking: their name, classhub role and the classes they teach."""

    name: str
    role: str
    teaches: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Target:
    """The account acted on: its name, role (``None``: does not exist yet) and the classes
    it is a student of."""

    name: str
    role: str | None
    classes: frozenset[str] = frozenset()


def self_lockout(actor: Actor, target: Target, action: str, new_role: str | None = None):
    """An admin cannot disable, demote or delete their own account (nobody could undo it
    from the page if they were the last admin)."""
    if actor.name != target.name:
        return None
    if action == "disable":
        return "You cannot disable your own account; ask another admin."
    if action == "delete":
        return "You cannot delete your own account; ask another admin."
    if action == "role" and new_role != "admin":
        return "You cannot demote your own account; ask another admin."
    return None


def may_act(
    actor: Actor,
    target: Target,
    action: str,
    *,
    new_role: str | None = None,
    in_class: str | None = None,
) -> str | None:
    """``None`` when ``actor`` may do ``action`` to ``target``, else why not.

    ``in_class``: for a teacher's ``create``, the class the new student is enrolled in.
    """
    if action not in ACTIONS:
        return f"unknown action {action!r}"
    if actor.role == "admin":
        return self_lockout(actor, target, action, new_role)
    if actor.role != "teacher":
        return "Only admins and teachers manage accounts."
    if action == "create":
        if (new_role or "student") != "student":
            return "Teachers can create student accounts only; ask an admin for other roles."
        if in_class is None or in_class not in actor.teaches:
            return "You can create students only for the classes you teach."
        if target.role is not None:
            return f"An account named {target.name} exists already; enrol it on the class page."
        return None
    if action == "password" and target.role == "student" and target.classes & actor.teaches:
        return None
    # never say whether the account exists, nor which classes it is in
    return "Teachers can only reset the passwords of students in their own classes."


def search_params(query: object, offset: object, limit: object) -> tuple[str, int, int]:
    """The search text (stripped, at most 128 characters), offset and page size from
    query-string values; raises ``ValueError`` with a message for the person."""
    text = query.strip() if isinstance(query, str) else ""
    if len(text) > MAX_QUERY_LENGTH:
        raise ValueError(f"The search text is too long: use at most {MAX_QUERY_LENGTH} characters.")
    try:
        start = int(offset) if offset not in (None, "") else 0
        size = int(limit) if limit not in (None, "") else PAGE_SIZE
    except (TypeError, ValueError):
        raise ValueError("'offset' and 'limit' must be whole numbers.") from None
    if start < 0:
        raise ValueError("'offset' cannot be negative.")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"'limit' must be between 1 and {MAX_PAGE_SIZE}.")
    return text, start, size


def like_pattern(text: str) -> str:
    """A SQL ``LIKE ... ESCAPE '\\'`` pattern matching names that contain ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"
