"""The one web layer (common/web): the navigation list, the brand, and what
hub.config.configure_web sets for the hub's pages and passes to the services."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from traitlets import TraitError
from traitlets.config import Config

import hub
from common import web
from common.web.branding import Branding
from common.web.nav import ADMIN, ROLES, STUDENT, TEACHER, nav_items, role_of
from hub.config import configure_web
from hub.web import HubNav, handlers

pytestmark = pytest.mark.unit


def keys(items):
    return [i.key for i in items]


def test_students_and_teachers_get_home_and_every_service():
    for role in (STUDENT, TEACHER):
        assert keys(nav_items(role)) == ["home", "classes", "files", "grades"]


def test_admins_also_get_admin_sessions_accounts_and_token():
    assert keys(nav_items(ADMIN)) == [
        *["home", "classes", "files", "grades"],
        *["admin", "sessions", "accounts", "token"],
    ]
    paths = {i.key: i.path for i in nav_items(ADMIN)}
    assert paths["sessions"] == "hub/classhub/sessions"
    assert paths["accounts"] == "hub/classhub/accounts"
    assert paths["grades"] == "services/grades/"


def test_only_the_services_the_deployment_runs_are_listed_in_one_order():
    assert keys(nav_items(STUDENT, ["files", "classes"])) == ["home", "classes", "files"]
    assert keys(nav_items(STUDENT, [])) == ["home"]
    assert keys(nav_items(STUDENT, ["classes", "unknown"])) == ["home", "classes"]


def test_the_same_role_gets_equal_lists_every_time():
    for role in ROLES:
        assert nav_items(role) == nav_items(role)
        assert len({i.element_id for i in nav_items(role)}) == len(nav_items(role))


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        nav_items("owner")


def test_role_of_reads_the_admin_flag_roles_or_teacher_groups():
    assert role_of(admin=True) == ADMIN
    assert role_of(admin=False, roles=["user", "admin"]) == ADMIN
    assert role_of(admin=False, roles=["user", "classhub-teacher"]) == TEACHER
    assert role_of(admin=False, groups=["class-chem", "teachers-bio"]) == TEACHER
    assert role_of(admin=False, roles=["user", "classhub-student"], groups=["class-x"]) == STUDENT
    assert role_of(admin=False) == STUDENT


class FakeRole:
    def __init__(self, name):
        self.name = name


class FakeUser:
    def __init__(self, admin=False, roles=()):
        self.admin = admin
        self.roles = [FakeRole(r) for r in roles]


def test_hub_nav_gives_the_items_of_the_users_role():
    nav = HubNav(["classes", "files", "grades"])
    assert nav(None) == []
    assert nav(FakeUser(roles=["user", "classhub-student"])) == nav_items(STUDENT)
    assert nav(FakeUser(admin=True, roles=["user", "admin"])) == nav_items(ADMIN)


def test_branding_defaults_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CLASSHUB_BRAND_NAME", raising=False)
    monkeypatch.delenv("CLASSHUB_BRAND_LOGO", raising=False)
    assert Branding().name == "classhub"
    assert Branding().logo_file == ""
    logo = tmp_path / "logo.svg"
    logo.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    monkeypatch.setenv("CLASSHUB_BRAND_NAME", "  Chemistry   Lab ")
    monkeypatch.setenv("CLASSHUB_BRAND_LOGO", str(logo))
    assert Branding().name == "Chemistry Lab"
    assert Branding().logo_file == str(logo)


def test_branding_config_wins_and_bad_values_say_what_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("CLASSHUB_BRAND_NAME", "From env")
    c = Config()
    c.Branding.name = "From config"
    assert Branding(config=c).name == "From config"
    with pytest.raises(TraitError, match="CLASSHUB_BRAND_LOGO"):
        Branding(logo_file=str(tmp_path / "missing.png"))
    with pytest.raises(TraitError, match="keep it to"):
        Branding(name="x" * 200)
    with pytest.raises(TraitError, match="empty"):
        Branding(name="   ")


def test_configure_web_sets_the_hubs_pages_and_tells_the_services(monkeypatch, tmp_path):
    monkeypatch.delenv("CLASSHUB_BRAND_NAME", raising=False)
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG")
    c = Config()
    c.JupyterHub.template_paths = ["/hub/templates"]
    c.JupyterHub.services = [
        {"name": "classes", "environment": {"A": "1"}},
        {"name": "files"},
        {"name": "other-service"},
    ]
    c.Branding.name = "Lab"
    c.Branding.logo_file = str(logo)
    configure_web(c)
    assert c.JupyterHub.template_paths == ["/hub/templates", str(web.TEMPLATES_DIR)]
    assert c.JupyterHub.logo_file == str(logo)
    assert c.JupyterHub.template_vars["classhub_brand"] == "Lab"
    assert c.JupyterHub.template_vars["classhub_nav"].services == ("classes", "files")
    classes, files, other = c.JupyterHub.services
    assert classes["environment"] == {
        "A": "1",
        "CLASSHUB_SERVICES": "classes,files",
        "CLASSHUB_BRAND_NAME": "Lab",
    }
    assert files["environment"]["CLASSHUB_SERVICES"] == "classes,files"
    assert "environment" not in other
    assert handlers()[0] in c.JupyterHub.extra_handlers
    configure_web(c)  # twice: nothing doubled
    assert c.JupyterHub.extra_handlers.count(handlers()[0]) == 1
    assert c.JupyterHub.template_paths.count(str(web.TEMPLATES_DIR)) == 1


def test_static_urls_carry_the_files_version():
    url = web.static_url("/", "classhub.js")
    assert url.startswith("/hub/classhub/static/classhub.js?v=")
    assert len(url.rsplit("=", 1)[1]) == 12


def test_the_header_renders_the_navigation_the_brand_and_escapes_them():
    env = Environment(loader=FileSystemLoader(str(web.TEMPLATES_DIR)), autoescape=True)
    macro = env.get_template("classhub/header.html").module.header
    html = str(macro("/", nav_items(ADMIN), "<Lab>", "ana", "/hub/logout"))
    for item in nav_items(ADMIN):
        assert f'id="{item.element_id}" href="/{item.path}"' in html
    assert "&lt;Lab&gt;" in html and "<Lab>" not in html
    assert 'src="/hub/logo"' in html
    signed_out = str(macro("/", [], "Lab", "", "/hub/logout"))
    assert "classhub-nav" not in signed_out and "Logout" not in signed_out


def _render_service_page(user_name: str) -> str:
    """classhub/layout.html, the layout of every service page, as a service renders it."""
    env = Environment(loader=FileSystemLoader(str(web.TEMPLATES_DIR)), autoescape=True)
    user = {"name": user_name} if user_name else None
    return env.get_template("classhub/layout.html").render(
        hub="/",
        prefix="/services/grades/",
        hub_static=lambda name: f"/hub/static/{name}?v=1",
        common_static=lambda name: web.static_url("/", name),
        nav=nav_items(STUDENT) if user else [],
        brand="Lab",
        user=user,
        xsrf_token="x",
    )


def _render_hub_page(user_name: str) -> str:
    """hub/templates/page.html over JupyterHub's own page.html, loaded as JupyterHub loads
    templates (its template_paths, then its own templates as ``templates/...``)."""
    jupyterhub_templates = FileSystemLoader(str(Path(DATA_FILES_PATH) / "templates"))
    hub_templates = Path(hub.__file__).parent / "templates"
    ours = FileSystemLoader([str(hub_templates), str(web.TEMPLATES_DIR)])
    loader = ChoiceLoader([ours, PrefixLoader({"templates": jupyterhub_templates})])
    env = Environment(loader=loader, autoescape=True)
    user = (
        SimpleNamespace(name=user_name, json_escaped_name=user_name, spawner=None)
        if user_name
        else None
    )
    return env.get_template("page.html").render(
        base_url="/hub/",
        prefix="/",
        static_url=lambda name, include_version=True: f"/hub/static/{name}",
        classhub_static=lambda name, prefix: web.static_url(prefix, name),
        classhub_nav=nav_items(STUDENT) if user else [],
        classhub_brand="Lab",
        user=user,
        logout_url="/hub/logout",
        no_spawner_check=True,
        parsed_scopes=set(),
        xsrf_token="x",
    )


@pytest.mark.parametrize("render", [_render_service_page, _render_hub_page])
@pytest.mark.parametrize("user_name", ["ana", ""])
def test_hub_and_service_pages_have_the_same_header_messages_and_dark_mode(render, user_name):
    # issue 14 (one web layer): the hub's pages and the services' look and behave alike;
    # darkmode.js needs its button, which the header has on every page
    html = render(user_name)
    assert html.count('id="classhub-header"') == 1
    assert html.count('id="alerts"') == 1
    assert html.count('id="dark-theme-toggle"') == 1
    assert html.count("js/darkmode.js") == 1
    assert html.count("/hub/classhub/static/classhub.js?v=") == 1
    assert html.count("/hub/classhub/static/classhub.css?v=") == 1
    assert html.count("css/style.min.css") == 1
    assert ('id="whoami">ana<' in html) is bool(user_name)
