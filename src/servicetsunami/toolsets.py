"""Tool sets: which MCP tools a server, or one API key, offers.

A client's model reads every tool description of ``tools/list`` on each turn, so a client that only
queries should not be shown sixty tools. Three filters narrow what a caller sees, and a tool must
pass all three to be listed or called:

1. the caller's role (:data:`~servicetsunami.tenancy.ROLE_SCOPES`: the scopes a tool's tags ask for);
2. the server's tool set (settings ``tools.preset`` / ``tools.enabled`` / ``tools.disabled``);
3. the API key's own tool set, when it was created with one (``tsunami keys create --preset analyst``).

A :class:`ToolSet` is a preset's tools, plus ``enabled`` ones, minus ``disabled`` ones; with neither
a preset nor ``enabled`` it is every tool (minus ``disabled``). The presets:

- ``minimal``: look at tables and query them (4 tools);
- ``analyst``: read-only exploration: tables, SQL (also as long statements), lineage, profiles, the AI
  helpers, warehouses and clusters, files and runs to read, vector search, agents and endpoints to
  read and invoke;
- ``engineer``: everything an engineer role may use: ingestion, syncs, runs, jobs, silver and gold,
  notebooks, volume files, execution contexts, vector indexes, agents and serving endpoints (not
  connecting sources, PII masking, starting warehouses, managing clusters, webhooks or the audit log);
- ``admin``: every tool.

:data:`TOOLS` names every tool the MCP server registers (a test compares them), so a name given in a
setting or on a key is checked, and a typo is refused instead of silently hiding a tool.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from servicetsunami.errors import InvalidInput

# Every MCP tool, by area (mcp/tools/<area>.py).
TOOLS: dict[str, str] = {
    **dict.fromkeys(("upload_file",), "ingestion"),
    **dict.fromkeys(("list_tables", "describe_table"), "catalog"),
    **dict.fromkeys(("query_sql", "execute_dbsql", "get_statement", "cancel_statement"), "query"),
    **dict.fromkeys(("health",), "health"),
    **dict.fromkeys(("status", "metrics", "get_audit_log"), "ops"),
    **dict.fromkeys(
        (
            "connect_postgres",
            "list_source_kinds",
            "connect_source",
            "test_connection",
            "list_source_tables",
            "sync_table_to_bronze",
            "get_sync_status",
            "cancel_sync",
            "list_syncs",
        ),
        "sources",
    ),
    **dict.fromkeys(("get_run", "list_runs", "cancel_run"), "runs"),
    **dict.fromkeys(
        (
            "list_jobs",
            "get_job",
            "create_job",
            "update_job",
            "delete_job",
            "run_job",
            "get_job_run_status",
            "list_job_runs",
            "cancel_job_run",
            "repair_job_run",
        ),
        "jobs",
    ),
    **dict.fromkeys(
        (
            "transform_to_silver",
            "preview_transform",
            "create_gold_table",
            "refresh_gold_table",
            "get_lineage",
            "profile_table",
            "set_mask_pii",
        ),
        "transforms",
    ),
    **dict.fromkeys(("analyze_schema", "suggest_query", "explain_data"), "ai"),
    **dict.fromkeys(("list_warehouses", "get_warehouse", "start_warehouse"), "warehouses"),
    **dict.fromkeys(
        (
            "create_notebook",
            "get_notebook",
            "update_notebook",
            "list_notebooks",
            "delete_notebook",
            "import_notebook",
            "export_notebook",
            "run_notebook",
            "get_notebook_run",
            "cancel_notebook_run",
            "publish_notebook",
            "pull_notebook",
        ),
        "notebooks",
    ),
    **dict.fromkeys(("list_dbfs_files", "download_volume_file", "upload_volume_file", "delete_volume_file"), "files"),
    **dict.fromkeys(
        ("create_context", "execute_command", "get_command_status", "cancel_command", "destroy_context"), "contexts"
    ),
    **dict.fromkeys(
        ("list_clusters", "get_cluster", "start_cluster", "terminate_cluster", "resize_cluster"), "compute"
    ),
    **dict.fromkeys(
        (
            "create_vector_index",
            "sync_vector_index",
            "search_vectors",
            "describe_vector_index",
            "list_vector_indexes",
            "delete_vector_index",
        ),
        "vectors",
    ),
    **dict.fromkeys(
        (
            "create_agent",
            "update_agent",
            "get_agent",
            "list_agents",
            "delete_agent",
            "deploy_agent",
            "list_endpoints",
            "get_endpoint",
            "delete_endpoint",
            "invoke_endpoint",
            "deploy_model",
            "invoke_model",
            "deploy_workspace_model",
        ),
        "serving",
    ),
    **dict.fromkeys(("analyze_notebook", "generate_bundle", "validate_bundle", "create_tests"), "bundles"),
    **dict.fromkeys(
        ("create_webhook", "list_webhooks", "delete_webhook", "test_webhook", "list_webhook_deliveries"), "webhooks"
    ),
}

_MINIMAL = frozenset({"list_tables", "describe_table", "query_sql", "health"})
_ANALYST = _MINIMAL | frozenset(
    {
        "execute_dbsql",
        "get_statement",
        "cancel_statement",
        "get_lineage",
        "profile_table",
        "analyze_schema",
        "suggest_query",
        "explain_data",
        "list_warehouses",
        "get_warehouse",
        "list_dbfs_files",
        "download_volume_file",
        "get_run",
        "list_runs",
        "list_clusters",
        "get_cluster",
        "search_vectors",
        "describe_vector_index",
        "list_vector_indexes",
        "get_agent",
        "list_agents",
        "list_endpoints",
        "get_endpoint",
        "invoke_endpoint",
        "invoke_model",
        "metrics",
        "analyze_notebook",
        "validate_bundle",
    }
)
# What an admin alone may do (tools tagged "manage"): left out of the engineer preset.
_ADMIN_ONLY = frozenset(
    {
        "connect_postgres",
        "connect_source",
        "set_mask_pii",
        "start_warehouse",
        "start_cluster",
        "terminate_cluster",
        "resize_cluster",
        "status",
        "get_audit_log",
        "create_webhook",
        "list_webhooks",
        "delete_webhook",
        "test_webhook",
        "list_webhook_deliveries",
    }
)
_ENGINEER = frozenset(TOOLS) - _ADMIN_ONLY

# preset -> its tools; None: every tool, those added later included.
PRESETS: dict[str, frozenset[str] | None] = {
    "minimal": _MINIMAL,
    "analyst": _ANALYST,
    "engineer": _ENGINEER,
    "admin": None,
}


@dataclass(frozen=True, slots=True)
class ToolSet:
    """A preset's tools, plus ``enabled``, minus ``disabled`` (module docstring). Build it with
    :meth:`of`, which checks the names."""

    preset: str = ""
    enabled: frozenset[str] = field(default_factory=frozenset)
    disabled: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, *, preset: str = "", enabled: Iterable[str] = (), disabled: Iterable[str] = ()) -> ToolSet:
        """A checked tool set: ``InvalidInput`` for an unknown preset or tool name (with the closest one)."""
        preset = preset.strip()
        if preset and preset not in PRESETS:
            raise InvalidInput(f"unknown tool preset {preset!r}: use one of {', '.join(PRESETS)}")
        return cls(preset=preset, enabled=_checked(enabled), disabled=_checked(disabled))

    @property
    def is_everything(self) -> bool:
        return not self.disabled and not self.enabled and PRESETS.get(self.preset, ()) is None

    def allows(self, tool: str, /) -> bool:
        if tool in self.disabled:
            return False
        if tool in self.enabled:
            return True
        if not self.preset:
            return not self.enabled
        members = PRESETS[self.preset]
        return members is None or tool in members

    def describe(self) -> str:
        """How a refusal names this set: ``the 'analyst' preset``, ``its own tool list``."""
        return f"the {self.preset!r} tool preset" if self.preset else "its tool list"

    def to_json(self) -> dict[str, Any]:
        return {"preset": self.preset, "enabled": sorted(self.enabled), "disabled": sorted(self.disabled)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, /) -> ToolSet | None:
        """The set :meth:`to_json` stored (None for none). Names a later release dropped are ignored,
        so an old key keeps working with the tools that remain."""
        if not data:
            return None
        preset = str(data.get("preset") or "")
        return cls(
            preset=preset if preset in PRESETS else "",
            enabled=frozenset(str(n) for n in data.get("enabled") or () if n in TOOLS),
            disabled=frozenset(str(n) for n in data.get("disabled") or () if n in TOOLS),
        )


def _checked(names: Iterable[str]) -> frozenset[str]:
    checked: set[str] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in TOOLS:
            close = difflib.get_close_matches(name, TOOLS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidInput(f"unknown tool {name!r}{hint}")
        checked.add(name)
    return frozenset(checked)
