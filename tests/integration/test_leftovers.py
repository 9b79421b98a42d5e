"""Leftovers of uploads interrupted by a killed process are swept when the server starts; what is
live (fresh files, landed files, tables) stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.ops.leftovers import sweep_leftovers
from servicetsunami.tenancy import Principal
from tests.integration.served import serving

OLD = time.time() - 3600


def make_leftovers(home: Path, lakehouse: Path, catalog: str) -> list[Path]:
    """What a worker killed in the middle of uploads leaves, an hour old."""
    landing = lakehouse / catalog / "_volumes" / "bronze" / "landing" / "uploads"
    made = [
        home / "tmp" / "uploads" / "upload-1234.csv",
        home / "tmp" / "parse" / "parse-abcd" / "request.json",
        lakehouse / catalog / "bronze" / "people" / "_stage_dead" / "data_0.parquet",
        lakehouse / catalog / "bronze" / "halfmade" / "_stage_dead" / "data_0.parquet",
        landing / "2026-12-01" / "deadbeef" / ".orders.csv.part",
    ]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (landing / "2026-12-02" / "cafe").mkdir(parents=True)
    for path in [*made, *landing.rglob("*"), landing]:
        for folder in [path, *path.parents]:
            if home.parent in folder.parents:
                os.utime(folder, (OLD, OLD))
    return made


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_sweep_removes_stale_leftovers_and_keeps_tables_landed_files_and_fresh_work(
    services: Services, acme: Principal
) -> None:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=b"id\n1\n")
    home, lakehouse = services.settings.resolved_home, services.settings.resolved_lakehouse_root
    before = tree(home)
    make_leftovers(home, lakehouse, acme.catalog)
    fresh = home / "tmp" / "uploads" / "upload-now.csv"  # an upload streaming in right now
    fresh.write_bytes(b"x")

    removed = sweep_leftovers(services)

    assert removed
    assert tree(home) - before == {"tmp/uploads", "tmp/uploads/upload-now.csv"}
    assert {p.name for p in (lakehouse / acme.catalog / "bronze").iterdir()} == {"people"}
    assert [f.path.rsplit("/", 1)[-1] for f in services.engine.list_files(acme.catalog, "bronze", "landing")] == [
        "people.csv"
    ]
    appended = uploads.upload_file(
        services, acme, file_name="more.csv", dataset_name="people", content=b"id\n2\n", mode="append"
    )
    assert appended.rows == 1


def test_tsunami_serve_sweeps_leftovers_when_it_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    catalog = "tenant_acme"
    made = make_leftovers(home, home / "lakehouse", catalog)
    with serving(tmp_path, workers=1):
        assert [p for p in made if p.exists()] == []
        assert not (home / "lakehouse" / catalog / "bronze" / "halfmade").exists()
        assert list((home / "lakehouse" / catalog / "_volumes" / "bronze" / "landing").iterdir()) == []
