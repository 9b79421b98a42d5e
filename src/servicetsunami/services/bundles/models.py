"""Typed models of a Databricks Asset Bundle's configuration, as far as this service writes and checks it.

Two sources, kept apart on purpose:

- the **resources** (``resources.jobs.<key>``: tasks, ``notebook_task``, ``sql_task.file``,
  ``run_job_task``, ``job_clusters``, ``environments``, ``schedule``, ``parameters``, retries,
  timeouts, ``depends_on``, ``run_if``) are the Jobs API 2.2 ``JobSettings`` of ``databricks-sdk``
  (Apache-2.0). Their field sets come from ``dataclasses.fields()`` of the SDK's classes, walked
  through their type hints (:func:`shape_of`), so the keys this service accepts follow the SDK the
  lock file pins. A bundle adds a few keys of its own to a job (:data:`BUNDLE_JOB_KEYS`).
- the **bundle layer** around them (``bundle``, ``variables``, ``targets``, ``workspace``,
  ``include``) is small and modelled here by hand (:data:`TOP_LEVEL`, :data:`TARGET_KEYS`, ...),
  from the public documentation of the format. The Databricks CLI's JSON schema (Databricks License)
  is not used.

:class:`Finding` is one problem found in a bundle (file, key path, code, severity, message); the
generator and the validator both speak it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning", "info"]

# Keys of a bundle's top level; only those the generator writes are checked in depth.
TOP_LEVEL = frozenset(
    {
        "bundle",
        "include",
        "variables",
        "targets",
        "workspace",
        "resources",
        "artifacts",
        "sync",
        "permissions",
        "run_as",
        "presets",
        "experimental",
        "scripts",
        "python",
    }
)
BUNDLE_KEYS = frozenset({"name", "uuid", "databricks_cli_version", "compute_id", "cluster_id", "git", "deployment"})
VARIABLE_KEYS = frozenset({"description", "default", "lookup", "type"})
WORKSPACE_KEYS = frozenset(
    {
        "host",
        "profile",
        "root_path",
        "file_path",
        "artifact_path",
        "state_path",
        "resource_path",
        "auth_type",
        "client_id",
        "azure_workspace_resource_id",
        "azure_tenant_id",
        "azure_environment",
        "azure_login_app_id",
        "google_service_account",
    }
)
TARGET_KEYS = frozenset(
    {
        "default",
        "mode",
        "bundle",
        "workspace",
        "variables",
        "resources",
        "artifacts",
        "sync",
        "permissions",
        "run_as",
        "presets",
        "git",
        "cluster_id",
        "compute_id",
    }
)
TARGET_MODES = frozenset({"development", "production"})
BUNDLE_JOB_KEYS = frozenset({"permissions"})  # a bundle's own keys on a job resource
RESOURCE_TYPES_CHECKED = frozenset({"jobs"})


class Finding(BaseModel):
    """One problem in a bundle: where (file and key path, line and column when known) and what."""

    file: str = Field(description="The bundle file, relative to the bundle root")
    path: str = Field("", description="The key path inside it, like resources.jobs.daily.tasks[1].depends_on")
    code: str = Field(description="A stable code, like unknown_key or dependency_cycle")
    severity: Severity = "error"
    message: str
    line: int | None = None
    column: int | None = None
    source: Literal["servicetsunami", "databricks_cli"] = "servicetsunami"


class BundleFiles(BaseModel):
    """A bundle as files: path relative to its root -> text."""

    files: dict[str, str]


# -- shapes derived from the SDK's dataclasses ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """What a value at some key path must look like: an object with fields, a list or map of a
    shape, an enum's values, or a scalar."""

    kind: Literal["object", "list", "map", "enum", "scalar"]
    name: str = ""
    fields: tuple[tuple[str, Any], ...] = ()  # object: (key, type hint), resolved lazily (shapes nest)
    required: frozenset[str] = frozenset()
    item: Any = None  # list / map: the item's type hint
    values: frozenset[str] = frozenset()  # enum

    def field(self, key: str, /) -> Shape | None:
        for name, hint in self.fields:
            if name == key:
                return shape_of(hint)
        return None

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.fields)

    @property
    def item_shape(self) -> Shape:
        return shape_of(self.item)


@functools.cache
def shape_of(hint: Any, /) -> Shape:
    """The :class:`Shape` of an SDK type hint (``Optional[List[Task]]``, ``JobSettings``, ``RunIf``...)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return shape_of(inner[0]) if len(inner) == 1 else Shape("scalar")
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(hint)
        return Shape("list", item=args[0] if args else Any)
    if origin is dict:
        args = typing.get_args(hint)
        return Shape("map", item=args[1] if len(args) == 2 else Any)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = dataclasses.fields(hint)
        required = frozenset(
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        return Shape("object", hint.__name__, tuple((f.name, hints[f.name]) for f in fields), required)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Shape("enum", hint.__name__, values=frozenset(str(m.value) for m in hint))
    return Shape("scalar", getattr(hint, "__name__", str(hint)))


def job_shape() -> Shape:
    """A bundle's job resource: the SDK's ``JobSettings`` (imported when first asked for)."""
    from databricks.sdk.service.jobs import JobSettings

    return shape_of(JobSettings)


def resource_shape(resource_type: str, /) -> Shape | None:
    """The shape of one resource of a type this service checks in depth, else None."""
    return job_shape() if resource_type == "jobs" else None
