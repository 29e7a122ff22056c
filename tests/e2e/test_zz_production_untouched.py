"""Last in the tier (file order): `make test` never touches a stack that `make up` started.

The tier's own deployment is a throwaway one (tests/e2e/throwaway.py). Every compose-made
container that ran before the tier started, a production stack's and its students' servers
among them, must still run, never restarted (the same start time), and no container of the
production project (``classhub``) may have appeared. Without a production stack on the
machine (CI), stand-ins of its hub and of a student's server take its place
(tests/e2e/conftest.py ``production_before``).
"""

import pytest

from tests.e2e.conftest import other_stacks

pytestmark = pytest.mark.e2e


def test_stacks_that_were_running_are_untouched(deployment, production_before):
    now = other_stacks()
    assert deployment.stack.project != "classhub"
    assert any(project == "classhub" for project, _ in production_before.values())
    assert any(project == "students" for project, _ in production_before.values())
    for cid, (project, started) in production_before.items():
        assert cid in now, f"a container of project {project} stopped or was removed"
        assert now[cid] == (project, started), f"a container of project {project} was restarted"
    appeared = [
        cid
        for cid, (project, _) in now.items()
        if project == "classhub" and cid not in production_before
    ]
    assert appeared == [], "the tier started containers of the production project"
