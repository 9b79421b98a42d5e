"""The index records, their runs and the continuous ticker on a PostgreSQL system store."""

from __future__ import annotations

from pathlib import Path

from servicetsunami.services.container import Services
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.search import search_vectors
from servicetsunami.settings import Settings
from tests.helpers import make_principal
from tests.integration.runs.support import postgres_database
from tests.integration.vectors.conftest import build_index, built, write_source
from tests.integration.vectors.test_indexes import DOCS


def test_indexes_are_kept_and_synced_on_a_postgresql_store(tmp_path: Path) -> None:
    with postgres_database() as url:
        settings = Settings(home=tmp_path / "home", database_url=url, _env_file=None)  # type: ignore[call-arg]
        svc = Services.open(settings)
        try:
            acme = make_principal(svc, "acme")[0]
            globex = make_principal(svc, "globex")[0]
            write_source(svc, acme, "tickets", DOCS[:3])
            build_index(svc, acme, "tickets_idx", "tickets", sync_mode="continuous", columns_to_sync=["topic"])
            write_source(svc, acme, "tickets", DOCS)
            indexes._follow_sources(svc)
            run_id = indexes.describe_vector_index(svc, acme, "tickets_idx").last_run_id
            assert run_id is not None and built(svc, acme, run_id)["added"] == 3
            assert search_vectors(svc, acme, "tickets_idx", query_text="dog park", k=1)["rows"][0][0] == 6
            listed = indexes.list_vector_indexes(svc, acme, limit=1)
            assert [i.name for i in listed.indexes] == ["tickets_idx"] and listed.next_cursor is None
            assert indexes.list_vector_indexes(svc, globex).indexes == []
            indexes.delete_vector_index(svc, acme, "tickets_idx")
            assert indexes.list_vector_indexes(svc, acme).indexes == []
        finally:
            svc.close()
