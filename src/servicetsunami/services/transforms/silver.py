"""Bronze to silver: a declarative spec (:mod:`~servicetsunami.services.transforms.spec`) compiled to
one statement (:mod:`~servicetsunami.services.transforms.silver_sql`) and written by the engine.

A run reads the bronze table at one version (pinned with ``VERSION AS OF``, so inference, the
``fail`` checks and the write all see the same rows), overwrites ``silver.<target>`` in one commit,
and stores the spec, the SQL and the lineage edge. A run that fails writes nothing. Running the same
spec on the same bronze version again produces the same table. Calling ``transform_to_silver``
again without ``transformations`` re-runs the stored spec.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError
from sqlglot import exp

from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog.query import query_result
from servicetsunami.services.governance import pii
from servicetsunami.services.governance.pii import mask_result
from servicetsunami.services.models import ColumnInfo, QueryResult
from servicetsunami.services.transforms import silver_sql
from servicetsunami.services.transforms.spec import TransformSpec
from servicetsunami.sql import guard_query
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import Principal, Scope, TableRef, check_identifier, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


class TransformResult(BaseModel):
    table: str = Field(description="The silver table written, schema.table")
    source: str
    source_version: int = Field(description="The bronze version read")
    version: int = Field(description="The silver table's new version")
    rows: int
    columns: list[ColumnInfo]
    inferred_types: dict[str, str] = Field(default_factory=dict, description="Text columns typed from their values")
    renamed: dict[str, str] = Field(default_factory=dict, description="bronze name -> silver name")
    spec: dict[str, Any] = Field(description="The spec as stored (re-run with transform_to_silver)")
    sql: str = Field(description="The Databricks SQL statement that built the table")
    elapsed_ms: float


class TransformPreview(BaseModel):
    table: str
    source: str
    source_version: int
    sql: str
    inferred_types: dict[str, str] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list, description="Values a 'fail' cast would stop on")
    preview: QueryResult


@dataclass(frozen=True, slots=True)
class _Plan:
    source: TableRef
    target: TableRef
    version: int
    spec: TransformSpec
    compiled: silver_sql.Compiled
    inferred: dict[str, str]
    problems: list[str]


@pii.redacting
def transform_to_silver(
    svc: Services,
    principal: Principal,
    bronze_table: str,
    /,
    *,
    transformations: dict[str, Any] | None = None,
    target_table: str | None = None,
) -> TransformResult:
    """Build ``silver.<target_table or bronze name>`` from ``bronze_table``; see the module docstring."""
    principal.require(Scope.WRITE)
    started = time.perf_counter()
    plan = _plan(svc, principal, bronze_table, transformations, target_table)
    if plan.problems:
        raise InvalidInput("; ".join(plan.problems) + "; nothing was written", problems=plan.problems)
    guarded = guard_query(plan.compiled.sql, catalog=principal.catalog)
    result = svc.engine.write_query(
        plan.target,
        guarded,
        mode="overwrite",
        description=f"Cleaned from {plan.source.schema}.{plan.source.name}",
        commit_info={"tsunami.operation": "transform_to_silver", "tsunami.source": f"{plan.source}@{plan.version}"},
        timeout_seconds=svc.settings.query.write_timeout_seconds,
    )
    detail = svc.engine.describe(plan.target, version=result.version)
    pii.flag_written(
        svc, principal, plan.target, columns=[c.name for c in detail.columns], written_by=guarded, detail=detail
    )
    spec_json = plan.spec.model_dump(mode="json")
    target = f"{plan.target.schema}.{plan.target.name}"
    source = f"{plan.source.schema}.{plan.source.name}"
    with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock from the start
        transforms_repo.save_transform(
            session,
            tenant_id=principal.tenant_id,
            target=target,
            kind="silver",
            materialize="table",
            spec=spec_json,
            sql=plan.compiled.sql,
            created_by=principal.subject,
            upstream={source: plan.version},
            ran_at=datetime.now(UTC),
            version=result.version,
            rows=result.rows,
            meta={"source": source, "inferred_types": plan.inferred},
        )
        audit_repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action="transform_to_silver",
            target=str(plan.target),
            meta={"source": source, "source_version": plan.version, "rows": result.rows, "version": result.version},
        )
    logger.info("built %s from %s@%s: %s rows", plan.target, plan.source, plan.version, result.rows)
    return TransformResult(
        table=target,
        source=source,
        source_version=plan.version,
        version=result.version,
        rows=result.rows,
        columns=detail.columns,
        inferred_types=plan.inferred,
        renamed=plan.compiled.renamed,
        spec=spec_json,
        sql=plan.compiled.sql,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )


@pii.redacting
def preview_transform(
    svc: Services,
    principal: Principal,
    bronze_table: str,
    /,
    *,
    transformations: dict[str, Any] | None = None,
    target_table: str | None = None,
    limit: int = 20,
) -> TransformPreview:
    """The SQL a run would execute and its first rows; nothing is written."""
    principal.require(Scope.READ)
    if not isinstance(limit, int) or not 1 <= limit <= svc.settings.query.max_rows:
        raise InvalidInput(f"limit must be between 1 and {svc.settings.query.max_rows}")
    plan = _plan(svc, principal, bronze_table, transformations, target_table)
    statement = plan.compiled.statement.copy().limit(limit)
    guarded = guard_query(statement.sql(dialect=silver_sql.DIALECT), catalog=principal.catalog)
    started = time.perf_counter()
    arrow = svc.engine.query(
        guarded,
        max_rows=limit,
        max_bytes=svc.settings.query.max_bytes,
        timeout_seconds=svc.settings.query.timeout_seconds,
    )
    preview = query_result(arrow.table, arrow.truncated, started, plan.compiled.sql)
    return TransformPreview(
        table=f"{plan.target.schema}.{plan.target.name}",
        source=f"{plan.source.schema}.{plan.source.name}",
        source_version=plan.version,
        sql=plan.compiled.sql,
        inferred_types=plan.inferred,
        problems=plan.problems,
        preview=mask_result(svc, principal, preview, guarded),
    )


def _plan(
    svc: Services,
    principal: Principal,
    bronze_table: str,
    transformations: dict[str, Any] | None,
    target_table: str | None,
) -> _Plan:
    source = parse_table_name(bronze_table, catalog=principal.catalog)
    if source.schema != "bronze":
        raise InvalidInput(f"transform_to_silver reads a bronze table, not {source.schema}.{source.name}")
    target = TableRef(principal.catalog, "silver", check_identifier(target_table or source.name, what="target_table"))
    if transformations is None:
        with svc.store.session() as session:
            stored = transforms_repo.find_transform(session, f"silver.{target.name}", tenant_id=principal.tenant_id)
            transformations = dict(stored.spec) if stored is not None else {}
    if not isinstance(transformations, dict):
        raise InvalidInput("transformations must be an object (see the spec's JSON schema in the tool description)")
    try:
        spec = TransformSpec.model_validate(transformations)
    except ValidationError as exc:
        raise InvalidInput(f"transformations do not fit the spec: {_first_errors(exc)}") from exc
    detail = svc.engine.describe(source)
    inferred = _infer(svc, principal, source, detail.version, detail.columns) if spec.infer_types else {}
    compiled = silver_sql.compile_spec(source, detail.columns, spec, version=detail.version, inferred=inferred)
    problems = _failing_casts(svc, principal, source, detail.version, compiled, spec)
    return _Plan(
        source=source,
        target=target,
        version=detail.version,
        spec=spec,
        compiled=compiled,
        inferred={
            compiled.renamed.get(k, k): v.type for k, v in inferred.items() if k not in _cast_sources(spec, compiled)
        },
        problems=problems,
    )


def _cast_sources(spec: TransformSpec, compiled: silver_sql.Compiled) -> set[str]:
    bronze_of = {v: k for k, v in compiled.renamed.items()}
    return {bronze_of.get(name, name) for name in spec.cast}


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _one_row(svc: Services, principal: Principal, statement: exp.Select) -> dict[str, Any]:
    guarded = guard_query(statement.sql(dialect=silver_sql.DIALECT), catalog=principal.catalog)
    result = svc.engine.query(
        guarded, max_rows=1, max_bytes=svc.settings.query.max_bytes, timeout_seconds=svc.settings.query.timeout_seconds
    )
    rows: list[dict[str, Any]] = result.table.to_pylist()
    return rows[0] if rows else {}


def _infer(
    svc: Services, principal: Principal, source: TableRef, version: int, columns: list[ColumnInfo]
) -> dict[str, silver_sql.Inferred]:
    text = [c.name for c in columns if silver_sql.is_text(c.type) and c.name not in silver_sql.METADATA_COLUMNS]
    if not text:
        return {}
    row = _one_row(svc, principal, silver_sql.inference_query(source, text, version=version))
    found = silver_sql.read_inference(text, row)
    dated = {n: i for n, i in found.items() if i.formats}
    if dated:  # several patterns may each cover part: check that together they cover every value
        parsed: dict[str, tuple[exp.Expr, exp.Expr]] = {}
        for name, inferred in dated.items():
            value = exp.Nullif(this=exp.Trim(this=silver_sql.quoted_column(name)), expression=exp.Literal.string(""))
            parsed[name] = (value, silver_sql.inferred_cast(value.copy(), inferred))
        check = silver_sql.coverage_query(source, parsed, version=version)
        counts = _one_row(svc, principal, check)
        for i, name in enumerate(parsed):
            if int(counts.get(f"c{i}") or 0) > 0:
                del found[name]
    return found


def _failing_casts(
    svc: Services,
    principal: Principal,
    source: TableRef,
    version: int,
    compiled: silver_sql.Compiled,
    spec: TransformSpec,
) -> list[str]:
    if not compiled.fail_checks:
        return []
    row = _one_row(svc, principal, silver_sql.failing_value_query(source, compiled.fail_checks, version=version))
    problems = []
    bronze_of = {v: k for k, v in compiled.renamed.items()}
    masking = pii.mask_pii_enabled(svc, principal)
    flagged = {c.lower() for c in pii.remembered_flags(svc, principal, f"{source.schema}.{source.name}")}
    for i, name in enumerate(compiled.fail_checks):
        example = row.get(f"c{i}")
        if example is not None:
            cast = spec.cast_spec(name) or spec.cast_spec(bronze_of.get(name, name))
            type_name = cast.type if cast is not None else "the requested type"
            if masking and (bronze_of.get(name, name).lower() in flagged or pii.kind_by_name(name)):
                example = pii.MASK  # the value itself is personal data
            problems.append(f"column {name}: value {str(example)[:100]!r} does not convert to {type_name}")
    return problems
