"""Parse a roster CSV file and report on it row by row (pure: no database, no hub).

The file has a header line ``username`` and one username per line. A UTF-8 BOM, ``\\r\\n``
line endings, blank lines, surrounding spaces and trailing empty cells (``alice,`` as
spreadsheets export) are accepted; usernames are normalised like everywhere in classhub.

An import is all or nothing: a malformed line, a username that is not a hub user, or (for
a teacher's import) a person who is not a student rejects the whole file, and nothing is
written. A name listed twice (``duplicate``) or
already on the roster (``already_enrolled``) is reported and skipped, never an error.
Problems with the whole file (no header, no names, too many) raise
:class:`RosterFileError`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field

from common.errors import BadRequest

from .model import InvalidClass, check_username

HEADER = "username"

ADDED = "added"  # written (applied imports only)
VALID = "valid"  # would have been added: the import was rejected
ALREADY = "already_enrolled"
DUPLICATE = "duplicate"
UNKNOWN = "unknown_user"
NOT_STUDENT = "not_a_student"  # a teacher's import only: admins may enrol anyone
MALFORMED = "malformed"
ERRORS = frozenset({UNKNOWN, NOT_STUDENT, MALFORMED})


class RosterFileError(BadRequest):
    """The file as a whole cannot be imported; the message says why."""


@dataclass(frozen=True)
class CsvRow:
    """One data line. ``username`` is normalised unless ``error`` says why it is not."""

    line: int
    username: str
    error: str = ""
    duplicate_of: int = 0


@dataclass(frozen=True)
class ReportRow:
    line: int
    username: str
    status: str
    message: str = ""


@dataclass
class ImportReport:
    applied: bool
    rows: list[ReportRow]
    to_add: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def summary(self) -> str:
        if self.applied:
            skipped = len(self.rows) - self.count(ADDED)
            text = f"{self.count(ADDED)} student(s) added"
            return text + (f", {skipped} line(s) skipped (see the report)" if skipped else "")
        errors = sum(1 for r in self.rows if r.status in ERRORS)
        return (
            f"Nothing was imported: {errors} line(s) have errors. Fix the lines marked "
            "'malformed', 'unknown_user' or 'not_a_student' and upload the file again."
        )

    def as_json(self) -> dict:
        return {
            "applied": self.applied,
            "message": self.summary(),
            "added": list(self.to_add) if self.applied else [],
            "counts": {
                s: self.count(s)
                for s in (ADDED, VALID, ALREADY, DUPLICATE, UNKNOWN, NOT_STUDENT, MALFORMED)
            },
            "rows": [asdict(r) for r in self.rows],
        }


def parse_roster_csv(text: str, *, max_rows: int) -> list[CsvRow]:
    """The data rows of a roster file, or :class:`RosterFileError`."""
    if not isinstance(text, str) or not text.strip():
        raise RosterFileError("The CSV file is empty: its first line must be 'username'.")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header: list[str] | None = None
    rows: list[CsvRow] = []
    first_seen: dict[str, int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            values = [c.strip() for c in cells]
            while values and not values[-1]:
                values.pop()
            if not values:
                continue  # blank line
            if header is None:
                header = values
                if [h.lower() for h in header] != [HEADER]:
                    raise RosterFileError(
                        f"The first line must be the header 'username' (one column), "
                        f"not {','.join(header)[:60]!r}."
                    )
                continue
            if len(rows) >= max_rows:
                raise RosterFileError(f"The CSV file has more than {max_rows} usernames; split it.")
            rows.append(_row(line, values, first_seen))
    except csv.Error as e:
        raise RosterFileError(
            f"The CSV file cannot be read (line {reader.line_num}): {e}."
        ) from None
    if header is None:
        raise RosterFileError("The CSV file is empty: its first line must be 'username'.")
    if not rows:
        raise RosterFileError("The CSV file has a header but no usernames.")
    return rows


def _row(line: int, values: list[str], first_seen: dict[str, int]) -> CsvRow:
    if len(values) > 1:
        return CsvRow(line, ",".join(values)[:80], "expected one username per line")
    try:
        name = check_username(values[0])
    except InvalidClass as e:
        return CsvRow(line, values[0][:80], str(e))
    if name in first_seen:
        return CsvRow(line, name, duplicate_of=first_seen[name])
    first_seen[name] = line
    return CsvRow(line, name)


def build_report(
    rows: list[CsvRow],
    *,
    hub_users: Collection[str],
    enrolled: Collection[str],
    refused: Mapping[str, str] | None = None,
) -> ImportReport:
    """The per-row report; ``applied`` is True when nothing blocks the import, and then
    ``to_add`` holds the names to write. ``refused`` maps the hub users the caller may
    not enrol (a teacher: anyone who is not a student) to the reason."""
    refused = refused or {}
    report_rows: list[ReportRow] = []
    to_add: list[str] = []
    for row in rows:
        if row.error:
            report_rows.append(ReportRow(row.line, row.username, MALFORMED, row.error))
        elif row.duplicate_of:
            report_rows.append(
                ReportRow(
                    row.line, row.username, DUPLICATE, f"also on line {row.duplicate_of}; skipped"
                )
            )
        elif row.username not in hub_users:
            report_rows.append(
                ReportRow(
                    row.line,
                    row.username,
                    UNKNOWN,
                    "not a user of this hub: create the account first, or fix the name",
                )
            )
        elif row.username in enrolled:
            report_rows.append(
                ReportRow(row.line, row.username, ALREADY, "already on the roster; skipped")
            )
        elif row.username in refused:
            report_rows.append(
                ReportRow(row.line, row.username, NOT_STUDENT, refused[row.username])
            )
        else:
            report_rows.append(ReportRow(row.line, row.username, ADDED))
            to_add.append(row.username)
    applied = not any(r.status in ERRORS for r in report_rows)
    if not applied:
        report_rows = [
            ReportRow(r.line, r.username, VALID, "not added: the import was rejected")
            if r.status == ADDED
            else r
            for r in report_rows
        ]
        to_add = []
    return ImportReport(applied=applied, rows=report_rows, to_add=to_add)
