"""The files and grades services in the tier's throwaway compose stack (tests/e2e/conftest.py,
never the one `make up` runs): SeaweedFS behind Traefik's presigned route, the services'
health, and a student's upload and download through the stack."""

import pytest
import requests

pytestmark = pytest.mark.e2e

FILES = "/services/files/"


def test_files_service_is_up_and_a_student_round_trips_a_file(deployment, account):
    name, password, api = account
    health = requests.get(deployment.url + FILES + "health", timeout=10)
    assert health.status_code == 200, health.text
    assert set(health.json()["checks"]) >= {"s3", "mongodb", "hub"}

    browser = deployment.login(name, password)
    r = browser.get(deployment.url + FILES, timeout=30)  # OAuth with the service
    assert r.status_code == 200, r.text
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf" and c.path == FILES)
    headers = {"X-XSRFToken": xsrf, "Sec-Fetch-Mode": "cors"}
    data = b"e2e bytes \x00\xff"
    r = browser.post(
        deployment.url + FILES + "api/files/me/uploads",
        json={"path": "e2e/check.bin", "size": len(data)},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["url"].startswith(deployment.url + "/"), signed["url"]
    stored = requests.put(signed["url"], data=data, headers=signed["headers"], timeout=30)
    assert stored.status_code == 200, stored.text
    done = browser.post(
        deployment.url + FILES + f"api/files/me/uploads/{signed['id']}", headers=headers, timeout=30
    )
    assert done.status_code == 200, done.text
    link = browser.get(
        deployment.url + FILES + "api/files/me/download",
        params={"path": "e2e/check.bin"},
        headers=headers,
        timeout=30,
    ).json()["url"]
    got = requests.get(link, timeout=30)
    assert got.status_code == 200 and got.content == data
    # the store is reachable only with a signature
    bucket_path = link.split("?")[0].removeprefix(deployment.url)
    assert requests.get(deployment.url + bucket_path, timeout=10).status_code in (403, 404)
    browser.delete(
        deployment.url + FILES + "api/files/me/file",
        params={"path": "e2e/check.bin"},
        headers=headers,
        timeout=30,
    )


def test_grades_service_is_up_with_its_schema(deployment, account):
    health = requests.get(deployment.url + "/services/grades/health", timeout=10)
    assert health.status_code == 200, health.text
    assert set(health.json()["checks"]) >= {"postgresql", "s3", "hub"}
    name, password, _ = account
    browser = deployment.login(name, password)
    r = browser.get(deployment.url + "/services/grades/", timeout=30)  # OAuth with the service
    assert r.status_code == 200, r.text
    # a class the student is not in: 404, from the running service and its database
    r = browser.get(
        deployment.url + "/services/grades/api/classes/nosuchclass/assignments",
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 404, r.text
