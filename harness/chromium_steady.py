#!/usr/bin/python3
"""Start Chromium blind to the machine's network changes: the test browser's launcher.

Chromium follows the host's addresses and links (a NETLINK_ROUTE socket) and, when they
change, fails every request in flight with ``net::ERR_NETWORK_CHANGED``: a network change
on a laptop means its connections are dead. On a test machine the tests change the host's
network all the time (each Docker network and container adds and removes a bridge, a veth
and their addresses), so a page that loads while a test elsewhere starts a container loses
a script or a style sheet at random ("$ is not defined", "Error Loading Theme").
Reproduced: 6 of 60 sign-ins lost a style sheet while Docker networks came and went; the
students' browsers are on other machines and never see these changes.

This runs Chromium under a seccomp filter that refuses ``socket(AF_NETLINK, *,
NETLINK_ROUTE)`` with EACCES: Chromium then says it cannot watch the network and treats
it as always online. Nothing else changes (the filter allows every other call; it is
inherited by Chromium's processes and by nothing outside them). libseccomp (Debian's
``libseccomp2``) does the filter; no compiler, no root.

Usage: chromium_steady.py [Chromium's arguments] (Playwright's ``executable_path``: it
starts /usr/bin/chromium, the Debian package the tests use)
"""

import ctypes
import errno
import os
import sys

CHROMIUM = "/usr/bin/chromium"
AF_NETLINK, NETLINK_ROUTE = 16, 0
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000
SCMP_CMP_EQ = 4


class ArgCmp(ctypes.Structure):
    """libseccomp's ``struct scmp_arg_cmp``."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def refuse_route_netlink() -> None:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        conditions = (ArgCmp * 2)(
            ArgCmp(0, SCMP_CMP_EQ, AF_NETLINK, 0), ArgCmp(2, SCMP_CMP_EQ, NETLINK_ROUTE, 0)
        )
        socket_nr = lib.seccomp_syscall_resolve_name(b"socket")
        rc = lib.seccomp_rule_add_array(
            ctx, SCMP_ACT_ERRNO | errno.EACCES, socket_nr, 2, conditions
        )
        if rc < 0:
            raise OSError(-rc, "seccomp_rule_add_array failed")
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise OSError(-rc, "seccomp_load failed")
    finally:
        lib.seccomp_release(ctx)


def main() -> None:
    refuse_route_netlink()
    os.execv(CHROMIUM, [CHROMIUM, *sys.argv[1:]])


if __name__ == "__main__":
    main()
