# classhub's JupyterHub configuration (the composition root): read the environment, call
# hub.config for the hub and services.config for the services it runs.
# Every CLASSHUB_* variable is described in docs/admin-guide.md.
import os

from authenticator.settings import AUTH_TABLE
from common.settings import check_environment
from hub.config import apply_env as configure_hub
from hub.config import configure_landing, configure_service_origins, configure_web
from hub.proxy import PROXY_TABLE
from hub.settings import EXTRA_CONFIG
from services.config import apply_env as configure_services
from spawner.spawner import SPAWNER_TABLE

c = get_config()  # noqa: F821 (provided by JupyterHub)
# classhub's traits read their CLASSHUB_* variables themselves; a bad one stops the hub here
check_environment(os.environ, PROXY_TABLE, SPAWNER_TABLE, AUTH_TABLE)
configure_hub(c, os.environ)
configure_services(c, os.environ)
# with per-user origins: where the classes service links to students' servers
configure_service_origins(c)
# the one web layer: the same header, navigation and brand on the hub's and services' pages
configure_web(c)
# after sign-in: a student with one class lands in its JupyterLab, others on My classes
configure_landing(c)

# Site-local overrides (a file of c.X.y = ... lines), loaded last.
if EXTRA_CONFIG.read():
    load_subconfig(EXTRA_CONFIG.read())  # noqa: F821
