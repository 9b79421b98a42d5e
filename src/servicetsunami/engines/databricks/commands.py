"""Execution contexts on all-purpose clusters, through the Command Execution API 1.2 (the SDK's
``command_execution``): create a context, read its status, execute a command, read a command's status
and results, cancel it, destroy the context. Each call asks and returns at once; callers poll.

The API serves classic all-purpose clusters only (not serverless). A command's results come back as
the API shapes them; this module turns them into :class:`~servicetsunami.engines.base.ClusterCommand`:
a ``table`` result's schema (Spark types as JSON when ``isJsonSchema``) becomes Databricks SQL type
names, an ``image`` result's data URL its base64 data, and the ANSI colours and HTML of an ``error``
result's ``cause`` and ``summary`` are removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from servicetsunami.engines.base import ClusterCommand
from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.errors import InvalidInput, NotFound

T = TypeVar("T")

_LANGUAGES = ("python", "sql")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAGS = re.compile(r"<[^>]{0,200}>")
_SPARK_SIMPLE = {
    "boolean": "BOOLEAN",
    "byte": "TINYINT",
    "short": "SMALLINT",
    "integer": "INT",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "STRING",
    "binary": "BINARY",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP_NTZ",
    "null": "VOID",
    "void": "VOID",
}
MAX_TEXT_CHARS = 20_000  # of an error's cause (a long traceback keeps its end, where the failing line is)


class DatabricksCommands:
    """Execution context operations of :class:`~servicetsunami.engines.databricks.engine.DatabricksEngine`."""

    ws: Workspace

    def create_cluster_context(self, cluster_id: str, /, *, language: str) -> str:
        from databricks.sdk.service.compute import Language

        if language not in _LANGUAGES:
            raise InvalidInput(f"a context's language is python or sql, not {language!r}")
        waiter = self._on(
            cluster_id,
            "creating an execution context on",
            lambda: self.ws.client.command_execution.create(cluster_id=cluster_id, language=Language(language)),
        )
        return str(waiter.context_id)

    def cluster_context_status(self, cluster_id: str, context_id: str, /) -> str:
        status = self._on(
            cluster_id,
            f"reading context {context_id} on",
            lambda: self.ws.client.command_execution.context_status(cluster_id, context_id),
        )
        return status.status.value if status.status is not None else "Pending"

    def execute_cluster_command(self, cluster_id: str, context_id: str, command: str, /, *, language: str) -> str:
        from databricks.sdk.service.compute import Language

        waiter = self._on(
            cluster_id,
            f"executing a command in context {context_id} on",
            lambda: self.ws.client.command_execution.execute(
                cluster_id=cluster_id, context_id=context_id, command=command, language=Language(language)
            ),
        )
        return str(waiter.command_id)

    def cluster_command_status(self, cluster_id: str, context_id: str, command_id: str, /) -> ClusterCommand:
        reply = self._on(
            cluster_id,
            f"reading command {command_id} on",
            lambda: self.ws.client.command_execution.command_status(cluster_id, context_id, command_id),
        )
        status = reply.status.value if reply.status is not None else "Queued"
        return command_of(str(reply.id or command_id), status, reply.results.as_dict() if reply.results else None)

    def cancel_cluster_command(self, cluster_id: str, context_id: str, command_id: str, /) -> None:
        self._on(
            cluster_id,
            f"cancelling command {command_id} on",
            lambda: self.ws.client.command_execution.cancel(
                cluster_id=cluster_id, context_id=context_id, command_id=command_id
            ),
        )

    def destroy_cluster_context(self, cluster_id: str, context_id: str, /) -> None:
        self._on(
            cluster_id,
            f"destroying context {context_id} on",
            lambda: self.ws.client.command_execution.destroy(cluster_id, context_id),
        )

    def _on(self, cluster_id: str, doing: str, fn: Callable[[], T]) -> T:
        try:
            return self.ws.call(fn, action=f"{doing} cluster {cluster_id}")
        except InvalidInput as exc:
            if "does not exist" in str(exc):
                raise NotFound(f"cluster {cluster_id} does not exist in the workspace") from exc
            raise


def command_of(command_id: str, status: str, results: dict[str, Any] | None) -> ClusterCommand:
    """A command's status and its results (the API's camelCase JSON) as a :class:`ClusterCommand`."""
    if not results:
        return ClusterCommand(id=command_id, status=status)
    kind = str(results.get("resultType") or "")
    if kind == "table":
        json_schema = bool(results.get("isJsonSchema"))
        schema = [
            {"name": str(c.get("name", "")), "type": spark_type_name(c.get("type"), json_schema=json_schema)}
            for c in results.get("schema") or []
        ]
        return ClusterCommand(
            id=command_id,
            status=status,
            result_type="table",
            data=results.get("data") or [],
            schema=schema,
            truncated=bool(results.get("truncated")),
        )
    if kind == "image":
        return ClusterCommand(id=command_id, status=status, result_type="image", data=_image(results.get("fileName")))
    if kind == "images":
        images = [_image(f) for f in results.get("fileNames") or []]
        return ClusterCommand(id=command_id, status=status, result_type="images", data=images)
    if kind == "error":
        return ClusterCommand(
            id=command_id,
            status=status,
            result_type="error",
            cause=_plain(results.get("cause"), MAX_TEXT_CHARS),
            summary=_plain(results.get("summary"), 2000),
        )
    return ClusterCommand(id=command_id, status=status, result_type="text", data=str(results.get("data") or ""))


def spark_type_name(value: Any, /, *, json_schema: bool = True) -> str:
    """A Spark type as the API writes it (JSON such as ``"\\"long\\""`` or a struct object, or a Hive
    type name) as a Databricks SQL type name (``BIGINT``)."""
    parsed: Any = value
    if json_schema and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
    if isinstance(parsed, str):
        text = parsed.strip().lower()
        if text in _SPARK_SIMPLE:
            return _SPARK_SIMPLE[text]
        if text.startswith("decimal"):
            return text.upper().replace(" ", "")
        return text.upper() or "STRING"
    if isinstance(parsed, dict):
        kind = parsed.get("type")
        if kind == "array":
            return f"ARRAY<{spark_type_name(parsed.get('elementType'), json_schema=False)}>"
        if kind == "map":
            key = spark_type_name(parsed.get("keyType"), json_schema=False)
            return f"MAP<{key},{spark_type_name(parsed.get('valueType'), json_schema=False)}>"
        if kind == "struct":
            fields = ",".join(
                f"{f.get('name')}:{spark_type_name(f.get('type'), json_schema=False)}"
                for f in parsed.get("fields") or []
            )
            return f"STRUCT<{fields}>"
    return "STRING"


def _image(file_name: Any) -> str | None:
    """A data URL's base64 data; a FileStore path as it is."""
    if not isinstance(file_name, str):
        return None
    head, sep, data = file_name.partition(";base64,")
    return data if sep and head.startswith("data:") else file_name


def _plain(text: Any, limit: int) -> str | None:
    if text is None:
        return None
    plain = _TAGS.sub("", _ANSI.sub("", str(text)))
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&").strip()
    return plain if len(plain) <= limit else "..." + plain[-limit:]
