"""Notebooks a student wrote, rendered as HTML that runs nothing, for teachers to read.

A notebook is the student's: its Markdown, its outputs (HTML, JavaScript, SVG), even its
metadata. Shown to a teacher on the hub's own origin it must never run as a page there.
Three layers, each enough on its own against a script:

1. the page is built here, piece by piece, and everything a student wrote is escaped as
   text except two kinds of fragment, which go through an allow-list HTML sanitiser
   (``nh3``, the Rust *ammonia* library) first: the HTML of rendered Markdown and of
   ``text/html`` and ``text/markdown`` outputs. It keeps formatting tags and drops every
   ``<script>``, ``<style>``, ``<iframe>``, form, ``on*`` handler, ``style`` attribute and
   any URL that is not ``http(s)``/``mailto`` (links) or a ``data:image`` (images);
   relative URLs are removed. Outputs that can carry script (``application/javascript``,
   widgets, anything unknown) are never rendered: their ``text/plain`` form is shown, or a
   note. SVG is shown only as an ``<img>`` of a ``data:`` URL (an image never runs its
   scripts);
2. every ``<script>`` element still in the page is removed;
3. the page is served with :data:`CSP`: no script source at all, and ``sandbox`` without
   ``allow-scripts``, so even markup that got through runs nothing and the page has an
   origin of its own (no cookies, no access to the hub's).

nbconvert did this before (its HTML exporter with the ``SanitizeHTML`` preprocessor), but
it took 11 to 150 s for a notebook of 5 MB (bleach re-parses the highlighted code of every
cell, BeautifulSoup the whole page): this renderer takes well under a second (see
docs/performance.md). Math is shown as its LaTeX source (MathJax is a script).

Very large HTML outputs are **collapsed** (:class:`Collapse`): an HTML output larger than
``output_bytes``, and every HTML output once those before it in the page hold
``page_bytes``, is a placeholder that says how large it is (and how many table cells it
has), with a **Show** link. The page runs no script, so the link opens the same page again
with that output in place (``?show=<cell>.<output>``, scrolled to it; ``?show=all`` shows
every output): the first load parses only the notebook's ordinary outputs, and a teacher
pays for a 450,000-cell table only when they ask for it. A shown output goes through the
same sanitiser and the same page (CSP, no script) as any other.

The work runs in worker processes (:class:`Renderer`) with a memory limit and a time limit
per notebook: a notebook built to be slow or huge to render costs its own worker, never the
service.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import dataclasses
import functools
import html
import json
import logging
import re
import resource
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Content-Security-Policy of every rendered page
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)
#: the headers a rendered page is served with
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}

MAX_NOTEBOOK_BYTES = 50 << 20
#: code cells are highlighted (Pygments) while all their source together is at most this
HIGHLIGHT_MAX_CHARS = 256 << 10
_SCRIPT_RE = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_B64_RE = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]*$")


@dataclasses.dataclass(frozen=True)
class Collapse:
    """Which HTML outputs a rendered page shows collapsed (see the module's docstring).

    ``output_bytes``: an HTML output larger than this is collapsed; ``page_bytes``: once
    the HTML outputs shown so far hold this much, every further one is collapsed (0: no
    limit); ``shown``: the outputs (``"<cell>.<output>"``, counted from 0) asked for, shown
    whatever their size; ``every``: show every output (nothing collapsed)."""

    output_bytes: int = 256 << 10
    page_bytes: int = 1 << 20
    shown: frozenset[str] = frozenset()
    every: bool = False
    #: added to the query of every Show and Collapse link (the review's grant mark)
    link_query: str = ""

    #: at most this many outputs are asked for by name (more: ask for all)
    MAX_SHOWN = 100

    def asking(self, show: str) -> Collapse:
        """These limits with the query's ``show`` (``all``, or output ids separated by
        commas); ids that are not ``<cell>.<output>`` are ignored."""
        show = show.strip()
        if show == "all":
            return dataclasses.replace(self, every=True)
        ids = [i for i in show.split(",") if _OUTPUT_ID.match(i)][: self.MAX_SHOWN]
        return dataclasses.replace(self, shown=frozenset(ids))

    def key(self) -> tuple:
        """What makes one rendering of a notebook differ from another (the cache's key)."""
        if self.every:
            return ("all",)
        return (self.output_bytes, self.page_bytes, tuple(sorted(self.shown)))


#: nothing collapsed (what a render without limits shows, e.g. the classes service's views)
EVERYTHING = Collapse(output_bytes=0, page_bytes=0)
_OUTPUT_ID = re.compile(r"^[0-9]{1,6}\.[0-9]{1,4}$")
_CELL_TAG = re.compile(r"<t[dh][\s>]", re.IGNORECASE)


class NotebookError(ValueError):
    """The file is not a notebook that can be shown (the message says why)."""


def _limit_memory(max_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


# ----------------------------------------------------------------------------- reading


def parse_notebook(raw: bytes) -> dict:
    """The notebook ``raw`` (bytes of an ``.ipynb`` file) as a dict with a list of cells,
    or :class:`NotebookError` saying why it is none."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"The notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB.")
    try:
        node = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotebookError("The notebook is not UTF-8 text.") from None
    except RecursionError:
        raise NotebookError("The file is not a notebook: it is nested too deeply.") from None
    except ValueError as e:
        raise NotebookError(f"The file is not a notebook: {str(e)[:200]}") from None
    if not isinstance(node, dict) or not isinstance(node.get("cells"), list):
        raise NotebookError("The file is not a notebook: it has no list of cells.")
    if node.get("nbformat") != 4:
        raise NotebookError(
            f"The notebook is in format {node.get('nbformat')!r}; only format 4 (Jupyter "
            "3 and later) can be shown. Download it instead."
        )
    return node


def text_of(value: Any) -> str:
    """A notebook's multi-line string (a string, or a list of lines) as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def cells_of(node: dict) -> list[dict]:
    return [c for c in node["cells"] if isinstance(c, dict)]


def outputs_of(cell: dict) -> list[dict]:
    outputs = cell.get("outputs")
    return [o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


# ----------------------------------------------------------------------------- sanitising


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Links may go to http(s) and mailto only (nh3 checks the scheme; this also refuses
    ``data:`` links, allowed for images only); images only from ``data:image/...``."""
    if attribute == "src":
        return value if _DATA_IMAGE.match(value) else None
    if attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    return value


@functools.cache
def _cleaner():
    import nh3

    return nh3.Cleaner(
        url_schemes={"http", "https", "mailto", "data"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_attribute_filter,
    )


def clean_html(fragment: str) -> str:
    """``fragment`` with only harmless markup left (see the module's docstring)."""
    return _SCRIPT_RE.sub("", _cleaner().clean(fragment))


@functools.cache
def _markdown():
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])


def markdown_html(source: str, attachments: dict | None = None) -> str:
    """Markdown (with the cell's attachments as ``data:`` images), sanitised."""
    if attachments:
        for name, bundle in attachments.items():
            if not isinstance(bundle, dict):
                continue
            for mime in (*_IMAGE_TYPES, "image/svg+xml"):
                data = bundle.get(mime)
                if isinstance(data, str) and _B64_RE.match(data):
                    b64 = "".join(data.split())
                    source = source.replace(f"attachment:{name}", f"data:{mime};base64,{b64}")
                    break
    return clean_html(_markdown()(source))


# ----------------------------------------------------------------------------- rendering

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
padding:12px 16px;color:#1f2328;background:#fff}
.cell{display:flex;gap:8px;margin:0 0 10px;content-visibility:auto;
contain-intrinsic-size:auto 160px}
.prompt{flex:0 0 64px;text-align:right;font:12px/1.6 ui-monospace,monospace;color:#6e7781;
padding-top:4px}
.body{flex:1 1 auto;min-width:0}
pre{margin:0;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
white-space:pre-wrap;word-break:break-word}
.input pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;padding:6px 8px}
.output{padding:4px 8px;overflow-x:auto}
.output+.output{border-top:1px dashed #eaeef2}
.stderr{background:#fff1f0}
.error pre{color:#82071e}
.note{color:#6e7781;font-style:italic}
.collapsed{background:#f6f8fa;border:1px dashed #d0d7de;border-radius:4px}
.collapsed-note{margin:0 0 10px;padding:6px 8px;background:#fff8c5;border-radius:4px}
.markdown{padding:0 8px}
.markdown img,.output img{max-width:100%}
table{border-collapse:collapse;margin:4px 0}
td,th{border:1px solid #d0d7de;padding:2px 6px;text-align:right}
.k,.kn,.kd,.kc,.ow{color:#cf222e}.s,.s1,.s2,.sd,.si,.sa{color:#0a3069}.c,.c1,.cm{color:#6e7781}
.mi,.mf,.m{color:#0550ae}.nf,.nc{color:#8250df}.nb,.bp{color:#953800}
"""

_PRIORITY = (
    "text/html",
    "text/markdown",
    "image/svg+xml",
    *_IMAGE_TYPES,
    "text/latex",
    "application/json",
    "text/plain",
)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _pre(text: str, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<pre{attr}>{_escape(text)}</pre>"


def _image(mime: str, data: Any) -> str | None:
    if mime == "image/svg+xml":
        svg = text_of(data)
        b64 = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    else:
        b64 = "".join(text_of(data).split())
        if not _B64_RE.match(b64):
            return None
        try:
            base64.b64decode(b64[:4096] + "=" * (-len(b64[:4096]) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
    return f'<img alt="output image" src="data:{mime};base64,{b64}">'


def render_output(output: dict, oid: str = "", outputs: _Outputs | None = None) -> str:
    """One output of a code cell, as harmless HTML; an HTML output through ``outputs``
    (which may collapse it, :class:`Collapse`) when given, ``oid`` naming it."""
    kind = output.get("output_type")
    if kind == "stream":
        css = "stderr" if output.get("name") == "stderr" else ""
        return f'<div class="output {css}">{_pre(strip_ansi(text_of(output.get("text"))))}</div>'
    if kind == "error":
        lines = output.get("traceback")
        trace = "\n".join(t for t in lines if isinstance(t, str)) if isinstance(lines, list) else ""
        text = trace or f"{output.get('ename', '')}: {output.get('evalue', '')}"
        return f'<div class="output error">{_pre(strip_ansi(str(text)))}</div>'
    data = output.get("data")
    if kind not in ("display_data", "execute_result", "update_display_data") or not isinstance(
        data, dict
    ):
        return f'<div class="output note">An output of the kind {_escape(str(kind)[:80])}.</div>'
    for mime in _PRIORITY:
        if mime not in data:
            continue
        value = data[mime]
        if mime == "text/html":
            if outputs is not None:
                return outputs.html(oid, text_of(value))
            return f'<div class="output html">{clean_html(text_of(value))}</div>'
        if mime == "text/markdown":
            return f'<div class="output markdown">{markdown_html(text_of(value))}</div>'
        if mime.startswith("image/"):
            image = _image(mime, value)
            if image is None:
                continue
            return f'<div class="output">{image}</div>'
        if mime == "application/json":
            return f'<div class="output">{_pre(json.dumps(value, indent=1)[:100_000])}</div>'
        return f'<div class="output">{_pre(strip_ansi(text_of(value)))}</div>'
    kinds = ", ".join(sorted(str(k) for k in data))[:200]
    return (
        f'<div class="output note">An output that is not shown here ({_escape(kinds)}): '
        "scripts and widgets never run in this view.</div>"
    )


def _highlighter(node: dict) -> Callable[[str], str]:
    """Pygments' HTML of a code cell's source when the notebook's code is small enough,
    else the source escaped."""
    total = sum(len(text_of(c.get("source"))) for c in cells_of(node))
    language = ""
    info = (
        node.get("metadata", {}).get("language_info")
        if isinstance(node.get("metadata"), dict)
        else None
    )
    if isinstance(info, dict):
        language = str(info.get("pygments_lexer") or info.get("name") or "")
    if total > HIGHLIGHT_MAX_CHARS:
        return _escape
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language or "python3")
    except ClassNotFound:
        lexer = PythonLexer()
    formatter = HtmlFormatter(nowrap=True)

    def code(source: str) -> str:
        # Pygments escapes every character of the source: its output is spans and text
        return highlight(source, lexer, formatter).rstrip("\n")

    return code


class _Outputs:
    """The HTML outputs of one page: which are shown and which collapsed
    (:class:`Collapse`), and how many were collapsed."""

    def __init__(self, collapse: Collapse):
        self.collapse = collapse
        self.used = 0
        self.collapsed = 0

    def html(self, oid: str, fragment: str) -> str:
        c = self.collapse
        size = len(fragment)
        too_big = bool(c.output_bytes and size > c.output_bytes) or bool(
            c.page_bytes and self.used + size > c.page_bytes
        )
        if c.every or not too_big:
            self.used += size  # an output shown on request does not count: others stay
            return f'<div class="output html">{clean_html(fragment)}</div>'
        anchor = f"out-{oid.replace('.', '-')}"
        if oid in c.shown:
            rest = ",".join(sorted(c.shown - {oid}))
            return (
                f'<div class="shown" id="{anchor}"><p class="note">A large output, shown on '
                f'request. <a href="?show={rest}{c.link_query}#{anchor}-c">Collapse it</a></p>'
                f'<div class="output html">{clean_html(fragment)}</div></div>'
            )
        self.collapsed += 1
        cells = len(_CELL_TAG.findall(fragment))
        what = f"{_size_text(size)}, {cells:,} table cells" if cells else _size_text(size)
        show = ",".join(sorted(c.shown | {oid}))
        return (
            f'<div class="output collapsed" id="{anchor}-c"><p class="note">An HTML output of '
            f"{what}, collapsed so that the notebook opens quickly. "
            f'<a class="show" href="?show={show}{c.link_query}#{anchor}">Show it</a></p></div>'
        )


def _size_text(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def render_cell(
    cell: dict, code: Callable[[str], str], index: int = 0, outputs: _Outputs | None = None
) -> str:
    kind = cell.get("cell_type")
    source = text_of(cell.get("source"))
    if kind == "markdown":
        attachments = cell.get("attachments") if isinstance(cell.get("attachments"), dict) else None
        body = f'<div class="markdown">{markdown_html(source, attachments)}</div>'
        return (
            f'<div class="cell md"><div class="prompt"></div><div class="body">{body}</div></div>'
        )
    if kind == "code":
        count = cell.get("execution_count")
        prompt = f"[{count}]:" if isinstance(count, int) else "[ ]:"
        shown = "".join(
            render_output(o, f"{index}.{n}", outputs) for n, o in enumerate(outputs_of(cell))
        )
        return (
            f'<div class="cell code"><div class="prompt">{prompt}</div><div class="body">'
            f'<div class="input"><pre>{code(source)}</pre></div>{shown}</div></div>'
        )
    return (
        f'<div class="cell raw"><div class="prompt"></div><div class="body">'
        f"{_pre(source)}</div></div>"
    )


def page(title: str, body: str, style: str = "") -> str:
    """A whole page around ``body`` (already harmless HTML); ``title`` is escaped."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_escape(title)}</title><style>{_STYLE}{style}</style></head>"
        f"<body>{body}</body></html>"
    )


def render_html(raw: bytes, title: str = "Notebook", collapse: Collapse | None = None) -> str:
    """The sanitised HTML page of notebook ``raw`` (bytes of an ``.ipynb`` file), its very
    large HTML outputs collapsed as ``collapse`` says (None: nothing collapsed)."""
    node = parse_notebook(raw)
    code = _highlighter(node)
    collapse = collapse or EVERYTHING
    outputs = _Outputs(collapse)
    try:
        cells = "".join(render_cell(c, code, i, outputs) for i, c in enumerate(cells_of(node)))
    except RecursionError:
        raise NotebookError("The notebook cannot be shown: it is nested too deeply.") from None
    if not cells:
        cells = '<p class="note">This notebook has no cells.</p>'
    if outputs.collapsed:
        many = "s are" if outputs.collapsed > 1 else " is"
        cells = (
            f'<p class="note collapsed-note" id="collapsed-note">{outputs.collapsed:,} large '
            f"HTML output{many} collapsed so that the notebook opens quickly; each has a "
            f'Show link. <a href="?show=all{collapse.link_query}">Show every output</a> '
            "(slower to open).</p>" + cells
        )
    return _SCRIPT_RE.sub("", page(title, f'<main class="notebook">{cells}</main>'))


def render_text(raw: bytes, title: str = "File") -> str:
    """A text file as a page (escaped), for files that are not notebooks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookError("This file is not UTF-8 text; download it instead.") from None
    return page(title, f'<main class="notebook">{_pre(text)}</main>')


def _warm() -> int:
    """Import and run what a render needs, so a worker's first notebook is fast."""
    render_html(
        json.dumps(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [
                    {"cell_type": "markdown", "metadata": {}, "source": "# *warm*"},
                    {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []},
                ],
            }
        ).encode()
    )
    return 0


class Renderer:
    """Renders notebooks in ``workers`` processes, each limited to ``memory_bytes`` of
    address space and ``timeout`` seconds per notebook. A worker that runs out of time is
    killed with its pool, and a new pool takes the next notebook."""

    def __init__(self, *, workers: int = 2, timeout: float = 20.0, memory_bytes: int = 2 << 30):
        self.workers = workers
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_memory,
                initargs=(self.memory_bytes,),
            )
        return self._pool

    async def warm(self) -> None:
        """Start every worker and load what rendering needs in it (a cold worker costs
        about a second on the first notebook)."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        jobs = [loop.run_in_executor(pool, _warm) for _ in range(self.workers)]
        await asyncio.wait_for(asyncio.gather(*jobs), max(self.timeout, 60.0))

    async def render(
        self, raw: bytes, title: str = "Notebook", collapse: Collapse | None = None
    ) -> str:
        """The sanitised HTML of ``raw`` (large outputs collapsed as ``collapse`` says);
        :class:`NotebookError` when it cannot be shown."""
        return await self.run(render_html, raw, title, collapse)

    async def run(self, fn: Callable[..., str], *args: Any) -> str:
        """``fn(*args)`` (a module-level function, picklable) in a worker, within the
        limits; its :class:`NotebookError` is raised here."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor(), fn, *args)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._kill()
            raise NotebookError(
                f"The notebook took longer than {self.timeout:.0f} s to render."
            ) from None
        except concurrent.futures.process.BrokenProcessPool:
            self._kill()
            raise NotebookError("The notebook is too large to render.") from None
        except MemoryError:
            raise NotebookError("The notebook is too large to render.") from None

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._kill()
