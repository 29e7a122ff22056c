"""Join codes (services/classes/joincodes.py): the codes and the limit on wrong guesses."""

import pytest

from services.classes.joincodes import (
    ALPHABET,
    LENGTH,
    JoinLimiter,
    new_join_code,
    normal_join_code,
    shown_join_code,
)

pytestmark = pytest.mark.unit


def test_new_codes_are_random_and_unambiguous():
    codes = {new_join_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == LENGTH and set(code) <= set(ALPHABET)
        assert not set(code) & set("0O1IL")


def test_codes_are_typed_loosely_and_shown_in_groups():
    code = new_join_code()
    shown = shown_join_code(code)
    assert shown.replace("-", "") == code and shown.count("-") == 2
    assert normal_join_code(shown) == code
    assert normal_join_code(" " + shown.lower() + " ") == code


@pytest.mark.parametrize(
    "raw", [None, 7, "", "ABC", "ABCDEFGHJ0", "ABCDEFGHJKM", "A" * 41, {"$ne": ""}, "ABCD%GHJKM"]
)
def test_what_cannot_be_a_code_is_never_looked_up(raw):
    assert normal_join_code(raw) is None


def test_the_limiter_counts_per_account_and_per_address():
    limiter = JoinLimiter(per_account=3, per_address=5, window=100)
    for i in range(3):
        assert limiter.retry_after("eve", "10.0.0.1", i) == 0
        limiter.failed("eve", "10.0.0.1", i)
    assert limiter.retry_after("eve", "10.0.0.1", 3) == pytest.approx(97)
    assert limiter.retry_after("eve", "10.0.0.9", 3) > 0  # another address: still eve
    assert limiter.retry_after("bob", "10.0.0.1", 3) == 0  # another account, same address
    limiter.failed("bob", "10.0.0.1", 4)
    limiter.failed("bob", "10.0.0.1", 5)
    assert limiter.retry_after("ann", "10.0.0.1", 6) > 0  # the address is at 5
    assert limiter.retry_after("ann", "10.0.0.2", 6) == 0
    # the window passes
    assert limiter.retry_after("eve", "10.0.0.1", 101) == 0
    assert limiter.retry_after("ann", "10.0.0.1", 106) == 0


def test_the_limiter_remembers_a_bounded_number_of_keys():
    limiter = JoinLimiter(per_account=1, per_address=1000, window=100, max_keys=10)
    for i in range(50):
        limiter.failed(f"u{i}", f"a{i}", 1)
    assert len(limiter._failures) <= 10
    assert limiter.retry_after("u49", "a49", 2) > 0  # the newest are kept
