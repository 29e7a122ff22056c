"""The grades service's settings of the review (:mod:`.review`), mixed into ``GradesApp``:
the notebook renderer's workers, time and memory, the cache of rendered pages, and how
many **Download all** zips are built at once."""

from __future__ import annotations

from traitlets import Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from common.units import parse_size
from services.base import nbrender

from .reviewwork import GRANT_QUERY, RenderCache, Review
from .settings import REVIEW_TABLE


def _size(name: str, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise TraitError(f"GradesApp.{name} is not a size such as 256M or 2G: {e}") from None


def _size_or_zero(name: str, value: str) -> int:
    return 0 if value.strip() == "0" else _size(name, value)


@REVIEW_TABLE.install
class ReviewSettings(Configurable):
    """The grades service's settings of the review (mixed into ``GradesApp``)."""

    render_workers = Integer(
        config=True,
        help="""Worker processes that render notebooks and differences for the review
        page (``CLASSHUB_GRADES_RENDER_WORKERS``). Each is a Python process of about 40 MB
        at rest, started with the service (warm); a 5 MB notebook takes a worker about
        half a second. More workers render more notebooks at once; 2 suits a 2-core
        machine.

        Example: ``c.GradesApp.render_workers = 4``
        """,
    )

    @validate("render_workers")
    def _check_render_workers(self, proposal):
        if not 1 <= proposal.value <= 64:
            raise TraitError(f"GradesApp.render_workers must be 1 to 64, got {proposal.value}")
        return proposal.value

    render_timeout = Integer(
        config=True,
        help="""Seconds one notebook (or one difference) may take to render
        (``CLASSHUB_GRADES_RENDER_TIMEOUT``). A notebook built to be slow is stopped then
        (its worker is replaced) and the teacher reads "took longer than N s to render"
        with the download beside it.

        Example: ``c.GradesApp.render_timeout = 30``
        """,
    )

    @validate("render_timeout")
    def _check_render_timeout(self, proposal):
        if not 1 <= proposal.value <= 600:
            raise TraitError(
                f"GradesApp.render_timeout must be 1 to 600 seconds, got {proposal.value}"
            )
        return proposal.value

    render_memory = Unicode(
        config=True,
        help="""The address space one render worker may use (K, M, G suffixes;
        ``CLASSHUB_GRADES_RENDER_MEMORY``). A notebook that needs more fails with "too
        large to render" (its worker is replaced); notebooks over 50 MB are never
        rendered.

        Example: ``c.GradesApp.render_memory = "1G"``
        """,
    )

    @validate("render_memory")
    def _check_render_memory(self, proposal):
        if _size("render_memory", proposal.value) < 256 << 20:
            raise TraitError("GradesApp.render_memory must be at least 256M.")
        return proposal.value

    render_cache_size = Unicode(
        config=True,
        help="""How much rendered HTML the service keeps in memory (K, M, G suffixes; 0
        keeps none; ``CLASSHUB_GRADES_RENDER_CACHE``), under each version's content hash:
        a notebook opened again (the next student and back, another teacher) is sent at
        once instead of being rendered again. A rendered notebook takes about its own size.

        Example: ``c.GradesApp.render_cache_size = "512M"``
        """,
    )

    @validate("render_cache_size")
    def _check_render_cache_size(self, proposal):
        if proposal.value.strip() != "0":
            _size("render_cache_size", proposal.value)
        return proposal.value

    render_collapse_output = Unicode(
        config=True,
        help="""An HTML output larger than this is shown collapsed in a rendered notebook
        (K, M suffixes; 0: never for its size alone; ``CLASSHUB_GRADES_RENDER_COLLAPSE_OUTPUT``):
        a placeholder says how large it is and how many table cells it has, and its
        **Show it** link opens the page again with that output in place. A browser
        parses a 450,000-cell table for about 2 s; collapsed, the notebook opens at once.

        Example: ``c.GradesApp.render_collapse_output = "512K"``
        """,
    )

    @validate("render_collapse_output")
    def _check_render_collapse_output(self, proposal):
        if proposal.value.strip() != "0":
            _size("render_collapse_output", proposal.value)
        return proposal.value

    render_collapse_page = Unicode(
        config=True,
        help="""Once the HTML outputs shown in a rendered notebook hold this much, every
        further HTML output is shown collapsed (K, M suffixes; 0: no limit;
        ``CLASSHUB_GRADES_RENDER_COLLAPSE_PAGE``): a notebook of hundreds of tables opens
        with its first ones, the others one **Show it** (or **Show every output**) away.
        Ordinary notebooks stay far below it.

        Example: ``c.GradesApp.render_collapse_page = "2M"``
        """,
    )

    @validate("render_collapse_page")
    def _check_render_collapse_page(self, proposal):
        if proposal.value.strip() != "0":
            _size("render_collapse_page", proposal.value)
        return proposal.value

    download_all_concurrency = Integer(
        2,
        config=True,
        help="""How many **Download all** zips the service builds at once (each holds one
        of the service's S3 threads while it runs); one more is answered 503 "try again in
        a minute".

        Example: ``c.GradesApp.download_all_concurrency = 4``
        """,
    )

    @validate("download_all_concurrency")
    def _check_download_all_concurrency(self, proposal):
        if not 1 <= proposal.value <= 32:
            raise TraitError(
                f"GradesApp.download_all_concurrency must be 1 to 32, got {proposal.value}"
            )
        return proposal.value

    def make_review(self, objects, log) -> Review:
        return Review(
            objects=objects,
            renderer=nbrender.Renderer(
                workers=self.render_workers,
                timeout=float(self.render_timeout),
                memory_bytes=_size("render_memory", self.render_memory),
            ),
            cache=RenderCache(_size_or_zero("render_cache_size", self.render_cache_size)),
            downloads=self.download_all_concurrency,
            log=log,
            collapse=nbrender.Collapse(
                output_bytes=_size_or_zero("render_collapse_output", self.render_collapse_output),
                page_bytes=_size_or_zero("render_collapse_page", self.render_collapse_page),
                link_query=GRANT_QUERY,
            ),
        )
