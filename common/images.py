"""The image catalogue: the images an admin allows for students' servers (pure: no I/O).

Each entry is a Docker image reference (``name``) with what teachers see on the class form
(``display_name``, ``description``)::

    [{"name": "classhub/singleuser:latest", "display_name": "Python (minimal)",
      "description": "JupyterLab, Python 3.11 and a terminal."},
     {"name": "classhub/datascience:latest", "display_name": "Data science",
      "description": "numpy, pandas, matplotlib, scipy, scikit-learn, seaborn; git, vim."}]

The classes service offers these on the class form and refuses any other image (a 400),
and the spawner checks the class's image against the same catalogue again before it
starts a container, so a wrong record in a store cannot start an image the admin did not
allow. Both read the catalogue from ``CLASSHUB_IMAGES`` (the list above as JSON, on one
line); the older ``CLASSHUB_ALLOWED_IMAGES`` (comma-separated names) still adds images,
named by their reference. Every image gets the same hardening (``spawner/hardening.py``):
the catalogue chooses what runs, never how.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: the catalogue as JSON (a list of objects, see the module's docstring)
ENV = "CLASSHUB_IMAGES"
#: the older setting: image names only, comma-separated; they join the catalogue
LEGACY_ENV = "CLASSHUB_ALLOWED_IMAGES"
FIELDS = ("name", "display_name", "description")
MAX_IMAGES = 50
MAX_NAME = 255
MAX_DISPLAY_NAME = 80
MAX_DESCRIPTION = 500

EXAMPLE = (
    '[{"name": "classhub/singleuser:latest", "display_name": "Python (minimal)", '
    '"description": "JupyterLab and Python"}]'
)

# Docker's image reference grammar (distribution/reference): [host[:port]/]path[:tag][@digest];
# the first part is a host only when it has a "." or a ":" or is "localhost"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
PATH_RE = re.compile(
    rf"{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?"
)


def _is_reference(value: str) -> bool:
    first, slash, rest = value.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return bool(HOST_RE.fullmatch(first) and PATH_RE.fullmatch(rest))
    return bool(PATH_RE.fullmatch(value))


class CatalogueError(ValueError):
    """The catalogue setting is wrong; the message says where and how to fix it."""


@dataclass(frozen=True)
class ImageChoice:
    """One image of the catalogue."""

    name: str
    display_name: str
    description: str = ""

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
        }


def check_reference(value: Any, where: str = "an image") -> str:
    """``value`` if it is a Docker image reference such as ``classhub/singleuser:latest``."""
    if not isinstance(value, str) or not value:
        raise CatalogueError(
            f"{where}: 'name' must be a Docker image reference such as "
            "'classhub/singleuser:latest'."
        )
    if len(value) > MAX_NAME or not _is_reference(value):
        raise CatalogueError(
            f"{where}: {value[:80]!r} is not a Docker image reference; write it as "
            "'repository:tag', e.g. 'classhub/datascience:latest' (lower-case letters, "
            "digits and . _ - in the repository)."
        )
    return value


def _text(value: Any, field: str, where: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise CatalogueError(f"{where}: {field!r} must be a string.")
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) > max_len:
        raise CatalogueError(f"{where}: {field!r} is longer than {max_len} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise CatalogueError(f"{where}: {field!r} contains a control or invisible character.")
    return text


def parse_entry(item: Any, where: str) -> ImageChoice:
    """One entry: an object with ``name`` (and optionally ``display_name``,
    ``description``), or just the name as a string."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        raise CatalogueError(
            f"{where} must be an object such as "
            '{"name": "classhub/singleuser:latest", "display_name": "Python"}.'
        )
    unknown = sorted(str(k) for k in item if k not in FIELDS)
    if unknown:
        raise CatalogueError(
            f"{where} has unknown field(s) {', '.join(unknown)[:120]}; "
            f"the fields are {', '.join(FIELDS)}."
        )
    if "name" not in item:
        raise CatalogueError(f"{where} has no 'name' (the Docker image reference).")
    name = check_reference(item["name"], where)
    display = _text(item.get("display_name") or name, "display_name", where, MAX_DISPLAY_NAME)
    description = _text(item.get("description") or "", "description", where, MAX_DESCRIPTION)
    return ImageChoice(name, display or name, description)


