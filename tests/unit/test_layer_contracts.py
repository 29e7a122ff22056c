"""The layer contracts of `make lint` (pyproject.toml's [tool.importlinter]) really fail on a
wrong arrow: a copy of the code with one planted import per contract breaks all four,
and the same copy without them keeps all four (so the copy itself is sound)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ROOT_PACKAGES = ["common", "hub", "spawner", "authenticator", "services", "backup"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# one wrong arrow for each contract: (file, line appended to it, contract it breaks)
PLANTS = [
    # the bottom layer reaching up into a hub plugin
    ("common/clock.py", "import spawner.labels  # planted\n", "layers"),
    # a hub plugin using the backup tool on top of everything
    ("hub/landing.py", "import backup.run  # planted\n", "layers"),
    # a service importing another service
    ("services/files/app.py", "import services.grades.app  # planted\n", "services"),
    # a plugin using the composition root
    ("spawner/labels.py", "import hub.config  # planted\n", "composition-root"),
    # two sibling modules importing each other
    ("common/planted_a.py", "import common.planted_b  # planted\n", "acyclic"),
    ("common/planted_b.py", "import common.planted_a  # planted\n", "acyclic"),
]


def copy_tree(dest: Path) -> None:
    for pkg in ROOT_PACKAGES:
        shutil.copytree(
            REPO / pkg,
            dest / pkg,
            ignore=shutil.ignore_patterns("__pycache__", "static", "templates", "*.sql"),
        )
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # wide enough that no contract name wraps in the report
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "400"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def contract_names() -> dict[str, str]:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    clean = tmp_path_factory.mktemp("clean")
    copy_tree(clean)
    planted = tmp_path_factory.mktemp("planted")
    copy_tree(planted)
    for name, line, _ in PLANTS:
        path = planted / name
        path.write_text((path.read_text() if path.exists() else "") + line)
    return lint_imports(clean), lint_imports(planted)


def test_the_copy_keeps_every_contract(runs):
    clean, _ = runs
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.search(r"Contracts: 4 kept, 0 broken", clean.stdout), clean.stdout


@pytest.mark.parametrize("contract", sorted({c for _, _, c in PLANTS}))
def test_a_planted_import_breaks_its_contract(runs, contract):
    _, planted = runs
    assert planted.returncode != 0, planted.stdout
    name = contract_names()[contract]
    assert re.search(re.escape(name) + r" BROKEN", planted.stdout), planted.stdout
    assert "Contracts: 0 kept, 4 broken" in planted.stdout, planted.stdout
