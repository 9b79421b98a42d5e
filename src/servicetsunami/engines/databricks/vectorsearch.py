"""Vector Search on the workspace, through ``databricks-sdk``: the service's endpoint
(``vector_search_endpoints``), Delta Sync indexes over Unity Catalog tables with managed embeddings
(``embedding_source_columns`` + a serving endpoint) or self-managed ones
(``embedding_vector_columns``), their sync, status, query and deletion (``vector_search_indexes``).
Failures come out as our errors, translated by the workspace like every other call."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from servicetsunami.errors import NotFound

if TYPE_CHECKING:
    from servicetsunami.engines.databricks.workspace import Workspace


class VectorSearch:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def endpoint(self, name: str, /) -> dict[str, Any]:
        """The endpoint ``name``, created (STANDARD) when the workspace has none by that name."""
        from databricks.sdk.service.vectorsearch import EndpointType

        try:
            found = self.ws.call(
                lambda: self.ws.client.vector_search_endpoints.get_endpoint(name),
                action=f"reading vector search endpoint {name}",
            )
        except NotFound:
            waiter = self.ws.call(
                lambda: self.ws.client.vector_search_endpoints.create_endpoint(name, EndpointType.STANDARD),
                action=f"creating vector search endpoint {name}",
            )
            found = waiter.response
        return dict(found.as_dict())

    def endpoint_online(self, name: str, /) -> bool:
        status = self.endpoint(name).get("endpoint_status") or {}
        return bool(status.get("state") == "ONLINE")

    def create_delta_sync_index(
        self,
        name: str,
        /,
        *,
        endpoint: str,
        source_table: str,
        primary_key: str,
        columns_to_sync: list[str],
        text_column: str | None,
        embedding_endpoint: str | None,
        embedding_column: str | None,
        embedding_dimension: int | None,
    ) -> dict[str, Any]:
        """A triggered Delta Sync index over ``source_table``: the workspace embeds ``text_column``
        with ``embedding_endpoint``, or reads the vectors of ``embedding_column``."""
        from databricks.sdk.service.vectorsearch import (
            DeltaSyncVectorIndexSpecRequest,
            EmbeddingSourceColumn,
            EmbeddingVectorColumn,
            PipelineType,
            VectorIndexType,
        )

        spec = DeltaSyncVectorIndexSpecRequest(
            source_table=source_table,
            pipeline_type=PipelineType.TRIGGERED,
            columns_to_sync=columns_to_sync,
            embedding_source_columns=(
                [EmbeddingSourceColumn(name=text_column, embedding_model_endpoint_name=embedding_endpoint)]
                if embedding_column is None
                else None
            ),
            embedding_vector_columns=(
                [EmbeddingVectorColumn(name=embedding_column, embedding_dimension=embedding_dimension)]
                if embedding_column is not None
                else None
            ),
        )
        created = self.ws.call(
            lambda: self.ws.client.vector_search_indexes.create_index(
                name, endpoint, primary_key, VectorIndexType.DELTA_SYNC, delta_sync_index_spec=spec
            ),
            action=f"creating vector search index {name}",
        )
        return dict(created.as_dict())

    def get_index(self, name: str, /) -> dict[str, Any] | None:
        """The index's description and status, or None when the workspace has no such index."""
        try:
            found = self.ws.call(
                lambda: self.ws.client.vector_search_indexes.get_index(name), action=f"reading vector index {name}"
            )
        except NotFound:
            return None
        return dict(found.as_dict())

    def sync_index(self, name: str, /) -> None:
        self.ws.call(
            lambda: self.ws.client.vector_search_indexes.sync_index(name), action=f"syncing vector index {name}"
        )

    def delete_index(self, name: str, /) -> None:
        with contextlib.suppress(NotFound):
            self.ws.call(
                lambda: self.ws.client.vector_search_indexes.delete_index(name),
                action=f"deleting vector index {name}",
            )

    def query_index(
        self,
        name: str,
        /,
        *,
        columns: list[str],
        num_results: int,
        query_text: str | None,
        query_vector: list[float] | None,
        filters: dict[str, Any] | None,
        query_type: str,
    ) -> tuple[list[str], list[list[Any]]]:
        """The columns (the requested ones, then ``score``) and rows of the nearest ``num_results``."""
        answer = self.ws.call(
            lambda: self.ws.client.vector_search_indexes.query_index(
                name,
                columns,
                num_results=num_results,
                query_text=query_text,
                query_vector=query_vector,
                filters_json=json.dumps(filters) if filters else None,
                query_type=query_type.upper(),
            ),
            action=f"querying vector index {name}",
        )
        names = [c.name or "" for c in (answer.manifest.columns if answer.manifest else None) or []]
        rows = [list(r) for r in (answer.result.data_array if answer.result else None) or []]
        return names, rows
