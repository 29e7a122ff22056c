# classhub's JupyterHub configuration: read the environment, call hub.config.
# Every CLASSHUB_* variable is described in docs/admin-guide.md.
import os

from hub.config import apply_env

c = get_config()  # noqa: F821 (provided by JupyterHub)
apply_env(c, os.environ)

# Site-local overrides (a file of c.X.y = ... lines), loaded last.
if os.environ.get("CLASSHUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["CLASSHUB_EXTRA_CONFIG"])  # noqa: F821
