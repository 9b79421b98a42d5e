"""``generate_bundle``: a tenant's jobs and notebooks as a Databricks Asset Bundle (files and a zip).

What a bundle holds::

    databricks.yml              bundle name; variables catalog, warehouse_id (and the cluster's when
                                compute is job_cluster); targets dev (mode development, default) and
                                prod, each with its variable values and workspace root_path
    resources/<job>.job.yml     one job each: the Jobs API 2.2 settings the Databricks engine compiles
                                (pipelines.remote.job_settings / task_settings), task bodies pointing
                                at files of the bundle
    src/<notebook path>.py      each notebook a job uses (its newest version) or that was asked for,
                                in Databricks source format
    src/<job>/<task>.sql        each SQL statement, fully qualified, its catalog a parameter

The tenant's catalog never appears in the bundle: the YAML says ``${var.catalog}``, a SQL file starts
with ``USE CATALOG IDENTIFIER(:catalog);`` and names ``schema.table`` (its task passes ``catalog:
${var.catalog}``), and a notebook task passes ``catalog`` as a parameter.

Task kinds Databricks has no counterpart for are handled in the open, each with a :class:`Finding`:

- ``transform`` and ``gold_refresh`` become SQL file tasks running the statement stored for their
  table (the silver spec's compiled SQL with its bronze version pin removed; the gold definition),
  or are left out (error ``task_not_compiled``) when no statement is stored yet;
- ``sync`` is left out (warning ``sync_not_representable``: Lakeflow Connect is not generated);
- ``python`` is left out (error ``task_not_compiled``).

A task left out is bridged: what depended on it depends on its own upstream tasks instead.

Compute: ``serverless`` (default) gives tasks no cluster; the packages the analysis found in a
notebook are reported (info ``notebook_libraries``) since serverless notebook tasks install theirs
from the notebook (``%pip``). ``job_cluster`` adds one ``job_clusters`` entry and pins those packages
as each notebook task's ``libraries``.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlglot
from pydantic import BaseModel, Field
from sqlglot import exp

from servicetsunami.errors import InvalidInput, NotFound, TsunamiError
from servicetsunami.services.bundles import root
from servicetsunami.services.bundles.models import Finding
from servicetsunami.services.bundles.root import Compute
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.pipelines import remote
from servicetsunami.services.pipelines.spec import JobSpec, TaskSpec, has_templates
from servicetsunami.services.pipelines.tasks import (
    GoldRefreshConfig,
    SqlConfig,
    TransformConfig,
    plan_sql,
    statement_text,
)
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
MAX_JOBS = 50
MAX_NOTEBOOKS = 200
ENTRY = "databricks.yml"


class GeneratedBundle(BaseModel):
    name: str
    files: dict[str, str] = Field(description="Bundle files: path relative to the bundle root -> text")
    jobs: dict[str, str] = Field(description="Resource key -> the job it was generated from (job id)")
    notebooks: dict[str, str] = Field(description="Bundle file -> the notebook (path@version) it holds")
    findings: list[Finding] = Field(description="What could not be carried over, or needs a look")


def to_zip(files: dict[str, str], /, *, root: str = "") -> bytes:
    """The bundle files as a zip archive (under ``root/`` when given)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{root}/{path}" if root else path, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[path])
    return out.getvalue()


