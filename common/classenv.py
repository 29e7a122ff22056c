"""Class servers: a named server ``<code>`` runs class ``<code>``'s environment.

The classes service keeps, for each class, a JupyterHub group ``class-<code>`` (its
students) whose properties hold the environment under ``"classhub"``, and a group
``teachers-<code>`` (its teachers). The spawner reads both from the hub's own database, so
starting a class server costs no call to the classes service or MongoDB, and what a
student may start is decided by group membership alone. ``user_options`` can never
override any of it (the spawner refuses all options).
"""

from __future__ import annotations

from dataclasses import dataclass

from .groups import PROPERTY, class_group, teachers_group


class ClassRefused(Exception):
    """This person may not start this class server; the message says why."""


@dataclass(frozen=True)
class ClassEnvironment:
    code: str
    name: str
    image: str
    cpu_limit: float | None
    mem_limit: str | None
    idle_timeout: int | None
    archived: bool


def environment_from_properties(code: str, properties: dict | None) -> ClassEnvironment | None:
    """The class environment stored in a ``class-<code>`` group's properties, if any."""
    data = (properties or {}).get(PROPERTY)
    if not isinstance(data, dict) or not data.get("image"):
        return None
    cpu = data.get("cpu_limit")
    idle = data.get("idle_timeout")
    return ClassEnvironment(
        code=code,
        name=str(data.get("name") or code),
        image=str(data["image"]),
        cpu_limit=float(cpu) if cpu else None,
        mem_limit=str(data["mem_limit"]) if data.get("mem_limit") else None,
        idle_timeout=int(idle) if idle else None,
        archived=bool(data.get("archived")),
    )


def resolve_class(
    code: str,
    *,
    member_of: set[str],
    group_properties: dict | None,
    is_admin: bool,
) -> ClassEnvironment:
    """The environment for named server ``code``, or :class:`ClassRefused`.

    ``member_of`` is the person's group names; ``group_properties`` the properties of
    group ``class-<code>`` (None when there is no such group).
    """
    env = environment_from_properties(code, group_properties)
    if env is None:
        raise ClassRefused(
            f"There is no class with the code {code!r}. Named servers are class "
            "environments: start one from your class list."
        )
    enrolled = class_group(code) in member_of or teachers_group(code) in member_of
    if not (enrolled or is_admin):
        raise ClassRefused(
            f"You are not enrolled in {env.name} ({code}). Ask its teacher to add you."
        )
    if env.archived:
        raise ClassRefused(
            f"{env.name} ({code}) is archived: its servers cannot start. Your files are kept."
        )
    return env
