"""End-to-end: the classes service in the tier's throwaway compose stack (tests/e2e/conftest.py,
never the one `make up` started), in headless Chromium.

The admin creates a class through the service's API (with an admin-issued token), a
student signs in with a password, finds the class under "My classes" and launches its
environment into JupyterLab."""

import secrets

import docker
import pytest
import requests

from harness.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.e2e

API = "/services/classes/api"


@pytest.fixture
def admin_api(deployment):
    r = deployment.admin().post(
        f"{deployment.url}/hub/api/users/{deployment.env['CLASSHUB_ADMIN_USER']}/tokens",
        json={"note": "e2e classes", "expires_in": 600},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    s = requests.Session()
    s.headers["Authorization"] = f"token {r.json()['token']}"
    return s


def test_student_launches_a_class_from_my_classes(deployment, admin_api, tmp_path):
    from playwright.sync_api import sync_playwright

    code = "e2e" + secrets.token_hex(2)
    name = f"e2e-class-{secrets.token_hex(2)}"
    password = deployment.add_account(name)
    url = deployment.url
    r = admin_api.post(f"{url}{API}/classes", json={"code": code, "name": "E2E class"}, timeout=30)
    assert r.status_code == 201, r.text
    r = admin_api.post(f"{url}{API}/classes/{code}/students", json={"username": name}, timeout=30)
    assert r.status_code in (200, 201), r.text
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            try:
                page.goto(url + "/hub/login?next=%2Fservices%2Fclasses%2F")
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", password)
                page.click("#login_submit")
                row = f"#taking tr[data-code={code}]"
                page.wait_for_selector(row, timeout=30_000)
                assert page.get_attribute(row, "data-state") == "stopped"
                page.click(f"{row} [data-action=launch]")
                page.wait_for_url(f"**/user/{name}/{code}/lab**", timeout=120_000)
                page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print("screenshot:", tmp_path / "failure.png", "url:", page.url)
                raise
            finally:
                browser.close()
    finally:
        # archiving stops the class's servers and keeps their volumes
        admin_api.patch(f"{url}{API}/classes/{code}", json={"archived": True}, timeout=60)
        deployment.remove_account(name)
        for c in deployment.student_containers(name, include_stopped=True):
            c.remove(force=True)
        client = docker.from_env()
        try:
            client.volumes.get(deployment.home_volume(name, code)).remove(force=True)
        except docker.errors.NotFound:
            pass
        finally:
            client.close()
