"""The benchmarks (bench/) and the test harness (harness/) never import a test module:
tests build on the harness, never the other way round, and a benchmark that imported a
test would run with whatever that test file happens to set up. import-linter's contracts
cover the product's packages only (bench/ is not a package), so this walks the files."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_bench_and_harness_import_no_test_module():
    files = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("harness/*.py")])
    assert len(files) > 10
    wrong = {
        str(f.relative_to(ROOT)): sorted(
            m for m in imported_modules(f) if m.split(".")[0] == "tests"
        )
        for f in files
    }
    assert {f: m for f, m in wrong.items() if m} == {}


def test_the_check_sees_a_planted_import(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("from tests.e2e.conftest import other_stacks\nimport tests.unit\n")
    assert imported_modules(planted) == {"tests.e2e.conftest", "tests.unit"}
