"""The local side of the differential suite: the sample tables as Delta tables in a fresh home,
and each statement run through the service's query path (:func:`query_sql`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servicetsunami.errors import TsunamiError
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal, TableRef
from tests.differential.tables import arrow_tables
from tests.helpers import make_principal


@contextmanager
def local_lakehouse(home: Path) -> Iterator[tuple[Services, Principal]]:
    """A service container over ``home`` whose tenant holds the sample tables in ``bronze``."""
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    svc = Services.open(settings)
    try:
        principal, _ = make_principal(svc, "oracle")
        for name, table in arrow_tables().items():
            ref = TableRef(principal.catalog, "bronze", name)
            svc.engine.write_table(ref, table.to_reader(), mode="overwrite")
        yield svc, principal
    finally:
        svc.close()


def local_answer(svc: Services, principal: Principal, sql: str) -> dict[str, Any]:
    """The service's answer to one statement, in the golden files' shape."""
    try:
        result = query_sql(svc, principal, sql, max_rows=1000)
    except TsunamiError as exc:
        return {"sql": sql, "error": exc.code}
    return {"sql": sql, "columns": [[c.name, c.type] for c in result.columns], "rows": result.rows}
