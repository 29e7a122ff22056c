"""``python -m hub.stores.mongoauth``: the same as ``classhub-mongo``."""

import sys

from .server import main

sys.exit(main())
