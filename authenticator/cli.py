"""``classhub-user``: manage local accounts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .users_file import UserFileError, generate_password, load_users, remove_user, set_user


def _default_file() -> str:
    data_dir = os.environ.get("CLASSHUB_DATA_DIR", "/srv/classhub")
    return os.environ.get("CLASSHUB_USERS_FILE", os.path.join(data_dir, "users.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classhub-user", description=__doc__)
    parser.add_argument("--file", default=_default_file(), help="users file")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add", help="create or reset an account; prints a new password")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--if-missing", action="store_true", help="do nothing if it exists")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    rm = sub.add_parser("remove", help="delete an account")
    rm.add_argument("name")
    sub.add_parser("list", help="list account names")
    args = parser.parse_args(argv)
    path = Path(args.file)
    try:
        if args.cmd == "add":
            if args.if_missing and args.name in load_users(path):
                sys.stderr.write(f"{args.name} already exists; unchanged\n")
                return 0
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
            password = password or generate_password()
            set_user(path, args.name, password, admin=args.admin)
            if not args.password_stdin:
                sys.stdout.write(password + "\n")
        elif args.cmd == "remove":
            if not remove_user(path, args.name):
                sys.stderr.write(f"no account {args.name}\n")
                return 1
        else:
            for name, entry in sorted(load_users(path).items()):
                sys.stdout.write(f"{name}{' (admin)' if entry.get('admin') else ''}\n")
    except UserFileError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
