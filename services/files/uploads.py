"""Uploads between "signed" and "done": size and quota checks, and the bytes they reserve.

An upload is checked twice. Before anything is signed (:func:`check_new_upload`): the file
size limit, and the area's quota counting what is stored, minus the file being replaced,
plus every upload signed but not yet done (a reservation, so ten uploads signed at once
cannot each pass the quota alone). The store enforces the signed size itself. After the
bytes landed (the browser calls "done"), the handler checks the object again and removes
it if it broke a rule. Reservations expire with their signature.

Uploads that go to a staging key first (a replacement, a zip to unpack) wait under
``staging/<person>/`` outside every area, so they count against the person's *staging
allowance* instead (:func:`staged_bytes`, :func:`check_staging`): what waits there plus
what they signed and have not sent yet. Without it, a person could sign zip uploads of
512 MB each without end and leave them there. Staged objects no upload is waiting for
any more are abandoned (:func:`abandoned`) and removed: at the person's next signature and
by the service's clean-up round.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.errors import ServiceError
from common.units import size_text


class TooLarge(ServiceError):
    status_code = 413


@dataclass(frozen=True)
class Upload:
    id: str
    area_prefix: str
    owner: str  # who signed it (only they may finish it)
    path: str  # the file's path in the area, or the folder to unpack into
    key: str  # where the browser puts the bytes
    size: int
    expires: float
    unpack: bool = False
    staged: bool = False  # the bytes go to a staging key first (replace or unpack)


def check_new_upload(
    *,
    size: int,
    max_file_size: int,
    quota: int,
    used: int,
    replaced: int,
    reserved: int,
    label: str,
) -> None:
    """Refuse (413, with numbers a person understands) an upload that breaks a limit."""
    if size > max_file_size:
        raise TooLarge(
            f"The file is {size_text(size)}; files may be at most {size_text(max_file_size)}."
        )
    after = used - replaced + reserved + size
    if after > quota:
        free = max(0, quota - (used - replaced + reserved))
        raise TooLarge(
            f"Not enough space in {label}: {size_text(size)} needed, {size_text(free)} free "
            f"of {size_text(quota)}. Delete files you no longer need and try again."
        )


def staged_bytes(stored: Iterable, pending: Iterable[Upload]) -> int:
    """What one person's staged uploads take: the staged objects (``key``, ``size``), plus
    each staged upload they signed whose bytes have not arrived (its signed size)."""
    sizes = {o.key: o.size for o in stored}
    return sum(sizes.values()) + sum(u.size for u in pending if u.staged and u.key not in sizes)


def check_staging(*, size: int, staged: int, allowance: int) -> None:
    """Refuse (413) a staged upload that takes the person past their staging allowance."""
    if staged + size > allowance:
        raise TooLarge(
            f"Your unfinished uploads take {size_text(staged)} and this one needs "
            f"{size_text(size)}; at most {size_text(allowance)} may wait to be checked at "
            "once. Let your other uploads finish (an abandoned one is removed after "
            "a few minutes) and try again."
        )


def abandoned(stored: Iterable, pending_keys: set[str], now: float, min_age: float) -> list[str]:
    """Keys of staged objects (``key``, ``modified``) no upload waits for any more and
    older than ``min_age`` seconds (whatever an upload could still report has a record
    in ``pending_keys`` until its signature expired and the grace after it)."""
    return [o.key for o in stored if o.key not in pending_keys and now - o.modified > min_age]


class PendingUploads:
    """Uploads signed and not yet done, by id (in memory: a restart of the service only
    forgets reservations, and the staging clean-up removes their bytes)."""

    def __init__(self, clock: Callable[[], float], grace: float = 60.0):
        self.clock = clock
        #: seconds after its signature expired that a finished upload may still be reported
        self.grace = grace
        self._uploads: dict[str, Upload] = {}

    def _expire(self) -> None:
        now = self.clock()
        gone = [i for i, u in self._uploads.items() if u.expires + self.grace <= now]
        for upload_id in gone:
            del self._uploads[upload_id]

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    def add(self, upload: Upload) -> None:
        self._expire()
        self._uploads[upload.id] = upload

    def reserved(self, area_prefix: str) -> int:
        """Bytes of uploads into the area whose signature is still valid."""
        self._expire()
        now = self.clock()
        return sum(
            u.size
            for u in self._uploads.values()
            if u.area_prefix == area_prefix and u.expires > now
        )

    def get(self, upload_id: str, owner: str) -> Upload | None:
        """The upload if ``owner`` signed it and its signature expired less than ``grace``
        seconds ago (a browser that finished just in time may still report it)."""
        upload = self._uploads.get(upload_id)
        if upload is None or upload.owner != owner or upload.expires + self.grace <= self.clock():
            return None
        return upload

    def finish(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)

    def staged_by(self, owner: str) -> list[Upload]:
        """``owner``'s staged uploads that may still be reported done."""
        self._expire()
        return [u for u in self._uploads.values() if u.owner == owner and u.staged]

    def keys(self) -> set[str]:
        """Every key an upload that may still be reported done writes to."""
        self._expire()
        return {u.key for u in self._uploads.values()}
