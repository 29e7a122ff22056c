"""Notebooks rendered for teachers: nothing a student wrote may run (services/base/nbrender.py)."""

import asyncio
import json
import re

import pytest

from services.base.nbrender import CSP, NotebookError, Renderer, render_html

pytestmark = pytest.mark.unit

SCRIPT = "fetch('/hub/api/users/teacher/tokens', {method: 'POST'})"


def notebook(cells) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def code_cell(outputs, source="x = 1"):
    return {
        "cell_type": "code",
        "id": "c" + str(len(source)),
        "execution_count": 1,
        "metadata": {},
        "source": source,
        "outputs": outputs,
    }


def display(data):
    return {"output_type": "display_data", "metadata": {}, "data": data}


HOSTILE = notebook(
    [
        {
            "cell_type": "markdown",
            "id": "m1",
            "metadata": {},
            "source": f'# Title\n<script>{SCRIPT}</script>\n<a href="javascript:{SCRIPT}">x</a>'
            f'\n<img src=x onerror="{SCRIPT}"><iframe src="/hub/home"></iframe>',
        },
        code_cell(
            [
                display({"application/javascript": SCRIPT, "text/plain": "plain fallback"}),
                display(
                    {
                        "text/html": f"<b>bold</b><script>{SCRIPT}</script>"
                        f'<div onmouseover="{SCRIPT}">hover</div>'
                    }
                ),
                display({"image/svg+xml": f"<svg><script>{SCRIPT}</script></svg>"}),
                display({"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}),
                {"output_type": "stream", "name": "stdout", "text": "<script>alert(1)</script>"},
            ],
            source="print('<script>alert(2)</script>')",
        ),
    ]
)


def student_scripts(html: str) -> list[str]:
    """Everything in ``html`` that would run the student's code: their script in a
    <script> element, an on* attribute, a javascript: URL, an iframe."""
    found = re.findall(r"<script", html, flags=re.I)
    found += re.findall(r"<[^>]+\son\w+\s*=", html, flags=re.I)
    found += re.findall(r"href=[\"']?\s*(?:javascript|data):", html, flags=re.I)
    found += re.findall(r"<iframe", html, flags=re.I)
    return found


def test_nothing_a_student_wrote_can_run():
    html = render_html(HOSTILE)
    assert student_scripts(html) == []
    # what is harmless is still there for the teacher to read
    assert "<h1" in html and "Title</h1>" in html
    assert "<b>bold</b>" in html and "hover" in html
    assert "plain fallback" in html
    # printed text is shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_page_policy_allows_no_script_and_isolates_the_page():
    directives = dict(
        (d.split(" ", 1) + [""])[:2] for d in (x.strip() for x in CSP.split(";")) if d
    )
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives
    assert "sandbox" in directives and "allow-scripts" not in directives["sandbox"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not a notebook"),
        (b'{"cells": 3}', "not a notebook"),
        (b"[]", "not a notebook"),
    ],
)
def test_files_that_are_not_notebooks_are_refused_clearly(raw, message):
    with pytest.raises(NotebookError, match=message):
        render_html(raw)


def test_the_renderer_survives_a_notebook_that_exhausts_its_worker():
    renderer = Renderer(workers=1, timeout=60, memory_bytes=300 << 20)
    big = notebook([code_cell([display({"text/plain": "x" * (120 << 20)})])])

    async def run():
        with pytest.raises(NotebookError):
            await renderer.render(big)
        # the next notebook renders in a fresh worker
        return await renderer.render(HOSTILE)

    try:
        html = asyncio.run(run())
    finally:
        renderer.close()
    assert "Title</h1>" in html and student_scripts(html) == []
