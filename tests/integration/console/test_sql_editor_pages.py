"""The SQL editor's chart, history and "Ask in words" over the ASGI app: explain_data's chart or one
made of the result's columns, suggest_query without a model and with the scripted one, the guard's
refusals, and the chart libraries sent compressed and only when a chart is drawn."""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.settings import AISettings, Settings
from tests.fakes.llm import FakeLLM, Scripted, running_fake_llm
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as
from tests.integration.serving.conftest import add_orders

SPEC = re.compile(r"data-spec='([^']+)'")
BY_REGION = "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region ORDER BY region"


def _post(client: TestClient, path: str, data: dict[str, str]) -> str:
    token = csrf_of(client.get("/sql").text)
    answer = client.post(path, data=data, headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text
    return answer.text


def _orders(services: Services) -> None:
    add_orders(services, make_principal(services, "acme", role="engineer")[0])


def test_a_chart_is_the_spec_explain_data_proposes_and_says_so(client: TestClient, services: Services) -> None:
    _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    html = _post(client, "/sql/chart", {"sql": BY_REGION})
    found = SPEC.search(html)
    assert found is not None
    spec = json.loads(found.group(1).replace("&#39;", "'"))
    assert spec["mark"] == "bar" and spec["encoding"]["x"]["field"] == "region"
    assert {"region": "north", "total": 22.5} in spec["data"]["values"]
    assert 'data-made-by="explain_data"' in html and "without a model" in html
    assert "vega-6.4.0.min.js" in html


def test_a_result_explain_data_does_not_chart_gets_a_bar_chart_of_its_first_text_and_number_columns(
    client: TestClient, services: Services
) -> None:
    _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    html = _post(client, "/sql/chart", {"sql": "SELECT id, region, amount FROM silver.orders WHERE id = 1"})
    found = SPEC.search(html)
    assert found is not None and 'data-made-by="columns"' in html
    spec = json.loads(found.group(1))
    assert spec["mark"] == "bar"
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == ("region", "id")


def test_a_result_without_a_text_and_a_number_column_says_there_is_no_chart(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="analyst")
    html = _post(client, "/sql/chart", {"sql": "SELECT 1 AS one"})
    assert 'data-made-by="none"' in html and "data-spec" not in html


def test_charting_a_statement_the_guard_refuses_shows_its_code(client: TestClient, services: Services) -> None:
    _orders(services)
    sign_in_as(client, services, "acme")
    token = csrf_of(client.get("/sql").text)
    refused = client.post(
        "/sql/chart", data={"sql": "DELETE FROM silver.orders"}, headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert refused.status_code == 400 and 'data-code="query_refused"' in refused.text
    forged = client.post("/sql/chart", data={"sql": BY_REGION}, headers={"HX-Request": "true"})
    assert forged.status_code == 403 and 'data-code="permission_denied"' in forged.text


def test_without_a_model_a_common_question_becomes_sql_for_the_editor_and_others_say_why_not(
    client: TestClient, services: Services
) -> None:
    _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    html = _post(client, "/sql/suggest", {"question": "how many orders"})
    assert 'data-answered-by="deterministic"' in html
    suggested = re.search(r'data-suggested-sql="([^"]+)"', html)
    assert suggested is not None and "count" in suggested.group(1).lower()
    cannot = _post(client, "/sql/suggest", {"question": "why did churn rise after the spring campaign"})
    assert 'data-code="cannot_answer"' in cannot and "TSUNAMI_AI__PROVIDER" in cannot
    empty = client.post(
        "/sql/suggest",
        data={"question": " "},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client.get("/sql").text)},
    )
    assert empty.status_code == 400 and 'data-code="invalid_input"' in empty.text


@pytest.fixture
def modelled(tmp_path: pathlib.Path) -> Iterator[tuple[Services, FakeLLM]]:
    with running_fake_llm() as llm:
        llm.reset("sk-fake-editor")
        ai = AISettings(
            provider="openai", model="fake-model", api_key="sk-fake-editor", base_url=llm.base_url("openai")
        )  # type: ignore[arg-type]  # pydantic turns str into SecretStr
        services = Services.open(Settings(home=tmp_path / "home", ai=ai, _env_file=None))  # type: ignore[call-arg]  # pydantic-settings option
        try:
            yield services, llm
        finally:
            services.close()


def test_with_a_model_the_suggestion_names_it_and_the_sql_passed_the_guard(
    modelled: tuple[Services, FakeLLM],
) -> None:
    services, llm = modelled
    _orders(services)
    llm.script = [
        Scripted(text="```sql\nSELECT region, COUNT(*) AS n FROM silver.orders GROUP BY region\n```\nCounts.")
    ]
    with TestClient(create_app(services.settings, services=services), follow_redirects=False) as client:
        sign_in_as(client, services, "acme", role="analyst")
        html = _post(client, "/sql/suggest", {"question": "orders per region"})
    assert 'data-answered-by="openai"' in html and "fake-model" in html
    assert "GROUP BY region" in html


def test_the_chart_libraries_load_only_with_a_chart_and_cross_the_wire_compressed(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="analyst")
    editor = client.get("/sql").text
    assert "vega" not in " ".join(re.findall(r'<script src="([^"]+)"', editor))
    raw = client.get("/console/static/vega-6.4.0.min.js", headers={"Accept-Encoding": "identity"})
    packed = client.get("/console/static/vega-6.4.0.min.js", headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("content-encoding") is None and packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < int(raw.headers["content-length"]) / 2
    assert packed.content == raw.content  # httpx undoes the gzip
    again = client.get(
        "/console/static/vega-6.4.0.min.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]},
    )
    assert again.status_code == 304


def test_with_a_model_the_chart_caption_names_the_model_that_wrote_its_summary(
    modelled: tuple[Services, FakeLLM],
) -> None:
    services, llm = modelled
    _orders(services)
    llm.script = [Scripted(text="North sells more than south.")]
    with TestClient(create_app(services.settings, services=services), follow_redirects=False) as client:
        sign_in_as(client, services, "acme", role="analyst")
        html = _post(client, "/sql/chart", {"sql": BY_REGION})
    assert 'data-made-by="explain_data"' in html
    assert "by openai (fake-model)" in html and "North sells more than south." in html


def test_the_code_editor_loads_only_on_pages_that_edit_code_and_crosses_the_wire_compressed(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="analyst")

    def scripts(path: str) -> list[str]:
        return re.findall(r'<script src="([^"]+)"', client.get(path).text)

    editor = scripts("/sql")
    assert [s.rsplit("/", 1)[1] for s in editor[-3:]] == [
        "codemirror-5.65.21.min.js",
        "codemirror-5.65.21-sql.min.js",
        "editor.js",
    ]
    assert 'data-editor="text/x-sparksql"' in client.get("/sql").text
    assert not any("codemirror" in s or "editor.js" in s for s in scripts("/") + scripts("/datasets"))
    for src in editor[-3:-1]:  # CodeMirror and its mode (editor.js is too small to gain from it)
        packed = client.get(src, headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
    assert client.get("/console/static/codemirror-LICENSE.txt").status_code == 200
