"""``validate_bundle``: offline checks of a Databricks Asset Bundle, each problem a precise finding.

The checks (named in the report's ``checks``, in this order):

- ``yaml_syntax``: every ``.yml``/``.yaml`` file parses (line and column when not), no key repeated in
  one mapping (``duplicate_key``), no anchors or aliases (a bundle is untrusted input);
- ``structure``: ``databricks.yml`` exists; known keys at the top level, in ``bundle``, ``variables``,
  ``workspace`` and ``targets`` (``unknown_key``); ``bundle.name`` and at least one target
  (``missing_field``); target ``mode`` and a single ``default`` (``invalid_value``);
- ``unique_keys``: a resource key defined in two files (``duplicate_key``), a task key twice in one job
  (``duplicate_task_key``);
- ``resource_fields``: every key of a job resource, in files and target overrides, is a field of the
  SDK's ``JobSettings`` tree (``unknown_key``), required fields are there (``missing_field``), enum
  values are the SDK's (``invalid_value``);
- ``dependencies``: ``depends_on`` names a task of the job (``unknown_dependency``) and the tasks form
  no cycle (``dependency_cycle``, graphlib);
- ``paths``: notebooks, SQL files and Python files a task names are files of the bundle
  (``missing_file``);
- ``references``: ``${var.x}`` is declared and has a value in every target (``unresolved_variable``),
  ``${resources.jobs.<k>.id}`` names a job of the bundle, ``${bundle.*}`` and ``${workspace.*}`` are
  known names (``unresolved_reference``);
- ``schedules``: a schedule's Quartz expression (``invalid_cron``, our Quartz parser) and time zone
  (``invalid_timezone``, zoneinfo);
- ``compute_keys``: ``job_cluster_key`` and ``environment_key`` name a cluster or environment of the job
  (``unresolved_job_cluster_key``, ``unresolved_environment_key``).

When a ``databricks`` CLI is on PATH, ``databricks bundle validate -o json`` also runs in a temporary
copy (:mod:`.cli`) and its findings are added with ``source: databricks_cli``.
"""

from __future__ import annotations

import fnmatch
import graphlib
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput
from servicetsunami.services.bundles import cli
from servicetsunami.services.bundles.loading import Loaded, YamlProblem, checked_files, load_yaml
from servicetsunami.services.bundles.models import (
    BUNDLE_JOB_KEYS,
    BUNDLE_KEYS,
    RESOURCE_TYPES_CHECKED,
    TARGET_KEYS,
    TARGET_MODES,
    TOP_LEVEL,
    VARIABLE_KEYS,
    WORKSPACE_KEYS,
    Finding,
    Severity,
    Shape,
    resource_shape,
)
from servicetsunami.services.pipelines import quartz
from servicetsunami.tenancy import Principal, Scope

CHECKS = (
    "yaml_syntax",
    "structure",
    "unique_keys",
    "resource_fields",
    "dependencies",
    "paths",
    "references",
    "schedules",
    "compute_keys",
)
ENTRY = "databricks.yml"
_REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_BUNDLE_NAMES = frozenset({"name", "target", "git.branch", "git.commit", "git.origin_url"})
_WORKSPACE_NAMES = frozenset(
    {
        "host",
        "root_path",
        "file_path",
        "artifact_path",
        "state_path",
        "resource_path",
        "current_user.userName",
        "current_user.short_name",
        "current_user.id",
        "current_user.domain_friendly_name",
    }
)
_NOTEBOOK_SUFFIXES = ("", ".py", ".sql", ".scala", ".r", ".ipynb")


class ValidationReport(BaseModel):
    valid: bool = Field(description="No finding of severity error")
    findings: list[Finding]
    checks: list[str] = Field(description="The checks that ran")
    databricks_cli: str = Field(description="'not installed', or the version of the CLI that also validated")
    targets: list[str]
    jobs: list[str] = Field(description="Job resource keys found")


def validate_bundle(principal: Principal, files: dict[str, str], /, *, use_cli: bool = True) -> ValidationReport:
    """Check ``files`` (path -> text); see the module docstring."""
    principal.require(Scope.READ)
    files = checked_files(files)
    checker = _Checker(files)
    checker.run()
    checks = list(CHECKS)
    version = cli.version() if use_cli else None
    if version is not None:
        checker.findings.extend(cli.validate(files))
        checks.append("databricks_cli")
    findings = checker.findings
    return ValidationReport(
        valid=not any(f.severity == "error" for f in findings),
        findings=findings,
        checks=checks,
        databricks_cli=version or "not installed",
        targets=sorted(checker.targets),
        jobs=sorted(checker.jobs),
    )


@dataclass
class _Job:
    key: str
    file: str
    path: str  # resources.jobs.<key>
    data: dict[str, Any]


