"""The gradebooks the service built last, as their JSON answers (pure: no I/O).

A class's gradebook changes only when PostgreSQL's gradebook generation of the class does
(raised by triggers, migrations 0004 and 0005), when one of its deadlines passes ("not
handed in yet" becomes "missing"; the service's key counts the deadlines passed, see
:meth:`~services.grades.store.GradesStore.gradebook_key`) or when its roster does. The
service reads the generation *before* it reads and builds the gradebook, and keeps the
answer under ``(generation, roster)``: a change that lands while it builds makes the
answer newer than its key, never older, and the next read sees a higher generation and
builds again. So an answer from here is never older than the database was when the
generation was read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class GradebookCache:
    """At most ``size`` classes' answers, the least recently used dropped first."""

    def __init__(self, size: int):
        if size < 0:
            raise ValueError("the gradebook cache size cannot be negative")
        self.size = size
        self._items: OrderedDict[str, tuple[Hashable, bytes]] = OrderedDict()

    def get(self, code: str, key: Hashable) -> bytes | None:
        """The answer kept for ``code`` when it was built under ``key``, else None."""
        found = self._items.get(code)
        if found is None or found[0] != key:
            return None
        self._items.move_to_end(code)
        return found[1]

    def put(self, code: str, key: Hashable, body: bytes) -> None:
        if self.size == 0:
            return
        self._items[code] = (key, body)
        self._items.move_to_end(code)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
