"""Notebooks in and out: Databricks source format (``.py`` / ``.sql`` / ``.scala``), Jupyter and HTML.

The Databricks source format is a script with a header line and cells between separator lines;
cells in another language than the notebook's, and Markdown cells, are commented out line by line
with ``MAGIC``; a cell may carry a title::

    # Databricks notebook source
    x = 1

    # COMMAND ----------

    # DBTITLE 1,Totals
    # MAGIC %sql
    # MAGIC SELECT 1

SQL notebooks use ``--`` instead of ``#`` (Scala ``//``). jupytext cannot read this format, so the
converter is ours. In Jupyter form a ``%md`` cell is a Markdown cell and every other cell a code
cell whose source is written as in Databricks (``%sql`` on its first line for a magic cell); the
notebook's language and each cell's title live in metadata (``servicetsunami``), so a notebook
imported from source and exported again is the same file.

HTML export escapes everything a notebook holds: Markdown is rendered with raw HTML turned off, and
of the outputs only text, PNG images and the tables ``display()`` makes are shown, never HTML a cell
produced.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from typing import Any, Literal

import nbformat
from markdown_it import MarkdownIt
from nbformat import NotebookNode

from servicetsunami.errors import BadFile, InvalidInput

Language = Literal["python", "sql", "scala", "r"]
LANGUAGES: tuple[Language, ...] = ("python", "sql", "scala", "r")
META = "servicetsunami"  # metadata key of the notebook and of its cells
TABLE_MIME = "application/vnd.servicetsunami.table+json"  # what display(df) emits
_COMMENT: dict[str, str] = {"python": "#", "sql": "--", "scala": "//", "r": "#"}
_EXTENSION: dict[str, str] = {"python": ".py", "sql": ".sql", "scala": ".scala", "r": ".r"}
# Databricks' cell magics: a code cell whose first line starts with one of these is written with MAGIC.
MAGICS = frozenset({"md", "md-sandbox", "sql", "python", "scala", "r", "sh", "fs", "run", "pip", "conda"})
_MAGIC_LINE = re.compile(r"^%([a-z][a-z-]*)(?:\s|$)")
MAX_NOTEBOOK_BYTES = 10 * 1024 * 1024  # the Workspace API's import limit
_nbf: Any = nbformat  # nbformat has no type hints


def extension(language: str) -> str:
    return _EXTENSION[language]


def cell_magic(source: str) -> str | None:
    """The Databricks magic a cell starts with (``sql`` for ``%sql ...``), or None."""
    match = _MAGIC_LINE.match(source)
    if match is None or match.group(1) not in MAGICS:
        return None
    return match.group(1)


# -- Databricks source -> nbformat -----------------------------------------------------------------


def detect_language(text: str) -> Language | None:
    """The language of a Databricks source file from its header line, or None when it has none."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip()
    for language in ("python", "sql", "scala"):
        if first == f"{_COMMENT[language]} Databricks notebook source":
            return language
    return None


def from_source(text: str, /, *, language: Language | None = None) -> NotebookNode:
    """A Databricks source file as a Jupyter notebook; :class:`BadFile` when it is not one."""
    _check_size(text)
    found = detect_language(text)
    if found is None:
        raise BadFile("not a Databricks source notebook: its first line must be '# Databricks notebook source'")
    if language is not None and _COMMENT[language] != _COMMENT[found]:
        raise BadFile(f"the file is a {found} notebook, not a {language} one")
    lang: Language = language or found
    comment = _COMMENT[lang]
    body = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n", 1)
    rest = body[1] if len(body) > 1 else ""
    separator = re.compile(rf"^{re.escape(comment)} COMMAND -+[ \t]*$", re.MULTILINE)
    nb: NotebookNode = _nbf.v4.new_notebook()
    nb.metadata[META] = {"language": lang}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for n, chunk in enumerate(separator.split(rest), start=1):
        cell = _cell_from_source(chunk.strip("\n"), comment)
        cell["id"] = f"cell-{n}"
        nb.cells.append(cell)
    return nb


