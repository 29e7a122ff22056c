"""One owner per setting: the admin guide's settings tables are generated from the traits
(scripts/settingsdoc.py, ``make docs``), every trait's help has an example, and what the
hub passes to each service is exactly the service's settings table."""

import sys
from pathlib import Path

import pytest
from traitlets import Float, TraitError
from traitlets.config import Configurable

from common.settings import EnvSetting, EnvTable, env_table, number

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import settingsdoc  # noqa: E402


def test_the_admin_guide_settings_tables_are_up_to_date():
    current = settingsdoc.GUIDE.read_text()
    assert settingsdoc.render(current) == current, (
        "docs/admin-guide.md's settings tables differ from the traits: run `make docs` "
        "(python scripts/settingsdoc.py) and commit the result"
    )


def test_every_trait_has_a_help_with_an_example():
    assert settingsdoc.problems() == []


@pytest.mark.parametrize("service", ["classes", "files", "grades"])
def test_the_hub_passes_each_service_exactly_its_table(service):
    import importlib

    config = importlib.import_module(f"services.{service}.config")
    settings = importlib.import_module(f"services.{service}.settings")
    app_cls = {
        "classes": "services.classes.app:ClassesApp",
        "files": "services.files.app:FilesApp",
        "grades": "services.grades.app:GradesApp",
    }[service]
    table = env_table(settingsdoc.load(app_cls))
    assert set(table.passed_variables) == set(settings.TABLE.passed_variables)
    assert set(config.PASSED_ENV) == set(table.passed_variables) - set(config.HUB_COMPUTED)


def test_the_hub_never_passes_a_fallback_variable():
    """CLASSHUB_DB_URL holds the hub's own credentials: the grades service gets its own
    URL, never the hub's."""
    from services.grades.config import PASSED_ENV

    assert "CLASSHUB_DB_URL" not in PASSED_ENV


TABLE = EnvTable((EnvSetting("speed", "CLASSHUB_TEST_SPEED", 2.0, number, "a number"),))


@TABLE.install
class Thing(Configurable):
    speed = Float(config=True, help="How fast. Example: ``c.Thing.speed = 3``")


class SubThing(Thing):
    pass


def test_a_table_entry_becomes_the_traits_default(monkeypatch):
    monkeypatch.delenv("CLASSHUB_TEST_SPEED", raising=False)
    assert Thing().speed == 2.0
    monkeypatch.setenv("CLASSHUB_TEST_SPEED", "5")
    assert Thing().speed == 5.0 and SubThing().speed == 5.0
    assert Thing(speed=1.0).speed == 1.0  # configuration wins over the variable
    monkeypatch.setenv("CLASSHUB_TEST_SPEED", "fast")
    with pytest.raises(TraitError, match="CLASSHUB_TEST_SPEED must be a number, got 'fast'"):
        Thing().speed  # noqa: B018


def test_a_trait_has_one_default_only():
    from traitlets import default

    class Twice(Configurable):
        speed = Float(config=True)

        @default("speed")
        def _speed(self):
            return 1.0

    with pytest.raises(TypeError, match="keep one"):
        TABLE.install(Twice)


def _shared_declarations() -> list:
    """The module-level declarations that tables take over with ``.of()``."""
    import common.hubenv
    import services.base.hubconfig
    import services.base.sharedenv

    found = []
    for module in (common.hubenv, services.base.sharedenv, services.base.hubconfig):
        for value in vars(module).values():
            values = value.values() if isinstance(value, dict) else (value,)
            found += [v for v in values if isinstance(v, EnvSetting) and not v.trait]
    return found


def test_each_variable_is_declared_once():
    """One owner per setting: a variable that feeds traits of several tables is one shared
    declaration (common/hubenv.py, services/base/sharedenv.py), which each table takes over
    with ``.of(trait)``, so its default, parser, expectation and checks cannot drift apart.
    A fallback (``also``) is a use of another variable, not a declaration of it."""
    from dataclasses import replace

    shared = _shared_declarations()
    users: dict[str, list[tuple[str, EnvSetting]]] = {}
    for marker, spec in settingsdoc.CLASSES:
        for setting in env_table(settingsdoc.load(spec)):
            if setting.trait:
                users.setdefault(setting.env, []).append((f"{marker}.{setting.trait}", setting))
    problems = []
    for env, uses in sorted(users.items()):
        owners = [d for d in shared if d.env == env]
        if len(owners) > 1:
            problems.append(f"{env}: {len(owners)} shared declarations")
            continue
        distinct = []
        for _, s in uses:
            bare = replace(s, trait="")
            if bare not in distinct:
                distinct.append(bare)
        traits = sorted({t for t, _ in uses})
        # a subclass lists its base's entries again (the same objects): one holder
        holders = {id(s) for _, s in uses}
        if len(distinct) > 1:
            problems.append(f"{env}: declared differently by {', '.join(traits)}")
        elif len(holders) > 1 and not owners:
            problems.append(
                f"{env}: feeds {', '.join(traits)} with copies of one declaration; declare it "
                "once (common/hubenv.py or services/base/sharedenv.py) and use .of()"
            )
        elif owners and distinct[0] != owners[0]:
            problems.append(f"{env}: a table changes the shared declaration")
    assert problems == []