@dataclass
class _Checker:
    files: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    loaded: dict[str, Loaded] = field(default_factory=dict)
    jobs: dict[str, _Job] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def add(self, file: str, path: str, code: str, message: str, severity: Severity = "error") -> None:
        loaded = self.loaded.get(file)
        line, column = loaded.mark(path) if loaded is not None else (None, None)
        self.findings.append(
            Finding(file=file, path=path, code=code, severity=severity, message=message, line=line, column=column)
        )

    def run(self) -> None:
        self._yaml()
        root = self.loaded.get(ENTRY)
        if ENTRY not in self.files:
            self.add(ENTRY, "", "missing_file", "a bundle has a databricks.yml at its root")
            return
        if root is None or not isinstance(root.data, dict):
            if root is not None:
                self.add(ENTRY, "", "invalid_value", "databricks.yml holds a mapping of keys")
            return
        config_files = [ENTRY, *self._included(root.data)]
        self._structure(root.data)
        for file in config_files:
            loaded = self.loaded.get(file)
            if loaded is not None and isinstance(loaded.data, dict):
                self._resources(file, loaded.data)
        for job in self.jobs.values():
            self._job(job)
        self._references(config_files)

    # -- yaml_syntax ------------------------------------------------------------------------------

    def _yaml(self) -> None:
        for file, text in self.files.items():
            if not file.endswith((".yml", ".yaml")):
                continue
            try:
                loaded = load_yaml(text)
            except YamlProblem as exc:
                self.findings.append(
                    Finding(file=file, code="yaml_syntax", message=exc.message, line=exc.line, column=exc.column)
                )
                continue
            self.loaded[file] = loaded
            for path, line, column in loaded.duplicates:
                self.findings.append(
                    Finding(
                        file=file,
                        path=path,
                        code="duplicate_key",
                        message=f"{path} is given twice in this file (the later one would win)",
                        line=line,
                        column=column,
                    )
                )

    def _included(self, root: dict[str, Any]) -> list[str]:
        patterns = root.get("include") or []
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            self.add(ENTRY, "include", "invalid_value", "include is a list of file patterns")
            return []
        out: list[str] = []
        for index, pattern in enumerate(patterns):
            matched = sorted(f for f in self.files if f != ENTRY and fnmatch.fnmatch(f, pattern))
            if not matched:
                self.add(ENTRY, f"include[{index}]", "missing_file", f"no bundle file matches {pattern!r}", "warning")
            out.extend(m for m in matched if m not in out)
        return out

    # -- structure --------------------------------------------------------------------------------

    def _keys(self, file: str, path: str, value: Any, allowed: frozenset[str], what: str) -> None:
        if not isinstance(value, dict):
            self.add(file, path, "invalid_value", f"{path} is a mapping")
            return
        for key in value:
            if key not in allowed:
                self.add(file, f"{path}.{key}" if path else str(key), "unknown_key", f"{what} has no key {key!r}")

    def _structure(self, root: dict[str, Any]) -> None:
        self._keys(ENTRY, "", root, TOP_LEVEL, "a bundle's top level")
        bundle = root.get("bundle")
        if not isinstance(bundle, dict) or not bundle.get("name"):
            self.add(ENTRY, "bundle.name", "missing_field", "bundle.name is required")
        else:
            self._keys(ENTRY, "bundle", bundle, BUNDLE_KEYS, "bundle")
        variables = root.get("variables") or {}
        if isinstance(variables, dict):
            self.variables = variables
            for name, spec in variables.items():
                if isinstance(spec, dict):
                    self._keys(ENTRY, f"variables.{name}", spec, VARIABLE_KEYS, "a variable")
        if "workspace" in root:
            self._keys(ENTRY, "workspace", root["workspace"], WORKSPACE_KEYS, "workspace")
        targets = root.get("targets")
        if not isinstance(targets, dict) or not targets:
            self.add(ENTRY, "targets", "missing_field", "a bundle names at least one target (dev, prod)")
            return
        defaults = []
        for name, target in targets.items():
            where = f"targets.{name}"
            target = target or {}
            self.targets[str(name)] = target if isinstance(target, dict) else {}
            self._keys(ENTRY, where, target, TARGET_KEYS, "a target")
            if not isinstance(target, dict):
                continue
            if "mode" in target and target["mode"] not in TARGET_MODES:
                self.add(ENTRY, f"{where}.mode", "invalid_value", "mode is development or production")
            if target.get("default") is True:
                defaults.append(name)
            if "workspace" in target:
                self._keys(ENTRY, f"{where}.workspace", target["workspace"], WORKSPACE_KEYS, "workspace")
            overrides = (
                (target.get("resources") or {}).get("jobs") if isinstance(target.get("resources"), dict) else None
            )
            for key, job in (overrides or {}).items():
                shape = resource_shape("jobs")
                if shape is not None:
                    self._fields(ENTRY, f"{where}.resources.jobs.{key}", job, shape, required=False, top=True)
        if len(defaults) > 1:
            self.add(ENTRY, "targets", "invalid_value", f"only one target may be the default, not {defaults}")

    # -- resources --------------------------------------------------------------------------------

    def _resources(self, file: str, data: dict[str, Any]) -> None:
        if file != ENTRY:
            self._keys(file, "", data, TOP_LEVEL, "a bundle file's top level")
        resources = data.get("resources")
        if resources is None:
            return
        if not isinstance(resources, dict):
            self.add(file, "resources", "invalid_value", "resources is a mapping of resource types")
            return
        for kind, items in resources.items():
            if kind not in RESOURCE_TYPES_CHECKED:
                self.add(file, f"resources.{kind}", "not_checked", f"{kind} resources are not checked here", "info")
                continue
            if not isinstance(items, dict):
                self.add(file, f"resources.{kind}", "invalid_value", f"resources.{kind} maps keys to resources")
                continue
            for key, job in items.items():
                path = f"resources.jobs.{key}"
                if key in self.jobs:
                    self.add(file, path, "duplicate_key", f"job {key!r} is also defined in {self.jobs[key].file}")
                    continue
                if not isinstance(job, dict):
                    self.add(file, path, "invalid_value", f"{path} is a mapping")
                    continue
                self.jobs[str(key)] = _Job(str(key), file, path, job)

    def _fields(self, file: str, path: str, value: Any, shape: Shape, *, required: bool, top: bool = False) -> None:
        if isinstance(value, str) and _REFERENCE.search(value):
            return  # resolved at deploy time
        if shape.kind == "object":
            if not isinstance(value, dict):
                self.add(file, path, "invalid_value", f"{path} is a mapping ({shape.name})")
                return
            extra = BUNDLE_JOB_KEYS if top else frozenset()
            for key, item in value.items():
                child = f"{path}.{key}"
                sub = shape.field(str(key))
                if sub is None:
                    if key not in extra:
                        self.add(file, child, "unknown_key", f"{shape.name} has no field {key!r}")
                    continue
                self._fields(file, child, item, sub, required=required)
            if required:
                for name in sorted(shape.required - set(value)):
                    self.add(file, f"{path}.{name}", "missing_field", f"{shape.name} needs {name}")
        elif shape.kind == "list":
            if not isinstance(value, list):
                self.add(file, path, "invalid_value", f"{path} is a list")
                return
            for index, item in enumerate(value):
                self._fields(file, f"{path}[{index}]", item, shape.item_shape, required=required)
        elif shape.kind == "map":
            if not isinstance(value, dict):
                self.add(file, path, "invalid_value", f"{path} is a mapping")
                return
            for key, item in value.items():
                self._fields(file, f"{path}.{key}", item, shape.item_shape, required=required)
        elif shape.kind == "enum" and str(value) not in shape.values:
            choices = ", ".join(sorted(shape.values)[:12])
            self.add(file, path, "invalid_value", f"{path} is one of {choices}, not {value!r}")

    def _job(self, job: _Job) -> None:
        shape = resource_shape("jobs")
        if shape is not None:
            self._fields(job.file, job.path, job.data, shape, required=True, top=True)
        tasks = job.data.get("tasks") or []
        if not isinstance(tasks, list):
            return
        keys: dict[str, int] = {}
        graph: dict[str, set[str]] = {}
        clusters = {c.get("job_cluster_key") for c in job.data.get("job_clusters") or [] if isinstance(c, dict)}
        environments = {e.get("environment_key") for e in job.data.get("environments") or [] if isinstance(e, dict)}
        for index, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("task_key"), str):
                continue
            where = f"{job.path}.tasks[{index}]"
            key = task["task_key"]
            if key in keys:
                self.add(job.file, f"{where}.task_key", "duplicate_task_key", f"task_key {key!r} is used twice")
            keys.setdefault(key, index)
            graph.setdefault(key, set())
            for dep_index, dep in enumerate(task.get("depends_on") or []):
                name = dep.get("task_key") if isinstance(dep, dict) else None
                if isinstance(name, str):
                    graph[key].add(name)
                    if not any(isinstance(t, dict) and t.get("task_key") == name for t in tasks):
                        self.add(
                            job.file,
                            f"{where}.depends_on[{dep_index}].task_key",
                            "unknown_dependency",
                            f"task {key!r} depends on {name!r}, which is not a task of this job",
                        )
            cluster = task.get("job_cluster_key")
            if isinstance(cluster, str) and not _REFERENCE.search(cluster) and cluster not in clusters:
                self.add(
                    job.file,
                    f"{where}.job_cluster_key",
                    "unresolved_job_cluster_key",
                    f"job_cluster_key {cluster!r} is not one of the job's job_clusters",
                )
            environment = task.get("environment_key")
            if isinstance(environment, str) and environment not in environments:
                self.add(
                    job.file,
                    f"{where}.environment_key",
                    "unresolved_environment_key",
                    f"environment_key {environment!r} is not one of the job's environments",
                )
            self._paths(job.file, where, task)
        known = {k: {d for d in deps if d in graph} for k, deps in graph.items()}
        try:
            graphlib.TopologicalSorter(known).prepare()
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            first = cycle[0]
            self.add(
                job.file,
                f"{job.path}.tasks[{keys[first]}].depends_on",
                "dependency_cycle",
                f"the tasks depend on each other in a cycle: {' -> '.join(cycle)}",
            )
        self._schedule(job)

    def _paths(self, file: str, where: str, task: dict[str, Any]) -> None:
        base = posixpath.dirname(file)
        candidates: list[tuple[str, Any, tuple[str, ...]]] = []
        notebook = task.get("notebook_task")
        if isinstance(notebook, dict):
            candidates.append(("notebook_task.notebook_path", notebook.get("notebook_path"), _NOTEBOOK_SUFFIXES))
        sql = task.get("sql_task")
        if isinstance(sql, dict) and isinstance(sql.get("file"), dict):
            candidates.append(("sql_task.file.path", sql["file"].get("path"), ("",)))
        python = task.get("spark_python_task")
        if isinstance(python, dict):
            candidates.append(("spark_python_task.python_file", python.get("python_file"), ("",)))
        for key, value, suffixes in candidates:
            if not isinstance(value, str) or not value or _REFERENCE.search(value) or value.startswith("/"):
                continue  # a workspace path or a reference: only the workspace knows
            path = posixpath.normpath(posixpath.join(base, value))
            if not any(path + suffix in self.files for suffix in suffixes):
                self.add(file, f"{where}.{key}", "missing_file", f"{value} (bundle file {path}) is not in the bundle")

    def _schedule(self, job: _Job) -> None:
        schedule = job.data.get("schedule")
        if not isinstance(schedule, dict):
            return
        expression, zone = schedule.get("quartz_cron_expression"), schedule.get("timezone_id")
        if isinstance(zone, str) and not _REFERENCE.search(zone):
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                self.add(
                    job.file,
                    f"{job.path}.schedule.timezone_id",
                    "invalid_timezone",
                    f"{zone!r} is not an IANA time zone (like Europe/Berlin)",
                )
        if isinstance(expression, str) and not _REFERENCE.search(expression):
            try:
                quartz.parse(expression, "UTC")
            except InvalidInput as exc:
                self.add(job.file, f"{job.path}.schedule.quartz_cron_expression", "invalid_cron", exc.message)

    # -- references -------------------------------------------------------------------------------

    def _references(self, config_files: list[str]) -> None:
        for file in config_files:
            loaded = self.loaded.get(file)
            if loaded is None:
                continue
            for path, text in _strings(loaded.data, ""):
                for reference in _REFERENCE.findall(text):
                    self._reference(file, path, reference.strip())

    def _reference(self, file: str, path: str, reference: str) -> None:
        head, _, rest = reference.partition(".")
        if head == "var":
            name = rest.split(".", 1)[0]
            if name not in self.variables:
                self.add(file, path, "unresolved_variable", f"${{var.{name}}} is not declared under variables")
                return
            spec = self.variables[name]
            has_default = not isinstance(spec, dict) or "default" in spec or "lookup" in spec
            for target, values in self.targets.items():
                given = values.get("variables") if isinstance(values.get("variables"), dict) else {}
                if not has_default and name not in (given or {}):
                    self.add(
                        file,
                        path,
                        "unresolved_variable",
                        f"${{var.{name}}} has no default and target {target!r} gives it no value",
                    )
        elif head == "resources":
            parts = rest.split(".")
            if parts[0] == "jobs" and (len(parts) < 3 or parts[1] not in self.jobs):
                self.add(file, path, "unresolved_reference", f"${{{reference}}} names no job of this bundle")
        elif head == "bundle":
            if rest not in _BUNDLE_NAMES:
                self.add(file, path, "unresolved_reference", f"${{{reference}}} is not a bundle value")
        elif head == "workspace":
            if rest not in _WORKSPACE_NAMES:
                self.add(file, path, "unresolved_reference", f"${{{reference}}} is not a workspace value")
        else:
            self.add(
                file, path, "unresolved_reference", f"${{{reference}}} is not a reference this check knows", "warning"
            )


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []
