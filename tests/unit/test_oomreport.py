"""harness/oomreport.py: the kernel's OOM report of one container, from a kernel log."""

import pytest

from harness.oomreport import oom_reports

pytestmark = pytest.mark.unit

MINE, OTHER = "ab" * 32, "cd" * 32


def report(cid: str, pid: int) -> str:
    return f"""[ 10.1] python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0
[ 10.2] Call Trace:
[ 10.3]  dump_stack_lvl+0x59/0x90
[ 10.4] memory: usage 1048576kB, limit 1048576kB, failcnt 0
[ 10.5] memory+swap: usage 1048576kB, limit 1048576kB, failcnt 0
[ 10.6] kmem: usage 2440kB, limit 9007199254740988kB, failcnt 0
[ 10.7] Memory cgroup stats for /docker/{cid}:
[ 10.8] rss 265900032
[ 10.9] Tasks state (memory values in pages):
[ 11.0] [  pid  ]   uid  tgid total_vm      rss name
[ 11.1] [   {pid}]  1000  {pid}   203234    65794 python3
[ 11.2] oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/docker/{cid},task=python3,pid={pid}
[ 11.3] Memory cgroup out of memory: Killed process {pid} (python3) anon-rss:247624kB
[ 11.4] docker0: port 1(veth0) entered disabled state
"""


def test_only_the_containers_own_reports_without_trace_or_stats():
    log = report(OTHER, 7) + report(MINE, 42) + "[ 12.0] unrelated\n"
    (found,) = oom_reports(log, MINE)
    lines = found.splitlines()
    assert lines[0].startswith("python3 invoked oom-killer")
    assert "memory: usage 1048576kB, limit 1048576kB, failcnt 0" in lines
    assert any(line.startswith("[   42]") for line in lines)  # the tasks table
    assert lines[-1].startswith("Memory cgroup out of memory: Killed process 42")
    assert "dump_stack" not in found and "rss 265900032" not in found
    assert "docker0" not in found and "Killed process 7" not in found


def test_no_report_for_a_container_never_killed():
    assert oom_reports(report(OTHER, 7), MINE) == []
    assert oom_reports("", MINE) == []
