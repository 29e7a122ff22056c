import pytest

from hub.firewall import chain_name, rules

pytestmark = pytest.mark.unit


def test_rules_allow_replies_and_listed_ports_then_reject():
    r = rules("classhub0", [8081, 8081])
    assert r[0][-4:] == ["--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"]
    assert ["-A", "CLASSHUB-classhub0", "-p", "tcp", "--dport", "8081", "-j", "RETURN"] in r
    assert sum(1 for x in r if "--dport" in x) == 1
    # everything else ends in a reject, last
    assert r[-2][-3:] == ["REJECT", "--reject-with", "tcp-reset"]
    assert r[-1][-3:] == ["REJECT", "--reject-with", "icmp-port-unreachable"]


@pytest.mark.parametrize("bad", ["", "a" * 16, "br;rm -rf", "x y"])
def test_bad_bridge_names(bad):
    with pytest.raises(ValueError):
        chain_name(bad)


def test_bad_port():
    with pytest.raises(ValueError):
        rules("classhub0", [70000])