def _cell_from_source(chunk: str, comment: str) -> NotebookNode:
    lines = chunk.split("\n") if chunk else []
    meta: dict[str, Any] = {}
    title = re.match(rf"^{re.escape(comment)} DBTITLE (\d+),(.*)$", lines[0]) if lines else None
    if title is not None:
        meta["title"] = title.group(2)
        if title.group(1) != "1":
            meta["title_shown"] = int(title.group(1))
        lines = lines[1:]
    magic_prefix, bare = f"{comment} MAGIC ", f"{comment} MAGIC"
    if lines and all(line.startswith(magic_prefix) or line == bare for line in lines):
        source = "\n".join(line[len(magic_prefix) :] if line != bare else "" for line in lines)
        magic = cell_magic(source)
        if magic in ("md", "md-sandbox"):
            first, _, after = source.partition("\n")
            inline = first[len(magic) + 1 :].lstrip(" ")
            if magic != "md":
                meta["magic"] = magic
            if inline:
                meta["inline"] = True
                after = inline + ("\n" + after if after or "\n" in source else "")
            cell: NotebookNode = _nbf.v4.new_markdown_cell(after)
        else:
            cell = _nbf.v4.new_code_cell(source)
            if magic is None:  # MAGIC lines with no magic Databricks knows: keep them as they are
                meta["magic_lines"] = True
    else:
        cell = _nbf.v4.new_code_cell("\n".join(lines))
    if meta:
        cell.metadata[META] = meta
    return cell


# -- nbformat -> Databricks source -----------------------------------------------------------------


def to_source(nb: NotebookNode, /) -> str:
    """A notebook as a Databricks source file in its language (``.py`` for Python)."""
    lang = notebook_language(nb)
    comment = _COMMENT[lang]
    parts = [_cell_to_source(cell, comment, lang) for cell in nb.cells]
    return f"{comment} Databricks notebook source\n" + f"\n\n{comment} COMMAND ----------\n\n".join(parts) + "\n"


def _cell_to_source(cell: NotebookNode, comment: str, lang: Language) -> str:
    meta = dict(cell.get("metadata", {}).get(META, {}) or {})
    source = _text(cell.source)
    head: list[str] = []
    if meta.get("title") is not None:
        head.append(f"{comment} DBTITLE {int(meta.get('title_shown', 1))},{meta['title']}")
    if cell.cell_type == "code" and lang == "python" and source.startswith("%%sql"):
        source = source[1:]  # a Jupyter cell magic reads as Databricks' %sql
    if cell.cell_type != "code":
        magic = str(meta.get("magic", "md"))
        if meta.get("inline") and source:
            source = f"%{magic} {source}"
        else:
            source = f"%{magic}\n{source}" if source else f"%{magic}"
        magic_cell = True
    else:
        magic_cell = bool(meta.get("magic_lines")) or cell_magic(source) is not None
    if magic_cell:
        body = [f"{comment} MAGIC {line}" if line else f"{comment} MAGIC" for line in source.split("\n")]
    else:
        body = source.split("\n") if source else []
    return "\n".join(head + body)


def notebook_language(nb: NotebookNode, /) -> Language:
    lang = (nb.metadata.get(META) or {}).get("language", "python")
    if lang not in LANGUAGES:
        raise BadFile(f"unknown notebook language {lang!r}; one of {', '.join(LANGUAGES)}")
    return lang  # type: ignore[no-any-return]  # checked against LANGUAGES above


# -- Jupyter ----------------------------------------------------------------------------------------


