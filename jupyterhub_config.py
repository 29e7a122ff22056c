# classhub's JupyterHub configuration: read the environment, call hub.config.
# Every CLASSHUB_* variable is described in docs/admin-guide.md.
import os

from hub.config import apply_env

c = get_config()  # noqa: F821 (provided by JupyterHub)
apply_env(c, os.environ)
