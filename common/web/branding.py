"""The name and logo in every page's header (the hub's pages and the services' pages).

One :class:`Branding` configurable: the hub reads it from its configuration
(``c.Branding.name = ...`` in ``jupyterhub_config.py`` or ``CLASSHUB_EXTRA_CONFIG``) and
from ``CLASSHUB_BRAND_NAME`` / ``CLASSHUB_BRAND_LOGO``; the services get the name from
``CLASSHUB_BRAND_NAME``, which the hub passes them. The logo is the hub's
``JupyterHub.logo_file``, served at ``/hub/logo`` for every page.
"""

from __future__ import annotations

import os

from traitlets import TraitError, Unicode, validate
from traitlets.config import Configurable

from common.settings import EnvSetting, EnvTable

DEFAULT_NAME = "classhub"
#: longest name shown in the header
MAX_NAME = 60


def _folded(raw: str) -> str:
    # traitlets checks set values only: the default gets the same folding of spaces
    return " ".join(raw.split())


#: the brand from the environment: the @defaults of the traits below
BRANDING_TABLE = EnvTable(
    (
        EnvSetting("name", "CLASSHUB_BRAND_NAME", DEFAULT_NAME, _folded),
        EnvSetting("logo_file", "CLASSHUB_BRAND_LOGO", "", doc_default="JupyterHub's logo"),
    )
)


@BRANDING_TABLE.install
class Branding(Configurable):
    """The deployment's name and logo, shown in the header of every page."""

    name = Unicode(
        config=True,
        help="""The name shown beside the logo in every page's header and at the end of
        every page's title (the hub's pages and the classes, files and grades pages);
        spaces are folded, at most 60 characters.

        Example: ``c.Branding.name = "Chemistry Lab"``
        """,
    )
    logo_file = Unicode(
        config=True,
        help="""A PNG, SVG or JPEG file on the hub's machine shown as the logo in every
        page's header (it becomes ``JupyterHub.logo_file``, served at ``/hub/logo``; empty:
        JupyterHub's logo). A path that is not a file stops the hub with a message.

        Example: ``c.Branding.logo_file = "/srv/classhub/logo.svg"``
        """,
    )

    @validate("name")
    def _check_name(self, proposal):
        name = " ".join(str(proposal.value).split())
        if not name:
            raise TraitError(
                "Branding.name is empty: give the name to show in the header, e.g. "
                'c.Branding.name = "Chemistry Lab" (or CLASSHUB_BRAND_NAME)'
            )
        if len(name) > MAX_NAME:
            raise TraitError(
                f"Branding.name is {len(name)} characters long; keep it to {MAX_NAME} "
                "so it fits in the header"
            )
        return name

    @validate("logo_file")
    def _check_logo_file(self, proposal):
        path = str(proposal.value).strip()
        if path and not os.path.isfile(path):
            raise TraitError(
                f"Branding.logo_file {path!r} is not a file on the hub's machine: give the "
                "path of a PNG, SVG or JPEG file (CLASSHUB_BRAND_LOGO), or leave it empty "
                "for JupyterHub's logo"
            )
        return path
