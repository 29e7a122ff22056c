"""The gradebook cache (services/grades/bookcache.py): an answer only for the key it was
built under, the least recently used class dropped first, 0 turns it off."""

import pytest

from services.grades.bookcache import GradebookCache

pytestmark = pytest.mark.unit


def test_an_answer_only_for_its_own_key():
    cache = GradebookCache(4)
    key = (7, ("ana", "bob"))
    assert cache.get("bio", key) is None
    cache.put("bio", key, b"book-7")
    assert cache.get("bio", key) == b"book-7"
    assert cache.get("bio", (8, ("ana", "bob"))) is None  # a newer generation
    assert cache.get("bio", (7, ("ana",))) is None  # another roster
    assert cache.get("chem", key) is None  # another class
    cache.put("bio", (8, ("ana", "bob")), b"book-8")  # replaces the older answer
    assert cache.get("bio", key) is None
    assert cache.get("bio", (8, ("ana", "bob"))) == b"book-8"
    assert len(cache) == 1


def test_least_recently_used_class_goes_first():
    cache = GradebookCache(2)
    cache.put("a", 1, b"A")
    cache.put("b", 1, b"B")
    assert cache.get("a", 1) == b"A"  # "a" used: "b" is now the oldest
    cache.put("c", 1, b"C")
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == b"A" and cache.get("c", 1) == b"C"
    assert len(cache) == 2


def test_size_zero_keeps_nothing_and_negative_is_refused():
    off = GradebookCache(0)
    off.put("a", 1, b"A")
    assert off.get("a", 1) is None and len(off) == 0
    with pytest.raises(ValueError):
        GradebookCache(-1)


def test_the_setting_refuses_a_negative_size_with_a_fix():
    from traitlets import TraitError

    from services.grades.app import GradesApp

    assert GradesApp().gradebook_cache_classes == 64
    assert GradesApp(gradebook_cache_classes=0).gradebook_cache_classes == 0
    with pytest.raises(TraitError, match="use 0 to turn the gradebook cache off"):
        GradesApp(gradebook_cache_classes=-1)
