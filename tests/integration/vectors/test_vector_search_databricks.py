"""On the Databricks engine with ``vectors.databricks_endpoint`` set, indexes are Delta Sync indexes
of Databricks Vector Search: created, synced, searched and deleted through the unmodified SDK against
the REST fake, with the same calls, result shape, tenancy, masking and caps as in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound as SdkNotFound
from databricks.sdk.service.vectorsearch import (
    DeltaSyncVectorIndexSpecRequest,
    EmbeddingSourceColumn,
    EndpointType,
    PipelineType,
    VectorIndexType,
)

from servicetsunami.errors import InvalidInput, NotFound, NotSupported
from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.search import search_vectors
from servicetsunami.settings import DatabricksSettings, Settings
from tests.fakes.databricks.server import FakeDatabricks
from tests.fakes.databricks.state import WorkspaceState
from tests.helpers import make_principal
from tests.integration.vectors.conftest import build_index, built, write_source
from tests.integration.vectors.test_indexes import DOCS

ENDPOINT = "tsunami-vectors"


@pytest.fixture
def on_vector_search(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[Services]:
    settings = Settings(  # type: ignore[call-arg]  # _env_file is a pydantic-settings option
        home=tmp_path / "h",
        engine="databricks",
        databricks=fake_workspace,
        vectors={"databricks_endpoint": ENDPOINT, "max_results": 3},
        _env_file=None,
    )
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()


def workspace_of(fake: FakeDatabricks, svc: Services) -> WorkspaceState:
    token = svc.settings.databricks.token
    assert token is not None
    return fake.state(token.get_secret_value())


def vectors_of(n: int, dim: int = 4) -> list[float]:
    return [1.0 if i == n % dim else 0.1 for i in range(dim)]


def test_an_index_is_a_delta_sync_index_built_synced_searched_and_deleted_by_the_workspace(
    on_vector_search: Services, databricks_fake: FakeDatabricks
) -> None:
    svc = on_vector_search
    acme = make_principal(svc, "acme")[0]
    write_source(svc, acme, "tickets", DOCS[:4])
    result = build_index(svc, acme, "tickets_idx", "tickets", columns_to_sync=["topic", "year"])
    assert result["rows"] == 4 and result["endpoint"] == ENDPOINT and result["created"] is True
    facts = indexes.describe_vector_index(svc, acme, "tickets_idx")
    assert (facts.search, facts.endpoint, facts.row_count) == ("databricks", ENDPOINT, 4)
    assert facts.embedding_model == "databricks:databricks-gte-large-en"
    ws = workspace_of(databricks_fake, svc)
    assert ws.vector_search.endpoints[ENDPOINT]["endpoint_type"] == "STANDARD"
    made = ws.vector_search.indexes["tenant_acme.gold.tickets_idx"].info
    spec = made["delta_sync_index_spec"]
    assert spec["source_table"] == "tenant_acme.gold.tickets" and spec["pipeline_type"] == "TRIGGERED"
    assert spec["embedding_source_columns"] == [
        {"name": "body", "embedding_model_endpoint_name": "databricks-gte-large-en"}
    ]
    found = search_vectors(svc, acme, "tickets_idx", query_text="database disk full", k=2, query_type="hybrid")
    assert found["rows"][0][0] == 3 and found["method"] == "databricks-hybrid"
    assert found["columns"] == ["id", "body", "topic", "year"] and len(found["scores"]) == 2
    assert ws.vector_search.queries[-1]["query_type"] == "HYBRID"
    narrowed = search_vectors(svc, acme, "tickets_idx", query_text="money", k=2, filters={"topic": "ops"})
    assert {r[2] for r in narrowed["rows"]} == {"ops"} and narrowed["method"] == "databricks-ann"
    write_source(svc, acme, "tickets", DOCS[2:])
    again = built(svc, acme, indexes.sync_vector_index(svc, acme, "tickets_idx").run_id)
    assert again["created"] is False and again["rows"] == 4
    assert search_vectors(svc, acme, "tickets_idx", query_text="walk the dog", k=1)["rows"][0][0] == 6
    indexes.delete_vector_index(svc, acme, "tickets_idx")
    assert "tenant_acme.gold.tickets_idx" not in ws.vector_search.indexes
    with pytest.raises(NotFound):
        search_vectors(svc, acme, "tickets_idx", query_text="dog")


def test_results_are_capped_and_checked_like_local_ones(on_vector_search: Services) -> None:
    svc = on_vector_search
    acme = make_principal(svc, "acme")[0]
    write_source(svc, acme, "tickets", DOCS)
    build_index(svc, acme, "tickets_idx", "tickets", columns_to_sync=["topic"])
    found = search_vectors(svc, acme, "tickets_idx", query_text="pets", k=10, columns=["id"])
    assert (len(found["rows"]), found["truncated"], found["columns"]) == (3, True, ["id"])
    with pytest.raises(InvalidInput):
        search_vectors(svc, acme, "tickets_idx", query_text="pets", filters={"nope": 1})
    with pytest.raises(InvalidInput):
        search_vectors(svc, acme, "tickets_idx", query_vector=["a"])  # type: ignore[list-item]


def test_another_tenant_cannot_reach_an_index_on_the_endpoint(on_vector_search: Services) -> None:
    svc = on_vector_search
    acme, globex = make_principal(svc, "acme")[0], make_principal(svc, "globex")[0]
    write_source(svc, acme, "tickets", DOCS[:3])
    build_index(svc, acme, "tickets_idx", "tickets")
    index_id = indexes.describe_vector_index(svc, acme, "tickets_idx").index_id
    for ref in ("tickets_idx", index_id, "tenant_acme.gold.tickets_idx"):
        with pytest.raises(NotFound):
            search_vectors(svc, globex, ref, query_text="invoice")


def test_self_managed_vectors_are_searched_by_vector(
    on_vector_search: Services, databricks_fake: FakeDatabricks
) -> None:
    svc = on_vector_search
    acme = make_principal(svc, "acme")[0]
    rows: list[dict[str, Any]] = [{"id": i, "body": d["body"], "vec": vectors_of(i)} for i, d in enumerate(DOCS)]
    write_source(svc, acme, "embedded", rows)
    build_index(svc, acme, "embedded_idx", "embedded", embedding_column="vec", text_column=None)
    spec = workspace_of(databricks_fake, svc).vector_search.indexes["tenant_acme.gold.embedded_idx"].info
    assert spec["delta_sync_index_spec"]["embedding_vector_columns"] == [{"name": "vec", "embedding_dimension": 4}]
    found = search_vectors(svc, acme, "embedded_idx", query_vector=vectors_of(2), k=2)
    assert found["rows"][0][0] in (2, 6) and found["scores"][0] > 0.99
    with pytest.raises(NotSupported):
        search_vectors(svc, acme, "embedded_idx", query_text="invoice")


def test_without_the_setting_indexes_stay_in_this_process(on_databricks: Services) -> None:
    svc = on_databricks
    acme = make_principal(svc, "acme")[0]
    write_source(svc, acme, "tickets", DOCS[:3])
    build_index(svc, acme, "tickets_idx", "tickets")
    assert indexes.describe_vector_index(svc, acme, "tickets_idx").search == "exact"


def test_the_fake_answers_the_sdk_vector_search_calls(fake_workspace: DatabricksSettings) -> None:
    token = fake_workspace.token
    assert token is not None
    client = WorkspaceClient(host=fake_workspace.host, token=token.get_secret_value())
    endpoint = client.vector_search_endpoints.create_endpoint_and_wait("ep", EndpointType.STANDARD)
    assert endpoint.endpoint_status is not None and endpoint.endpoint_status.state is not None
    assert endpoint.endpoint_status.state.value == "ONLINE"
    with pytest.raises(SdkNotFound):
        client.vector_search_indexes.get_index("main.gold.nothing")
    with pytest.raises(SdkNotFound):
        client.vector_search_indexes.create_index(
            "main.gold.idx",
            "ep",
            "id",
            VectorIndexType.DELTA_SYNC,
            delta_sync_index_spec=DeltaSyncVectorIndexSpecRequest(
                source_table="main.gold.missing",
                pipeline_type=PipelineType.TRIGGERED,
                embedding_source_columns=[EmbeddingSourceColumn(name="body", embedding_model_endpoint_name="e5")],
            ),
        )
    assert [e.name for e in client.vector_search_endpoints.list_endpoints()] == ["ep"]
    assert list(client.vector_search_indexes.list_indexes("ep")) == []
    client.vector_search_endpoints.delete_endpoint("ep")
    with pytest.raises(SdkNotFound):
        client.vector_search_endpoints.get_endpoint("ep")


def test_a_build_that_outlasts_its_timeout_fails_and_says_why(
    tmp_path: Path, fake_workspace: DatabricksSettings
) -> None:
    settings = Settings(  # type: ignore[call-arg]  # _env_file is a pydantic-settings option
        home=tmp_path / "h",
        engine="databricks",
        databricks=fake_workspace,
        vectors={"databricks_endpoint": ENDPOINT, "build_timeout_seconds": 0.2},
        _env_file=None,
    )
    svc = Services.open(settings)
    try:
        acme = make_principal(svc, "acme")[0]
        write_source(svc, acme, "tickets", DOCS[:3])
        created = indexes.create_vector_index(
            svc, acme, "tickets_idx", source_table="tickets", primary_key="id", text_column="body"
        )
        status = runs.wait_for_run(svc, acme, created.run_id, timeout=60)
        assert (status.state, status.error_code) == ("failed", "limit_exceeded")
        facts = indexes.describe_vector_index(svc, acme, "tickets_idx")
        assert facts.state == "failed" and facts.error
    finally:
        svc.close()
