"""``GET <base_url>classhub/api/context`` (classhub_singleuser.context) in a real
jupyter-server: the class and whose server it is, from the server's environment, for
whoever the server authenticated; nothing without a sign-in, nothing writable."""

import json

import pytest
from tornado.httpclient import HTTPClientError

from classhub_singleuser.context import server_context

pytestmark = pytest.mark.unit

ENV = {
    "JUPYTERHUB_USER": "sam",
    "JUPYTERHUB_SERVER_NAME": "bio101",
    "JUPYTERHUB_BASE_URL": "/",
    "CLASSHUB_CLASS_CODE": "bio101",
    "CLASSHUB_CLASS_NAME": "Biology  101\n(autumn)",
}


def test_a_class_server_for_its_owner():
    ctx = server_context(ENV, "sam")
    assert ctx == {
        "owner": "sam",
        "server_name": "bio101",
        "viewer": "sam",
        "own_server": True,
        "class": {
            "code": "bio101",
            "name": "Biology 101 (autumn)",  # white space folded
            "assignments_dir": "bio101/assignments",
            "feedback_dir": "bio101/feedback",
            "material_dir": "bio101/material",
        },
        "services_prefix": "/services/",
    }


def test_a_teacher_in_a_students_server_sees_it_is_not_theirs():
    ctx = server_context({**ENV, "JUPYTERHUB_BASE_URL": "/hub-base"}, "tina")
    assert (ctx["owner"], ctx["viewer"], ctx["own_server"]) == ("sam", "tina", False)
    assert ctx["services_prefix"] == "/hub-base/services/"


@pytest.mark.parametrize(
    "env, klass",
    [
        # a named server without the spawner's class variables: its name is the code
        ({"JUPYTERHUB_USER": "sam", "JUPYTERHUB_SERVER_NAME": "chem"}, ("chem", "chem")),
        # a personal server is no class
        ({"JUPYTERHUB_USER": "sam", "JUPYTERHUB_SERVER_NAME": ""}, None),
        # a name that is no class code (upper case, a path, markup) is no class
        ({"JUPYTERHUB_USER": "sam", "JUPYTERHUB_SERVER_NAME": "Bio"}, None),
        ({"JUPYTERHUB_USER": "sam", "CLASSHUB_CLASS_CODE": "../x"}, None),
        ({"JUPYTERHUB_USER": "sam", "CLASSHUB_CLASS_CODE": "<b>x</b>"}, None),
    ],
)
def test_what_counts_as_a_class(env, klass):
    ctx = server_context(env, "sam")
    got = None if ctx["class"] is None else (ctx["class"]["code"], ctx["class"]["name"])
    assert got == klass


def test_without_an_owner_nobody_owns_it():
    assert server_context({}, "")["own_server"] is False


@pytest.fixture
def jp_server_config(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return {
        "ServerApp": {
            "jpserver_extensions": {"classhub_singleuser": True},
            "reraise_server_extension_failures": True,
        }
    }


def test_the_server_answers_the_signed_in_person(jp_serverapp, jp_fetch, run):
    response = run(jp_fetch("classhub", "api", "context"))
    assert response.code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.body)
    assert body["owner"] == "sam"
    assert body["class"]["name"] == "Biology 101 (autumn)"
    # jp_fetch signs in with the server's own token: a person who is not the owner
    assert body["viewer"] and body["own_server"] is (body["viewer"] == "sam")


def test_the_context_needs_a_sign_in_and_takes_no_writes(jp_serverapp, jp_fetch, run):
    with pytest.raises(HTTPClientError) as refused:
        run(jp_fetch("classhub", "api", "context", headers={"Authorization": ""}))
    assert refused.value.code == 403
    for method in ("POST", "PUT", "DELETE"):
        body = b"{}" if method != "DELETE" else None
        with pytest.raises(HTTPClientError) as refused:
            run(jp_fetch("classhub", "api", "context", method=method, body=body))
        assert refused.value.code == 405
