import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.session.__dict__.setdefault("classhub_failed", []).append(item.nodeid)
    return report
