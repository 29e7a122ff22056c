"""The thread counts of numerical libraries in a container with a CPU limit."""

import pytest

from common.cputhreads import VARIABLES, thread_env

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("limit", "threads"), [(0.5, "1"), (1, "1"), (1.0000001, "1"), (1.5, "2"), (2, "2"), (4, "4")]
)
def test_as_many_threads_as_the_limit_rounded_up(limit, threads):
    assert thread_env(limit) == dict.fromkeys(VARIABLES, threads)


@pytest.mark.parametrize("limit", [None, 0, -1])
def test_no_limit_sets_nothing(limit):
    assert thread_env(limit) == {}
