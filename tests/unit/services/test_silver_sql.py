"""The silver spec compiler: golden Databricks SQL, the DuckDB it transpiles to, and inference."""

from __future__ import annotations

import pytest
from sqlglot import exp

from servicetsunami.errors import InvalidInput
from servicetsunami.services.models import ColumnInfo
from servicetsunami.services.transforms.silver_sql import Inferred, compile_spec, read_inference
from servicetsunami.services.transforms.spec import TransformSpec
from servicetsunami.sql import guard_query, to_duckdb
from servicetsunami.tenancy import TableRef

SOURCE = TableRef("tenant_acme", "bronze", "orders")
COLUMNS = [
    ColumnInfo(name="Order ID", type="BIGINT"),
    ColumnInfo(name="amount", type="STRING"),
    ColumnInfo(name="ordered", type="STRING"),
    ColumnInfo(name="note", type="STRING"),
    ColumnInfo(name="_ingested_at", type="TIMESTAMP"),
]

GOLDEN_FULL = """\
WITH cleaned AS (
  SELECT
    `Order ID` AS `order_id`,
    COALESCE(CAST(REPLACE(NULLIF(TRIM(`amount`), ''), ',', '') AS DECIMAL(10, 2)), 0) AS `amount`,
    CAST(COALESCE(
      TRY_TO_TIMESTAMP(NULLIF(TRIM(`ordered`), ''), 'yyyy-MM-dd'),
      TRY_TO_TIMESTAMP(NULLIF(TRIM(`ordered`), ''), 'dd/MM/yyyy')
    ) AS DATE) AS `ordered`,
    `_ingested_at` AS `_ingested_at`
  FROM tenant_acme.bronze.orders VERSION AS OF 3
)
SELECT
  `order_id`,
  `amount`,
  `ordered`,
  `_ingested_at`
FROM cleaned
WHERE
  `order_id` > 0 AND NOT `ordered` IS NULL
QUALIFY
  ROW_NUMBER() OVER (PARTITION BY `order_id` ORDER BY `ordered` DESC, `_ingested_at` DESC) = 1"""

GOLDEN_DEFAULT = """\
WITH cleaned AS (
  SELECT
    `Order ID` AS `order_id`,
    TRY_CAST(REPLACE(NULLIF(TRIM(`amount`), ''), ',', '') AS DECIMAL(18, 2)) AS `amount`,
    NULLIF(TRIM(`ordered`), '') AS `ordered`,
    NULLIF(TRIM(`note`), '') AS `note`,
    `_ingested_at` AS `_ingested_at`
  FROM tenant_acme.bronze.orders
)
SELECT
  `order_id`,
  `amount`,
  `ordered`,
  `note`,
  `_ingested_at`
FROM cleaned
QUALIFY
  ROW_NUMBER() OVER (PARTITION BY `order_id`, `amount`, `ordered`, `note` ORDER BY `_ingested_at` DESC) = 1"""


def test_a_full_spec_compiles_to_the_golden_statement() -> None:
    spec = TransformSpec.model_validate(
        {
            "cast": {"amount": {"type": "DECIMAL(10,2)", "on_error": "fail", "thousands_separator": ","}},
            "defaults": {"amount": 0},
            "drop": ["note"],
            "filters": [{"column": "order_id", "op": ">", "value": 0}, {"column": "ordered", "op": "not_null"}],
            "dedupe": {"keys": ["order_id"], "order_by": "ordered"},
        }
    )
    inferred = {"ordered": Inferred("DATE", formats=("yyyy-MM-dd", "dd/MM/yyyy"))}
    compiled = compile_spec(SOURCE, COLUMNS, spec, version=3, inferred=inferred)

    assert compiled.sql == GOLDEN_FULL
    assert list(compiled.fail_checks) == ["amount"]
    assert compiled.renamed == {"Order ID": "order_id"}


def test_the_default_spec_compiles_to_the_golden_statement() -> None:
    compiled = compile_spec(
        SOURCE, COLUMNS, TransformSpec(), inferred={"amount": Inferred("DECIMAL(18,2)", thousands=True)}
    )
    assert compiled.sql == GOLDEN_DEFAULT


