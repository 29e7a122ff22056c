"""End-to-end sign-in in headless Chromium: the README's token recipe for each role, the
admin's sessions page, and a second sign-in taking over the first browser."""

import secrets

import pytest

from harness.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.e2e


def mint(deployment, user: str, role: str) -> str:
    """What the README tells a newcomer to run."""
    r = deployment.compose("exec", "-T", "hub", "classhub-token", "--user", user, "--role", role)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def token_sign_in(page, url: str, token: str) -> None:
    page.goto(url + "/hub/login?next=%2Fhub%2Fhome")
    page.fill("#token_input", token)
    page.click("#token_submit")
    page.wait_for_url("**/hub/home", timeout=30_000)


@pytest.fixture
def chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("role", ["student", "teacher", "admin"])
def test_readme_token_recipe_signs_in_each_role(deployment, chromium, role, tmp_path):
    user = f"e2e-{role}-{secrets.token_hex(2)}"
    page = chromium.new_page()
    try:
        token_sign_in(page, deployment.url, mint(deployment, user, role))
        assert user in page.content()
        admin_panel = page.goto(deployment.url + "/hub/admin")
        if role == "admin":
            assert admin_panel.status == 200
            sessions = page.goto(deployment.url + "/hub/classhub/sessions")
            assert sessions.status == 200
            page.wait_for_selector(f"#sessions-table tr[data-user='{user}']", timeout=15_000)
        else:
            assert admin_panel.status == 403
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))
        print("screenshot:", tmp_path / "failure.png", "url:", page.url)
        raise
    finally:
        page.close()
        deployment.admin().delete(f"{deployment.url}/hub/api/users/{user}", timeout=60)


def test_second_browser_takes_over_the_first(deployment, chromium):
    user = f"e2e-takeover-{secrets.token_hex(2)}"
    first = chromium.new_context().new_page()
    second = chromium.new_context().new_page()
    try:
        token_sign_in(first, deployment.url, mint(deployment, user, "student"))
        token_sign_in(second, deployment.url, mint(deployment, user, "student"))
        first.goto(deployment.url + "/hub/home")
        assert "/hub/login" in first.url, "the first browser must be signed out"
        second.goto(deployment.url + "/hub/home")
        assert second.url.endswith("/hub/home")
    finally:
        deployment.admin().delete(f"{deployment.url}/hub/api/users/{user}", timeout=60)


def test_admin_accounts_page_creates_and_imports_with_a_report(deployment, chromium, tmp_path):
    page = chromium.new_page()
    name = f"e2e-acct-{secrets.token_hex(2)}"
    bad, good = f"e2e-csv-{secrets.token_hex(2)}", f"e2e-csv-{secrets.token_hex(2)}"
    try:
        page.goto(deployment.url + "/hub/login")
        page.fill("input[name=username]", deployment.env["CLASSHUB_ADMIN_USER"])
        page.fill("input[name=password]", deployment.env["CLASSHUB_ADMIN_PASSWORD"])
        page.click("#login_submit")
        page.goto(deployment.url + "/hub/classhub/accounts")
        page.fill("#create-account input[name=username]", name)
        page.click("#create-account button[type=submit]")
        page.wait_for_selector(f"#action-alert:has-text('Created {name}')", timeout=15_000)
        assert "shown once" in page.inner_text("#action-alert")

        csv = tmp_path / "class.csv"
        csv.write_text(f"username,password,role\n{good},,student\n{bad},,wizard\n")
        page.set_input_files("#import-accounts input[type=file]", str(csv))
        page.click("#import-accounts button[type=submit]")
        page.wait_for_selector("#import-report tbody tr.table-danger", timeout=15_000)
        assert "Nothing was imported" in page.inner_text("#action-alert")
        rows = page.inner_text("#import-report")
        assert bad in rows and "role" in rows.lower()

        csv.write_text(f"username,password,role\n{good},,student\n")
        page.set_input_files("#import-accounts input[type=file]", str(csv))
        page.click("#import-accounts button[type=submit]")
        page.wait_for_selector(f"#import-report tbody tr:has-text('{good}')", timeout=15_000)
        assert "All rows imported" in page.inner_text("#action-alert")
        page.wait_for_selector(f"#accounts-table td:has-text('{good}')", timeout=15_000)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))
        print("screenshot:", tmp_path / "failure.png", "url:", page.url)
        raise
    finally:
        page.close()
        admin = deployment.admin()
        for user in (name, good):
            admin.delete(f"{deployment.url}/hub/api/classhub/accounts/{user}", timeout=30)
            admin.delete(f"{deployment.url}/hub/api/users/{user}", timeout=30)
