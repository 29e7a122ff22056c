"""Validated file names and the S3 object keys they become (pure: no I/O).

The bucket has three areas::

    users/<user>/<path>                                  a person's private files
    classes/<code>/material/<path>                       a class's material (teachers write)
    classes/<code>/assignments/<slug>/<path>             assignments' starting files (teachers only)
    submissions/<code>/<assignment>/<user>/<version>/<path>   one handed-in version

People type the ``<path>`` parts, so every one goes through :func:`validate_path` (or
:func:`validate_folder`) and every identity part through :func:`validate_username`,
:func:`validate_code` or :func:`validate_assignment` before a key is built: hostile input
(``..``, absolute paths, backslashes, invisible characters) is refused, never rewritten,
and so can never reach outside its area. Segments starting with ``.classhub`` are
reserved for the service's own bookkeeping objects.
"""

from __future__ import annotations

import datetime
import re
import unicodedata

from common import usernames
from common.groups import CODE_RE

MAX_SEGMENT_BYTES = 255
#: S3 keys are at most 1024 bytes; the area prefix takes the rest
MAX_PATH_BYTES = 900
MAX_KEY_BYTES = 1024
MAX_DEPTH = 32
MAX_USERNAME = usernames.MAX_LENGTH
MAX_LABEL_BYTES = 64
RESERVED_PREFIX = ".classhub"

ASSIGNMENT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

# control (C0, DEL, C1), format (bidi, zero-width), lone surrogates, line/paragraph separators
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHOWN_CHARS = 80


class BadName(ValueError):
    """A name that cannot be used; ``str()`` quotes it and says what is wrong."""

    def __init__(self, problem: str, name: object = None):
        self.name = name
        self.problem = problem
        super().__init__(f"{quoted(name)}: {problem}" if isinstance(name, str) else problem)


def quoted(text: str) -> str:
    """``text`` in double quotes for a message: invisible characters escaped, long text cut."""
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1] + "…"
    shown = "".join(f"\\u{ord(ch):04x}" if _invisible(ch) else ch for ch in text)
    return f'"{shown}"'


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in _INVISIBLE


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _normalised(path: object, what: str) -> str:
    """NFC ``path`` after the checks that apply to the whole string."""
    if not isinstance(path, str):
        raise BadName(f"a {what} must be text, not {type(path).__name__}")
    text = unicodedata.normalize("NFC", path)
    if any(_invisible(ch) for ch in text):
        raise BadName(f"a {what} cannot contain control or invisible characters", path)
    if "\\" in text:
        raise BadName(f'a backslash ("\\") is not allowed in a {what}; use "/"', path)
    if text.startswith("/"):
        raise BadName(f'a {what} cannot start with "/"', path)
    return text


def _check_segment(segment: str, path: str, what: str) -> None:
    """Refuse one ``/``-separated part of ``path``."""
    if not segment:
        raise BadName(f'a {what} cannot have an empty part ("//")', path)
    if segment in (".", ".."):
        raise BadName(f'"{segment}" is not allowed in a {what}', path)
    if segment != segment.strip():
        raise BadName(f"a {what} cannot have a part that starts or ends with a space", path)
    if segment.casefold().startswith(RESERVED_PREFIX):
        raise BadName(f'names starting with "{RESERVED_PREFIX}" are reserved for classhub', path)
    if _nbytes(segment) > MAX_SEGMENT_BYTES:
        raise BadName(f"a single name can be at most {MAX_SEGMENT_BYTES} bytes long", path)


def _check_parts(text: str, path: str, what: str, max_depth: int) -> str:
    """Check every segment of ``text``, its depth and its length; return ``text``."""
    segments = text.split("/")
    for segment in segments:
        _check_segment(segment, path, what)
    if len(segments) > max_depth:
        raise BadName(f"a {what} can be at most {max_depth} folders deep", path)
    if _nbytes(text) > MAX_PATH_BYTES:
        raise BadName(f"a {what} can be at most {MAX_PATH_BYTES} bytes long", path)
    return text


