"""The declarative cleaning spec of ``transform_to_silver``: pydantic models, so its JSON schema is
published in the tool description and the README as-is.

Names: ``rename`` keys are bronze column names; every other field names a column by its silver name
(after ``snake_case`` and ``rename``), and the bronze name is accepted too. Every field has a default,
so ``TransformSpec()`` is the default cleaning: snake_case names, types inferred from the data, trimmed
strings, empty strings as NULL, exact duplicate rows removed, bronze metadata columns kept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FilterOp = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null", "like"]
Scalar = str | int | float | bool


class CastSpec(BaseModel):
    """Cast one column to a Databricks SQL type."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        description="Databricks SQL type: STRING, INT, BIGINT, DOUBLE, DECIMAL(p,s), DATE, TIMESTAMP, ..."
    )
    on_error: Literal["null", "fail"] = Field(
        "null",
        description="null: a value that does not convert becomes NULL; fail: the run stops naming the column "
        "and an example value, and nothing is written.",
    )
    formats: list[str] = Field(
        default_factory=list,
        description="DATE/TIMESTAMP only: Spark datetime patterns tried in order, e.g. ['dd/MM/yyyy', 'yyyy-MM-dd'].",
    )
    thousands_separator: str | None = Field(
        None, max_length=1, description="Numbers only: a grouping character removed before casting, e.g. ','."
    )


class Filter(BaseModel):
    """Keep only the rows where ``column op value`` holds (every filter must hold)."""

    model_config = ConfigDict(extra="forbid")

    column: str
    op: FilterOp = "="
    value: Scalar | list[Scalar] | None = Field(
        None, description="A list for in / not_in; unused for is_null, not_null."
    )


class Dedupe(BaseModel):
    """Remove duplicates: on ``keys`` keeping the latest row by ``order_by``, or exact duplicate rows."""

    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(
        default_factory=list, description="Key columns; empty means exact duplicates (every non-metadata column)."
    )
    order_by: str | None = Field(
        None, description="Keep the row with the greatest value here (then the latest _ingested_at)."
    )


class TransformSpec(BaseModel):
    """How a bronze table becomes a silver one. Compiled to one SQL statement."""

    model_config = ConfigDict(extra="forbid")

    snake_case: bool = Field(True, description="Rename every column to snake_case.")
    infer_types: bool = Field(
        True,
        description="Text columns become BIGINT, DECIMAL, DOUBLE, BOOLEAN, DATE or TIMESTAMP when every value "
        "parses (thousands separators and several date formats understood); leading-zero codes stay text.",
    )
    trim: bool | list[str] = Field(True, description="Trim whitespace: every text column (true) or these.")
    empty_as_null: bool | list[str] = Field(True, description="Empty strings as NULL: every text column or these.")
    rename: dict[str, str] = Field(default_factory=dict, description="bronze name -> silver name.")
    cast: dict[str, CastSpec | str] = Field(
        default_factory=dict, description="column -> type name or CastSpec; overrides inference."
    )
    defaults: dict[str, Scalar] = Field(default_factory=dict, description="column -> value used where it is NULL.")
    drop: list[str] = Field(default_factory=list, description="Columns left out of silver.")
    filters: list[Filter] = Field(default_factory=list, description="Rows kept (all must hold).")
    dedupe: Dedupe | None = Field(
        default_factory=Dedupe, description="Duplicate removal; null keeps duplicates. Default: exact duplicates."
    )
    keep_metadata: bool = Field(True, description="Keep bronze _ingested_at, _source, _sync_id (lineage).")

    @field_validator("cast", mode="before")
    @classmethod
    def _type_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"type": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    def cast_spec(self, column: str) -> CastSpec | None:
        found = self.cast.get(column)
        return CastSpec(type=found) if isinstance(found, str) else found


def spec_schema_summary() -> str:
    """A short text of the spec's fields for the tool description (the full schema is in the README)."""
    lines = []
    for name, field in TransformSpec.model_fields.items():
        lines.append(f"- {name}: {field.description}")
    lines.append(
        "CastSpec: {type, on_error: null|fail, formats: [Spark patterns], thousands_separator}. "
        "Filter: {column, op: = != < <= > >= in not_in is_null not_null like, value}. "
        "Dedupe: {keys: [...], order_by}."
    )
    return "\n".join(lines)