def test_the_statement_passes_the_guard_and_transpiles_dates_to_try_strptime() -> None:
    inferred = {"ordered": Inferred("DATE", formats=("dd/MM/yyyy",))}
    compiled = compile_spec(SOURCE, COLUMNS, TransformSpec(), version=1, inferred=inferred)
    guarded = guard_query(compiled.sql, catalog="tenant_acme")
    duck = to_duckdb(guarded, resolve=lambda ref: f"src_v{ref.version}")

    assert guarded.tables[0].version == 1
    assert "TRY_STRPTIME(NULLIF(TRIM(\"ordered\"), ''), '%d/%m/%Y')" in duck
    assert "FROM src_v1 AS orders" in duck


def test_user_values_become_literals_not_sql() -> None:
    spec = TransformSpec.model_validate({"filters": [{"column": "note", "op": "=", "value": "x' OR 1=1 --"}]})
    compiled = compile_spec(SOURCE, COLUMNS, spec)
    assert "`note` = 'x\\' OR 1=1 --'" in compiled.sql  # Databricks escapes the quote with a backslash
    guarded = guard_query(compiled.sql, catalog="tenant_acme")  # still one statement
    assert guarded.statement.find(exp.Where) is not None


@pytest.mark.parametrize("type_name", ["INT; DROP", "DECIMAL(10,2) xyz", "INT)", "BIGINT -- why", "not_a_type"])
def test_a_cast_type_with_anything_after_it_is_refused_naming_the_column_and_the_type(type_name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_spec(SOURCE, COLUMNS, TransformSpec.model_validate({"cast": {"amount": type_name}}))
    assert caught.value.code == "invalid_input"
    assert caught.value.details == {"column": "amount", "type": type_name}


@pytest.mark.parametrize("type_name", ["int", "DECIMAL(10, 2)", "ARRAY<INT>", "STRUCT<a: INT>", "TIMESTAMP_NTZ"])
def test_a_cast_type_written_whole_is_accepted(type_name: str) -> None:
    compile_spec(SOURCE, COLUMNS, TransformSpec.model_validate({"cast": {"amount": type_name}}))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"drop": ["missing"]}, "drop names column 'missing'"),
        ({"rename": {"nope": "x"}}, "rename names columns the table does not have"),
        ({"rename": {"note": "Bad Name"}}, "use lower-case letters"),
        ({"rename": {"note": "amount"}}, "would both be named 'amount'"),
        ({"cast": {"amount": "NOT A TYPE(("}}, "is not a Databricks SQL type"),
        ({"filters": [{"column": "note", "op": "in", "value": "x"}]}, "needs a non-empty list"),
    ],
)
def test_a_wrong_spec_is_refused_with_an_actionable_message(spec: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_spec(SOURCE, COLUMNS, TransformSpec.model_validate(spec))
    assert fragment in caught.value.message


def test_inference_types_a_column_only_when_every_value_parses() -> None:
    names = ["qty", "price", "zip", "flag", "day", "mixed"]
    counts = {
        "c0_n": 4, "c0_int": 3, "c0_gint": 1,
        "c1_n": 4, "c1_dec": 2, "c1_gdec": 1, "c1_int": 1, "c1_scale": 2, "c1_digits": 8,
        "c2_n": 4, "c2_int": 4, "c2_zero": 2,
        "c3_n": 2, "c3_bool": 2,
        "c4_n": 3, "c4_f0": 2, "c4_f2": 1, "c4_f3": 1,
        "c5_n": 3, "c5_int": 2,
    }  # fmt: skip
    inferred = read_inference(names, counts)

    assert inferred["qty"] == Inferred("BIGINT", thousands=True)
    assert inferred["price"] == Inferred("DECIMAL(18,2)", thousands=True)
    assert inferred["flag"].type == "BOOLEAN"
    assert inferred["day"] == Inferred("DATE", formats=("yyyy-MM-dd", "dd/MM/yyyy"))
    assert "zip" not in inferred and "mixed" not in inferred
