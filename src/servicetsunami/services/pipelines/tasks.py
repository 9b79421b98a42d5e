"""The built-in task kinds: sync, transform, gold_refresh, sql, run_job; notebook and python declared.

Each kind's handler runs inside a ``task_run`` run as the job's owner and returns the task's result;
``result["values"]`` is what later tasks can read as ``{{tasks.<key>.values.<name>}}``.

- ``sync``: a source table into bronze (a ``sync`` run of its own, exactly once: resumable);
- ``transform``: the stored silver spec of a table run again over its bronze table;
- ``gold_refresh``: a gold table's stored definition run again;
- ``sql``: one statement. ``CREATE [OR REPLACE] TABLE silver|gold.t AS SELECT ...``, ``INSERT
  [INTO|OVERWRITE] silver|gold.t SELECT ...`` and the upsert ``MERGE INTO silver|gold.t USING <table
  or (SELECT)> s ON t.k = s.k WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *`` write
  into the caller's own silver or gold schema (the
  SELECT goes through the guard, every name inside the caller's catalog, unqualified names in
  silver); a plain ``SELECT`` is a read-only query whose first rows are kept as the task's output;
- ``run_job``: another job of the tenant, as a child job run, waited for;
- ``notebook``: a notebook of the tenant (by workspace path or id) with ``base_parameters``, as a
  child ``notebook_run`` in the sandbox, waited for; its ``dbutils.notebook.exit`` value is the
  task's ``values.exit_value``;
- ``python``: accepted in definitions and refused at run time
  (:class:`~servicetsunami.errors.TaskKindUnavailable`): code runs from notebooks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from servicetsunami.errors import (
    Cancelled,
    InvalidInput,
    QueryRefused,
    SqlSyntaxError,
    TaskFailed,
    TsunamiError,
)
from servicetsunami.services.catalog.query import query_result
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.governance import pii
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.pipelines.kinds import TaskKind, register
from servicetsunami.services.runs import service as runs
from servicetsunami.services.transforms import gold, silver
from servicetsunami.sql import GuardedQuery, guard_query
from servicetsunami.tenancy import Scope, TableRef, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.pipelines.runner import TaskContext

logger = logging.getLogger(__name__)

PYTHON_MISSING = "python tasks are not available in this service: put the code in a notebook and use a notebook task"
_OUTPUT_ROWS = 20  # rows of a SELECT kept as a sql task's output
_WAIT_SLICE = 0.5


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- sync ---------------------------------------------------------------------------------------------


class SyncConfig(_Config):
    connection_id: str = Field(description="The source connection")
    table_name: str = Field(description="The source table (schema.table)")
    sync_mode: Literal["full_refresh", "incremental_append", "incremental_merge"] = "full_refresh"
    cursor_column: str | None = None
    primary_key: list[str] | None = None
    target_table: str | None = Field(None, description="bronze table name; default: the source table's")


def _sync(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    c = cast(SyncConfig, config)
    run_id = syncs.start_sync(
        svc,
        ctx.principal,
        c.connection_id,
        c.table_name,
        sync_mode=c.sync_mode,
        cursor_column=c.cursor_column,
        primary_key=c.primary_key,
        target_table=c.target_table,
    )
    run = _wait_child(svc, ctx, run_id)
    facts = dict(run.result or {})
    values = {k: facts[k] for k in ("rows", "bytes", "table_version", "target_table") if k in facts}
    return {"sync_run_id": run_id, **facts, "values": {**values, "sync_run_id": run_id}}


# -- transform, gold_refresh ---------------------------------------------------------------------------


class TransformConfig(_Config):
    bronze_table: str = Field(description="The bronze table to clean")
    target_table: str | None = Field(None, description="silver table; default: the bronze table's name")


def _transform(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    c = cast(TransformConfig, config)
    result = silver.transform_to_silver(svc, ctx.principal, c.bronze_table, target_table=c.target_table)
    values = {"table": result.table, "rows": result.rows, "version": result.version}
    return {**result.model_dump(mode="json", exclude={"columns", "spec"}), "values": values}


class GoldRefreshConfig(_Config):
    table: str = Field(description="The gold table (name or gold.name)")


def _gold_refresh(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    c = cast(GoldRefreshConfig, config)
    result = gold.refresh_gold_table(svc, ctx.principal, c.table)
    values = {"table": result.table, "rows": result.rows, "version": result.version}
    return {**result.model_dump(mode="json", exclude={"columns"}), "values": values}


# -- sql ----------------------------------------------------------------------------------------------


class SqlConfig(_Config):
    sql: str = Field(min_length=1, max_length=100_000, description="One statement (see the module docstring)")
    warehouse_id: str | None = Field(None, description="Databricks only: the SQL warehouse to run on")

    @model_validator(mode="before")
    @classmethod
    def _query_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "query" in data and "sql" not in data:  # the earlier API's spelling
            data = {**data, "sql": data["query"]}
            del data["query"]
        return data


@dataclass(frozen=True, slots=True)
class SqlPlan:
    query: GuardedQuery
    target: TableRef | None  # None: a read-only SELECT
    mode: Literal["create", "overwrite", "append", "merge"] = "overwrite"
    merge_keys: tuple[str, ...] = ()


def plan_sql(sql: str, catalog: str, /) -> SqlPlan:
    """Check one sql task statement (see the module docstring) and say what it writes where.

    A pure function of its arguments, remembered like the guard's answers: a job's statements are
    checked when it is saved and again each time it runs (refusals raise and are not remembered)."""
    return _plan_sql(sql, catalog)


@functools.lru_cache(maxsize=1024)
def _plan_sql(sql: str, catalog: str, /) -> SqlPlan:
    try:
        statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None]
    except (ParseError, TokenError) as exc:
        raise SqlSyntaxError(f"the statement does not parse as Databricks SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"an sql task runs exactly one statement, not {len(statements)}")
    statement = statements[0]
    if isinstance(statement, exp.Merge):
        return _plan_merge(statement, catalog)
    if isinstance(statement, exp.Create):
        select = statement.expression
        if str(statement.args.get("kind", "")).upper() != "TABLE" or not isinstance(select, exp.Query):
            raise QueryRefused("an sql task creates tables only as CREATE [OR REPLACE] TABLE ... AS SELECT")
        target = _target(statement.this, catalog)
        mode: Literal["create", "overwrite", "append"] = "overwrite" if statement.args.get("replace") else "create"
        return SqlPlan(_guard_select(select, catalog), target, mode)
    if isinstance(statement, exp.Insert):
        select = statement.expression
        if not isinstance(select, exp.Query) or statement.args.get("where") is not None:
            raise QueryRefused("an sql task inserts only the rows of a SELECT: INSERT INTO t SELECT ...")
        target = _target(statement.this, catalog)
        return SqlPlan(
            _guard_select(select, catalog), target, "overwrite" if statement.args.get("overwrite") else "append"
        )
    guarded = guard_query(sql, catalog=catalog)
    if guarded.kind != "select":
        raise QueryRefused("an sql task runs a SELECT, or writes one into silver or gold")
    return SqlPlan(guarded, None)


_UPSERT = ["WHEN MATCHED THEN UPDATE SET *", "WHEN NOT MATCHED THEN INSERT *"]
_MERGE_FORM = (
    "an sql task MERGE is an upsert: MERGE INTO silver|gold.t USING <table or (SELECT ...)> s "
    "ON t.k = s.k [AND ...] WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
)


def _plan_merge(statement: exp.Merge, catalog: str) -> SqlPlan:
    """``MERGE INTO`` the caller's silver or gold from a table or a SELECT, matched on equal columns."""
    target = statement.this
    if not isinstance(target, exp.Table):
        raise QueryRefused(_MERGE_FORM)
    ref = _target(target, catalog)
    using = statement.args.get("using")
    if isinstance(using, exp.Table):
        source: exp.Expr = exp.select("*").from_(
            exp.table_(using.name, db=using.db or None, catalog=using.catalog or None)
        )
    elif isinstance(using, exp.Subquery) and isinstance(using.this, exp.Query):
        source = using.this
    else:
        raise QueryRefused(_MERGE_FORM)
    t_alias, s_alias = target.alias_or_name, using.alias_or_name
    condition = statement.args.get("on")
    keys: list[str] = []
    for part in _conjuncts(condition):
        left, right = (part.this, part.expression) if isinstance(part, exp.EQ) else (None, None)
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column) and left.name == right.name):
            raise QueryRefused(f"{_MERGE_FORM} (the ON condition compares t.<column> = s.<same column> only)")
        if {left.table, right.table} != {t_alias, s_alias}:
            raise QueryRefused(f"{_MERGE_FORM} (qualify both sides of ON with the target's and source's aliases)")
        keys.append(left.name)
    whens = statement.args.get("whens")
    clauses = [w.sql(dialect="databricks").upper() for w in (whens.expressions if whens is not None else [])]
    if sorted(clauses) != sorted(_UPSERT) or not keys:
        raise QueryRefused(_MERGE_FORM)
    return SqlPlan(_guard_select(source, catalog), ref, "merge", tuple(dict.fromkeys(keys)))


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _target(node: exp.Expr | None, catalog: str) -> TableRef:
    table = node.this if isinstance(node, exp.Schema) else node
    if isinstance(node, exp.Schema) or not isinstance(table, exp.Table):
        raise QueryRefused("name the target table only (its columns come from the SELECT)")
    parts = [p for p in (table.catalog, table.db, table.name) if p]
    ref = parse_table_name(".".join(parts), catalog=catalog, default_schema="silver")
    if ref.schema not in ("silver", "gold"):
        raise QueryRefused(f"an sql task writes into your silver or gold schema only, not {ref.schema}")
    return ref