def from_ipynb(text: str, /) -> NotebookNode:
    """A Jupyter notebook (nbformat 4) read and validated; :class:`BadFile` when it is not one."""
    _check_size(text)
    try:
        nb: NotebookNode = _nbf.reads(text, as_version=4)
        _nbf.validate(nb)
    except (nbformat.ValidationError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BadFile(f"not a valid Jupyter notebook: {_short(exc)}") from None
    meta = nb.metadata.setdefault(META, {})
    if meta.get("language") not in LANGUAGES:
        meta["language"] = "python"
    return nb


def to_ipynb(nb: NotebookNode, /) -> str:
    return str(_nbf.writes(nb)) + "\n"


def from_cells(cells: list[dict[str, Any]], /, *, language: Language = "python") -> NotebookNode:
    """A notebook from ``[{"cell_type": "code"|"markdown", "source": "...", "title": ..., "tags": [...]}]``."""
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}")
    nb: NotebookNode = _nbf.v4.new_notebook()
    nb.metadata[META] = {"language": language}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, spec in enumerate(cells):
        kind = spec.get("cell_type", "code")
        source = spec.get("source", "")
        if not isinstance(source, str):
            raise InvalidInput(f"cell {i + 1}: source must be text")
        if kind == "code":
            cell = _nbf.v4.new_code_cell(source)
        elif kind == "markdown":
            cell = _nbf.v4.new_markdown_cell(source)
        else:
            raise InvalidInput(f"cell {i + 1}: cell_type must be 'code' or 'markdown'")
        cell["id"] = f"cell-{i + 1}"
        if spec.get("title"):
            cell.metadata[META] = {"title": str(spec["title"])}
        tags = spec.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidInput(f"cell {i + 1}: tags must be a list of text")
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


def read_any(text: str, /, *, format: str = "auto", language: Language | None = None) -> NotebookNode:
    """Read a notebook in ``format`` (``jupyter``, ``source`` or ``auto``: by its first character)."""
    if format == "auto":
        format = "jupyter" if text.lstrip("\ufeff \n\t").startswith("{") else "source"
    if format == "jupyter":
        return from_ipynb(text)
    if format == "source":
        return from_source(text, language=language)
    raise InvalidInput("format must be 'jupyter', 'source' or 'auto' (HTML is export only)")


# -- HTML -------------------------------------------------------------------------------------------


def to_html(nb: NotebookNode, /, *, title: str = "notebook") -> str:
    """A self-contained HTML page of the notebook and its outputs, with everything escaped."""
    md = MarkdownIt("commonmark", {"html": False})
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}pre{background:#f6f6f6;padding:.5em;"
        "overflow:auto}.out{border-left:3px solid #ccc;padding-left:.5em}.err{color:#a00}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
        "</head><body>",
    ]
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get(META, {}) or {}
        out.append('<div class="cell">')
        if meta.get("title"):
            out.append(f"<h4>{html.escape(str(meta['title']))}</h4>")
        if cell.cell_type == "markdown":
            out.append(md.render(_text(cell.source)))
        else:
            out.append(f"<pre><code>{html.escape(_text(cell.source))}</code></pre>")
            out.extend(_output_html(o) for o in cell.get("outputs", []))
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _output_html(output: NotebookNode) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f'<pre class="out">{html.escape(_text(output.get("text", "")))}</pre>'
    if kind == "error":
        text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        return f'<pre class="out err">{html.escape(text)}</pre>'
    data = output.get("data", {})
    if TABLE_MIME in data:
        return _table_html(data[TABLE_MIME])
    png = data.get("image/png")
    if isinstance(png, str):
        try:
            base64.b64decode(png.replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            return ""
        return f'<img class="out" alt="output" src="data:image/png;base64,{png.replace(chr(10), "")}">'
    if "text/plain" in data:
        return f'<pre class="out">{html.escape(_text(data["text/plain"]))}</pre>'
    return ""


def _table_html(table: Any) -> str:
    if not isinstance(table, dict):
        return ""
    columns = [html.escape(str(c)) for c in table.get("columns", [])]
    rows = table.get("rows", [])
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
        if isinstance(row, list)
    )
    return f'<table class="out"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# -- helpers ----------------------------------------------------------------------------------------


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _check_size(text: str) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_NOTEBOOK_BYTES:
        raise BadFile(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MB")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
