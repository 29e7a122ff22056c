import pytest
import requests

from harness.files import files_stack
from harness.stack import Stack, running_stack, wait_for

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


@pytest.fixture(scope="session")
def shared_files_stack(tmp_path_factory):
    """One stack with the classes, files and grades services and their test settings
    (``harness.files.files_stack``) per worker, for the test files that need nothing else:
    a stack costs about 12 CPU-seconds and 15 s to start. Those files use names of their
    own (classes and people: most carry the file's own number, ``bio12``, ``sam14``) and
    change no setting; an admin, who sees every class, checks only this file's classes;
    ``files_stack_for_module`` stops their servers when each ends."""
    for stack in files_stack(tmp_path_factory.mktemp("shared-files")):
        health = stack.url + "/services/grades/health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades service healthy")
        yield stack


@pytest.fixture(scope="module")
def files_stack_for_module(shared_files_stack):
    """The worker's shared stack for one test file; the servers it started are stopped
    when it ends, so that the next file starts with none running."""
    yield shared_files_stack
    shared_files_stack.stop_all_servers()


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for a test module's page tests (harness/browser.py)."""
    from harness.browser import chromium as launch

    with launch() as browser:
        yield browser


#: the files that take longest (their stack, fixtures and tests: the tier prints its
#: "seconds per test file"), handed to the workers first: a long file started last would keep
#: one worker busy while the other has nothing left (``--dist loadfile`` keeps this order)
LONGEST_FIRST = (
    "test_grades_deadline.py",
    "test_grades_release.py",
    "test_autograde_seal.py",
    "test_backup_restore.py",
    "test_classes_pages.py",
    "test_homes_boundary.py",
    "test_labext_origins_browser.py",
    "test_labext_browser.py",
    "test_files_api.py",
    "test_autograde_api.py",
    "test_grades_loop.py",
    "test_classes_servers.py",
    "test_ws_revocation.py",
    "test_web_layer_browser.py",
    "test_teacher_reach.py",
    "test_grades_pages.py",
    "test_teacher_accounts.py",
    "test_accounts_store.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept
