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
