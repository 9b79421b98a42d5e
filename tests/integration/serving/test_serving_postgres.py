"""Agents, endpoints, invocations and conversations with the system store on PostgreSQL: the same
service calls, concurrent invocations all counted in the endpoint's usage."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.services.serving import agents, chat, endpoints
from servicetsunami.settings import Settings
from tests.fakes.llm import FakeLLM, Scripted
from tests.helpers import make_principal
from tests.integration.serving.conftest import add_orders
from tests.integration.test_store_postgres import _database


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    with _database() as url:
        svc = Services.open(settings.model_copy(update={"database_url": url}))
        try:
            yield svc
        finally:
            svc.close()


def test_serving_works_the_same_on_postgres(services: Services, llm: FakeLLM) -> None:
    assert services.store.dialect == "postgresql"
    acme, _ = make_principal(services, "acme", role="engineer")
    add_orders(services, acme)
    agents.create_agent(services, acme, "sales")
    assert endpoints.deploy_agent(services, acme, "sales", "sales-ep").state == "READY"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: endpoints.invoke_endpoint(services, acme, "sales-ep", body), range(8)))
    assert all(a["choices"][0]["message"]["content"] == "an answer" for a in answers)
    usage = endpoints.get_endpoint(services, acme, "sales-ep").usage
    assert usage.requests == 8 and usage.errors == 0
    llm.script = [
        Scripted(tool_calls=[("query_sql", {"sql": "SELECT count(*) FROM silver.orders"})]),
        Scripted(text="3"),
    ]
    said = chat.chat_message(services, acme, "how many?")
    assert said.message == "3" and said.tool_calls[0]["rows"] == 1
    kept = chat.get_conversation(services, acme, said.conversation_id)
    assert [m["role"] for m in kept.messages] == ["user", "assistant", "tool", "assistant"]
