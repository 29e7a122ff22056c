"""The difference between two versions of a student's file, as a page that runs nothing.

Pure functions (no I/O), run in the renderer's worker processes
(:class:`services.base.nbrender.Renderer`) with its time and memory limits.

Notebooks are compared cell by cell:

* **matching.** When every cell of both versions has an id (nbformat 4.5, JupyterLab 3 and
  later) and the ids are unique, cells are matched by id: a cell keeps its identity when it
  is edited or moved. Otherwise (older notebooks) cells with the same type and source are
  matched in order (:class:`difflib.SequenceMatcher`), and the cells left between two
  matches are paired by position, the extra ones added or removed;
* **each pair** is *unchanged* (same source and outputs; consecutive ones are folded),
  *changed* (its source diff line by line; a summary of what changed in its outputs, with
  a line diff of text outputs) or *moved*; a cell only in one version is *added* or
  *removed*, with its source.

Everything a student wrote is escaped as text: the page holds no markup of theirs at all
(Markdown is compared as its source, outputs as summaries and text). It is served with the
same sandboxing CSP as rendered notebooks (:data:`services.base.nbrender.CSP`).

Other files are compared as text (UTF-8, line by line) when both versions are text, else
by size.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
from dataclasses import dataclass

from services.base.nbrender import (
    NotebookError,
    cells_of,
    outputs_of,
    page,
    parse_notebook,
    strip_ansi,
    text_of,
)

#: the most diff lines one page shows (then it says the rest is left out)
MAX_LINES = 20_000
#: the most lines of one cell's source or one text output compared (longer: by summary)
MAX_CELL_LINES = 5_000
#: the most bytes of a non-notebook file compared as text
MAX_TEXT_BYTES = 4 << 20

_STYLE = """
h1{font-size:18px;margin:0 0 4px}.summary{margin:0 0 12px;color:#57606a}
.dcell{border:1px solid #d0d7de;border-radius:6px;margin:0 0 10px;overflow:hidden;
content-visibility:auto;contain-intrinsic-size:auto 120px}
.dcell>.head{padding:4px 8px;background:#f6f8fa;border-bottom:1px solid #d0d7de;font-weight:600}
.added>.head{background:#dafbe1}.removed>.head{background:#ffebe9}.changed>.head{background:#fff8c5}
.lines{padding:4px 0}.l{padding:0 8px;white-space:pre-wrap;word-break:break-word;
font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.l.ins{background:#e6ffec}.l.del{background:#ffebe9}.l.ctx{color:#57606a}
.outs{padding:4px 8px;border-top:1px dashed #d0d7de}.outs ul{margin:2px 0 2px 18px;padding:0}
details.same{margin:0 0 10px;color:#57606a}details.same summary{cursor:pointer}
.badge{font-weight:400;font-size:12px;border:1px solid #d0d7de;border-radius:10px;padding:0 6px;
margin-left:6px}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


@dataclass
class _Budget:
    """The lines still allowed on the page."""

    left: int = MAX_LINES

    def take(self, n: int) -> int:
        granted = max(0, min(n, self.left))
        self.left -= granted
        return granted


# ----------------------------------------------------------------------------- lines


def line_diff(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """``(mark, line)`` for every line: ``" "`` kept, ``"-"`` removed, ``"+"`` added."""
    rows: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [(" ", line) for line in old[i1:i2]]
        else:
            rows += [("-", line) for line in old[i1:i2]]
            rows += [("+", line) for line in new[j1:j2]]
    return rows


def _lines_html(rows: list[tuple[str, str]], budget: _Budget) -> str:
    shown = budget.take(len(rows))
    css = {" ": "ctx", "-": "del", "+": "ins"}
    out = [f'<div class="l {css[mark]}">{mark} {_e(line)}</div>' for mark, line in rows[:shown]]
    if shown < len(rows):
        out.append(f'<div class="l ctx">… {len(rows) - shown} more lines not shown</div>')
    return f'<div class="lines">{"".join(out)}</div>'


def _split(text: str) -> list[str]:
    return text.splitlines()


def _lines_of(text: str) -> list[str] | None:
    """The lines of ``text``, None when there are too many to compare line by line."""
    lines = _split(text)
    return lines if len(lines) <= MAX_CELL_LINES else None


def _source_rows(old: str | None, new: str | None) -> list[tuple[str, str]] | None:
    a = _lines_of(old or "")
    b = _lines_of(new or "")
    if a is None or b is None:
        return None
    return line_diff(a, b)


# ----------------------------------------------------------------------------- outputs


def output_kind(output: dict) -> str:
    kind = str(output.get("output_type", "?"))
    if kind == "stream":
        return f"{kind} {output.get('name', '')}".strip()
    if kind == "error":
        return f"error {output.get('ename', '')}".strip()
    data = output.get("data")
    if isinstance(data, dict):
        return f"{kind} ({', '.join(sorted(str(k) for k in data))})"
    return kind


def _output_text(output: dict) -> str | None:
    """The text a person reads in a text output (stream, error, text/plain), else None."""
    kind = output.get("output_type")
    if kind == "stream":
        return strip_ansi(text_of(output.get("text")))
    if kind == "error":
        trace = output.get("traceback")
        if isinstance(trace, list):
            return strip_ansi("\n".join(t for t in trace if isinstance(t, str)))
        return f"{output.get('ename', '')}: {output.get('evalue', '')}"
    data = output.get("data")
    if isinstance(data, dict) and set(data) <= {"text/plain"} and "text/plain" in data:
        return text_of(data["text/plain"])
    return None


def output_signature(output: dict) -> str:
    """What an output shows, as a hash: its kind and its data (not its execution count or
    metadata)."""
    content = {
        "kind": output.get("output_type"),
        "name": output.get("name"),
        "text": output.get("text"),
        "data": output.get("data"),
        "ename": output.get("ename"),
        "evalue": output.get("evalue"),
        "traceback": output.get("traceback"),
    }
    blob = json.dumps(content, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def outputs_summary(old: list[dict], new: list[dict], budget: _Budget) -> str:
    """The changes between two cells' outputs, as a short list (text outputs with their
    line diff)."""
    items: list[str] = []
    if len(old) != len(new):
        items.append(f"{len(old)} output(s) before, {len(new)} now")
    for n in range(max(len(old), len(new))):
        a = old[n] if n < len(old) else None
        b = new[n] if n < len(new) else None
        label = f"Output {n + 1}"
        if a is None:
            items.append(f"{label} added: {_e(output_kind(b))}")
            continue
        if b is None:
            items.append(f"{label} removed: {_e(output_kind(a))}")
            continue
        if output_signature(a) == output_signature(b):
            continue
        before, after = output_kind(a), output_kind(b)
        what = _e(after) if before == after else f"{_e(before)} → {_e(after)}"
        text_a, text_b = _output_text(a), _output_text(b)
        rows = None
        if text_a is not None and text_b is not None:
            rows = _source_rows(text_a, text_b)
        if rows is None:
            items.append(f"{label} changed: {what}")
        else:
            added = sum(1 for mark, _ in rows if mark == "+")
            removed = sum(1 for mark, _ in rows if mark == "-")
            changed = [r for r in rows if r[0] != " "]
            items.append(
                f"{label} changed: {what}, +{added} −{removed} lines"
                + _lines_html(changed[:200], budget)
            )
    if not items:
        return ""
    lis = "".join(f"<li>{item}</li>" for item in items)
    return f'<div class="outs">Outputs:<ul>{lis}</ul></div>'


# ----------------------------------------------------------------------------- cells


def cell_id(cell: dict) -> str:
    value = cell.get("id")
    return value if isinstance(value, str) and value else ""


def _content_key(cell: dict) -> str:
    return f"{cell.get('cell_type')}\0{text_of(cell.get('source'))}"


def align(old: list[dict], new: list[dict]) -> list[tuple[int | None, int | None, bool]]:
    """The cells of two versions matched: ``(old index, new index, moved)`` in the order of
    the new version (removed cells where they were). By id when every cell of both has a
    unique one, else by content with the rest paired by position."""
    old_ids = [cell_id(c) for c in old]
    new_ids = [cell_id(c) for c in new]
    by_id = (
        all(old_ids)
        and all(new_ids)
        and len(set(old_ids)) == len(old_ids)
        and len(set(new_ids)) == len(new_ids)
    )
    pairs: list[tuple[int | None, int | None, bool]] = []
    if by_id:
        in_new = set(new_ids)
        old_at = {cid: i for i, cid in enumerate(old_ids)}
        matcher = difflib.SequenceMatcher(None, old_ids, new_ids, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                pairs += [(i, j, False) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
                continue
            pairs += [(i, None, False) for i in range(i1, i2) if old_ids[i] not in in_new]
            for j in range(j1, j2):
                i = old_at.get(new_ids[j])
                pairs.append((i, j, i is not None))
        return pairs
    keys_old = [_content_key(c) for c in old]
    keys_new = [_content_key(c) for c in new]
    matcher = difflib.SequenceMatcher(None, keys_old, keys_new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += [(i, j, False) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i = i1 + k if i1 + k < i2 else None
            j = j1 + k if j1 + k < j2 else None
            pairs.append((i, j, False))
    return pairs


def _same(a: dict, b: dict) -> bool:
    if _content_key(a) != _content_key(b):
        return False
    outs_a, outs_b = outputs_of(a), outputs_of(b)
    return len(outs_a) == len(outs_b) and all(
        output_signature(x) == output_signature(y) for x, y in zip(outs_a, outs_b, strict=True)
    )


def _cell_block(css: str, head: str, rows: list[tuple[str, str]] | None, outs: str, budget) -> str:
    lines = (
        _lines_html(rows, budget)
        if rows is not None
        else '<div class="l ctx">(too long to compare line by line)</div>'
    )
    return f'<section class="dcell {css}"><div class="head">{head}</div>{lines}{outs}</section>'


def _kind(cell: dict) -> str:
    return _e(str(cell.get("cell_type", "cell")))


def diff_cells(old: list[dict], new: list[dict]) -> tuple[str, dict[str, int]]:
    """The HTML of the cell-by-cell difference and the counts of each kind of change."""
    budget = _Budget()
    counts = {"unchanged": 0, "changed": 0, "added": 0, "removed": 0, "moved": 0}
    parts: list[str] = []
    same_run: list[str] = []

    def flush_same():
        if same_run:
            n = len(same_run)
            inner = "".join(same_run)
            parts.append(
                f'<details class="same"><summary>{n} unchanged cell{"s" if n != 1 else ""}'
                f"</summary>{inner}</details>"
            )
            same_run.clear()

    for i, j, moved in align(old, new):
        if budget.left <= 0:
            break
        a = old[i] if i is not None else None
        b = new[j] if j is not None else None
        place = f"Cell {j + 1}" if j is not None else f"Cell {i + 1} of the older version"
        if a is not None and b is not None and _same(a, b) and not moved:
            counts["unchanged"] += 1
            source = text_of(b.get("source"))
            lines = [(" ", line) for line in _split(source)[:MAX_CELL_LINES]]
            same_run.append(_cell_block("same", f"{place} ({_kind(b)})", lines, "", budget))
            continue
        flush_same()
        if a is None:
            counts["added"] += 1
            rows = _source_rows(None, text_of(b.get("source")))
            outs = outputs_summary([], outputs_of(b), budget)
            parts.append(_cell_block("added", f"{place} added ({_kind(b)})", rows, outs, budget))
        elif b is None:
            counts["removed"] += 1
            rows = _source_rows(text_of(a.get("source")), None)
            outs = outputs_summary(outputs_of(a), [], budget)
            parts.append(
                _cell_block("removed", f"{place} removed ({_kind(a)})", rows, outs, budget)
            )
        else:
            if moved:
                counts["moved"] += 1
            changed = not _same(a, b)
            if changed:
                counts["changed"] += 1
            head = f"{place} ({_kind(b)})"
            if a.get("cell_type") != b.get("cell_type"):
                head = f"{place} ({_kind(a)} → {_kind(b)})"
            if moved:
                head += f'<span class="badge">moved from cell {i + 1}</span>'
            if changed:
                head += '<span class="badge">changed</span>'
            rows = _source_rows(text_of(a.get("source")), text_of(b.get("source")))
            outs = outputs_summary(outputs_of(a), outputs_of(b), budget)
            parts.append(_cell_block("changed" if changed else "same", head, rows, outs, budget))
    flush_same()
    if budget.left <= 0:
        parts.append('<p class="summary">The rest of the difference is too long to show.</p>')
    return "".join(parts), counts


def _summary(counts: dict[str, int]) -> str:
    words = [
        f"{counts[k]} {k}"
        for k in ("changed", "added", "removed", "moved", "unchanged")
        if counts.get(k)
    ]
    return ", ".join(words) if words else "no cells"


def diff_notebooks(old_raw: bytes | None, new_raw: bytes | None, title: str, labels: tuple) -> str:
    """The page of the difference between two versions of a notebook (``None``: the file
    is not in that version). ``labels`` names the two versions (older, newer)."""
    old = cells_of(parse_notebook(old_raw)) if old_raw is not None else []
    new = cells_of(parse_notebook(new_raw)) if new_raw is not None else []
    body, counts = diff_cells(old, new)
    head = (
        f'<h1>{_e(title)}</h1><p class="summary">From {_e(labels[0])} to {_e(labels[1])}: '
        f"{_summary(counts)} cells.</p>"
    )
    return page(f"Changes in {title}", head + body, _STYLE)


def diff_text(
    old_raw: bytes | None, new_raw: bytes | None, title: str, labels: tuple, note: str = ""
) -> str:
    """The page of the difference between two versions of a text file (by size when one
    is not UTF-8 text or too large); ``note`` is said first."""
    head = f"<h1>{_e(title)}</h1>" + (f'<p class="summary">{_e(note)}</p>' if note else "")

    def decoded(raw: bytes | None) -> str | None:
        if raw is None:
            return ""
        if len(raw) > MAX_TEXT_BYTES:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None

    a, b = decoded(old_raw), decoded(new_raw)
    sizes = (
        f"{'absent' if old_raw is None else f'{len(old_raw)} bytes'} in {_e(labels[0])}, "
        f"{'absent' if new_raw is None else f'{len(new_raw)} bytes'} in {_e(labels[1])}"
    )
    if a is None or b is None:
        verdict = "the same" if old_raw == new_raw else "different"
        body = f'<p class="summary">Not text to compare line by line: {sizes}; {verdict}.</p>'
        return page(f"Changes in {title}", head + body, _STYLE)
    rows = _source_rows(a, b)
    if rows is None:
        body = f'<p class="summary">Too many lines to compare: {sizes}.</p>'
    else:
        added = sum(1 for m, _ in rows if m == "+")
        removed = sum(1 for m, _ in rows if m == "-")
        body = (
            f'<p class="summary">From {_e(labels[0])} to {_e(labels[1])}: +{added} −{removed} '
            f'lines ({sizes}).</p><section class="dcell changed">{_lines_html(rows, _Budget())}'
            "</section>"
        )
    return page(f"Changes in {title}", head + body, _STYLE)


def diff_file(
    path: str, old_raw: bytes | None, new_raw: bytes | None, labels: tuple[str, str]
) -> str:
    """The difference page for ``path``: a notebook cell by cell (as text, with the reason,
    when a version is no notebook that can be read), anything else as text."""
    if path.lower().endswith(".ipynb"):
        try:
            return diff_notebooks(old_raw, new_raw, path, labels)
        except NotebookError as e:
            return diff_text(old_raw, new_raw, path, labels, f"{e} Compared as text instead.")
    return diff_text(old_raw, new_raw, path, labels)
