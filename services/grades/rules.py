"""The grades service's rules: deadlines, lateness, release and validation (pure: no I/O).

Time is always passed in (``now``), as an aware :class:`~datetime.datetime`; the service
gets it from :func:`common.clock.now`. Every datetime a teacher sends must carry a UTC
offset (``2025-03-01T09:00:00+01:00`` or ``...Z``): a date without one would mean
different instants on the server and in the teacher's browser, so it is refused.

Deadlines: submitting exactly AT the due instant is on time; any later instant (one
microsecond is enough) is late. An extension replaces the assignment's due date for one
student, but never makes it earlier.

Validation errors are :class:`~common.errors.BadRequest` with one sentence a
teacher understands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, cast

from common.errors import BadRequest, Conflict, ServiceError
from services.base.names import BadName, validate_assignment, validate_path

REFUSE = "refuse"
ACCEPT = "accept"
LATE_POLICIES = (REFUSE, ACCEPT)

ON_TIME = "on_time"
LATE = "late"
REFUSED = "refused"

MAX_TITLE = 200
MAX_POINTS = Decimal(10000)
MAX_INSTRUCTIONS = 100_000
MAX_FEEDBACK = 50_000
MAX_REASON = 1000
MAX_STARTING_FILES = 200
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)

#: the fields of an assignment body; ``slug`` is required on creation and cannot change
ASSIGNMENT_FIELDS = (
    "slug",
    "title",
    "instructions",
    "max_points",
    "release_at",
    "due_at",
    "late_policy",
    "late_penalty_percent",
    "starting_files",
)
_EXAMPLE = "2025-03-01T09:00:00+01:00"
_LABELS = {
    "release_at": "release date",
    "due_at": "due date",
    "max_points": "maximum points",
    "late_penalty_percent": "late penalty",
}


@dataclass(frozen=True)
class Outcome:
    """How a submission at a given instant counts."""

    status: Literal["on_time", "late", "refused"]
    #: the penalty that applies (0 unless ``status == "late"``)
    penalty_percent: Decimal = _ZERO

    @property
    def late(self) -> bool:
        return self.status != ON_TIME


@dataclass(frozen=True)
class AssignmentFields:
    """An assignment's teacher-editable fields, validated (see :func:`parse_assignment`).

    Datetimes are aware and in UTC; numbers are :class:`~decimal.Decimal` with at most
    two decimal places."""

    slug: str
    title: str
    max_points: Decimal
    instructions: str = ""
    release_at: datetime | None = None
    due_at: datetime | None = None
    late_policy: str = ACCEPT
    late_penalty_percent: Decimal = _ZERO
    starting_files: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- deadlines


def _require_aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got {value!r}")


def due_for(assignment_due: datetime | None, extension_due: datetime | None) -> datetime | None:
    """The due date that applies to one student: the assignment's, or their extension's
    when later. ``None``: no deadline (the assignment has none; an extension alone does
    not create one)."""
    if assignment_due is None:
        return None
    _require_aware(assignment_due, "the assignment's due date")
    if extension_due is None:
        return assignment_due
    _require_aware(extension_due, "the extension's due date")
    return max(assignment_due, extension_due)


def classify(
    now: datetime, due: datetime | None, policy: str, penalty: Decimal | int | float = 0
) -> Outcome:
    """How a submission at ``now`` counts against ``due`` (``None``: no deadline).

    At the due instant it is on time; after it, ``late`` with ``penalty`` percent when the
    policy accepts late work, else ``refused``."""
    _require_aware(now, "now")
    if policy not in LATE_POLICIES:
        raise ValueError(f"unknown late policy {policy!r}")
    if due is None:
        return Outcome(ON_TIME)
    _require_aware(due, "the due date")
    if now <= due:
        return Outcome(ON_TIME)
    if policy == REFUSE:
        return Outcome(REFUSED)
    return Outcome(LATE, Decimal(str(penalty)))


def apply_penalty(points: Decimal | int | float, penalty_percent: Decimal | int | float) -> Decimal:
    """``points`` less ``penalty_percent`` percent, rounded half-up to 0.01 (never below 0)."""
    p = Decimal(str(points))
    pct = min(max(Decimal(str(penalty_percent)), _ZERO), _HUNDRED)
    return max(p * (_HUNDRED - pct) / _HUNDRED, _ZERO).quantize(_CENT, ROUND_HALF_UP)


# ----------------------------------------------------------------------------- limits
#
# One student must not fill the shared store with snapshots (up to 110 MB each): a
# student's Submit is refused, with a message that says what to do, once they handed in
# ``max_versions`` versions of one assignment, or once their stored versions (of every
# assignment, collected ones included) would take more than their submission quota.
# Nothing handed in is ever deleted to make room: the on-time version a teacher grades is
# always kept, and a teacher's collect is never refused (it is how a student who reached a
# limit still gets their last work handed in).


class VersionLimit(Conflict):
    """The student handed in as many versions of the assignment as allowed."""


class SubmissionQuotaExceeded(ServiceError):
    """The student's stored versions would take more than their submission quota."""

    status_code = 413


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def check_submission_limits(
    *,
    versions: int,
    max_versions: int,
    used_bytes: int,
    new_bytes: int,
    quota: int,
    collected: bool,
) -> None:
    """Refuse a student's next version beyond the limits; a teacher's collect
    (``collected``) always passes. ``versions``: what the student has of this assignment;
    ``used_bytes``: what all their stored versions take; ``new_bytes``: the new snapshot
    (0 before it is taken)."""
    if collected:
        return
    if max_versions and versions >= max_versions:
        raise VersionLimit(
            f"You have handed in {versions} versions of this assignment, the most allowed. "
            "Every version you handed in is kept, and your grades page shows the one that "
            "counts; ask your teacher to collect your folder if you changed it since."
        )
    if used_bytes + new_bytes > quota:
        raise SubmissionQuotaExceeded(
            f"Your handed-in versions take {_mb(used_bytes)} of the {_mb(quota)} you may "
            f"use{f', and this one is {_mb(new_bytes)}' if new_bytes else ''}. Nothing was "
            "handed in; your earlier versions are kept. Remove large files you do not need "
            "from the assignment folder, or ask your teacher to collect it."
        )


