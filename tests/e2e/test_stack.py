"""End-to-end: the compose stack (a throwaway deployment by `scripts/up.sh`), through Traefik,
with a real browser."""

import docker
import pytest
import requests

from harness.browser import CHROMIUM, CHROMIUM_ARGS
from tests.probes import assert_reaches_only_hub, host_ipv4_addresses

pytestmark = pytest.mark.e2e


def test_no_open_login(deployment):
    s = requests.Session()
    s.get(deployment.url + "/hub/login", timeout=10)
    for user, password in [("admin", ""), ("nobody", "whatever-password"), ("admin", "wrong")]:
        r = s.post(
            deployment.url + "/hub/login",
            data={"username": user, "password": password, "_xsrf": s.cookies.get("_xsrf")},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 403, (user, r.status_code)
    r = requests.get(deployment.url + "/hub/home", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]


def test_spawn_and_status_through_traefik(deployment, account):
    name, _, api = account
    r = api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    assert r.status_code in (201, 202), r.text
    deployment.wait_ready(api, name)
    r = api.get(f"{deployment.url}/user/{name}/api/status", timeout=10, allow_redirects=False)
    assert r.status_code == 200 and "kernels" in r.json()


def test_student_cannot_reach_data_services(deployment, account, open_port):
    name, _, api = account
    api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    deployment.wait_ready(api, name)
    (student,) = deployment.student_containers(name)
    client = docker.from_env()
    targets = []
    for service, port in [("postgres", 5432), ("redis", 6379), ("mongo", 27017), ("s3", 8333)]:
        (c,) = client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.service={service}",
                    f"com.docker.compose.project={deployment.stack.project}",
                ]
            }
        )
        for net in c.attrs["NetworkSettings"]["Networks"].values():
            targets.append((f"{service}@{net['IPAddress']}", net["IPAddress"], port))
    gateway = deployment.env["CLASSHUB_HUB_IP"]
    for addr in [gateway, *host_ipv4_addresses()]:
        published = [
            int(deployment.env[k])
            for k in (
                "CLASSHUB_PG_PORT",
                "CLASSHUB_REDIS_PORT",
                "CLASSHUB_MONGO_PORT",
                "CLASSHUB_S3_PORT",
                "CLASSHUB_TRAEFIK_API_PORT",
                "CLASSHUB_GATE_PORT",
            )
        ]
        for port in (*published, open_port, 22):
            targets.append((f"{addr}:{port}", addr, port))
    hub_port = deployment.env["CLASSHUB_HUB_PORT"]
    assert_reaches_only_hub(student, targets, f"http://{gateway}:{hub_port}/hub/api/")
    assert not any(
        "PASSWORD" in e or "SECRET" in e or "CRYPT" in e for e in student.attrs["Config"]["Env"]
    )
    client.close()


def test_browser_login_shows_jupyterlab(deployment, account, tmp_path):
    from playwright.sync_api import sync_playwright

    name, password, _ = account
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(deployment.url + "/hub/login")
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", password)
            page.click("[type=submit]")
            # the hub starts the default server and sends the browser through the spawn
            # page to JupyterLab, routed by Traefik
            page.goto(deployment.url + f"/hub/spawn/{name}")
            page.wait_for_url(f"**/user/{name}/lab**", timeout=120_000)
            page.wait_for_selector(".jp-LauncherCard, #jp-main-dock-panel", timeout=60_000)
            assert "JupyterLab" in page.title()
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print("screenshot:", tmp_path / "failure.png", "url:", page.url)
            raise
        finally:
            browser.close()
