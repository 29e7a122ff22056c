#!/bin/sh
# classhub: `python` is the image's Python environment wherever PATH points.
exec /opt/venv/bin/python "$@"
