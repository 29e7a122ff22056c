"""The files service's pages (filled in by the pages change)."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"


def page_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    return []
