"""What a class is, and the checks every write goes through (pure: no I/O).

A class record (one MongoDB document)::

    {"code": "bio101", "name": "Biology 101", "term": "2026 autumn",
     "teachers": ["tina"], "students": ["sam", "sue"],
     "environment": {"image": "classhub/singleuser:latest", "cpu_limit": 1.0,
                     "mem_limit": "1G", "idle_timeout": 3600},
     "archived": false, "created_at": ..., "updated_at": ..., "created_by": "admin",
     "schedule": {"timezone": "Europe/Paris",
                  "meetings": [{"days": ["mon"], "start": "09:00", "minutes": 90}]}}

``code`` is a lowercase slug: it becomes the students' named server and its URL segment
``/user/<name>/<code>/``, and the hub groups ``class-<code>`` and ``teachers-<code>``.
The environment stays within the admin's :class:`Limits`.
"""

from __future__ import annotations

import copy
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.errors import BadRequest, Conflict, NotFound
from common.groups import CODE_RE
from common.images import ImageChoice
from common.units import format_size, parse_size
from common.usernames import InvalidUsername, normalize_username

from .schedule import InvalidSchedule, check_schedule

MAX_NAME = 200
MAX_TERM = 100
MAX_TEACHERS = 50
MIN_CPU = 0.1
MIN_MEM = 128 * 1024**2

ENVIRONMENT_FIELDS = frozenset({"image", "cpu_limit", "mem_limit", "idle_timeout"})
CREATE_FIELDS = frozenset({"code", "name", "term", "teachers", "environment"})
#: what a teacher may change in their own class (rosters have their own endpoints)
TEACHER_FIELDS = frozenset({"name", "term", "environment", "archived", "schedule"})
#: what an admin may change; the code never changes (it names servers and volumes)
ADMIN_FIELDS = TEACHER_FIELDS | {"teachers"}


class InvalidClass(BadRequest):
    """A value a class cannot have; the message says which and how to fix it."""


class ClassNotFound(NotFound):
    def __init__(self, code: str):
        super().__init__(f"There is no class with the code {code!r}.")
        self.code = code


class ClassExists(Conflict):
    def __init__(self, code: str):
        super().__init__(f"A class with the code {code!r} exists already; choose another code.")
        self.code = code


class CodeRetired(Conflict):
    def __init__(self, code: str):
        super().__init__(
            f"The code {code!r} belonged to a class that was deleted; codes are never used "
            "twice (that class's assignments and submissions are kept under it). Choose "
            "another code, e.g. with the term in it."
        )
        self.code = code


@dataclass(frozen=True)
class Limits:
    """The admin's settings every class environment must respect."""

    #: the admin's image catalogue (``common.images``): what a class may run
    images: tuple[ImageChoice, ...]
    default_image: str
    max_cpu_limit: float
    max_mem_limit: int
    default_cpu_limit: float
    default_mem_limit: int
    default_idle_timeout: int
    min_idle_timeout: int
    max_idle_timeout: int
    max_students: int

    @property
    def allowed_images(self) -> tuple[str, ...]:
        """The names (Docker references) of the catalogue's images."""
        return tuple(c.name for c in self.images)

    def problems(self) -> list[str]:
        """What is inconsistent in these settings, each with how to fix it."""
        out = []
        if self.default_image not in self.allowed_images:
            out.append(
                f"the default image {self.default_image!r} is not in the image catalogue "
                f"(CLASSHUB_IMAGES: {', '.join(self.allowed_images)}); add it there"
            )
        if not MIN_CPU <= self.default_cpu_limit <= self.max_cpu_limit:
            out.append(
                f"the default CPU limit {self.default_cpu_limit:g} must be between {MIN_CPU:g} "
                f"and CLASSHUB_MAX_CPU_LIMIT ({self.max_cpu_limit:g})"
            )
        if not MIN_MEM <= self.default_mem_limit <= self.max_mem_limit:
            out.append(
                f"the default memory limit {format_size(self.default_mem_limit)} must be between "
                f"{format_size(MIN_MEM)} and CLASSHUB_MAX_MEM_LIMIT "
                f"({format_size(self.max_mem_limit)})"
            )
        if not 1 <= self.min_idle_timeout <= self.max_idle_timeout:
            out.append("the idle timeout range must satisfy 1 <= minimum <= maximum")
        elif not self.min_idle_timeout <= self.default_idle_timeout <= self.max_idle_timeout:
            out.append(
                f"CLASSHUB_DEFAULT_IDLE_TIMEOUT ({self.default_idle_timeout}) must be between "
                f"{self.min_idle_timeout} and {self.max_idle_timeout} seconds"
            )
        if self.max_students < 1:
            out.append("the largest roster must allow at least one student")
        return out

    def default_environment(self) -> dict:
        return {
            "image": self.default_image,
            "cpu_limit": self.default_cpu_limit,
            "mem_limit": format_size(self.default_mem_limit),
            "idle_timeout": self.default_idle_timeout,
        }

    def as_json(self) -> dict:
        return {
            "images": [c.as_json() for c in self.images],
            "allowed_images": list(self.allowed_images),
            "default_environment": self.default_environment(),
            "max_cpu_limit": self.max_cpu_limit,
            "min_cpu_limit": MIN_CPU,
            "max_mem_limit": format_size(self.max_mem_limit),
            "min_mem_limit": format_size(MIN_MEM),
            "min_idle_timeout": self.min_idle_timeout,
            "max_idle_timeout": self.max_idle_timeout,
            "max_students": self.max_students,
        }


