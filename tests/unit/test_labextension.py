"""classhub's JupyterLab extension as committed: built from the sources as they are (the
image build cannot run Node.js, so a stale build would ship silently), complete, and
installed by the classhub-singleuser wheel where JupyterLab looks for it."""

import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "images/labextension"
SINGLEUSER = ROOT / "images/singleuser"
OUT = SINGLEUSER / "classhub_singleuser/labextension"
REBUILD = "run images/labextension/build.sh and commit its output"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_committed_build_is_of_the_current_sources():
    recorded = {}
    for line in (OUT / "SOURCES.sha256").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    files = ["package.json", "package-lock.json"]
    files += sorted(str(p.relative_to(SRC)) for p in SRC.glob("src/*.js"))
    files += sorted(str(p.relative_to(SRC)) for p in SRC.glob("style/*.css"))
    current = {name: _sha(SRC / name) for name in files}
    pin = [
        line + "\n"
        for line in (SINGLEUSER / "constraints.txt").read_text().splitlines()
        if line.startswith("jupyterlab==")
    ]
    current["jupyterlab-pin"] = hashlib.sha256("".join(pin).encode()).hexdigest()
    assert recorded == current, REBUILD


def test_the_build_is_complete_and_names_its_entry_point():
    meta = json.loads((OUT / "package.json").read_text())
    source = json.loads((SRC / "package.json").read_text())
    assert meta["name"] == source["name"] == "@classhub/jupyterlab-classhub"
    load = meta["jupyterlab"]["_build"]["load"]
    assert (OUT / load).is_file(), REBUILD
    assert (OUT / "static/style.js").is_file()
    # the builder of the image's JupyterLab: @jupyter/builder (JupyterLab 4.6), the
    # version of the jupyter-builder Python package the image pins
    pins = dict(
        line.split("==", 1)
        for line in (SINGLEUSER / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert source["devDependencies"]["@jupyter/builder"] == pins["jupyter-builder"]
    lock = json.loads((SRC / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@jupyter/builder"]["version"] == pins["jupyter-builder"]


def test_the_wheel_installs_it_where_jupyterlab_looks():
    meta = tomllib.loads((SINGLEUSER / "pyproject.toml").read_text())
    data = meta["tool"]["setuptools"]["data-files"]
    where = "share/jupyter/labextensions/@classhub/jupyterlab-classhub"
    assert data[where] == ["classhub_singleuser/labextension/package.json"]
    assert data[where + "/static"] == ["classhub_singleuser/labextension/static/*"]
    # the hub extension's "server unreachable" dialog is replaced by the extension's own
    page = json.loads((SINGLEUSER / "page_config.json").read_text())
    assert page["disabledExtensions"]["@jupyterlab/hub-extension:connectionlost"] is True
    assert re.search(r"@classhub/jupyterlab-classhub", (SINGLEUSER / "Dockerfile").read_text())
