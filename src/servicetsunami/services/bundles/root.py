"""A bundle's root file, ``databricks.yml``: its name, the variables ``catalog`` and ``warehouse_id``
(and the job cluster's when compute is ``job_cluster``), and the targets ``dev`` (``mode:
development``, the default) and ``prod`` (``mode: production``), each with its variable values and
``workspace.root_path``. Target values default to the caller's catalog and the configured warehouse
and host."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import yaml

from servicetsunami.errors import InvalidInput
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

Compute = Literal["serverless", "job_cluster"]
_TARGET_KEYS = frozenset({"catalog", "warehouse_id", "host", "root_path"})
_CLUSTER_DEFAULTS = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}


def targets(svc: Services, principal: Principal, given: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Each target's values: what was given, else the caller's catalog and the configured warehouse and host."""
    if not isinstance(given, dict) or any(not isinstance(v, dict) for v in given.values()):
        raise InvalidInput("targets maps a target name (dev, prod) to its values")
    unknown = sorted(set(given) - {"dev", "prod"})
    if unknown:
        raise InvalidInput(f"targets are dev and prod, not {', '.join(unknown)}")
    out: dict[str, dict[str, str]] = {}
    for target in ("dev", "prod"):
        values = {k: str(v) for k, v in (given.get(target) or {}).items()}
        bad = sorted(set(values) - _TARGET_KEYS)
        if bad:
            raise InvalidInput(f"targets.{target} takes {', '.join(sorted(_TARGET_KEYS))}, not {', '.join(bad)}")
        values.setdefault("catalog", principal.catalog)
        warehouse = values.get("warehouse_id") or svc.settings.databricks.warehouse_id
        if warehouse:
            values["warehouse_id"] = warehouse
        host = values.get("host") or svc.settings.databricks.host
        if host:
            values["host"] = host
        for key, value in values.items():
            if not re.fullmatch(r"[A-Za-z0-9_./:@~${}-]{1,500}", value):
                raise InvalidInput(f"targets.{target}.{key} has characters a bundle value cannot hold")
        out[target] = values
    return out


def databricks_yml(name: str, targets: dict[str, dict[str, str]], compute: Compute) -> str:
    variables: dict[str, Any] = {
        "catalog": {"description": "The Unity Catalog catalog the jobs read and write"},
        "warehouse_id": {"description": "The SQL warehouse SQL tasks run on"},
    }
    if compute == "job_cluster":
        variables["spark_version"] = {
            "description": "Databricks Runtime of the job cluster",
            "default": _CLUSTER_DEFAULTS["spark_version"],
        }
        variables["node_type_id"] = {
            "description": "Node type of the job cluster",
            "default": _CLUSTER_DEFAULTS["node_type_id"],
        }
    config: dict[str, Any] = {"bundle": {"name": name}, "include": ["resources/*.yml"], "variables": variables}
    out_targets: dict[str, Any] = {}
    for target, values in targets.items():
        entry: dict[str, Any] = {"mode": "development", "default": True} if target == "dev" else {"mode": "production"}
        workspace: dict[str, str] = {}
        if values.get("host"):
            workspace["host"] = values["host"]
        workspace["root_path"] = values.get("root_path") or (
            "~/.bundle/${bundle.name}/${bundle.target}"
            if target == "dev"
            else "/Workspace/Shared/.bundle/${bundle.name}/${bundle.target}"
        )
        entry["workspace"] = workspace
        entry["variables"] = {k: values[k] for k in ("catalog", "warehouse_id") if values.get(k)}
        out_targets[target] = entry
    config["targets"] = out_targets
    return dump_yaml(config)


def dump_yaml(data: Any, /) -> str:
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120))
