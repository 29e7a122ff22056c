"""Sizes as people write them (``512M``, ``2G``) and as people read them (pure: no I/O).

One notation everywhere a size is set (memory limits, quotas, file size limits): a
number, optionally with a fraction, then K, M, G or T, each 1024 of the one before,
optionally followed by ``B`` or ``iB`` and in any case (``1.5g``, ``2GiB``). A plain
number is bytes.
"""

from __future__ import annotations

import re
from typing import Any

UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """Bytes from ``"512M"``, ``"1.5G"``, ``"2GiB"``, ``"1048576"`` or a whole number of
    bytes; :class:`ValueError` with an example otherwise (callers add which setting)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (m := _SIZE_RE.match(value)):
        return int(float(m.group(1)) * UNITS[m.group(2).upper()])
    shown = repr(value[:20]) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"{shown} is not a size; write it like 2G, 512M or 1536M")


def format_size(size: int) -> str:
    """The largest whole unit JupyterHub's ByteSpecification reads: ``1536M``, ``2G``."""
    for unit in ("T", "G", "M", "K"):
        if size % UNITS[unit] == 0 and size >= UNITS[unit]:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def size_text(n: int) -> str:
    """A size for people to read: ``"1.5 GB"``, ``"300.0 KB"``, ``"12 bytes"``."""
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
