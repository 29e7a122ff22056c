"""The image catalogue end to end: the classes service offers the admin's images and
refuses others, a class on classhub/datascience spawns a server with the data-science
stack and tools under exactly the hardening of the minimal image, and the spawner refuses
an image outside the catalogue even when the class's stored record names it. Real hub,
Docker, Traefik and the classes service on nx-27017."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from urllib.parse import quote

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from harness.browser import CHROMIUM, CHROMIUM_ARGS
from harness.classes import SERVICE, TEST_SERVICE_ENV, Person, assert_error, wait_healthy
from harness.stack import Stack, running_stack, wait_for
from tests.integration.hardening import assert_hardened
from tests.integration.ws_helpers import cookie_header

pytestmark = [pytest.mark.integration, pytest.mark.all_images]

MINIMAL = "classhub/singleuser:latest"
DATASCIENCE = "classhub/datascience:latest"
CATALOGUE = [
    {"name": MINIMAL, "display_name": "Python", "description": "JupyterLab and Python"},
    {
        "name": DATASCIENCE,
        "display_name": "Data science",
        "description": "numpy, pandas, matplotlib, scipy, scikit-learn, seaborn; git, vim",
    },
]
#: installed on this machine, but not in the catalogue
OUTSIDE = "classhub/homes-helper:latest"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {**TEST_SERVICE_ENV, "CLASSHUB_IMAGES": json.dumps(CATALOGUE)}
    new = Stack(tmp_path_factory.mktemp("images"), with_classes=True, env=env)
    for s in running_stack(new):
        wait_healthy(s)
        yield s


@pytest.fixture(scope="module")
def people(stack):
    for name in ("dana", "dora"):
        r = stack.api("POST", "/classhub/accounts", json={"username": name, "role": "student"})
        assert r.status_code == 201, r.text
    return {
        "admin": Person(stack, "admin", "admin"),
        "tess": Person(stack, "tess", "teacher"),
        "dave": Person(stack, "dave", "student"),
    }


def code() -> str:
    return "i" + secrets.token_hex(3)


def test_the_form_offers_the_catalogue(people):
    admin, tess = people["admin"], people["tess"]
    settings = tess.get("api/settings").json()
    assert settings["images"] == CATALOGUE
    assert settings["allowed_images"] == [MINIMAL, DATASCIENCE]
    c = code()
    r = admin.post("api/classes", {"code": c, "name": "Data", "teachers": ["tess"]})
    assert r.status_code == 201, r.text
    # the class page's settings form: the display names, the chosen one's description
    page = tess.get(f"classes/{c}", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page.text)
    assert options == [(MINIMAL, "Python"), (DATASCIENCE, "Data science")]
    assert 'data-description="numpy, pandas, matplotlib' in page.text
    assert re.search(r'<option value="classhub/singleuser:latest"[^>]*selected', page.text)


def test_a_teacher_chooses_the_image_on_the_class_form(stack, people, tmp_path):
    """In Chromium: the Image field lists the display names, shows the chosen image's
    description, and saving sets the class's image."""
    from playwright.sync_api import sync_playwright

    # a teacher of their own: signing in in Chromium takes over that person's other session
    admin, c = people["admin"], code()
    stack.create_user("tara")
    r = admin.post("api/classes", {"code": c, "name": "Data", "teachers": ["tara"]})
    assert r.status_code == 201, r.text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(f"{stack.url}/hub/login?next={quote(f'{SERVICE}classes/{c}', safe='')}")
            page.fill("#token_input", stack.mint("tara", "teacher"))
            page.click("#token_submit")
            page.wait_for_selector("#settings-image")
            labels = page.eval_on_selector_all(
                "#settings-image option", "options => options.map(o => o.textContent.trim())"
            )
            assert labels == ["Python", "Data science"]
            assert page.inner_text("#settings-image-help") == "JupyterLab and Python"
            page.select_option("#settings-image", label="Data science")
            assert page.inner_text("#settings-image-help").startswith("numpy, pandas")
            page.click("#class-settings button[type=submit]")
            wait_for(
                lambda: admin.get(f"api/classes/{c}").json()["environment"]["image"] == DATASCIENCE,
                20,
                what="the image saved",
            )
            page.reload()
            assert page.eval_on_selector("#settings-image", "s => s.value") == DATASCIENCE
            assert page.inner_text("#settings-image-help").startswith("numpy, pandas")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png", "url:", page.url)
            raise
        finally:
            browser.close()


