"""On the Databricks engine (the REST fake, driven by the unmodified SDK), an index table is written to
the workspace's Unity Catalog like any table, and searched in this process: the same calls work."""

from __future__ import annotations

from servicetsunami.services.container import Services
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.search import search_vectors
from tests.helpers import make_principal
from tests.integration.vectors.conftest import build_index, built, write_source
from tests.integration.vectors.test_indexes import DOCS


def test_an_index_is_built_synced_and_searched_on_the_databricks_engine(on_databricks: Services) -> None:
    svc = on_databricks
    acme = make_principal(svc, "acme")[0]
    write_source(svc, acme, "tickets", DOCS[:4])
    result = build_index(svc, acme, "tickets_idx", "tickets", columns_to_sync=["topic"])
    assert result["rows"] == 4 and result["embedded"] == 4
    found = search_vectors(svc, acme, "tickets_idx", query_text="database disk full", k=2, query_type="hybrid")
    assert found["rows"][0][0] == 3
    write_source(svc, acme, "tickets", DOCS[2:])
    again = built(svc, acme, indexes.sync_vector_index(svc, acme, "tickets_idx").run_id)
    assert (again["added"], again["deleted"], again["embedded"]) == (2, 2, 2)
    assert search_vectors(svc, acme, "tickets_idx", query_text="walk the dog", k=1)["rows"][0][0] == 6
