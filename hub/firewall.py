"""Host firewall for the student bridge: containers reach the hub's port and nothing else
on the host, and never the link-local range (cloud metadata services hand out machine
credentials at 169.254.169.254).

Traffic from a container to the host's own addresses goes through the host's INPUT
chain, which Docker leaves open: without these rules a student could reach any service
that listens on all interfaces (SSH, a database bound to 0.0.0.0, ...). Replies to
connections the host opened (the hub and Traefik talking to containers) stay allowed.

``rules()`` is pure and unit-tested; ``apply()``/``remove()`` run iptables idempotently.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

LINK_LOCAL = "169.254.0.0/16"


def chain_name(bridge: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", bridge):
        raise ValueError(f"{bridge!r} is not a Linux interface name")
    return f"CLASSHUB-{bridge}"[:28]


def rules(bridge: str, allow_ports: list[int]) -> list[list[str]]:
    """iptables argument lists that build the chain for ``bridge`` (after a flush)."""
    chain = chain_name(bridge)
    out = [["-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"]]
    for port in sorted(set(allow_ports)):
        if not 0 < int(port) < 65536:
            raise ValueError(f"port {port} out of range")
        out.append(["-A", chain, "-p", "tcp", "--dport", str(int(port)), "-j", "RETURN"])
    out.append(["-A", chain, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"])
    out.append(["-A", chain, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"])
    return out


def _ipt(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["iptables", "-w", "10", *args], capture_output=True, text=True, check=check, timeout=30
    )


def _ensure(table_chain: str, rule: list[str]) -> None:
    if _ipt("-C", table_chain, *rule, check=False).returncode != 0:
        _ipt("-I", table_chain, "1", *rule)


def apply(bridge: str, allow_ports: list[int]) -> None:
    chain = chain_name(bridge)
    if _ipt("-n", "-L", chain, check=False).returncode != 0:
        _ipt("-N", chain)
    _ipt("-F", chain)
    for rule in rules(bridge, allow_ports):
        _ipt(*rule)
    _ensure("INPUT", ["-i", bridge, "-j", chain])
    # forwarded traffic to link-local addresses (cloud metadata) from student containers
    if _ipt("-n", "-L", "DOCKER-USER", check=False).returncode != 0:
        _ipt("-N", "DOCKER-USER")
    _ensure("DOCKER-USER", ["-i", bridge, "-d", LINK_LOCAL, "-j", "REJECT"])


def remove(bridge: str) -> None:
    chain = chain_name(bridge)
    while _ipt("-D", "INPUT", "-i", bridge, "-j", chain, check=False).returncode == 0:
        pass
    while (
        _ipt(
            "-D", "DOCKER-USER", "-i", bridge, "-d", LINK_LOCAL, "-j", "REJECT", check=False
        ).returncode
        == 0
    ):
        pass
    _ipt("-F", chain, check=False)
    _ipt("-X", chain, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="classhub-firewall", description="Limit what student containers reach on the host."
    )
    parser.add_argument("--bridge", required=True, help="Linux bridge of the student network")
    parser.add_argument(
        "--allow-port",
        type=int,
        action="append",
        default=[],
        help="host TCP port students may reach (the hub's); repeatable",
    )
    parser.add_argument("--remove", action="store_true", help="remove the rules instead")
    args = parser.parse_args(argv)
    try:
        if args.remove:
            remove(args.bridge)
        else:
            apply(args.bridge, args.allow_port)
    except (subprocess.CalledProcessError, ValueError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        sys.stderr.write(f"classhub-firewall: {detail.strip()}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
