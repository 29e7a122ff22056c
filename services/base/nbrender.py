"""Notebooks a student wrote, rendered as HTML that runs nothing, for teachers to read.

A notebook is the student's: its Markdown, its outputs (HTML, JavaScript, SVG), even its
metadata. Shown to a teacher on the hub's own origin it must never run as a page there.
Three layers, each enough on its own against a script:

1. nbconvert's ``SanitizeHTML`` preprocessor (bleach) drops every output type that can
   carry script (``application/javascript``, SVG, widgets, ...) and cleans the HTML of the
   others and of Markdown (no ``<script>``, no ``on*`` handlers, no ``javascript:`` links:
   what is not allowed is shown as text), and the notebook's widget state is dropped;
2. every ``<script>`` element of the page is removed (the template's own, which load
   MathJax and require.js from a CDN, included);
3. the page is served with :data:`CSP`: no script source at all, and ``sandbox`` without
   ``allow-scripts``, so even markup that got through runs nothing and the page has an
   origin of its own (no cookies, no access to the hub's).

The work runs in worker processes (:class:`Renderer`) with a memory limit and a time limit
per notebook: a notebook built to be slow or huge to render costs its own worker, never the
service.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import resource

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
_SCRIPT_RE = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)


class NotebookError(ValueError):
    """The file is not a notebook that can be shown (the message says why)."""


def _limit_memory(max_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def render_html(raw: bytes) -> str:
    """The sanitised HTML page of notebook ``raw`` (bytes of an ``.ipynb`` file)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"The notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB.")
    try:
        node = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        raise NotebookError("The notebook is not UTF-8 text.") from None
    except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
        raise NotebookError(f"The file is not a notebook: {str(e)[:200]}") from None
    node.metadata.pop("widgets", None)  # embedded in a <script> block by the template
    # The template's own sanitize_html would clean the Markdown a second time after the
    # preprocessor, and show every heading as escaped text: the preprocessor does it once.
    exporter = HTMLExporter(template_name="lab", exclude_anchor_links=True, embed_images=False)
    exporter.register_preprocessor(SanitizeHTML(enabled=True), enabled=True)
    try:
        body, _ = exporter.from_notebook_node(node)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise NotebookError(f"The notebook cannot be shown: {str(e)[:200]}") from None
    return _SCRIPT_RE.sub("", body)


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

    async def render(self, raw: bytes) -> str:
        """The sanitised HTML of ``raw``; :class:`NotebookError` when it cannot be shown."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor(), render_html, raw)
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