def generate_bundle(
    svc: Services,
    principal: Principal,
    name: str,
    /,
    *,
    jobs: list[str] | None = None,
    notebooks: list[str] | None = None,
    targets: dict[str, dict[str, str]] | None = None,
    compute: Compute = "serverless",
) -> GeneratedBundle:
    """A bundle of ``jobs`` (ids or names; jobs they run are added) and ``notebooks`` (ids or paths);
    ``targets`` overrides each target's ``catalog``, ``warehouse_id``, ``host`` or ``root_path``."""
    principal.require(Scope.WRITE)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput("name is 1-100 letters, digits, '_' or '-', starting with a letter or digit")
    jobs, notebooks = list(jobs or []), list(notebooks or [])
    if not jobs and not notebooks:
        raise InvalidInput("name at least one job or notebook to put in the bundle")
    if len(jobs) > MAX_JOBS or len(notebooks) > MAX_NOTEBOOKS:
        raise InvalidInput(f"a bundle holds at most {MAX_JOBS} jobs and {MAX_NOTEBOOKS} notebooks")
    if compute not in ("serverless", "job_cluster"):
        raise InvalidInput("compute is 'serverless' or 'job_cluster'")
    target_values = root.targets(svc, principal, targets or {})
    builder = _Builder(svc, principal, compute)
    for ref in jobs:
        builder.add_job(ref)
    for ref in notebooks:
        builder.add_notebook(ref)
    builder.compile_jobs()
    builder.files[ENTRY] = root.databricks_yml(name, target_values, compute)
    if not target_values["dev"].get("warehouse_id") and builder.uses_warehouse:
        builder.findings.append(
            Finding(
                file=ENTRY,
                path="variables.warehouse_id",
                code="warehouse_id_missing",
                severity="warning",
                message="no SQL warehouse id is known: pass targets {dev: {warehouse_id: ...}, prod: {...}}",
            )
        )
    return GeneratedBundle(
        name=name,
        files=dict(sorted(builder.files.items())),
        jobs={key: job_id for key, (job_id, _) in builder.jobs.items()},
        notebooks=builder.notebook_sources,
        findings=builder.findings,
    )


