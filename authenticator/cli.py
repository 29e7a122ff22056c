"""``classhub-user``: manage the local accounts stored in PostgreSQL.

The database comes from --db-url, else $CLASSHUB_ACCOUNTS_DB_URL, else $CLASSHUB_DB_URL
(prefer the environment: a URL on the command line, with its password, shows in `ps`).
The schema is created or upgraded on the way. Exit codes: 0 done, 1 import not applied,
2 bad input (also: no such account, account exists), 3 database unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from common.errors import StoreUnavailable

from .account_rules import (
    ROLES,
    AccountError,
    AccountExists,
    check_password,
    check_username,
    generate_password,
)
from .accounts import AccountStore
from .settings import AUTH_TABLE

EXIT_OK, EXIT_NOT_APPLIED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3
MAX_CSV_BYTES = 1_000_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="classhub-user",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-url", help="PostgreSQL URL (default: the environment, see above)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per database step")
    p.add_argument("-v", "--verbose", action="store_true", help="log database details")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    add = sub.add_parser("add", help="create an account (prints a generated password once)")
    add.add_argument("name")
    role = add.add_mutually_exclusive_group()
    role.add_argument("--role", choices=ROLES, default="student")
    role.add_argument(
        "--admin", dest="role", action="store_const", const="admin", help="same as --role admin"
    )
    add.add_argument(
        "--if-missing",
        action="store_true",
        help="leave an existing account unchanged (exit 0, print nothing)",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )

    pw = sub.add_parser("passwd", help="set a new password (prints a generated one once)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")

    for cmd, text in (
        ("remove", "delete an account"),
        ("disable", "keep the account but refuse its sign-in"),
        ("enable", "allow a disabled account to sign in again"),
    ):
        sub.add_parser(cmd, help=text).add_argument("name")
    sub.add_parser("list", help="list accounts: name, role, state, created (tab-separated)")

    imp = sub.add_parser("import", help="create accounts from a CSV file, all or nothing")
    imp.add_argument("file", help="CSV with a header: username[,password][,role]; - for stdin")
    imp.add_argument("--default-role", choices=ROLES, default="student")
    imp.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave accounts that exist unchanged instead of refusing the import",
    )
    return p


def _db_url(args: argparse.Namespace) -> str:
    # JWTAuthenticator.accounts_db_url's variables (CLASSHUB_ACCOUNTS_DB_URL, CLASSHUB_DB_URL)
    url = args.db_url or AUTH_TABLE.get("accounts_db_url").read()
    if not url:
        raise AccountError(
            "no account database: pass --db-url or set CLASSHUB_ACCOUNTS_DB_URL or CLASSHUB_DB_URL"
        )
    return url


def _read_password(args: argparse.Namespace, name: str) -> tuple[str, bool]:
    """(password, generated)."""
    if not args.password_stdin:
        return generate_password(), True
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise AccountError("no password on stdin (the first line is read)")
    return check_password(password, check_username(name)), False


def _read_csv(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_CSV_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_CSV_BYTES + 1)
    except OSError as e:
        raise AccountError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_CSV_BYTES:
        raise AccountError(f"{path} is larger than {MAX_CSV_BYTES // 1_000_000} MB; split it")
    try:
        return data.decode("utf-8")  # a BOM is handled by the parser
    except UnicodeDecodeError as e:
        raise AccountError(
            f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8 CSV"
        ) from None


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


async def _run(args: argparse.Namespace) -> int:
    # validate everything that needs no database before connecting
    password = generated = None
    if args.cmd in ("add", "passwd"):
        password, generated = _read_password(args, args.name)
    csv_text = _read_csv(args.file) if args.cmd == "import" else None
    async with AccountStore(_db_url(args), min_size=1, max_size=2, timeout=args.timeout) as store:
        if args.cmd == "add":
            try:
                account = await store.create(args.name, password, args.role)
            except AccountExists:
                if not args.if_missing:
                    raise
                sys.stderr.write(f"{check_username(args.name)} exists already; unchanged\n")
                return EXIT_OK
            if generated:
                _out(password)
            sys.stderr.write(f"created {account.username} ({account.role})\n")
        elif args.cmd == "passwd":
            await store.set_password(args.name, password)
            if generated:
                _out(password)
        elif args.cmd == "remove":
            await store.delete(args.name)
        elif args.cmd in ("disable", "enable"):
            await store.set_disabled(args.name, args.cmd == "disable")
        elif args.cmd == "list":
            for a in await store.list():
                state = "disabled" if a.disabled else "active"
                _out(
                    f"{a.username}\t{a.role}\t{state}\t{a.created_at.isoformat(timespec='seconds')}"
                )
        else:
            report = await store.import_csv(
                csv_text, default_role=args.default_role, skip_existing=args.skip_existing
            )
            for r in report.rows:
                extra = f"\tpassword: {r.password}" if r.password else ""
                _out(f"line {r.line}\t{r.username or '-'}\t{r.status}\t{r.message}{extra}")
            sys.stderr.write(report.summary() + "\n")
            return EXIT_OK if report.applied else EXIT_NOT_APPLIED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # the pool's own retry warnings; the cause is in our error message
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        logging.getLogger("common.postgres").setLevel(logging.ERROR)
    try:
        return asyncio.run(_run(args))
    except StoreUnavailable as e:
        sys.stderr.write(f"error: {e} ({e.detail})\n")
        return EXIT_UNAVAILABLE
    except ValueError as e:  # AccountError and a malformed database URL
        sys.stderr.write(f"error: {e}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
