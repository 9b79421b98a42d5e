"""Model Serving on the workspace, through ``databricks-sdk``: create, get, list and delete serving
endpoints (``serving_endpoints``), and query one with a raw request body (the chat-completions shape
with ``tools``, which the SDK's typed ``query`` does not carry, goes through its own API client to the
same ``/serving-endpoints/{name}/invocations`` path). Failures come out as our errors, translated
by the workspace like every other call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servicetsunami.engines.databricks.workspace import Workspace


class ModelServing:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def create(
        self, name: str, /, *, entity_name: str, entity_version: str | None = None, workload_size: str = "Small"
    ) -> dict[str, Any]:
        """Start creating an endpoint serving ``entity_name`` (a Unity Catalog model or a
        Foundation Model); it is ``NOT_READY`` until its served entity has started."""
        from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

        entity = ServedEntityInput(
            entity_name=entity_name,
            entity_version=entity_version,
            workload_size=workload_size,
            scale_to_zero_enabled=True,
        )
        config = EndpointCoreConfigInput(name=name, served_entities=[entity])
        waiter = self.ws.call(
            lambda: self.ws.client.serving_endpoints.create(name=name, config=config),
            action=f"creating serving endpoint {name}",
        )
        created: Any = waiter.response
        return dict(created.as_dict())

    def get(self, name: str, /) -> dict[str, Any]:
        found = self.ws.call(
            lambda: self.ws.client.serving_endpoints.get(name), action=f"reading serving endpoint {name}"
        )
        return dict(found.as_dict())

    def ready(self, name: str, /) -> bool:
        state = self.get(name).get("state") or {}
        return bool(state.get("ready") == "READY")

    def list(self) -> list[dict[str, Any]]:
        return [
            dict(e.as_dict())
            for e in self.ws.call(
                lambda: list(self.ws.client.serving_endpoints.list()), action="listing serving endpoints"
            )
        ]

    def delete(self, name: str, /) -> None:
        self.ws.call(lambda: self.ws.client.serving_endpoints.delete(name), action=f"deleting serving endpoint {name}")

    def query(self, name: str, body: dict[str, Any], /) -> dict[str, Any]:
        """POST ``body`` to the endpoint's invocations path; its JSON answer."""
        answer = self.ws.call(
            lambda: self.ws.client.api_client.do(
                "POST",
                f"/serving-endpoints/{name}/invocations",
                body=body,
                headers={"Accept": "application/json", "Content-Type": "application/json"},
            ),
            action=f"querying serving endpoint {name}",
        )
        return dict(answer) if isinstance(answer, dict) else {}

    def query_stream(self, name: str, body: dict[str, Any], /) -> Iterator[str]:
        """POST ``body`` with ``stream: true`` to the endpoint's invocations path; the lines of its
        server-sent events as they arrive (the connection is closed when the caller stops)."""
        answer = self.ws.call(
            lambda: self.ws.client.api_client.do(
                "POST",
                f"/serving-endpoints/{name}/invocations",
                body=body | {"stream": True},
                headers={"Accept": "text/event-stream", "Content-Type": "application/json"},
                raw=True,
            ),
            action=f"querying serving endpoint {name}",
        )
        contents = answer["contents"] if isinstance(answer, dict) else None
        if contents is None:
            return
        pending = b""
        try:
            while True:
                piece = self.ws.call(lambda: contents.read(4096), action=f"reading serving endpoint {name}")
                if not piece:
                    break
                pending += piece
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace").rstrip("\r")
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            contents.close()
