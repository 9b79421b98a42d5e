"""Vector indexes on the local engine: build as a run, incremental sync, exact vs HNSW vs hybrid,
filters, self-managed vectors, continuous sync, masking, caps, roles and tenant isolation."""

from __future__ import annotations

import pytest

from servicetsunami.errors import Conflict, InvalidInput, NotFound, NotSupported, PermissionDenied
from servicetsunami.services.container import Services
from servicetsunami.services.governance.pii import MASK, set_mask_pii
from servicetsunami.services.runs import service as runs
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.build import hnsw_path
from servicetsunami.services.vectors.search import search_vectors
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal
from tests.integration.vectors.conftest import build_index, built, write_source

DOCS = [
    {"id": 1, "body": "The invoice is overdue and payment is late", "topic": "billing", "year": 2024},
    {"id": 2, "body": "Refund the customer for the double charge on the card", "topic": "billing", "year": 2025},
    {"id": 3, "body": "The server crashed after the database ran out of disk space", "topic": "ops", "year": 2024},
    {"id": 4, "body": "Deploy the new release to production tonight", "topic": "ops", "year": 2025},
    {"id": 5, "body": "Our cat sleeps on the warm windowsill all afternoon", "topic": "pets", "year": 2023},
    {"id": 6, "body": "Walk the dog in the park every morning", "topic": "pets", "year": 2025},
]


def ids(result: dict[str, object]) -> list[int]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return [row[0] for row in rows]


def test_an_index_is_built_as_a_run_and_answers_the_nearest_rows_first(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    result = build_index(services, acme, "tickets_idx", "gold.tickets", columns_to_sync=["topic", "year"])
    assert result["added"] == 6 and result["embedded"] == 6 and result["rows"] == 6
    facts = indexes.describe_vector_index(services, acme, "tickets_idx")
    assert (facts.state, facts.row_count, facts.dim, facts.search) == ("ready", 6, 256, "exact")
    assert facts.table == f"{acme.catalog}.gold.tickets_idx" and facts.columns == ["id", "body", "topic", "year"]
    found = search_vectors(services, acme, "tickets_idx", query_text="unpaid invoice payment", k=3)
    assert found["columns"] == ["id", "body", "topic", "year"] and ids(found)[0] == 1
    assert found["scores"] == sorted(found["scores"], reverse=True) and not found["truncated"]
    by_id = search_vectors(services, acme, facts.index_id, query_text="dog walk", k=1, columns=["id"])
    assert by_id["columns"] == ["id"] and ids(by_id) == [6]
    assert [i.name for i in indexes.list_vector_indexes(services, acme).indexes] == ["tickets_idx"]


def test_a_sync_embeds_only_added_and_changed_rows_and_removes_deleted_ones(
    services: Services, acme: Principal
) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "gold.tickets", columns_to_sync=["topic"])
    changed = [dict(d) for d in DOCS if d["id"] != 5]  # 5 deleted
    changed[0]["body"] = "Volcanoes erupt molten lava from deep under the crust"  # 1: new text
    changed[1]["topic"] = "refunds"  # 2: same text, another topic
    changed.append({"id": 7, "body": "Bake bread with flour, water and yeast", "topic": "food", "year": 2025})
    write_source(services, acme, "tickets", changed)
    run = indexes.sync_vector_index(services, acme, "tickets_idx")
    result = built(services, acme, run.run_id)
    assert (result["added"], result["changed"], result["deleted"]) == (1, 2, 1)
    assert result["embedded"] == 2 and result["reused"] == 4  # the new row and the new text only
    assert search_vectors(services, acme, "tickets_idx", query_text="lava volcano eruption", k=1)["rows"][0][0] == 1
    assert ids(search_vectors(services, acme, "tickets_idx", query_text="yeast bread baking", k=1)) == [7]
    every = search_vectors(services, acme, "tickets_idx", query_text="anything", k=50)
    assert sorted(ids(every)) == [1, 2, 3, 4, 6, 7]
    assert dict(zip(ids(every), [r[2] for r in every["rows"]], strict=True))[2] == "refunds"
    again = built(services, acme, indexes.sync_vector_index(services, acme, "tickets_idx").run_id)
    assert (again["embedded"], again["written"]) == (0, False)  # nothing changed: nothing embedded or written


