import pytest

from harness.stack import Stack, running_stack

EXTRA_CONFIG = """
# Test-only server names that provoke each kind of spawn failure, through the
# documented pre_spawn_hook (tests never patch classhub's code).
MISSING = "classhub/missing-image:none"

def _failures(spawner):
    if spawner.name == "missingimage":
        spawner.image = MISSING
    elif spawner.name == "notallowed":
        spawner.image = "classhub/not-on-the-list:1"
    elif spawner.name == "oom":
        spawner.mem_limit = "24M"
    elif spawner.name == "slow":
        spawner.cmd = ["sleep", "600"]
        spawner.ready_timeout = 4

c.Spawner.pre_spawn_hook = _failures
# in the catalogue, but not built: the spawn fails with "not installed"
c.ClassroomSpawner.images = [{"name": "classhub/singleuser:latest"}, {"name": MISSING}]
"""


@pytest.fixture(scope="session")
def stack(tmp_path_factory, request):
    yield from running_stack(Stack(tmp_path_factory.mktemp("stack"), extra_config=EXTRA_CONFIG))


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for a test module's page tests (harness/browser.py)."""
    from harness.browser import chromium as launch

    with launch() as browser:
        yield browser
