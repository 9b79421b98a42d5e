"""Notebooks stored per tenant with versions: create, get, update, list by folder, import, export,
delete; another tenant never sees them. On both system stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.test_store_postgres import _database

GOLDEN = Path(__file__).parents[2] / "unit" / "notebooks" / "golden"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Services]:
    if request.param == "sqlite":
        svc = Services.open(settings)
        try:
            yield svc
        finally:
            svc.close()
        return
    with _database() as url:
        svc = Services.open(settings.model_copy(update={"database_url": url}))
        try:
            yield svc
        finally:
            svc.close()


def test_a_notebook_created_from_cells_reads_back_with_its_cells(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(
        services, acme, "/reports/daily", cells=[{"source": "x = 1", "tags": ["parameters"]}, {"source": "x + 1"}]
    )
    got = notebooks.get_notebook(services, acme, made.notebook_id)
    assert (got.path, got.version, got.language) == ("/reports/daily", 1, "python")
    assert [c.source for c in got.cells] == ["x = 1", "x + 1"]
    assert got.cells[0].tags == ["parameters"]
    assert notebooks.get_notebook(services, acme, "/reports/daily").notebook_id == made.notebook_id


def test_an_imported_source_notebook_exports_as_the_same_file(services: Services, acme: Principal) -> None:
    text = (GOLDEN / "sales_report.py").read_text()
    made = notebooks.import_notebook(services, acme, "/sales/report", text)
    out = notebooks.export_notebook(services, acme, made.notebook_id, format="source")
    assert out.content == text
    assert out.file_name == "report.py"
    sql = (GOLDEN / "region_totals.sql").read_text()
    made_sql = notebooks.import_notebook(services, acme, "/sales/totals", sql)
    assert notebooks.export_notebook(services, acme, made_sql.notebook_id).content == sql
    assert made_sql.language == "sql"


def test_updates_make_versions_and_old_versions_stay_readable(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(services, acme, "/n", cells=[{"source": "1"}])
    notebooks.update_notebook(services, acme, made.notebook_id, cells=[{"source": "2"}], expected_version=1)
    assert notebooks.get_notebook(services, acme, made.notebook_id).cells[0].source == "2"
    assert notebooks.get_notebook(services, acme, made.notebook_id, version=1).cells[0].source == "1"
    with pytest.raises(Conflict):
        notebooks.update_notebook(services, acme, made.notebook_id, cells=[{"source": "3"}], expected_version=1)


def test_import_over_an_existing_path_needs_overwrite(services: Services, acme: Principal) -> None:
    notebooks.create_notebook(services, acme, "/n", cells=[{"source": "1"}])
    text = "# Databricks notebook source\nprint(2)\n"
    with pytest.raises(Conflict) as info:
        notebooks.import_notebook(services, acme, "/n", text)
    assert info.value.code == "conflict"
    assert notebooks.import_notebook(services, acme, "/n", text, overwrite=True).version == 2


def test_listing_a_folder_shows_its_notebooks_and_subfolders(services: Services, acme: Principal) -> None:
    for path in ("/a/one", "/a/two", "/a/deep/three", "/b/four"):
        notebooks.create_notebook(services, acme, path, cells=[])
    listed = notebooks.list_notebooks(services, acme, folder="/a")
    assert [n.path for n in listed.notebooks] == ["/a/deep/three", "/a/one", "/a/two"]
    assert listed.folders == ["/a/deep"]
    assert notebooks.list_notebooks(services, acme).folders == ["/a", "/b"]
    first = notebooks.list_notebooks(services, acme, limit=2)
    assert first.next_cursor == "/a/one"
    rest = notebooks.list_notebooks(services, acme, limit=2, after=first.next_cursor)
    assert [n.path for n in rest.notebooks] == ["/a/two", "/b/four"]


def test_another_tenant_cannot_see_get_or_delete_a_notebook(
    services: Services, acme: Principal, globex: Principal
) -> None:
    made = notebooks.create_notebook(services, acme, "/secret", cells=[{"source": "1"}])
    assert notebooks.list_notebooks(services, globex).notebooks == []
    for call in (
        lambda: notebooks.get_notebook(services, globex, made.notebook_id),
        lambda: notebooks.get_notebook(services, globex, "/secret"),
        lambda: notebooks.delete_notebook(services, globex, made.notebook_id),
    ):
        with pytest.raises(NotFound):
            call()


def test_deleted_notebooks_are_gone(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(services, acme, "/gone", cells=[])
    notebooks.delete_notebook(services, acme, made.notebook_id)
    with pytest.raises(NotFound) as info:
        notebooks.get_notebook(services, acme, made.notebook_id)
    assert info.value.code == "not_found"


@pytest.mark.parametrize("path", ["relative", "/", "/a/../b", "/a/<b>", "/" + "x/" * 13 + "y"])
def test_bad_paths_are_invalid_input(services: Services, acme: Principal, path: str) -> None:
    with pytest.raises(InvalidInput):
        notebooks.create_notebook(services, acme, path, cells=[])


def test_an_analyst_may_read_but_not_write_notebooks(services: Services, acme: Principal) -> None:
    analyst = make_principal(services, "acme", role="analyst")[0]
    with pytest.raises(PermissionDenied):
        notebooks.create_notebook(services, analyst, "/n", cells=[])
    notebooks.create_notebook(services, acme, "/n", cells=[])
    assert len(notebooks.list_notebooks(services, analyst).notebooks) == 1


def test_html_export_is_a_page(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(services, acme, "/h", cells=[{"cell_type": "markdown", "source": "# Hi"}])
    page = notebooks.export_notebook(services, acme, made.notebook_id, format="html")
    assert page.media_type == "text/html"
    assert "<h1>Hi</h1>" in page.content
