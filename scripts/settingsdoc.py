"""Generate the admin guide's settings tables from the traits (``make docs``).

Each table lies between ``<!-- settings:NAME -->`` and ``<!-- /settings:NAME -->`` in
docs/admin-guide.md; the hub's own variables (``hub-env``: hub/settings.py's ``HUB_TABLE``,
their defaults and meaning), and one row per configurable trait: the setting (``c.Class.trait`` and
its ``CLASSHUB_*`` variable, from the class's table in ``common/settings.py``), its
default and its help text. ``python scripts/settingsdoc.py`` rewrites the guide;
``--check`` exits 1 when it is stale. tests/unit/test_settings_doc.py runs the check
and also requires every trait's help to have a ``c.Class.trait = ...`` example.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "admin-guide.md"

#: (marker name, "module:Class", the prefixes of the modules whose traits are listed)
CLASSES = [
    ("ClassroomSpawner", "spawner.spawner:ClassroomSpawner"),
    ("SwarmClassroomSpawner", "spawner.swarm:SwarmClassroomSpawner"),
    ("TraefikDockerProxy", "hub.proxy:TraefikDockerProxy"),
    ("JWTAuthenticator", "authenticator:JWTAuthenticator"),
    ("GateApp", "authenticator.gate:GateApp"),
    ("Branding", "common.web.branding:Branding"),
    ("ClassesApp", "services.classes.app:ClassesApp"),
    ("FilesApp", "services.files.app:FilesApp"),
    ("GradesApp", "services.grades.app:GradesApp"),
    ("BackupSettings", "backup.settings:BackupSettings"),
]
OURS = ("spawner", "hub", "authenticator", "services", "common", "backup")
#: subclasses whose table lists only the traits they add (their base has its own table)
OWN_TRAITS_ONLY = {"spawner.swarm:SwarmClassroomSpawner"}


def load(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def listed_traits(cls: type) -> dict:
    """The configurable traits classhub defines (on the class or a classhub base), and
    those of JupyterHub's classes that a classhub table gives a default."""
    from common.settings import env_table

    table = env_table(cls)
    fed = {s.trait for s in table if s.trait}
    own_only = f"{cls.__module__}:{cls.__name__}" in OWN_TRAITS_ONLY
    out = {}
    for name, trait in sorted(cls.class_traits(config=True).items()):
        owner = getattr(trait, "this_class", None)
        if own_only and owner is not cls:
            continue
        mod = getattr(owner, "__module__", "")
        if mod.split(".")[0] in OURS or name in fed:
            out[name] = trait
    return out


def _one_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip())
    return text.replace("|", "\\|")


def shown_default(cls: type, name: str, trait) -> str:
    from common.settings import env_table

    setting = env_table(cls).get(name)
    if setting is not None:
        return setting.shown_default()
    generators = cls._all_trait_default_generators
    if name in generators and generators[name] != trait.default:
        return "computed (see the help)"
    value = trait.default_value
    if value in ("", [], {}, set()):
        return "empty"
    return repr(value)


def rows(marker: str, cls: type) -> list[str]:
    from common.settings import env_table

    table = env_table(cls)
    out = [
        "| setting | default | what and why |",
        "|---|---|---|",
    ]
    for name, trait in listed_traits(cls).items():
        setting = table.get(name)
        what = f"`c.{marker}.{name}`"
        if setting is not None:
            what += "<br>" + ", ".join(f"`{v}`" for v in setting.variables)
        default = _one_line(shown_default(cls, name, trait))
        text = _one_line(trait.help or "")
        owner = getattr(trait, "this_class", None)
        if getattr(owner, "__module__", "").split(".")[0] not in OURS:
            # JupyterHub's own trait, whose default classhub sets: its help's first sentence
            text = text.split(". ")[0].rstrip(".") + ". (DockerSpawner's trait.)"
        out.append(f"| {what} | `{default}` | {text} |")
    return out


def variable_rows() -> list[str]:
    """Every ``CLASSHUB_*`` variable of a table: the settings it feeds, with defaults."""
    from common.settings import env_table

    feeds: dict[str, list[str]] = {}
    for marker, spec in CLASSES:
        for setting in env_table(load(spec)):
            if not setting.trait:
                continue
            for i, name in enumerate(setting.variables):
                how = "" if i == 0 else f" (when `{setting.env}` is unset)"
                default = _one_line(setting.shown_default())
                feeds.setdefault(name, []).append(
                    f"`c.{marker}.{setting.trait}`{how}, default `{default}`"
                )
    out = ["| variable | the settings it feeds |", "|---|---|"]
    for name in sorted(feeds):
        out.append(f"| `{name}` | {'; '.join(dict.fromkeys(feeds[name]))} |")
    return out


def hub_env_rows() -> list[str]:
    """The hub's own variables (hub/settings.py ``HUB_TABLE``): default and meaning."""
    from hub.settings import HUB_TABLE

    out = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in HUB_TABLE:
        default = _one_line(setting.shown_default())
        out.append(f"| `{setting.env}` | `{default}` | {_one_line(setting.doc)} |")
    return out


def problems() -> list[str]:
    """Traits without a help that has a ``c.Class.trait = ...`` example."""
    found = []
    for marker, spec in CLASSES:
        cls = load(spec)
        for name, trait in listed_traits(cls).items():
            owner = getattr(trait, "this_class", None)
            if getattr(owner, "__module__", "").split(".")[0] not in OURS:
                continue  # JupyterHub's own trait: its help is JupyterHub's
            if not re.search(rf"c\.\w+\.{name} =", trait.help or ""):
                found.append(
                    f"{marker}.{name}: its help= needs what, why and an example "
                    f"``c.{marker}.{name} = ...``"
                )
    return found


def render(text: str) -> str:
    """``text`` (the guide) with every marked table generated again."""
    tables = [(marker, lambda m=marker, s=spec: rows(m, load(s))) for marker, spec in CLASSES]
    tables.append(("variables", variable_rows))
    tables.append(("hub-env", hub_env_rows))
    for marker, make in tables:
        begin, end = f"<!-- settings:{marker} -->", f"<!-- /settings:{marker} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"docs/admin-guide.md lacks the markers {begin} ... {end}")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        body = "\n".join(make())
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the guide is stale")
    args = parser.parse_args(argv)
    current = GUIDE.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            sys.stderr.write("docs/admin-guide.md is stale: run `make docs`\n")
            return 1
        return 0
    if fresh != current:
        GUIDE.write_text(fresh)
        sys.stdout.write("docs/admin-guide.md: settings tables written\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
