"""Parse an accounts CSV file and report on it, row by row (pure: no database, no I/O).

The file needs a header row; the columns are ``username`` (required), ``password`` (empty or
missing: a strong password is generated and shown once in the report) and ``role`` (empty
or missing: the import's default role). Column names are case-insensitive, the delimiter is
``,`` (or ``;`` / tab when the header uses those, as some spreadsheet locales export), a
UTF-8 BOM and ``\\r\\n`` line endings are accepted, blank lines are skipped.

An import is all or nothing: any row with an error blocks it, and so does a username that
already has an account unless the import skips existing accounts (then that row is reported
as ``exists`` and left unchanged). Problems with the whole file (empty, no header, unknown
column, too big) raise :class:`~authenticator.account_rules.AccountError` instead. Messages never
contain a password.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from common.usernames import InvalidUsername, normalize_username

from .account_rules import AccountError, check_password, check_role, generate_password

MAX_BYTES = 1_000_000
MAX_ROWS = 5000
COLUMNS = ("username", "password", "role")

EXISTS_BLOCKS = "an account with this username already exists (remove the line, or skip existing)"
EXISTS_SKIPPED = "an account with this username already exists; left unchanged"


@dataclass(frozen=True)
class CsvAccount:
    """One data row. ``username`` is normalised when valid; ``error`` is None when valid."""

    line: int
    username: str
    role: str
    password: str | None = field(default=None, repr=False)
    generated: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ImportRow:
    line: int
    username: str
    status: str  # "created" | "exists" | "error"
    message: str = ""
    #: the generated password of a created account (only when the import was applied)
    password: str | None = field(default=None, repr=False)
    #: the role the row gives (the hub is told it for created accounts)
    role: str = ""


@dataclass
class ImportReport:
    """``rows``: every row when applied; only the rows with a problem (error or existing
    account) when not. ``total``: the number of data rows in the file."""

    applied: bool
    rows: list[ImportRow]
    total: int = 0

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def summary(self) -> str:
        created, exists, errors = self.count("created"), self.count("exists"), self.count("error")
        if self.applied:
            text = f"{created} account(s) created"
            return text + (f", {exists} existing left unchanged" if exists else "")
        parts = [f"{errors} row(s) with errors"] if errors else []
        parts += [f"{exists} row(s) with an existing username"] if exists else []
        return f"nothing was written: {' and '.join(parts)} (of {self.total})"


# ----------------------------------------------------------------------------- parsing


def parse_accounts_csv(text: str, *, default_role: str = "student") -> list[CsvAccount]:
    """The data rows of ``text``, each valid or with its ``error``; raises
    :class:`AccountError` when the file as a whole cannot be used."""
    default_role = check_role(default_role)
    if not isinstance(text, str):
        raise AccountError("the CSV file must be text")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise AccountError(f"the CSV file is larger than {MAX_BYTES // 1_000_000} MB; split it")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    header: list[str] | None = None
    rows: list[CsvAccount] = []
    seen: dict[str, int] = {}
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = _header(fields)
            elif len(rows) >= MAX_ROWS:
                raise AccountError(f"the CSV file has more than {MAX_ROWS} accounts; split it")
            else:
                rows.append(_row(start, fields, header, default_role, seen))
    except csv.Error as e:
        # the line where the broken record starts (an unclosed quote swallows the rest)
        raise AccountError(f"line {end + 1}: the CSV is malformed ({e})") from None
    if header is None:
        raise AccountError("the CSV file is empty")
    if not rows:
        raise AccountError("the CSV file has a header but no accounts")
    return rows


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    for candidate in (",", ";", "\t"):
        if candidate in first:
            return candidate
    return ","


def _header(fields: list[str]) -> list[str]:
    names = [f.strip().lower() for f in fields]
    while names and not names[-1]:  # spreadsheets pad every line with empty cells
        names.pop()
    if "username" not in names:
        raise AccountError(
            "the first line must be a header naming the columns: "
            "username, and optionally password and role"
        )
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        shown = ", ".join(repr(n[:40]) for n in unknown)
        raise AccountError(
            f"unknown column(s) in the header: {shown}; the columns are username, password, role"
        )
    for name in COLUMNS:
        if names.count(name) > 1:
            raise AccountError(f"the column {name!r} appears more than once in the header")
    return names


def _row(
    line: int, fields: list[str], header: list[str], default_role: str, seen: dict[str, int]
) -> CsvAccount:
    n = len(header)
    if len(fields) < n or any(f.strip() for f in fields[n:]):
        # no username shown: with the columns shifted it could be someone's password
        error = f"this line has {len(fields)} fields but the header has {n}"
        return CsvAccount(line, "", default_role, error=error)
    cells = dict(zip(header, fields, strict=False))
    errors = []
    try:
        name = normalize_username(cells["username"])
    except InvalidUsername as e:
        name = ""
        errors.append(f"invalid username: {e}")
    role = default_role
    if cells.get("role", "").strip():
        try:
            role = check_role(cells["role"])
        except AccountError as e:
            errors.append(str(e))
    password = cells.get("password", "")
    generated = not password
    if generated:
        password = generate_password()
    elif password != password.strip():
        errors.append("the password starts or ends with a space")
    else:
        try:
            check_password(password, name or None)
        except AccountError as e:
            errors.append(str(e))
    if name and name in seen:
        errors.append(f"the username {name} is also on line {seen[name]}")
    elif name:
        seen[name] = line
    shown = name or _shown(cells["username"])
    return CsvAccount(line, shown, role, password, generated, "; ".join(errors) or None)


def _shown(raw: str) -> str:
    """An invalid username made safe to print: printable, at most 40 characters."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in raw.strip())
    return clean[:40] + ("..." if len(clean) > 40 else "")


# ----------------------------------------------------------------------------- report


def is_blocked(rows: Iterable[CsvAccount], existing: Collection[str], *, skip_existing: bool):
    """Whether any row stops the import (an error, or an existing account not skipped)."""
    return any(r.error or (r.username in existing and not skip_existing) for r in rows)


def rows_to_create(rows: Iterable[CsvAccount], existing: Collection[str]) -> list[CsvAccount]:
    return [r for r in rows if not r.error and r.username not in existing]


def build_report(
    rows: list[CsvAccount], existing: Collection[str], *, skip_existing: bool, applied: bool
) -> ImportReport:
    out = []
    for r in rows:
        if r.error:
            out.append(ImportRow(r.line, r.username, "error", r.error))
        elif r.username in existing:
            message = EXISTS_SKIPPED if skip_existing else EXISTS_BLOCKS
            out.append(ImportRow(r.line, r.username, "exists", message))
        elif applied:
            password = r.password if r.generated else None
            message = "created with a generated password" if r.generated else "created"
            out.append(ImportRow(r.line, r.username, "created", message, password, r.role))
    return ImportReport(applied, out, len(rows))