def test_exact_hnsw_and_hybrid_search_agree_on_a_clear_answer(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "exact_idx", "gold.tickets", columns_to_sync=["topic"])
    services.settings.vectors.hnsw_threshold = 3
    build_index(services, acme, "graph_idx", "gold.tickets", columns_to_sync=["topic"])
    graph = indexes.describe_vector_index(services, acme, "graph_idx")
    assert graph.search == "hnsw" and hnsw_path(services, indexes.spec_for(services, acme, "graph_idx")).exists()
    question = "the database server ran out of disk"
    exact = search_vectors(services, acme, "exact_idx", query_text=question, k=3)
    approx = search_vectors(services, acme, "graph_idx", query_text=question, k=3)
    hybrid = search_vectors(services, acme, "graph_idx", query_text=question, k=3, query_type="hybrid")
    assert (exact["method"], approx["method"], hybrid["method"]) == ("exact", "hnsw", "hnsw+bm25")
    assert ids(exact) == ids(approx) and ids(hybrid)[0] == 3 == ids(exact)[0]
    assert approx["scores"] == pytest.approx(exact["scores"], abs=1e-4)
    filtered = search_vectors(services, acme, "graph_idx", query_text=question, k=2, filters={"topic": "pets"})
    assert set(ids(filtered)) == {5, 6}  # few candidates pass the filter: answered exactly
    changed = [*DOCS[1:], {"id": 8, "body": "Tulips bloom in the spring garden", "topic": "garden", "year": 2025}]
    write_source(services, acme, "tickets", changed)
    built(services, acme, indexes.sync_vector_index(services, acme, "graph_idx").run_id)
    assert ids(search_vectors(services, acme, "graph_idx", query_text="spring flowers tulips", k=1)) == [8]
    assert 1 not in ids(search_vectors(services, acme, "graph_idx", query_text="overdue invoice", k=5))


def test_filters_follow_the_databricks_dictionary_form(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "gold.tickets", columns_to_sync=["topic", "year"])

    def found(filters: dict[str, object], query_type: str = "ann") -> set[int]:
        result = search_vectors(
            services, acme, "tickets_idx", query_text="invoice", k=10, filters=filters, query_type=query_type
        )
        return set(ids(result))

    assert found({"topic": "ops"}) == {3, 4}
    assert found({"topic": ["ops", "pets"], "year >=": 2025}) == {4, 6}
    assert found({"year <": 2024}) == {5}
    assert found({"topic NOT": "billing", "year !=": 2023}) == {3, 4, 6}
    assert found({"body LIKE": "DOG"}) == {6}
    assert found({"topic": "billing"}, "hybrid") == {1, 2}
    assert found({"topic": []}) == set()
    for bad in ({"colour": "red"}, {"year ~": 1}, {"year <": [1, 2]}, {"year": {"a": 1}}):
        with pytest.raises(InvalidInput):
            found(bad)


def test_self_managed_vectors_are_searched_by_query_vector(services: Services, acme: Principal) -> None:
    rows = [{"id": i, "vec": [float(i == j) for j in range(4)], "label": f"axis {i}"} for i in range(4)]
    write_source(services, acme, "points", rows)
    result = build_index(services, acme, "points_idx", "points", embedding_column="vec", columns_to_sync=["label"])
    assert result["embedded"] == 4
    facts = indexes.describe_vector_index(services, acme, "points_idx")
    assert (facts.embedding_model, facts.dim, facts.columns) == (None, 4, ["id", "label"])
    near = search_vectors(services, acme, "points_idx", query_vector=[0.1, 0.0, 0.9, 0.0], k=2)
    assert ids(near) == [2, 0] and near["scores"][0] > 0.9
    with pytest.raises(NotSupported):
        search_vectors(services, acme, "points_idx", query_text="axis", k=2)
    with pytest.raises(InvalidInput):
        search_vectors(services, acme, "points_idx", query_vector=[1.0, 0.0], k=2)
    with pytest.raises(InvalidInput):  # no text column for BM25
        search_vectors(
            services, acme, "points_idx", query_text="axis", query_vector=[1.0, 0, 0, 0], k=2, query_type="hybrid"
        )


def test_a_continuous_index_follows_its_source_table(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS[:3])
    build_index(services, acme, "live_idx", "tickets", sync_mode="continuous")
    indexes._follow_sources(services)  # the source did not move: nothing is queued
    assert indexes.describe_vector_index(services, acme, "live_idx").source_version == 0
    write_source(services, acme, "tickets", DOCS[3:], mode="append")
    before = indexes.describe_vector_index(services, acme, "live_idx").last_run_id
    indexes._follow_sources(services)
    after = indexes.describe_vector_index(services, acme, "live_idx").last_run_id
    assert after is not None and after != before
    result = built(services, acme, after)
    assert (result["added"], result["source_version"]) == (3, 1)
    assert ids(search_vectors(services, acme, "live_idx", query_text="dog park walk", k=1)) == [6]


def test_personal_data_in_results_is_masked_like_query_results(services: Services, acme: Principal) -> None:
    rows = [
        {"id": 1, "body": "asked about a late invoice", "email": "ann@example.com"},
        {"id": 2, "body": "wants a refund", "email": "bob@example.com"},
    ]
    write_source(services, acme, "contacts", rows)
    build_index(services, acme, "contacts_idx", "contacts", columns_to_sync=["email"])
    plain = search_vectors(services, acme, "contacts_idx", query_text="invoice", k=1)
    assert plain["rows"][0][2] == "ann@example.com"
    set_mask_pii(services, acme, True)
    masked = search_vectors(services, acme, "contacts_idx", query_text="invoice", k=1)
    assert masked["rows"][0][2] == MASK and masked["rows"][0][0] == 1


