"""The Databricks engine's one error translation: SDK, HTTP and statement errors become the
project's errors, marked transient when a retry may help."""

from __future__ import annotations

import pytest
import requests
from databricks.sdk import errors as dbx

from servicetsunami.engines.databricks.types import arrow_type, from_json_array
from servicetsunami.engines.databricks.workspace import StatementFailed, _translate_error
from servicetsunami.errors import (
    AuthError,
    Conflict,
    EngineError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    QueryTimeout,
    SqlSyntaxError,
)


@pytest.mark.parametrize(
    ("raised", "expected", "transient"),
    [
        (dbx.NotFound("no such table"), NotFound, False),
        (dbx.ResourceAlreadyExists("exists"), Conflict, False),
        (dbx.ResourceConflict("SCHEMA_ALREADY_EXISTS"), Conflict, False),
        (dbx.PermissionDenied("nope"), PermissionDenied, False),
        (dbx.Unauthenticated("bad token"), AuthError, False),
        (dbx.TooManyRequests("slow down"), EngineError, True),
        (dbx.TemporarilyUnavailable("later"), EngineError, True),
        (dbx.InvalidParameterValue("bad wait_timeout"), InvalidInput, False),
        (requests.ConnectionError("reset"), EngineError, True),
        (TimeoutError("retries used up"), EngineError, True),
        (StatementFailed("FAILED", "BAD_REQUEST", "[TABLE_OR_VIEW_NOT_FOUND] t"), NotFound, False),
        (StatementFailed("FAILED", "BAD_REQUEST", "[TABLE_OR_VIEW_ALREADY_EXISTS] t"), Conflict, False),
        (StatementFailed("FAILED", "BAD_REQUEST", "[PARSE_SYNTAX_ERROR] near x"), SqlSyntaxError, False),
        (StatementFailed("FAILED", "DEADLINE_EXCEEDED", "too long"), QueryTimeout, False),
        (StatementFailed("FAILED", "TEMPORARILY_UNAVAILABLE", "restarting"), EngineError, True),
        (StatementFailed("CANCELED", "", "canceled"), EngineError, True),
        (StatementFailed("FAILED", "BAD_REQUEST", "[DELTA_FAILED_TO_MERGE_FIELDS] x"), InvalidInput, False),
    ],
)
def test_errors_are_translated_most_specific_first_and_marked_transient(
    raised: BaseException, expected: type[Exception], transient: bool
) -> None:
    translated = _translate_error(raised, action="doing it")
    assert type(translated) is expected
    assert getattr(translated, "is_transient", False) is transient


def test_json_array_results_are_typed_by_the_manifest_columns() -> None:
    table = from_json_array(
        [("n", "BIGINT"), ("ok", "BOOLEAN"), ("amount", "DECIMAL(10,2)"), ("day", "DATE"), ("s", "STRING")],
        [["1", "true", "2.50", "2024-01-02", "x"], [None, "false", None, None, None]],
    )
    assert [str(t) for t in table.schema.types] == ["int64", "bool", "decimal128(10, 2)", "date32[day]", "string"]
    assert table.column("n").to_pylist() == [1, None]
    assert arrow_type("ARRAY<INT>") == arrow_type("STRING")  # nested types arrive as JSON text