# ----------------------------------------------------------------------------- release


def is_released(release_at: datetime | None, now: datetime) -> bool:
    """Whether students may see the assignment at ``now`` (from ``release_at`` on)."""
    _require_aware(now, "now")
    if release_at is None:
        return True
    _require_aware(release_at, "the release date")
    return now >= release_at


def visible_to_student(release_at: datetime | None, archived: bool, now: datetime) -> bool:
    """A student sees (and may submit to) an assignment that is released and not archived."""
    return not archived and is_released(release_at, now)


#: the states of an assignment's release push (see :func:`release_state`)
RELEASE_SCHEDULED = "scheduled"  # its release_at is still to come
RELEASE_PENDING = "pending"  # due: the service pushes it at its next round (seconds)
RELEASE_FAILED = "failed"  # due, the last attempt failed: retried by itself
RELEASE_DONE = "released"  # its starting files were pushed
RELEASE_EMPTY = "no_files"  # released when it had no starting files: nothing was pushed
RELEASE_BEFORE = "released_by_hand"  # released before release pushes were recorded
RELEASE_ARCHIVED = "archived"  # archived before its release: nothing is pushed


def release_due(
    release_at: datetime | None, archived: bool, rounds: int, pushed: int, now: datetime
) -> bool:
    """Whether a release push of the assignment is due at ``now``: a round asked for is
    not made yet, the assignment is not archived and its release time has come (no
    release time: at once). The store's claim uses the same condition in SQL."""
    return pushed < rounds and not archived and is_released(release_at, now)