def _guard_select(select: exp.Expr, catalog: str) -> GuardedQuery:
    guarded = guard_query(select.sql(dialect="databricks"), catalog=catalog, default_schema="silver")
    if guarded.kind != "select":
        raise QueryRefused("the rows to write come from one SELECT")
    return guarded


def statement_text(plan: SqlPlan, query: GuardedQuery, /) -> str:
    """The task's statement as one fully qualified Databricks SQL text (what a workspace file holds)."""
    if plan.target is None:
        return query.sql
    t = plan.target
    target = exp.table_(t.name, db=t.schema, catalog=t.catalog, quoted=True).sql(dialect="databricks")
    if plan.mode == "create":
        return f"CREATE TABLE {target} AS {query.sql}"
    if plan.mode == "overwrite":
        return f"CREATE OR REPLACE TABLE {target} AS {query.sql}"
    if plan.mode == "merge":
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in plan.merge_keys)
        return f"MERGE INTO {target} AS t USING ({query.sql}) AS s ON {on} {' '.join(_UPSERT)}"
    return f"INSERT INTO {target} {query.sql}"


def _check_sql(config: BaseModel, catalog: str) -> None:
    plan_sql(cast(SqlConfig, config).sql, catalog)


def _sql(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    plan = plan_sql(cast(SqlConfig, config).sql, ctx.principal.catalog)
    started = time.perf_counter()
    query = expand_views(svc, ctx.principal, plan.query)
    if plan.target is None:
        ctx.principal.require(Scope.READ)
        with pii.redacted_errors(svc, ctx.principal):
            result = svc.engine.query(
                query,
                max_rows=_OUTPUT_ROWS,
                max_bytes=svc.settings.query.max_bytes,
                timeout_seconds=ctx.time_left(svc.settings.query.timeout_seconds),
            )
        out = query_result(result.table, result.truncated, started, plan.query.sql)
        out = pii.mask_result(svc, ctx.principal, out, query)
        return {"output": out.model_dump(mode="json"), "values": {"row_count": out.row_count}}
    ctx.principal.require(Scope.WRITE)
    svc.engine.ensure_catalog(ctx.principal.catalog)
    written = svc.engine.write_query(
        plan.target,
        query,
        mode=plan.mode,
        merge_keys=list(plan.merge_keys) or None,
        description=f"Written by job task {ctx.task_key}",
        commit_info={"tsunami.operation": "job_task", "tsunami.job_run": ctx.job_run_id, "tsunami.task": ctx.task_key},
        timeout_seconds=ctx.time_left(svc.settings.query.write_timeout_seconds),
    )
    target, version = plan.target, written.version

    def columns() -> Iterator[str]:  # read only if the personal-data check fails (flag_table describes it)
        yield from (c.name for c in svc.engine.describe(target, version=version).columns)

    pii.flag_written(svc, ctx.principal, plan.target, columns=columns(), written_by=query)
    table = f"{plan.target.schema}.{plan.target.name}"
    logger.info(
        "task %s: %s %s rows into %s (version %s)", ctx.task_key, plan.mode, written.rows, table, written.version
    )
    values = {"table": table, "rows": written.rows, "version": written.version}
    return {**values, "mode": plan.mode, "sql": plan.query.sql, "values": values}


# -- run_job ------------------------------------------------------------------------------------------


class RunJobConfig(_Config):
    job_id: str = Field(description="The job to run (one of yours)")
    parameters: dict[str, str] = Field(default_factory=dict, description="Its job parameters")


def _run_job(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    from servicetsunami.services.pipelines import job_runs

    c = cast(RunJobConfig, config)
    run_id = job_runs.start_job_run(
        svc, ctx.principal, c.job_id, parameters=c.parameters, trigger="run_job", parent_id=ctx.run.run_id
    )
    run = _wait_child(svc, ctx, run_id)
    return {"job_run_id": run_id, "state": run.state, "values": {"job_run_id": run_id}}


# -- notebook; python (declared) ---------------------------------------------------------------------


class NotebookConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    notebook_path: str | None = None
    notebook_id: str | None = None
    base_parameters: dict[str, str] = Field(default_factory=dict)


def _notebook(svc: Services, ctx: TaskContext, config: BaseModel) -> dict[str, Any]:
    from servicetsunami.services.notebooks import runs as notebook_runs

    c = cast(NotebookConfig, config)
    ref = c.notebook_id or c.notebook_path
    if not ref:
        raise InvalidInput("a notebook task needs notebook_path (a workspace path) or notebook_id")
    run_id = notebook_runs.run_notebook(
        svc,
        ctx.principal,
        ref,
        parameters=c.base_parameters,
        timeout_seconds=ctx.time_left(svc.settings.sandbox.notebook_timeout_seconds),
        parent_id=ctx.run.run_id,
    )
    run = _wait_child(svc, ctx, run_id)
    exit_value = (run.result or {}).get("exit_value")
    return {"notebook_run_id": run_id, "exit_value": exit_value, "values": {"exit_value": exit_value}}


class PythonConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    python_file: str | None = None
    code: str | None = None
    parameters: list[str] = Field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------------


def _wait_child(svc: Services, ctx: TaskContext, run_id: str) -> Any:
    """Wait for a run this task started; stop it when the task is stopped; raise if it did not succeed."""
    ctx.run.on_cancel(lambda: _cancel_quietly(svc, ctx, run_id))
    while True:
        run = runs.wait_for_run(svc, ctx.principal, run_id, timeout=_WAIT_SLICE)
        if run.finished:
            break
        if ctx.run.cancelled:
            raise Cancelled("the task was stopped")
    if run.state != "succeeded":
        raise TaskFailed(
            f"run {run_id} ended {run.state}: {run.error or run.error_code}", run_id=run_id, code=run.error_code
        )
    return run


def _cancel_quietly(svc: Services, ctx: TaskContext, run_id: str) -> None:
    with contextlib.suppress(TsunamiError):  # it ended on its own meanwhile
        runs.cancel_run(svc, ctx.principal, run_id, wait_seconds=0)


register(TaskKind("sync", SyncConfig, _sync, resumable=True))
register(TaskKind("transform", TransformConfig, _transform, resumable=True))
register(TaskKind("gold_refresh", GoldRefreshConfig, _gold_refresh, resumable=True))
register(TaskKind("sql", SqlConfig, _sql, check=_check_sql))
register(TaskKind("run_job", RunJobConfig, _run_job))
register(TaskKind("notebook", NotebookConfig, _notebook))
register(TaskKind("python", PythonConfig, unavailable=PYTHON_MISSING))
