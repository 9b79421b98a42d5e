"""The reader process's answer when DuckDB runs out of the address space it was given: a memory
error (which the service reports as the ``ingest.parse_memory_bytes`` limit), whatever words DuckDB
used for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.connectors.files import child
from servicetsunami.errors import BadFile


@pytest.mark.parametrize(
    "message",
    [
        "Out of Memory Error: could not allocate block of size 256.0 KiB",
        "failed to allocate data of size 64.0 MiB",
        "busy.json: Allocation failure",
    ],
)
def test_duckdb_running_out_of_memory_is_answered_as_a_memory_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    def out_of_memory(request: dict[str, Any]) -> dict[str, Any]:
        raise BadFile(message)

    monkeypatch.setattr(child, "read_file", out_of_memory)
    (tmp_path / child.REQUEST).write_text("{}", encoding="utf-8")
    assert child.main(["child", str(tmp_path)]) == 0
    answer = json.loads((tmp_path / child.RESULT).read_text(encoding="utf-8"))
    assert answer["error"]["type"] == "MemoryError"


def test_any_other_bad_file_keeps_its_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(request: dict[str, Any]) -> dict[str, Any]:
        raise BadFile("line 3 has 4 fields where the header has 2")

    monkeypatch.setattr(child, "read_file", bad)
    (tmp_path / child.REQUEST).write_text("{}", encoding="utf-8")
    child.main(["child", str(tmp_path)])
    answer = json.loads((tmp_path / child.RESULT).read_text(encoding="utf-8"))
    assert (answer["error"]["type"], answer["error"]["message"]) == (
        "BadFile",
        "line 3 has 4 fields where the header has 2",
    )