# ----------------------------------------------------------------------------- values


def check_code(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidClass("The class code must be a string.")
    if not CODE_RE.fullmatch(value):
        raise InvalidClass(
            f"Invalid class code {value[:40]!r}: use 1 to 32 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit (e.g. 'bio101-a'). It "
            "becomes the URL /user/<name>/<code>/."
        )
    return value


def _text(value: Any, field: str, *, max_len: int, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidClass(f"'{field}' must be a string.")
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise InvalidClass(f"'{field}' cannot be empty.")
    if len(text) > max_len:
        raise InvalidClass(f"'{field}' is longer than {max_len} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidClass(f"'{field}' contains a control or invisible character.")
    return text


def check_name(value: Any) -> str:
    return _text(value, "name", max_len=MAX_NAME, required=True)


def check_term(value: Any) -> str:
    return _text(value, "term", max_len=MAX_TERM, required=False)


def check_username(value: Any) -> str:
    try:
        return normalize_username(value)
    except InvalidUsername as e:
        shown = f" {value[:40]!r}" if isinstance(value, str) else ""
        raise InvalidClass(f"Invalid username{shown}: {e}.") from None


def check_usernames(value: Any, field: str, *, limit: int) -> list[str]:
    """A list of usernames, normalised, duplicates dropped, order kept."""
    if not isinstance(value, list):
        raise InvalidClass(f"'{field}' must be a list of usernames.")
    if len(value) > limit:
        raise InvalidClass(f"'{field}' has {len(value)} names; the limit is {limit}.")
    return list(dict.fromkeys(check_username(v) for v in value))


def parse_mem(value: Any) -> int:
    """Bytes of a ``mem_limit`` (``512M``, ``1.5G``, ``2GiB``: :mod:`common.units`)."""
    try:
        return parse_size(value)
    except ValueError:
        shown = f" {value[:20]!r}" if isinstance(value, str) else ""
        raise InvalidClass(
            f"Invalid 'mem_limit'{shown}: use a size such as '512M' or '2G'."
        ) from None


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClass(f"'{field}' must be a number.")
    if not math.isfinite(value):
        raise InvalidClass(f"'{field}' must be a finite number.")
    return value


def check_environment(data: Any, limits: Limits, base: Mapping | None = None) -> dict:
    """``base`` (a stored environment, or the defaults) updated with ``data``, checked
    whole against ``limits``."""
    if not isinstance(data, dict):
        raise InvalidClass("'environment' must be an object.")
    unknown = sorted(set(data) - ENVIRONMENT_FIELDS)
    if unknown:
        raise InvalidClass(
            f"Unknown environment field(s): {', '.join(map(str, unknown))[:200]}. "
            f"Allowed: {', '.join(sorted(ENVIRONMENT_FIELDS))}."
        )
    env = {**limits.default_environment(), **(base or {}), **data}
    image = env["image"]
    if not isinstance(image, str) or image not in limits.allowed_images:
        shown = f"{image[:80]!r} " if isinstance(image, str) else ""
        choices = ", ".join(f"{c.display_name} ({c.name})" for c in limits.images)
        raise InvalidClass(
            f"The image {shown}is not in this hub's image catalogue; choose one of: "
            f"{choices}. An admin adds images to the catalogue."
        )
    cpu = _number(env["cpu_limit"], "cpu_limit")
    if not MIN_CPU <= cpu <= limits.max_cpu_limit:
        raise InvalidClass(
            f"'cpu_limit' must be between {MIN_CPU:g} and {limits.max_cpu_limit:g} CPUs "
            f"(got {cpu:g})."
        )
    mem = parse_mem(env["mem_limit"])
    if not MIN_MEM <= mem <= limits.max_mem_limit:
        raise InvalidClass(
            f"'mem_limit' must be between {format_size(MIN_MEM)} and "
            f"{format_size(limits.max_mem_limit)} (got {format_size(mem)})."
        )
    idle = env["idle_timeout"]
    if isinstance(idle, bool) or not isinstance(idle, int):
        raise InvalidClass("'idle_timeout' must be a whole number of seconds.")
    if not limits.min_idle_timeout <= idle <= limits.max_idle_timeout:
        raise InvalidClass(
            f"'idle_timeout' must be between {limits.min_idle_timeout} and "
            f"{limits.max_idle_timeout} seconds (got {idle})."
        )
    return {
        "image": image,
        "cpu_limit": round(float(cpu), 3),
        "mem_limit": format_size(mem),
        "idle_timeout": idle,
    }


# ----------------------------------------------------------------------------- records


def timestamp(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def new_class(body: Mapping, limits: Limits, *, creator: str, now: float) -> dict:
    """A complete class record from a create request (already restricted to
    :data:`CREATE_FIELDS`)."""
    for field in ("code", "name"):
        if field not in body:
            raise InvalidClass(f"Give the new class a '{field}'.")
    when = timestamp(now)
    return {
        "code": check_code(body["code"]),
        "name": check_name(body["name"]),
        "term": check_term(body.get("term", "")),
        "teachers": check_usernames(body.get("teachers", []), "teachers", limit=MAX_TEACHERS),
        "students": [],
        "environment": check_environment(body.get("environment", {}), limits),
        "archived": False,
        "created_at": when,
        "updated_at": when,
        "created_by": creator,
    }


#: what a copy of a class for a new term takes from the original (never its students,
#: its archived state or its history)
COPIED_FIELDS = ("name", "term", "teachers", "environment")
COPY_FIELDS = frozenset({"code", "name", "term"})


def copy_request(original: Mapping, body: Mapping) -> dict:
    """The create request of a copy of class ``original`` for a new term: the new
    ``code`` (required, ``body``), the ``name`` and ``term`` from ``body`` or the
    original's, the original's teachers and environment; no students, not archived."""
    if "code" not in body:
        raise InvalidClass("Give the copy a new 'code' (for example bio101-2027).")
    if body["code"] == original["code"]:
        raise InvalidClass("The copy needs a code of its own; the original keeps its code.")
    request = {f: copy.deepcopy(original[f]) for f in COPIED_FIELDS if f in original}
    request["code"] = body["code"]
    for field in ("name", "term"):
        if field in body:
            request[field] = body[field]
    return request


def class_changes(body: Mapping, limits: Limits, current: Mapping) -> dict:
    """The ``$set`` of a change request (fields already checked against the caller's
    rights), each value checked; the environment is merged into the stored one."""
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = check_name(body["name"])
    if "term" in body:
        changes["term"] = check_term(body["term"])
    if "teachers" in body:
        changes["teachers"] = check_usernames(body["teachers"], "teachers", limit=MAX_TEACHERS)
    if "environment" in body:
        changes["environment"] = check_environment(
            body["environment"], limits, base=current.get("environment")
        )
    if "schedule" in body:
        try:
            changes["schedule"] = check_schedule(body["schedule"])
        except InvalidSchedule as e:
            raise InvalidClass(str(e)) from None
    if "archived" in body:
        if not isinstance(body["archived"], bool):
            raise InvalidClass("'archived' must be true or false.")
        changes["archived"] = body["archived"]
    return changes


def roster_size_problem(current: Iterable[str], adding: Iterable[str], limits: Limits) -> str:
    total = len(set(current) | set(adding))
    if total > limits.max_students:
        return (
            f"The class would have {total} students; the limit is {limits.max_students}. "
            "Split it into several classes."
        )
    return ""
