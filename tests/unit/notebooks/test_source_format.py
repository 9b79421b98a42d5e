"""The Databricks source converter against golden files, Jupyter reading, and the escaping HTML export."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from servicetsunami.errors import BadFile, InvalidInput
from servicetsunami.services.notebooks import source_format as sf

GOLDEN = Path(__file__).parent / "golden"
SOURCES = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".py", ".sql"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_a_source_file_reads_as_its_golden_jupyter_notebook(path: Path) -> None:
    nb = sf.from_source(path.read_text())
    assert sf.to_ipynb(nb) == (GOLDEN / f"{path.name}.ipynb").read_text()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_golden_jupyter_notebook_exports_as_the_same_source_file(path: Path) -> None:
    nb = sf.from_ipynb((GOLDEN / f"{path.name}.ipynb").read_text())
    assert sf.to_source(nb) == path.read_text()


def test_magic_title_and_markdown_cells_keep_their_kinds() -> None:
    nb = sf.from_source((GOLDEN / "sales_report.py").read_text())
    kinds = [(c.cell_type, c.source.split("\n", 1)[0]) for c in nb.cells]
    assert kinds[0] == ("markdown", "# Sales report")
    assert nb.cells[1].metadata["servicetsunami"] == {"title": "Parameters"}
    assert kinds[3] == ("code", "%sql")
    assert kinds[4] == ("markdown", "Inline title on the magic line")
    assert kinds[5] == ("code", "%run ./helpers")
    assert nb.cells[6].metadata["servicetsunami"] == {"title": "Hidden title", "title_shown": 0}
    assert nb.cells[7].source == ""


def test_a_sql_notebook_keeps_plain_cells_as_sql_and_other_languages_as_magic() -> None:
    nb = sf.from_source((GOLDEN / "region_totals.sql").read_text())
    assert sf.notebook_language(nb) == "sql"
    assert nb.cells[1].source.startswith("SELECT region")
    assert nb.cells[2].source.startswith("%python\n")


def test_a_jupyter_sql_cell_magic_exports_as_databricks_sql_magic() -> None:
    nb = sf.from_cells([{"source": "%%sql\nSELECT 1"}, {"cell_type": "markdown", "source": "# hi"}])
    assert sf.to_source(nb) == (
        "# Databricks notebook source\n# MAGIC %sql\n# MAGIC SELECT 1\n"
        "\n# COMMAND ----------\n\n# MAGIC %md\n# MAGIC # hi\n"
    )


def test_windows_line_endings_and_a_missing_final_newline_read_the_same() -> None:
    text = "# Databricks notebook source\r\nx = 1\r\n\r\n# COMMAND ----------\r\n\r\ny = 2"
    assert (
        sf.to_source(sf.from_source(text)) == "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\ny = 2\n"
    )


def test_a_file_without_the_header_is_refused_as_a_bad_file() -> None:
    with pytest.raises(BadFile) as info:
        sf.from_source("print(1)\n")
    assert info.value.code == "bad_file"


def test_a_python_file_imported_as_sql_is_refused() -> None:
    with pytest.raises(BadFile):
        sf.from_source("# Databricks notebook source\nx = 1\n", language="sql")


def test_broken_jupyter_json_is_a_bad_file() -> None:
    with pytest.raises(BadFile):
        sf.from_ipynb('{"cells": 3}')


def test_an_unknown_cell_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        sf.from_cells([{"cell_type": "raw", "source": "x"}])
    assert info.value.code == "invalid_input"


def test_auto_format_tells_jupyter_from_source() -> None:
    ipynb = sf.to_ipynb(sf.from_cells([{"source": "1"}]))
    assert sf.read_any(ipynb).cells[0].source == "1"
    assert sf.read_any("-- Databricks notebook source\nSELECT 1\n").cells[0].source == "SELECT 1"


def test_html_export_escapes_markdown_html_source_and_outputs() -> None:
    nb = sf.from_cells(
        [
            {"cell_type": "markdown", "source": "# T\n<script>alert(1)</script>"},
            {"source": "print('<img src=x onerror=alert(1)>')", "title": "<b>t</b>"},
        ]
    )
    nb.cells[1].outputs = [
        nbformat.v4.new_output("stream", text="<script>bad()</script>"),
        nbformat.v4.new_output("display_data", data={"text/html": "<script>evil()</script>", "text/plain": "ok"}),
        nbformat.v4.new_output(
            "display_data", data={sf.TABLE_MIME: {"columns": ["<c>"], "rows": [["<v>", None]]}, "text/plain": "t"}
        ),
    ]
    page = sf.to_html(nb, title="<x>")
    assert "<script>" not in page
    assert "evil()" not in page
    assert "&lt;img src=x" in page
    assert "<th>&lt;c&gt;</th>" in page
    assert "<h1>T</h1>" in page