def test_k_is_capped_and_the_cut_is_said(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "tickets")
    services.settings.vectors.max_results = 2
    result = search_vectors(services, acme, "tickets_idx", query_text="invoice", k=5)
    assert len(result["rows"]) == 2 and result["truncated"] and len(result["scores"]) == 2
    for bad in ({"k": 0}, {"query_type": "fuzzy"}, {"columns": ["secret"]}):
        with pytest.raises(InvalidInput):
            search_vectors(services, acme, "tickets_idx", query_text="invoice", **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        search_vectors(services, acme, "tickets_idx")


def test_another_tenants_index_is_not_found_by_name_or_id(
    services: Services, acme: Principal, globex: Principal
) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "tickets")
    index_id = indexes.describe_vector_index(services, acme, "tickets_idx").index_id
    for ref in ("tickets_idx", index_id, f"{acme.catalog}.gold.tickets_idx", f"{globex.catalog}.gold.tickets_idx"):
        with pytest.raises(NotFound):
            search_vectors(services, globex, ref, query_text="invoice")
        with pytest.raises(NotFound):
            indexes.describe_vector_index(services, globex, ref)
        with pytest.raises(NotFound):
            indexes.delete_vector_index(services, globex, ref)
    assert indexes.list_vector_indexes(services, globex).indexes == []
    with pytest.raises(NotFound):  # globex's own source table of that name does not exist either
        indexes.create_vector_index(
            services, globex, "x_idx", source_table="tickets", primary_key="id", text_column="body"
        )


def test_an_analyst_may_search_but_not_create_sync_or_delete(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "tickets")
    analyst = make_principal(services, "acme", role="analyst")[0]
    assert ids(search_vectors(services, analyst, "tickets_idx", query_text="dog", k=1)) == [6]
    with pytest.raises(PermissionDenied):
        indexes.create_vector_index(
            services, analyst, "mine", source_table="tickets", primary_key="id", text_column="body"
        )
    with pytest.raises(PermissionDenied):
        indexes.sync_vector_index(services, analyst, "tickets_idx")
    with pytest.raises(PermissionDenied):
        indexes.delete_vector_index(services, analyst, "tickets_idx")


def test_bad_definitions_are_refused_before_anything_is_built(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    build_index(services, acme, "tickets_idx", "tickets")

    def create(name: str, **options: object) -> None:
        options.setdefault("primary_key", "id")
        options.setdefault("source_table", "tickets")
        indexes.create_vector_index(services, acme, name, **options)  # type: ignore[arg-type]

    with pytest.raises(Conflict):
        create("tickets_idx", text_column="body")
    with pytest.raises(Conflict):  # the name of an existing table
        create("tickets", text_column="body")
    for bad in (
        {"text_column": "nope"},
        {"text_column": "year"},
        {"embedding_column": "body"},
        {},
        {"text_column": "body", "embedding_column": "body", "embedding_model": "wordllama"},
        {"text_column": "body", "sync_mode": "hourly"},
        {"text_column": "body", "source_table": "tickets_idx"},
        {"text_column": "body", "embedding_model": "moon-model"},
    ):
        with pytest.raises(InvalidInput):
            create("other_idx", **bad)
    with pytest.raises(InvalidInput):
        create("silver.other_idx", text_column="body")


def test_a_duplicated_key_fails_the_build_and_says_why(services: Services, acme: Principal) -> None:
    write_source(services, acme, "dups", [{"id": 1, "body": "a"}, {"id": 1, "body": "b"}])
    created = indexes.create_vector_index(
        services, acme, "dups_idx", source_table="dups", primary_key="id", text_column="body"
    )
    status = runs.wait_for_run(services, acme, created.run_id, timeout=60)
    assert (status.state, status.error_code) == ("failed", "invalid_input")
    facts = indexes.describe_vector_index(services, acme, "dups_idx")
    assert facts.state == "failed" and facts.error
    with pytest.raises(NotFound):
        search_vectors(services, acme, "dups_idx", query_text="a")


def test_deleting_an_index_removes_its_table_and_graph(services: Services, acme: Principal) -> None:
    write_source(services, acme, "tickets", DOCS)
    services.settings.vectors.hnsw_threshold = 2
    build_index(services, acme, "tickets_idx", "tickets")
    spec = indexes.spec_for(services, acme, "tickets_idx")
    assert hnsw_path(services, spec).exists()
    search_vectors(services, acme, "tickets_idx", query_text="dog", k=1)
    gone = indexes.delete_vector_index(services, acme, "tickets_idx")
    assert gone.name == "tickets_idx"
    assert not services.engine.table_exists(TableRef(acme.catalog, "gold", "tickets_idx"))
    assert not hnsw_path(services, spec).exists()
    with pytest.raises(NotFound):
        search_vectors(services, acme, "tickets_idx", query_text="dog")