@pytest.mark.parametrize(
    "image",
    [OUTSIDE, "evil/miner:latest", "classhub/datascience", "classhub/datascience:latest ", 7],
)
def test_an_image_outside_the_catalogue_is_a_clear_400(people, image):
    admin, tess = people["admin"], people["tess"]
    c = code()
    # the admin cannot create a class with it either
    assert_error(
        admin.post("api/classes", {"code": c, "name": "X", "environment": {"image": image}}),
        400,
        "is not in this hub's image catalogue; choose one of: Python (classhub/singleuser",
    )
    r = admin.post("api/classes", {"code": c, "name": "X", "teachers": ["tess"]})
    assert r.status_code == 201, r.text
    assert_error(
        tess.patch(f"api/classes/{c}", {"environment": {"image": image}}),
        400,
        "Data science (classhub/datascience:latest)",
    )
    assert tess.get(f"api/classes/{c}").json()["environment"]["image"] == MINIMAL


def test_a_datascience_class_runs_the_stack_with_the_same_hardening(stack, people):
    admin, tess = people["admin"], people["tess"]
    c = code()
    r = admin.post("api/classes", {"code": c, "name": "Data", "teachers": ["tess"]})
    assert r.status_code == 201, r.text
    r = tess.patch(f"api/classes/{c}", {"environment": {"image": DATASCIENCE}})
    assert r.status_code == 200, r.text
    assert r.json()["environment"]["image"] == DATASCIENCE
    r = tess.post(f"api/classes/{c}/students", {"username": "dana"})
    assert r.status_code == 201, r.text

    stack.spawn("dana", c)
    box = stack.server_container("dana", c)
    assert box.attrs["Config"]["Image"] == DATASCIENCE
    assert stack.user_get(f"/user/dana/{c}/api/status").status_code == 200
    # exactly the minimal image's hardening (tests/integration/test_spawn.py)
    assert_hardened(box, stack)

    def run(command: str, prints: bool = True) -> str:
        # as the student (uid 1000) in a login shell, as JupyterLab's terminals run. The
        # engine's exec once lost a short command's output (`id -u`: status 0, nothing
        # read, in a fresh-clone make test with the e2e tier beside it): a command that
        # prints is asked again then, at most twice
        for _ in range(3 if prints else 1):
            status, out = box.exec_run(["bash", "-lc", command], user="1000:100")
            text = out.decode(errors="replace")
            assert status == 0, (command, status, text[-2000:])
            if text.strip():
                break
        return text

    assert run("id -u").strip() == "1000"
    assert run("command -v python").strip() == "/opt/venv/bin/python"
    run('python -c "import numpy, pandas, matplotlib, scipy, sklearn, seaborn"', prints=False)
    # a plot on the read-only root: matplotlib's caches go to the home folder
    run(
        'cd && python -c "import matplotlib.pyplot as plt, seaborn as sns; '
        "sns.lineplot(x=[1, 2, 3], y=[2, 1, 3]); plt.savefig('plot.png')\" && test -s plot.png",
        prints=False,
    )
    for tool in ("git --version", "nano --version", "vim --version", "less --version"):
        assert run(tool).strip(), tool
    assert run("curl --version").startswith("curl ")
    assert "classhub-singleuser" in run("ps -eo args")  # the server (classhub_singleuser.start)
    # every extension started: classhub's start hook once failed there (not a coroutine)
    log = box.logs().decode(errors="replace")
    assert "garbage collector on again" in log, log[-2000:]
    assert "failed starting" not in log and "Traceback" not in log, log[-2000:]
    # the same single-user server as the minimal image: classhub's extension is on
    assert "classhub_singleuser" in run("jupyter server extension list 2>&1")
    stack.stop("dana", c)