# -- jobs ---------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    svc: Services
    principal: Principal
    compute: Compute
    files: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    jobs: dict[str, tuple[str, JobSpec]] = field(default_factory=dict)  # resource key -> (job id, spec)
    job_keys: dict[str, str] = field(default_factory=dict)  # job id -> resource key
    notebook_files: dict[str, str] = field(default_factory=dict)  # notebook id -> bundle file
    notebook_sources: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, list[str]] = field(default_factory=dict)  # bundle file -> pinned packages
    uses_warehouse: bool = False

    def add_job(self, ref: str) -> str:
        """The resource key of job ``ref`` (an id or a name), added with the jobs it runs."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput("a job is named by its id or name")
        with self.svc.store.session() as session:
            try:
                job = jobs_repo.get_job(session, ref, tenant_id=self.principal.tenant_id)
            except NotFound:
                found = jobs_repo.find_job_by_name(session, ref, tenant_id=self.principal.tenant_id)
                if found is None:
                    raise NotFound(f"no job with id or name {ref!r}") from None
                job = found
            job_id, definition, job_name = job.id, dict(job.definition), job.name
        if job_id in self.job_keys:
            return self.job_keys[job_id]
        spec = JobSpec.model_validate(definition)
        key = _unique(_slug(job_name), set(self.jobs))
        self.jobs[key] = (job_id, spec)
        self.job_keys[job_id] = key
        for task in spec.tasks:
            if task.kind == "run_job" and task.config.get("job_id"):
                self.add_job(str(task.config["job_id"]))
        return key

    def add_notebook(self, ref: str) -> str:
        """The bundle file of notebook ``ref`` (an id or a workspace path), added in source format."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput("a notebook is named by its id or workspace path")
        notebook_id = notebooks.resolve(self.svc, self.principal, ref)
        if notebook_id in self.notebook_files:
            return self.notebook_files[notebook_id]
        facts, nb = notebooks.load(self.svc, self.principal, notebook_id)
        language = sf.notebook_language(nb)
        path = f"src{facts.path}{sf.extension(language)}"
        text = sf.to_source(nb)
        self.files[path] = text
        self.notebook_files[notebook_id] = path
        self.notebook_sources[path] = f"{facts.path}@{facts.version}"
        if self.principal.catalog in text:
            self.findings.append(
                Finding(
                    file=path,
                    code="catalog_in_notebook",
                    severity="warning",
                    message=f"the notebook names the catalog {self.principal.catalog} itself; read the 'catalog' "
                    "parameter (dbutils.widgets.get('catalog')) so each target uses its own",
                )
            )
        self._libraries(notebook_id, path)
        return path

    def _libraries(self, notebook_id: str, path: str) -> None:
        from servicetsunami.services.bundles.analysis import analyze_notebook

        try:
            analysis = analyze_notebook(self.svc, self.principal, notebook_id)
        except TsunamiError as exc:
            self.findings.append(Finding(file=path, code="analysis_failed", severity="warning", message=exc.message))
            return
        pinned = sorted(
            {f"{p.package}=={p.version}" if p.version else p.package for p in analysis.packages if p.package}
        )
        self.libraries[path] = pinned
        if pinned and self.compute == "serverless":
            self.findings.append(
                Finding(
                    file=path,
                    code="notebook_libraries",
                    severity="info",
                    message="serverless notebook tasks install packages from the notebook (%pip install); "
                    f"it imports {', '.join(pinned)}",
                )
            )

    def compile_jobs(self) -> None:
        for key in list(self.jobs):
            self._compile(key)

    def _compile(self, key: str) -> None:
        spec = self.jobs[key][1]
        file = f"resources/{key}.job.yml"
        kept: dict[str, dict[str, Any]] = {}
        left_out: dict[str, list[str]] = {}
        for index, task in enumerate(spec.tasks):
            where = f"resources.jobs.{key}.tasks[{index}]"
            body = self._task_body(key, task, file, where)
            if body is None:
                left_out[task.task_key] = task.depends_on
                continue
            settings = remote.task_settings(task)
            settings.update(body)
            kept[task.task_key] = settings
        for settings in kept.values():
            deps = _bridged([d["task_key"] for d in settings["depends_on"]], left_out)
            settings["depends_on"] = [{"task_key": d} for d in deps]
            if not settings["depends_on"]:
                del settings["depends_on"]
            for name in ("timeout_seconds", "min_retry_interval_millis"):
                if not settings.get(name):
                    settings.pop(name, None)
        if not kept:
            self.findings.append(
                Finding(
                    file=file,
                    path=f"resources.jobs.{key}",
                    code="job_left_out",
                    message=f"job {spec.name!r} has no task that can run on Databricks; it is not in the bundle",
                )
            )
            return
        job = remote.job_settings(spec, list(kept.values()))
        if not job["tags"]:
            del job["tags"]
        if not job["parameters"]:
            del job["parameters"]
        if not job.get("timeout_seconds"):
            job.pop("timeout_seconds", None)
        if self.compute == "job_cluster" and any("notebook_task" in t for t in kept.values()):
            job["job_clusters"] = [
                {
                    "job_cluster_key": "main",
                    "new_cluster": {
                        "spark_version": "${var.spark_version}",
                        "node_type_id": "${var.node_type_id}",
                        "num_workers": 1,
                        "data_security_mode": "SINGLE_USER",
                    },
                }
            ]
        self.files[file] = root.dump_yaml({"resources": {"jobs": {key: job}}})

    def _task_body(self, key: str, task: TaskSpec, file: str, where: str) -> dict[str, Any] | None:
        if task.kind == "notebook":
            return self._notebook_task(task, file, where)
        if task.kind == "run_job":
            other = self.job_keys.get(str(task.config.get("job_id")))
            body: dict[str, Any] = {"job_id": f"${{resources.jobs.{other}.id}}"}
            if task.config.get("parameters"):
                body["job_parameters"] = dict(task.config["parameters"])
            return {"run_job_task": body}
        if task.kind == "sync":
            self._leave_out(
                file,
                where,
                task,
                "sync_not_representable",
                "warning",
                "sync tasks copy a source into bronze with this service's connectors; Databricks has no job "
                "task for that (Lakeflow Connect is not generated): keep the sync running here or set up "
                "ingestion in the workspace",
            )
            return None
        sql = self._task_sql(task, file, where)
        if sql is None:
            return None
        path = f"src/{key}/{task.task_key}.sql"
        self.files[path] = sql
        self.uses_warehouse = True
        return {
            "sql_task": {
                "warehouse_id": "${var.warehouse_id}",
                "file": {"path": f"../{path}"},
                "parameters": {"catalog": "${var.catalog}"},
            }
        }

    def _notebook_task(self, task: TaskSpec, file: str, where: str) -> dict[str, Any] | None:
        ref = str(task.config.get("notebook_id") or task.config.get("notebook_path") or "")
        try:
            path = self.add_notebook(ref if task.config.get("notebook_id") else "/" + ref.strip("/"))
        except NotFound:
            self._leave_out(
                file, where, task, "notebook_not_found", "error", f"the notebook {ref} is not in this workspace"
            )
            return None
        # base_parameters pass through: Databricks reads the same {{job.parameters.x}} references
        parameters = {**dict(task.config.get("base_parameters") or {}), "catalog": "${var.catalog}"}
        out: dict[str, Any] = {"notebook_task": {"notebook_path": f"../{path}", "base_parameters": parameters}}
        if self.compute == "job_cluster":
            out["job_cluster_key"] = "main"
            libraries = self.libraries.get(path) or []
            if libraries:
                out["libraries"] = [{"pypi": {"package": p}} for p in libraries]
        return out

    def _task_sql(self, task: TaskSpec, file: str, where: str) -> str | None:
        """The statement a sql, transform or gold_refresh task runs, as a SQL file's text (None: left out)."""
        catalog = self.principal.catalog
        header = f"-- Task {task.task_key} ({task.kind})\nUSE CATALOG IDENTIFIER(:catalog);\n"
        if task.kind == "sql":
            if has_templates(task.config):
                self._leave_out(
                    file,
                    where,
                    task,
                    "task_not_compiled",
                    "error",
                    "sql tasks with {{...}} references are not generated: write the values into the statement",
                )
                return None
            plan = plan_sql(SqlConfig.model_validate(task.config).sql, catalog)
            text = statement_text(plan, expand_views(self.svc, self.principal, plan.query))
            return header + _portable(text, catalog) + ";\n"
        if task.kind in ("transform", "gold_refresh"):
            if task.kind == "transform":
                c = TransformConfig.model_validate(task.config)
                name = (c.target_table or c.bronze_table).split(".")[-1]
                target = f"silver.{name}"
            else:
                table = GoldRefreshConfig.model_validate(task.config).table
                target = table if table.startswith("gold.") else f"gold.{table}"
            with self.svc.store.session() as session:
                row = transforms_repo.find_transform(session, target, tenant_id=self.principal.tenant_id)
                stored = (row.sql, row.materialize) if row is not None else None
            if stored is None:
                self._leave_out(
                    file,
                    where,
                    task,
                    "task_not_compiled",
                    "error",
                    f"{target} has no stored statement yet (run the {task.kind} once here, then generate again)",
                )
                return None
            sql, materialize = stored
            kind = "VIEW" if materialize == "view" else "TABLE"
            schema, table = target.split(".")
            return f"{header}CREATE OR REPLACE {kind} `{schema}`.`{table}` AS {_portable(sql, catalog)};\n"
        self._leave_out(
            file,
            where,
            task,
            "task_not_compiled",
            "error",
            f"{task.kind} tasks have no Databricks counterpart here: move the code into a notebook task",
        )
        return None

    def _leave_out(self, file: str, where: str, task: TaskSpec, code: str, severity: Any, message: str) -> None:
        self.findings.append(
            Finding(
                file=file,
                path=where,
                code=code,
                severity=severity,
                message=f"task {task.task_key!r} ({task.kind}) is left out: {message}",
            )
        )


def _portable(sql: str, catalog: str) -> str:
    """``sql`` with the tenant's catalog taken off its table names and any ``VERSION AS OF`` pin removed."""
    tree = sqlglot.parse_one(sql, read="databricks")
    for table in tree.find_all(exp.Table):
        if table.catalog == catalog:
            table.set("catalog", None)
        table.set("version", None)
    return tree.sql(dialect="databricks")


def _bridged(deps: list[str], left_out: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    stack = list(reversed(deps))
    seen: set[str] = set()
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in left_out:
            stack.extend(reversed(left_out[dep]))
        else:
            out.append(dep)
    return out


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    return slug or "job"


def _unique(key: str, taken: set[str]) -> str:
    candidate, n = key, 2
    while candidate in taken:
        candidate, n = f"{key}_{n}", n + 1
    return candidate
