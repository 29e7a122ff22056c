"""A class server's environment names its class (code and name) for classhub's JupyterLab
extension (the title, the top bar and the Class panel); other servers get neither."""

from types import SimpleNamespace

import pytest
from dockerspawner import DockerSpawner

from common.classenv import ClassEnvironment

pytestmark = pytest.mark.unit


def _spawner(monkeypatch, name: str):
    from spawner import ClassroomSpawner

    monkeypatch.setattr(DockerSpawner, "get_env", lambda self: {"JUPYTERHUB_USER": "sam"})
    return ClassroomSpawner(
        user=SimpleNamespace(name="sam"),
        orm_spawner=SimpleNamespace(name=name, server=None),
        image="classhub/singleuser:latest",
    )


def _class(code: str) -> ClassEnvironment:
    return ClassEnvironment(
        code=code,
        name="Biology 101",
        image="classhub/singleuser:latest",
        cpu_limit=None,
        mem_limit=None,
        idle_timeout=None,
        archived=False,
    )


def test_a_class_server_names_its_class(monkeypatch):
    s = _spawner(monkeypatch, "bio101")
    s._class_env = _class("bio101")
    env = s.get_env()
    assert env["CLASSHUB_CLASS_CODE"] == "bio101"
    assert env["CLASSHUB_CLASS_NAME"] == "Biology 101"
    assert env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "0"


def test_other_servers_name_no_class(monkeypatch):
    s = _spawner(monkeypatch, "")
    env = s.get_env()
    assert "CLASSHUB_CLASS_CODE" not in env and "CLASSHUB_CLASS_NAME" not in env
    # a class environment of another server name is never passed on
    s = _spawner(monkeypatch, "chem")
    s._class_env = _class("bio101")
    assert "CLASSHUB_CLASS_CODE" not in s.get_env()


def test_numerical_libraries_get_as_many_threads_as_the_cpu_limit(monkeypatch):
    s = _spawner(monkeypatch, "bio101")
    s.cpu_limit = 1.5
    env = s.get_env()
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "2"
    # the admin's own setting wins
    s.extra_env = {"OMP_NUM_THREADS": "4"}
    assert s.get_env()["OMP_NUM_THREADS"] == "4"
    s.cpu_limit = None
    s.extra_env = {}
    assert "OMP_NUM_THREADS" not in s.get_env()
