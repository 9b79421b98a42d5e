"""Logins and refresh-token rotation on both system stores (SQLite and PostgreSQL), including
refreshes of one token racing each other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.errors import AuthError
from servicetsunami.services.container import Services
from servicetsunami.services.identity import users
from servicetsunami.settings import Settings
from tests.integration.api.support import make_user
from tests.integration.test_store_postgres import _database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    if request.param == "sqlite":
        settings = Settings(home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
        svc = Services.open(settings)
        try:
            yield svc
        finally:
            svc.close()
        return
    with _database() as url:
        settings = Settings(home=tmp_path / "home", database_url=url, _env_file=None)  # type: ignore[call-arg]
        svc = Services.open(settings)
        try:
            yield svc
        finally:
            svc.close()


def test_racing_refreshes_of_one_token_let_exactly_one_through(any_store_services: Services) -> None:
    svc = any_store_services
    email, password = make_user(svc, "acme")
    pair = users.login(svc, email=email, password=password)
    assert svc.authenticate(pair.access_token).tenant_slug == "acme"
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def refresh() -> None:
        barrier.wait()
        try:
            users.refresh(svc, refresh_token=pair.refresh_token)
            outcomes.append("ok")
        except AuthError:
            outcomes.append("refused")

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok"] + ["refused"] * 5


def test_a_login_then_a_chain_of_refreshes_keeps_working(any_store_services: Services) -> None:
    svc = any_store_services
    email, password = make_user(svc, "acme", role="engineer")
    pair = users.login(svc, email=email.upper(), password=password)  # addresses are case-insensitive
    for _ in range(3):
        pair = users.refresh(svc, refresh_token=pair.refresh_token)
        assert svc.authenticate(pair.access_token).role.value == "engineer"
    with pytest.raises(AuthError):
        users.login(svc, email=email, password=password + "x")
