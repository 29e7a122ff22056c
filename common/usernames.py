"""One rule for turning an identity (a JWT claim, a typed or imported name) into a username.

The rule never drops information that tells two people apart: ``alice@a.edu`` and
``alice@b.edu`` stay two users (other JWT authenticators strip the domain and merge them).
It only folds what cannot tell people apart: Unicode composition (NFC) and letter case.
Anything that could be misread or would break a URL or a log line is refused, not
rewritten, so no two different inputs are silently made equal.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 128

#: characters refused anywhere in a name, with the reason shown to the admin or user
FORBIDDEN = {
    "/": "a slash",
    "\\": "a backslash",
    "?": "a question mark",
    "#": "a hash sign",
    "%": "a percent sign",
    '"': "a double quote",
    "'": "a single quote",
    "`": "a backtick",
    "<": "an angle bracket",
    ">": "an angle bracket",
    ":": "a colon",
    ";": "a semicolon",
    ",": "a comma",
    "&": "an ampersand",
}


class InvalidUsername(ValueError):
    """A name that cannot become a username; the message says why, without echoing it."""


def normalize_username(raw: str) -> str:
    """Return the canonical username for ``raw`` or raise :class:`InvalidUsername`.

    NFC-normalised, case-folded with ``str.lower``, surrounding whitespace refused rather
    than stripped silently inside the name, at most :data:`MAX_LENGTH` characters.
    """
    if not isinstance(raw, str):
        raise InvalidUsername("the username must be a string")
    name = unicodedata.normalize("NFC", raw.strip()).lower()
    if not name:
        raise InvalidUsername("the username is empty")
    if len(name) > MAX_LENGTH:
        raise InvalidUsername(f"the username is longer than {MAX_LENGTH} characters")
    if name in (".", ".."):
        raise InvalidUsername("the username cannot be '.' or '..'")
    if name.startswith(("-", ".")):
        raise InvalidUsername("the username cannot start with '-' or '.'")
    for ch in name:
        if ch in FORBIDDEN:
            raise InvalidUsername(f"the username contains {FORBIDDEN[ch]}")
        category = unicodedata.category(ch)
        if ch.isspace() or category.startswith(("C", "Z")):
            # control, format (zero-width, bidi overrides), private use, separators
            raise InvalidUsername("the username contains a space or an invisible character")
    return name