def validate_path(path: str, *, max_depth: int = MAX_DEPTH) -> str:
    """Return ``path`` NFC-normalised (``"folder/sub/file.ipynb"``) or raise :class:`BadName`.

    A relative file path: no leading or trailing ``/``, no backslash, no empty, ``.`` or
    ``..`` part, no control or invisible characters, no part starting or ending with a
    space or starting with ``.classhub``, each part at most 255 bytes, the whole at most
    900 bytes (UTF-8) and ``max_depth`` parts.
    """
    text = _normalised(path, "file name")
    if not text:
        raise BadName("a file name cannot be empty", path)
    if text.endswith("/"):
        raise BadName('a file name cannot end with "/" (that names a folder)', path)
    return _check_parts(text, path, "file name", max_depth)


def validate_folder(path: str) -> str:
    """Like :func:`validate_path`, but ``""`` (the area's root) and one trailing ``/`` pass.

    Returns ``""`` or ``"a/b"`` (without the trailing ``/``).
    """
    text = _normalised(path, "folder name")
    if text.endswith("/"):
        text = text[:-1]
    return _check_parts(text, path, "folder name", MAX_DEPTH) if text else ""


def validate_username(name: str) -> str:
    """Return ``name`` if it is a canonical classhub username, else raise :class:`BadName`.

    A defensive re-check of what ``common.usernames`` produces: 1 to 128
    characters, already NFC and lower-case, no whitespace, invisible characters or any
    of ``/\\?#%"'`<>:;,&``, and not ``.`` or ``..``.
    """
    if not isinstance(name, str):
        raise BadName(f"a username must be text, not {type(name).__name__}")
    if not 1 <= len(name) <= MAX_USERNAME:
        raise BadName(f"a username must be 1 to {MAX_USERNAME} characters long", name)
    if name in (".", ".."):
        raise BadName('a username cannot be "." or ".."', name)
    for ch in name:
        if ch in usernames.FORBIDDEN:
            raise BadName(f"a username cannot contain {ch!r}", name)
        if ch.isspace() or _invisible(ch):
            raise BadName("a username cannot contain spaces or invisible characters", name)
    if name != unicodedata.normalize("NFC", name).lower():
        raise BadName("a username must be in lower case (and Unicode NFC form)", name)
    return name


def validate_code(code: str) -> str:
    """Return ``code`` if it is a class code (a lower-case slug), else raise :class:`BadName`."""
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise BadName(
            "a class code is 1 to 32 lower-case letters, digits and dashes, "
            "starting and ending with a letter or digit",
            code,
        )
    return code


def validate_assignment(slug: str) -> str:
    """Return ``slug`` if it names an assignment, else raise :class:`BadName`."""
    if not isinstance(slug, str) or not ASSIGNMENT_RE.fullmatch(slug):
        raise BadName(
            "an assignment name is 1 to 64 lower-case letters, digits, dashes and "
            "underscores, starting with a letter or digit",
            slug,
        )
    return slug


def _validate_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadName(f"a submission version is a whole number from 1, not {version!r}")
    return version


def area_key(prefix: str, path: str) -> str:
    """``prefix`` (an area's, ending in ``/``) + a validated ``path``, refused if the S3
    key would be too long."""
    return _key(prefix, validate_path(path))


def area_folder(prefix: str, folder: str) -> str:
    """The key prefix of ``folder`` inside the area at ``prefix``."""
    return _folder_prefix(prefix, folder)


def _key(prefix: str, path: str) -> str:
    """``prefix`` + ``path``, refused if the S3 key would be too long."""
    key = prefix + path
    if _nbytes(key) > MAX_KEY_BYTES:
        raise BadName("the name is too long to be stored in this place", path)
    return key


def _folder_prefix(area: str, folder: str) -> str:
    folder = validate_folder(folder)
    return _key(area, f"{folder}/" if folder else "")


def user_key(username: str, path: str) -> str:
    """``users/<username>/<path>``: a file in a person's private area."""
    return _key(user_prefix(username), validate_path(path))


def user_prefix(username: str, folder: str = "") -> str:
    """``users/<username>/`` or ``users/<username>/<folder>/``."""
    return _folder_prefix(f"users/{validate_username(username)}/", folder)


def staging_prefix(username: str) -> str:
    """``staging/<username>/``: the person's uploads waiting for their checks (a
    replacement, a zip to unpack); they count against the person's staging allowance."""
    return f"staging/{validate_username(username)}/"