@pytest.mark.parametrize(
    "image, modules",
    [
        (MINIMAL, "jupyterlab, ipykernel"),
        (DATASCIENCE, "numpy, pandas, matplotlib, scipy, sklearn, seaborn"),
    ],
)
async def test_a_jupyterlab_terminal_has_python_and_the_stack(stack, people, image, modules):
    """In a real JupyterLab terminal (a login shell, whose /etc/profile resets PATH), the
    student's `python` is the image's, with the image's packages, in both images."""
    admin, tess, dave = people["admin"], people["tess"], people["dave"]
    c = code()
    r = admin.post(
        "api/classes",
        {"code": c, "name": "Data", "teachers": ["tess"], "environment": {"image": image}},
    )
    assert r.status_code == 201, r.text
    assert tess.post(f"api/classes/{c}/students", {"username": "dave"}).status_code == 201
    await asyncio.to_thread(stack.spawn, "dave", c)
    base = f"/user/dave/{c}/"
    lab = await asyncio.to_thread(dave.browser.get, stack.url + base + "lab", timeout=60)
    assert lab.status_code == 200 and base + "lab" in lab.url, lab.url
    r = requests.post(
        stack.url + base + "api/terminals",
        headers={"Authorization": f"token {stack.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    conn = await websocket_connect(
        HTTPRequest(
            stack.url.replace("http://", "ws://") + f"{base}terminals/websocket/{r.json()['name']}",
            headers={"Cookie": cookie_header(dave.browser, base + "terminals")},
            connect_timeout=10,
            request_timeout=30,
        )
    )
    try:
        command = (
            f"command -v python; python -c 'import {modules}, sys;"
            ' print(sys.prefix, "stack-ok", 6 * 7)\'\r'
        )
        conn.write_message(json.dumps(["stdin", command]))
        seen = ""
        while "stack-ok 42" not in seen:
            raw = await asyncio.wait_for(conn.read_message(), 60)
            assert raw is not None, f"terminal closed: {seen[-500:]}"
            kind, *rest = json.loads(raw)
            if kind == "stdout":
                seen += rest[0]
        assert "/opt/venv/bin/python" in seen
        assert "/opt/venv stack-ok 42" in seen
    finally:
        conn.close()
    await asyncio.to_thread(stack.stop, "dave", c)


def test_the_spawner_refuses_an_image_the_store_holds_but_the_catalogue_does_not(stack, people):
    """The class's record (MongoDB, and the hub group the spawner reads) names an installed
    image outside the catalogue, as a bug or a tampered store would: no container starts."""
    c, student = code(), "dora"
    admin = people["admin"]
    r = admin.post("api/classes", {"code": c, "name": "Tampered"})
    assert r.status_code == 201, r.text
    r = admin.post(f"api/classes/{c}/students", {"username": student})
    assert r.status_code == 201, r.text
    props = stack.api("GET", f"/groups/class-{c}").json()["properties"]
    props["classhub"]["image"] = OUTSIDE
    r = stack.api("PUT", f"/groups/class-{c}/properties", json=props)
    assert r.status_code == 200, r.text

    r = stack.api("POST", stack.server_path(student, c))
    if r.status_code < 400:  # the failure arrives through the progress stream instead
        wait_for(lambda: stack.server_model(student, c) is None, 60, what="spawn failed")
        r = stack.api("POST", stack.server_path(student, c))
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert (
        f"The image '{OUTSIDE}' is not on this hub's list of allowed images"
        in (r.json()["message"])
    )
    assert not [x for x in stack.containers() if x.labels.get("classhub.user") == student]