def parse_catalogue(items: Any, setting: str = ENV) -> tuple[ImageChoice, ...]:
    """The checked catalogue from a list of entries (see :func:`parse_entry`)."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise CatalogueError(f"{setting} must be a list of images, e.g. {EXAMPLE}")
    items = list(items)
    if not items:
        raise CatalogueError(f"{setting} is empty: list at least the default image, e.g. {EXAMPLE}")
    if len(items) > MAX_IMAGES:
        raise CatalogueError(f"{setting} lists {len(items)} images; the limit is {MAX_IMAGES}.")
    out: list[ImageChoice] = []
    seen: dict[str, int] = {}
    shown: dict[str, int] = {}
    for i, item in enumerate(items, 1):
        entry = parse_entry(item, f"{setting}, image {i}")
        if entry.name in seen:
            raise CatalogueError(
                f"{setting} lists {entry.name!r} twice (images {seen[entry.name]} and {i}); "
                "keep one."
            )
        key = entry.display_name.casefold()
        if key in shown:
            raise CatalogueError(
                f"{setting}: images {shown[key]} and {i} are both called "
                f"{entry.display_name!r}; give each its own display_name, teachers choose by it."
            )
        seen[entry.name], shown[key] = i, i
        out.append(entry)
    return tuple(out)


def parse_catalogue_json(raw: str, setting: str = ENV) -> list:
    """The list of entries in a JSON setting (not yet checked; see :func:`parse_catalogue`)."""
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise CatalogueError(
            f"{setting} is not valid JSON ({e.msg} at character {e.pos}); write the list on "
            f"one line, e.g. {setting}={EXAMPLE}"
        ) from None
    if not isinstance(value, list):
        raise CatalogueError(f"{setting} must be a JSON list, e.g. {setting}={EXAMPLE}")
    return value


def split_names(raw: str) -> list[str]:
    """The names of the older comma-separated setting."""
    return [v.strip() for v in raw.split(",") if v.strip()]


def merge_names(entries: Iterable[Any], names: Iterable[str]) -> list:
    """``entries`` followed by each of ``names`` they do not list yet (as bare names)."""
    out = list(entries)
    listed = {e.get("name") if isinstance(e, Mapping) else e for e in out}
    for name in names:
        if name not in listed:
            out.append({"name": name})
            listed.add(name)
    return out


def catalogue_from_env(env: Mapping[str, str], default_image: str) -> list:
    """The catalogue's entries from the environment, not yet checked: ``CLASSHUB_IMAGES``,
    then the names of ``CLASSHUB_ALLOWED_IMAGES`` it does not list; the default image
    alone when neither is set."""
    raw = env.get(ENV, "").strip()
    entries = parse_catalogue_json(raw) if raw else []
    legacy = split_names(env.get(LEGACY_ENV, ""))
    if not raw and not legacy:
        legacy = [default_image]
    return merge_names(entries, legacy)


def names(catalogue: Iterable[ImageChoice]) -> list[str]:
    return [c.name for c in catalogue]


def check_default(catalogue: Iterable[ImageChoice], default_image: str) -> None:
    """The default image (``CLASSHUB_SINGLEUSER_IMAGE``) must be in the catalogue."""
    listed = names(catalogue)
    if default_image not in listed:
        raise CatalogueError(
            f"The default image {default_image!r} (CLASSHUB_SINGLEUSER_IMAGE) is not in the "
            f"image catalogue ({ENV}: {', '.join(listed)}); add it there, or set "
            "CLASSHUB_SINGLEUSER_IMAGE to one of them."
        )
