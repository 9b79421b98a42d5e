"""Helpers of the vector index tests: a source table written straight to the engine, and an index
built and waited for."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.services.vectors import indexes
from servicetsunami.tenancy import Principal, TableRef


def write_source(
    svc: Services, principal: Principal, name: str, rows: list[dict[str, Any]], *, mode: str = "overwrite"
) -> None:
    table = pa.Table.from_pylist(rows)
    svc.engine.write_table(TableRef(principal.catalog, "gold", name), table.to_reader(), mode=mode)  # type: ignore[arg-type]  # a literal mode


def built(svc: Services, principal: Principal, run_id: str) -> dict[str, Any]:
    """The result of an index run, which must succeed within a bounded wait."""
    status = runs.wait_for_run(svc, principal, run_id, timeout=120)
    assert status.state == "succeeded", (status.state, status.error_code, status.error)
    assert status.result is not None
    return status.result


def build_index(svc: Services, principal: Principal, name: str, source: str, **options: Any) -> dict[str, Any]:
    options.setdefault("primary_key", "id")
    if "embedding_column" not in options:
        options.setdefault("text_column", "body")
    created = indexes.create_vector_index(svc, principal, name, source_table=source, **options)
    return built(svc, principal, created.run_id)
