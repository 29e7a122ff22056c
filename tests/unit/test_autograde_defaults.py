"""The default of ``autograde_concurrency`` (how many grading containers run at once): the
number of cores this process may use (at most 256), from its CPU affinity when the trait
is read, unless ``CLASSHUB_AUTOGRADE_CONCURRENCY`` or the config sets it
(services/grades/settings.py, AUTOGRADE_TABLE; services/grades/autograde/settings.py)."""

import os

import pytest
from traitlets import TraitError
from traitlets.config import Config

from services.grades.app import GradesApp
from services.grades.autograde.settings import AutogradeSettings
from services.grades.settings import AUTOGRADE_TABLE

pytestmark = pytest.mark.unit

VARIABLE = "CLASSHUB_AUTOGRADE_CONCURRENCY"


@pytest.fixture(autouse=True)
def no_variable(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)


def cores(monkeypatch, n):
    """This process may run on ``n`` cores (None: its affinity is empty)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n or 0)))


@pytest.mark.parametrize("n", [1, 2, 3, 16, 256])
def test_the_default_is_the_number_of_cores(monkeypatch, n):
    cores(monkeypatch, n)
    assert AutogradeSettings().autograde_concurrency == n
    # the grades service's app mixes the settings in: the same default
    assert GradesApp().autograde_concurrency == n


def test_the_default_is_computed_when_the_trait_is_read_not_at_import(monkeypatch):
    cores(monkeypatch, 3)
    first = AutogradeSettings()
    cores(monkeypatch, 5)
    assert first.autograde_concurrency == 5  # not read yet: the default is computed now
    assert first.autograde_concurrency == 5  # and then kept
    cores(monkeypatch, 7)
    assert first.autograde_concurrency == 5


def test_unknown_cores_mean_one_worker(monkeypatch):
    cores(monkeypatch, None)
    assert AutogradeSettings().autograde_concurrency == 1


def test_the_table_declares_the_variable_and_documents_the_default(monkeypatch):
    setting = AUTOGRADE_TABLE.get("autograde_concurrency")
    assert setting is not None and setting.env == VARIABLE
    assert setting.shown_default() == "the number of cores (at most 256)"
    assert VARIABLE in AUTOGRADE_TABLE.passed_variables  # the hub passes it to the service
    cores(monkeypatch, 6)
    assert setting.read(None, {}) == 6  # the variable unset
    assert setting.read(None, {VARIABLE: ""}) == 6  # empty counts as unset
    assert setting.read(None, {VARIABLE: "  "}) == 6
    assert setting.read(None, {VARIABLE: " 4 "}) == 4


def test_the_variable_wins_over_the_cores(monkeypatch):
    cores(monkeypatch, 8)
    monkeypatch.setenv(VARIABLE, "2")
    assert AutogradeSettings().autograde_concurrency == 2
    assert GradesApp().autograde_concurrency == 2


def test_the_config_wins_over_the_variable_and_the_cores(monkeypatch):
    cores(monkeypatch, 8)
    monkeypatch.setenv(VARIABLE, "2")
    c = Config()
    c.AutogradeSettings.autograde_concurrency = 3
    assert AutogradeSettings(config=c).autograde_concurrency == 3
    assert AutogradeSettings(autograde_concurrency=4).autograde_concurrency == 4


@pytest.mark.parametrize(
    ("raw", "match"),
    [("many", "CLASSHUB_AUTOGRADE_CONCURRENCY must be a number"), ("0", "1 to 256")],
)
def test_a_bad_variable_is_refused_with_its_name(monkeypatch, raw, match):
    cores(monkeypatch, 2)
    monkeypatch.setenv(VARIABLE, raw)
    with pytest.raises(TraitError, match=match):
        AutogradeSettings().autograde_concurrency  # noqa: B018


def test_a_machine_of_more_cores_than_the_maximum_still_starts(monkeypatch):
    cores(monkeypatch, 384)
    assert AutogradeSettings().autograde_concurrency == 256