def release_state(
    *,
    release_at: datetime | None,
    archived: bool,
    rounds: int,
    pushed: int,
    released_at: datetime | None,
    files: int | None,
    error: str | None,
    now: datetime,
) -> str:
    """What the teacher's page says about an assignment's release (one of the
    ``RELEASE_*`` states)."""
    if pushed < rounds:
        if archived:
            return RELEASE_ARCHIVED
        if not is_released(release_at, now):
            return RELEASE_SCHEDULED
        return RELEASE_FAILED if error else RELEASE_PENDING
    if released_at is None:
        return RELEASE_BEFORE
    return RELEASE_EMPTY if not files else RELEASE_DONE


def release_push_id(key: str, round_: int) -> str:
    """The files push id of one release round: ``release-<key>-<round>`` (the files
    service answers the push it made already when the same id comes again)."""
    if not isinstance(key, str) or not key.isalnum() or not 16 <= len(key) <= 64:
        raise ValueError("the release key must be 16-64 hex digits")
    if isinstance(round_, bool) or not isinstance(round_, int) or round_ < 1:
        raise ValueError("the release round must be a whole number from 1")
    return f"release-{key.lower()}-{round_}"


# ----------------------------------------------------------------------------- validation


def _label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " "))


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def parse_datetime(value: Any, name: str = "date") -> datetime | None:
    """An ISO 8601 date and time WITH an offset (``Z`` or ``+01:00``), as an aware UTC
    datetime; ``None`` stays ``None``. Naive or unparseable values raise BadRequest."""
    if value is None:
        return None
    label = _label(name)
    if not isinstance(value, str):
        raise BadRequest(
            f'The {label} must be a date and time as text, e.g. "{_EXAMPLE}", or null.'
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(
            f'The {label} "{_shown(value)}" is not a date and time; use the form "{_EXAMPLE}".'
        ) from None
    if parsed.utcoffset() is None:
        raise BadRequest(
            f'The {label} "{_shown(value)}" has no time zone; add one, '
            f'e.g. "{_EXAMPLE}" or "2025-03-01T08:00:00Z".'
        )
    return parsed.astimezone(UTC)


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def parse_decimal(value: Any, name: str, *, low: Decimal, high: Decimal, low_open: bool) -> Decimal:
    """A number with at most two decimal places within [low, high] (or (low, high])."""
    label = _label(name)
    if low_open:
        rule = f"The {label} must be a number greater than {_num(low)} and at most {_num(high)}"
    else:
        rule = f"The {label} must be a number from {_num(low)} to {_num(high)}"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise BadRequest(f"{rule}, not {_shown(value)}.")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise BadRequest(f"{rule}, not {_shown(value)}.") from None
    if not number.is_finite() or number < low or (low_open and number == low) or number > high:
        raise BadRequest(f"{rule}, not {_shown(value)}.")
    if number != number.quantize(_CENT, ROUND_HALF_UP):
        raise BadRequest(f"The {label} can have at most two decimal places, not {_shown(value)}.")
    return number.quantize(_CENT)


def _text(value: Any, name: str, *, required: bool, limit: int) -> str:
    label = _label(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"The {label} must be text.")
    text = value.strip() if required else value
    if required and not text:
        raise BadRequest(f"The {label} cannot be empty.")
    if len(text) > limit:
        raise BadRequest(f"The {label} can be at most {limit} characters long.")
    return text


def parse_slug(value: Any) -> str:
    try:
        return validate_assignment(value)
    except BadName as e:
        raise BadRequest(f"The assignment's folder name is not valid: {e}.") from None


def parse_starting_files(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequest("The starting files must be a list of paths in the class material.")
    if len(value) > MAX_STARTING_FILES:
        raise BadRequest(f"An assignment can have at most {MAX_STARTING_FILES} starting files.")
    paths: list[str] = []
    for item in value:
        try:
            path = validate_path(item)
        except BadName as e:
            raise BadRequest(f"A starting file is not valid: {e}.") from None
        if path in paths:
            raise BadRequest(f'The starting file "{path}" is listed twice.')
        paths.append(path)
    return tuple(paths)


def parse_assignment(body: Any, current: AssignmentFields | None = None) -> AssignmentFields:
    """Validate an assignment from a JSON object.

    Without ``current`` (creation) ``slug``, ``title`` and ``max_points`` are required.
    With ``current`` (an edit) missing fields keep their current values and the slug
    cannot change. The result is checked as a whole (due after release, penalty only with
    the ``accept`` policy)."""
    if not isinstance(body, Mapping):
        raise BadRequest("The assignment must be a JSON object.")
    unknown = sorted(str(k) for k in body if k not in ASSIGNMENT_FIELDS)
    if unknown:
        raise BadRequest(
            f'Unknown field "{_shown(unknown[0])}"; an assignment has '
            + ", ".join(ASSIGNMENT_FIELDS)
            + "."
        )
    if current is None:
        missing = [k for k in ("slug", "title", "max_points") if k not in body]
        if missing:
            raise BadRequest(f"The {_label(missing[0])} is required.")
        slug = parse_slug(body["slug"])
    else:
        slug = current.slug
        if "slug" in body and body["slug"] != current.slug:
            raise BadRequest(
                "The assignment's folder name cannot change (submissions are stored under "
                "it); create a new assignment instead."
            )

    def get(name: str, parse, default):
        return parse(body[name]) if name in body else default

    base = current or AssignmentFields(slug=slug, title="", max_points=_ZERO)
    title = get("title", lambda v: _text(v, "title", required=True, limit=MAX_TITLE), base.title)
    instructions = get(
        "instructions",
        lambda v: _text(v, "instructions", required=False, limit=MAX_INSTRUCTIONS),
        base.instructions,
    )
    max_points = get(
        "max_points",
        lambda v: parse_decimal(v, "max_points", low=_ZERO, high=MAX_POINTS, low_open=True),
        base.max_points,
    )
    release_at = get("release_at", lambda v: parse_datetime(v, "release_at"), base.release_at)
    due_at = get("due_at", lambda v: parse_datetime(v, "due_at"), base.due_at)
    policy = body.get("late_policy", base.late_policy)
    if policy not in LATE_POLICIES:
        raise BadRequest(f'The late policy must be "refuse" or "accept", not {_shown(policy)}.')
    if "late_penalty_percent" in body:
        penalty = parse_decimal(
            body["late_penalty_percent"],
            "late_penalty_percent",
            low=_ZERO,
            high=_HUNDRED,
            low_open=False,
        )
    else:
        # switching to "refuse" drops a penalty set before
        penalty = _ZERO if policy == REFUSE else base.late_penalty_percent
    starting_files = get("starting_files", parse_starting_files, base.starting_files)

    if release_at is not None and due_at is not None and due_at <= release_at:
        raise BadRequest("The due date must be after the release date.")
    if policy == REFUSE and penalty != 0:
        raise BadRequest(
            "A late penalty only applies when late work is accepted: set the late policy to "
            '"accept" or the late penalty to 0.'
        )
    return AssignmentFields(
        slug=slug,
        title=title,
        max_points=max_points,
        instructions=instructions,
        release_at=release_at,
        due_at=due_at,
        late_policy=policy,
        late_penalty_percent=penalty,
        starting_files=starting_files,
    )


def parse_points(value: Any) -> Decimal:
    """Grade points: a number from 0 with at most two decimals (the maximum is the
    assignment's, checked by the store)."""
    return parse_decimal(value, "points", low=_ZERO, high=MAX_POINTS, low_open=False)


def parse_feedback(value: Any) -> str:
    return _text(value, "feedback", required=False, limit=MAX_FEEDBACK)


def parse_reason(value: Any) -> str:
    return _text(value, "reason", required=False, limit=MAX_REASON).strip()


def parse_extension_due(value: Any, assignment_due: datetime | None) -> datetime:
    """An extension's due date: required, with an offset, later than the assignment's."""
    if value is None:
        raise BadRequest("The extension needs a new due date.")
    due = cast(datetime, parse_datetime(value, "due_at"))
    if assignment_due is None:
        raise BadRequest("This assignment has no due date, so there is nothing to extend.")
    if due <= assignment_due:
        raise BadRequest("An extension's due date must be after the assignment's due date.")
    return due
