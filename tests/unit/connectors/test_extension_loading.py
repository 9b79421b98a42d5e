"""Which DuckDB connections may load an extension without DuckDB's signature check."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from servicetsunami.connectors.duckdb_support import load_packaged_extension, packaged_extensions_connection
from servicetsunami.connectors.files.reader import FileOptions, FileReader


def _forged(tmp_path: Path) -> Path:
    forged = tmp_path / "forged.duckdb_extension"
    forged.write_bytes(b"\0" * 1024)  # not signed, not even a library
    return forged


def test_a_file_reader_keeps_the_signature_check(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("a\n1\n")
    reader = FileReader(data, file_name="rows.csv", options=FileOptions(), batch_rows=1024)
    with pytest.raises(duckdb.Error, match=r"(?i)signature|signed|disabled"):
        reader._con.execute(f"LOAD '{_forged(tmp_path)}'")


def test_the_source_connection_loads_the_packaged_reader_without_the_check() -> None:
    con = packaged_extensions_connection()
    load_packaged_extension(con, "postgres_scanner")
    assert con.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'postgres_scanner'"
    ).fetchone() == (True,)
    assert con.execute("SELECT current_setting('autoload_known_extensions')").fetchone() == (False,)
