"""What ``path=`` uploads may read: any file in single-user mode; in multi-tenant mode only the
caller's tenant drop folder (``ingest.path_folder``), never the service's own files, not even
through a link; the stdio server, which reads with the rights of its OS user, included."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from pydantic import SecretStr

from servicetsunami.errors import InvalidInput, PathNotAllowed
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.settings import IngestSettings, Settings
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal
from tests.integration.mcp.support import WAIT_SECONDS, error_code, result_text
from tests.integration.mcp.test_stdio import launch_env, tsunami_mcp_command

CSV = b"id,name\n1,ann\n2,bob\n"
JWT_SECRET = "path-policy-" + "k" * 40  # multi-tenant mode wants a strong signing key


@pytest.fixture
def drops(tmp_path: Path) -> Path:
    for tenant in ("acme", "globex"):
        (tmp_path / "drops" / tenant).mkdir(parents=True)
    (tmp_path / "drops" / "acme" / "ok.csv").write_bytes(CSV)
    (tmp_path / "drops" / "globex" / "theirs.csv").write_bytes(CSV)
    (tmp_path / "elsewhere.csv").write_bytes(CSV)
    return tmp_path / "drops"


def _multi_tenant(settings: Settings, folder: str) -> Services:
    return Services.open(
        settings.model_copy(
            update={
                "multi_tenant": True,
                "ingest": IngestSettings(path_folder=folder),
                "auth": settings.auth.model_copy(update={"jwt_secret": SecretStr(JWT_SECRET)}),
            }
        )
    )


@pytest.fixture
def hosted(services: Services, drops: Path) -> Iterator[tuple[Services, Principal]]:
    """The same home served in multi-tenant mode, with a drop folder per tenant."""
    acme, _ = make_principal(services, "acme")
    hosted = _multi_tenant(services.settings, str(drops / "{tenant}"))
    try:
        yield hosted, acme
    finally:
        hosted.close()


def _upload(svc: Services, principal: Principal, path: Path) -> Any:
    return uploads.upload_file(svc, principal, file_name="f.csv", dataset_name="f", path=path)


def test_multi_tenant_mode_reads_a_file_in_the_callers_drop_folder(
    hosted: tuple[Services, Principal], drops: Path
) -> None:
    svc, acme = hosted
    assert _upload(svc, acme, drops / "acme" / "ok.csv").rows == 2
    assert query_sql(svc, acme, "SELECT count(*) FROM bronze.f").rows == [[2]]


def test_multi_tenant_mode_refuses_files_outside_the_drop_folder_of_the_caller(
    hosted: tuple[Services, Principal], drops: Path, tmp_path: Path
) -> None:
    svc, acme = hosted
    home = svc.settings.resolved_home
    link = drops / "acme" / "link.csv"
    link.symlink_to(drops / "globex" / "theirs.csv")
    escape = drops / "acme" / "up"
    escape.symlink_to(tmp_path)
    secrets = sorted(p for p in home.rglob("*") if p.is_file())
    assert secrets, "the service's home holds its keys and store"

    for path in [
        tmp_path / "elsewhere.csv",
        drops / "globex" / "theirs.csv",
        drops / "acme" / ".." / "globex" / "theirs.csv",
        link,
        escape / "elsewhere.csv",
        tmp_path / "missing.csv",
        drops / "acme",
        *secrets[:3],
    ]:
        with pytest.raises(PathNotAllowed) as refused:
            _upload(svc, acme, path)
        assert refused.value.code == "path_not_allowed" and str(tmp_path) not in refused.value.message, path
    assert not svc.engine.table_exists(TableRef(acme.catalog, "bronze", "f"))


def test_a_drop_folder_inside_the_services_home_still_keeps_its_files_out(services: Services, tmp_path: Path) -> None:
    acme, _ = make_principal(services, "acme")
    hosted = _multi_tenant(services.settings, str(services.settings.resolved_home))
    try:
        key_files = [p for p in services.settings.resolved_home.rglob("*") if p.is_file()]
        with pytest.raises(PathNotAllowed):
            _upload(hosted, acme, key_files[0])
    finally:
        hosted.close()


def test_a_missing_file_inside_the_drop_folder_is_said_so(hosted: tuple[Services, Principal], drops: Path) -> None:
    svc, acme = hosted
    with pytest.raises(InvalidInput) as missing:
        _upload(svc, acme, drops / "acme" / "nope.csv")
    assert missing.value.code == "invalid_input"


def test_without_a_drop_folder_multi_tenant_mode_refuses_every_path(services: Services, drops: Path) -> None:
    acme, _ = make_principal(services, "acme")
    hosted = _multi_tenant(services.settings, "")
    try:
        with pytest.raises(PathNotAllowed):
            _upload(hosted, acme, drops / "acme" / "ok.csv")
        sent = uploads.upload_file(hosted, acme, file_name="f.csv", dataset_name="f", content=CSV)
        assert sent.rows == 2  # bytes are always accepted
    finally:
        hosted.close()


def test_single_user_mode_reads_any_file_the_user_can(services: Services, acme: Principal, drops: Path) -> None:
    assert _upload(services, acme, drops.parent / "elsewhere.csv").rows == 2


async def test_the_stdio_server_in_multi_tenant_mode_refuses_a_path_outside_the_drop_folder(
    services: Services, drops: Path, tmp_path: Path
) -> None:
    _, key = make_principal(services, "acme")
    command, *args = tsunami_mcp_command()
    env = launch_env(services, key) | {
        "TSUNAMI_MULTI_TENANT": "true",
        "TSUNAMI_INGEST__PATH_FOLDER": str(drops / "{tenant}"),
        "TSUNAMI_AUTH__JWT_SECRET": JWT_SECRET,
    }
    transport = StdioTransport(command, args, env=env, cwd=str(tmp_path), keep_alive=False)
    async with Client(transport, timeout=WAIT_SECONDS * 2) as client:
        refused = await client.call_tool_mcp(
            "upload_file", {"file_name": "x.csv", "dataset_name": "x", "path": str(tmp_path / "elsewhere.csv")}
        )
        allowed = await client.call_tool_mcp(
            "upload_file", {"file_name": "ok.csv", "dataset_name": "ok", "path": str(drops / "acme" / "ok.csv")}
        )
    assert error_code(refused) == "path_not_allowed"
    assert str(tmp_path) not in result_text(refused)
    assert not allowed.is_error, result_text(allowed)
    assert os.path.exists(drops / "acme" / "ok.csv")