def material_key(code: str, path: str) -> str:
    """``classes/<code>/material/<path>``: a file of a class's material."""
    return _key(material_prefix(code), validate_path(path))


def material_prefix(code: str, folder: str = "") -> str:
    """``classes/<code>/material/`` or ``classes/<code>/material/<folder>/``."""
    return _folder_prefix(f"classes/{validate_code(code)}/material/", folder)


def assignments_prefix(code: str) -> str:
    """``classes/<code>/assignments/``: the starting files of a class's assignments, one
    folder per assignment; its teachers only, until a release pushes them to students."""
    return f"classes/{validate_code(code)}/assignments/"


def submission_prefix(code: str, assignment: str, username: str, version: int) -> str:
    """``submissions/<code>/<assignment>/<username>/<version>/``: one handed-in version."""
    parts = (
        validate_code(code),
        validate_assignment(assignment),
        validate_username(username),
        str(_validate_version(version)),
    )
    return "submissions/" + "".join(f"{part}/" for part in parts)


def submission_key(code: str, assignment: str, username: str, version: int, path: str) -> str:
    """``submissions/<code>/<assignment>/<username>/<version>/<path>``."""
    return _key(submission_prefix(code, assignment, username, version), validate_path(path))


def relative_to(prefix: str, key: str) -> str:
    """The part of ``key`` after ``prefix`` (which ends with ``/``).

    Raises ValueError if ``key`` is not strictly inside ``prefix``.
    """
    if not prefix.endswith("/"):
        raise ValueError(f"the prefix {prefix!r} must end with '/'")
    if not key.startswith(prefix) or key == prefix:
        raise ValueError(f"the key {key!r} is not inside {prefix!r}")
    return key[len(prefix) :]


def _validate_label(label: str) -> str:
    """Refuse a version label that could not sit inside a file name."""
    if not isinstance(label, str) or not label or label != label.strip():
        raise BadName("a version label must be text without surrounding spaces", label)
    if any(ch in ":/\\" or _invisible(ch) for ch in label):
        raise BadName(
            'a version label cannot contain ":", "/", "\\" or invisible characters', label
        )
    if _nbytes(label) > MAX_LABEL_BYTES:
        raise BadName(f"a version label can be at most {MAX_LABEL_BYTES} bytes long", label)
    return unicodedata.normalize("NFC", label)


def _split_suffix(name: str) -> tuple[str, str]:
    """``("notebook", ".ipynb")``; a dotfile or a name without a dot has no suffix."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return name, ""
    return name[:dot], name[dot:]


def _cut(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` within ``max_bytes`` UTF-8 bytes, cut between characters.

    A cut just before a combining mark also drops the character it belongs to.
    """
    kept = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    while kept and len(kept) < len(text) and unicodedata.combining(text[len(kept)]):
        kept = kept[:-1]
    return kept


def push_label(at: float) -> str:
    """The label of conflict copies (:func:`conflict_name`): ``2026-12-01 10.30 UTC``."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H.%M UTC")


def conflict_name(path: str, label: str) -> str:
    """Where a teacher's new version of ``path`` goes beside a student's changed copy.

    ``dir/notebook.ipynb`` -> ``dir/notebook (teacher's version LABEL).ipynb``; a name
    without suffix or a dotfile gets the tag at its end. If the result would be too long
    the stem is shortened (never the label or suffix). Raises :class:`BadName`.
    """
    path = validate_path(path)
    tag = f" (teacher's version {_validate_label(label)})"
    folder, _, name = path.rpartition("/")
    stem, suffix = _split_suffix(name)
    if _nbytes(tag + suffix) >= MAX_SEGMENT_BYTES // 2:
        stem, suffix = name, ""  # an absurdly long "suffix" is part of the name
    room = min(MAX_SEGMENT_BYTES, MAX_PATH_BYTES - _nbytes(folder) - (1 if folder else 0))
    budget = room - _nbytes(tag + suffix)
    stem = _cut(stem, budget) if budget > 0 else ""
    if not stem:
        raise BadName("the path is too long to add a version label to it", path)
    return validate_path(f"{folder}/{stem}{tag}{suffix}" if folder else f"{stem}{tag}{suffix}")
