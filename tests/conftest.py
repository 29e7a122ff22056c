import pytest

from tests.probes import open_host_port


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when in ("setup", "call"):
        stack = getattr(item, "funcargs", {}).get("stack")
        if stack is not None:
            # shown with the failure: hub, Traefik, data services and container logs
            report.sections.append(("classhub stack logs", stack.logs()))
    return report


@pytest.fixture
def open_port():
    """A host TCP port listening on all interfaces, for reachability tests."""
    with open_host_port() as port:
        yield port


#: seconds per test file (setup, call and teardown of its tests, module fixtures included),
#: gathered by the process that prints the summary (the xdist controller when there is one)
_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """The slowest test files, for the tiers that start deployments: what to keep in
    ``LONGEST_FIRST`` (tests/integration/conftest.py) and where `make test`'s time goes."""
    if len(_FILE_SECONDS) < 2 or sum(_FILE_SECONDS.values()) < 60:
        return
    terminalreporter.section("seconds per test file (slowest 20)")
    slowest = sorted(_FILE_SECONDS.items(), key=lambda kv: kv[1], reverse=True)[:20]
    for path, seconds in slowest:
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_FILE_SECONDS.values()):8.1f} s  all files")
