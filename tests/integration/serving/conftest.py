"""A service whose configured model is the scripted fake LLM (OpenAI-compatible) on loopback, and a
tenant ``acme`` with a small table of orders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from servicetsunami.services.container import Services
from servicetsunami.settings import AISettings, Settings
from servicetsunami.tenancy import Principal, TableRef
from tests.fakes.llm import FakeLLM, running_fake_llm
from tests.helpers import make_principal

KEY = "sk-fake-serving"


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[FakeLLM]:
    with running_fake_llm() as fake:
        yield fake


@pytest.fixture
def llm(_llm_server: FakeLLM) -> FakeLLM:
    _llm_server.reset(KEY)
    return _llm_server


@pytest.fixture
def settings(tmp_path: Path, llm: FakeLLM) -> Settings:
    ai = AISettings(provider="openai", model="fake-model", api_key=KEY, base_url=llm.base_url("openai"))  # type: ignore[arg-type]  # pydantic turns str into SecretStr
    return Settings(home=tmp_path / "home", ai=ai, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()


def add_orders(svc: Services, principal: Principal) -> None:
    orders = pa.table({"id": [1, 2, 3], "region": ["north", "south", "north"], "amount": [10.0, 20.0, 12.5]})
    svc.engine.write_table(TableRef(principal.catalog, "silver", "orders"), orders.to_reader(), mode="create")


@pytest.fixture
def acme_key(services: Services) -> tuple[Principal, str]:
    principal, key = make_principal(services, "acme", role="engineer")
    add_orders(services, principal)
    return principal, key
