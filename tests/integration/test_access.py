"""Access rules between students, tried from outside and from inside a container."""

import pytest
import requests

pytestmark = pytest.mark.integration


def user_token(stack, name):
    r = stack.api("POST", f"/users/{name}/tokens", json={"note": "test", "expires_in": 600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_a_student_token_cannot_reach_another_students_server(stack):
    for name in ("olga", "pete"):
        stack.create_user(name)
    stack.spawn("pete")
    olga = {"Authorization": f"token {user_token(stack, 'olga')}"}
    pete = {"Authorization": f"token {user_token(stack, 'pete')}"}
    assert (
        requests.get(stack.url + "/user/pete/api/status", headers=pete, timeout=10).status_code
        == 200
    )
    r = requests.get(
        stack.url + "/user/pete/api/status", headers=olga, timeout=10, allow_redirects=False
    )
    assert r.status_code == 403, r.status_code
    r = requests.post(
        stack.url + "/user/pete/api/kernels", headers=olga, timeout=10, allow_redirects=False
    )
    assert r.status_code == 403, r.status_code
    # nor start, stop or list anybody else's servers through the hub API
    for method, path in [
        ("POST", "/users/pete/servers/x"),
        ("DELETE", "/users/pete/server"),
        ("GET", "/users"),
    ]:
        r = requests.request(method, stack.url + "/hub/api" + path, headers=olga, timeout=10)
        assert r.status_code in (403, 404), (method, path, r.status_code)


def test_the_token_inside_a_container_is_only_good_for_its_own_server(stack):
    stack.create_user("quin")
    stack.create_user("ruth")
    stack.spawn("quin")
    stack.spawn("ruth")
    by_user = {c.labels["classhub.user"]: c for c in stack.containers(all=False)}
    code, out = by_user["quin"].exec_run(["printenv", "JUPYTERHUB_API_TOKEN"])
    assert code == 0
    token = {"Authorization": f"token {out.decode().strip()}"}
    # the server's own token: no user list, no other server, no admin actions
    for method, path in [
        ("GET", "/hub/api/users"),
        ("GET", "/hub/api/users/ruth"),
        ("DELETE", "/hub/api/users/ruth/server"),
        ("POST", "/hub/api/users/quin/servers/other"),
    ]:
        r = requests.request(method, stack.url + path, headers=token, timeout=10)
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text[:200])
    r = requests.get(
        stack.url + "/user/ruth/api/status", headers=token, timeout=10, allow_redirects=False
    )
    assert r.status_code == 403
    # and the container's environment holds nothing else secret
    code, out = by_user["quin"].exec_run(["printenv"])
    names = {line.split("=", 1)[0] for line in out.decode().splitlines()}
    assert not {n for n in names if "SECRET" in n or "PASSWORD" in n or "CRYPT" in n}
