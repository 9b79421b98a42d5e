"""The console in a real browser: Debian's Chromium driven by Playwright (no browser download), over
a real server. Each journey saves screenshots under ``test-artifacts/console/``, each one after an
accessibility check (axe-core) that fails on any serious violation, and a page that logs an error to
the browser's console (a script refused by the content policy, a failed request) fails.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.serving import agents
from servicetsunami.services.transforms import silver
from servicetsunami.settings import AISettings, Settings
from servicetsunami.store.repositories import runs as runs_repo
from tests.fakes.llm import Scripted, running_fake_llm
from tests.helpers import make_principal
from tests.integration.api.support import make_user
from tests.integration.live_server import live_server
from tests.integration.oauth.support import REDIRECT_URI, Pkce, authorization_url, exchange, register
from tests.integration.pipelines.support import create, sql_task
from tests.integration.serving.conftest import add_orders
from tests.integration.vectors.conftest import build_index, write_source

ARTIFACTS = pathlib.Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
CHROMIUM = os.environ.get("TSUNAMI_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
AXE = pathlib.Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
WAIT_MS = 20_000
REFUSAL_SHOWN = re.compile(r"Failed to load resource: the server responded with a status of 4(00|03|09|13|22)\b")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert pathlib.Path(CHROMIUM).exists(), f"Chromium is needed at {CHROMIUM} (Debian package `chromium`)"
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A refusal the page shows (the guard's 400, a role's 403) is logged by the browser as a
        # failed load; anything else (a script the policy blocked, a script error) fails the test.
        if message.type == "error" and not REFUSAL_SHOWN.match(message.text):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"the browser logged errors: {errors}"


def _shot(page: Page, name: str) -> None:
    """A screenshot of the page, after checking it has no serious accessibility violation."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    _accessible(page, name)


def _accessible(page: Page, name: str) -> None:
    """axe-core (vendored, MPL-2.0) over the page as shown: no serious or critical violation."""
    page.evaluate(AXE.read_text())
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
    serious = [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == [], f"{name}: {serious}"


def _sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/datasets")
    expect(page).to_have_url(f"{base}/signin?next=%2Fdatasets")
    _shot(page, "01-sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/datasets")


def _write_sql(page: Page, sql: str) -> None:
    """Replace the SQL editor's text by typing it, as a person does (select all, then type)."""
    expect(page.locator("textarea#sql")).to_be_hidden()  # the code editor has taken the textarea's place
    editor = page.get_by_label("Databricks SQL")
    editor.press("Control+a")
    editor.press_sequentially(sql)


def test_a_new_user_uploads_a_file_previews_it_and_queries_it_in_the_browser(
    services: Services, page: Page, tmp_path: pathlib.Path
) -> None:
    email, password = make_user(services, "acme", role="engineer")
    csv = tmp_path / "sales.csv"
    csv.write_text("id,region,amount\n1,north,10.5\n2,south,3.25\n3,north,7.0\n")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        expect(page.get_by_text("No datasets yet")).to_be_visible()
        _shot(page, "02-datasets-empty")

        page.get_by_label("File (CSV, TSV, Excel, Parquet, JSON, NDJSON)").set_input_files(str(csv))
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_contain_text("bronze.sales")
        expect(page.locator("#dataset-list")).to_contain_text("bronze.sales")  # refreshed in place
        _shot(page, "03-datasets-uploaded")

        page.locator("#dataset-list").get_by_role("link", name="sales").click()
        expect(page.get_by_role("heading", name="sales")).to_be_visible()
        expect(page.locator(".result")).to_contain_text("north")
        _shot(page, "04-dataset-preview")

        page.get_by_role("link", name="Query").first.click()
        expect(page.locator("textarea#sql")).to_have_value("SELECT * FROM bronze.sales LIMIT 100")
        _write_sql(page, "SELECT region, SUM(amount) AS total FROM bronze.sales GROUP BY region ORDER BY region")
        page.get_by_label("Databricks SQL").press("Control+Enter")
        expect(page.locator("#result")).to_contain_text("17.5")
        expect(page.locator("#result th").first).to_contain_text("region")
        _shot(page, "05-sql-result")

        _write_sql(page, "DELETE FROM bronze.sales")
        page.get_by_role("button", name="Run").click()
        expect(page.locator("#result [role=alert]")).to_be_visible()
        _shot(page, "06-sql-refused")

        page.goto(f"{base}/")
        expect(page.locator("dl.figures")).to_contain_text("3")
        _shot(page, "07-overview")


def test_an_analyst_sees_the_data_but_no_upload_form(services: Services, page: Page) -> None:
    email, password = make_user(services, "acme", role="analyst")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        expect(page.get_by_text("An engineer of your team can upload one")).to_be_visible()
        expect(page.locator("form#upload")).to_have_count(0)
        _shot(page, "08-datasets-analyst")


def test_a_pipeline_is_run_from_its_page_and_its_run_updates_live_to_the_end(services: Services, page: Page) -> None:
    owner = make_principal(services, "acme")[0]
    create(
        services,
        owner,
        "nightly",
        [
            sql_task("extract", "CREATE OR REPLACE TABLE silver.raw AS SELECT 1 AS one"),
            sql_task("report", "CREATE OR REPLACE TABLE gold.report AS SELECT * FROM silver.raw", "extract"),
        ],
        parameters={"region": "north"},
    )
    email, password = make_user(services, "acme", role="engineer")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Pipelines").click()
        page.get_by_role("link", name="nightly").click()
        expect(page.locator(".dag-task")).to_have_count(2)
        _shot(page, "10-pipeline")
        page.get_by_label("region").fill("south")
        page.get_by_role("button", name="Run pipeline").click()
        expect(page.locator("#run [data-state]")).to_have_attribute("data-state", "succeeded")  # without a reload
        expect(page.locator('#run tr[data-task="report"]')).to_contain_text("succeeded")
        _shot(page, "11-pipeline-run")


def test_a_notebook_is_executed_with_a_parameter_and_its_cells_fill_in_as_it_runs(
    services: Services, page: Page
) -> None:
    owner = make_principal(services, "acme")[0]
    cells = [
        {"source": 'dbutils.widgets.text("who", "world")'},
        {"source": 'print("hello " + dbutils.widgets.get("who"))'},
        {"source": 'display(spark.sql("SELECT 6 * 7 AS answer"))'},
    ]
    notebooks.create_notebook(services, owner, "/team/hello", cells=cells)
    email, password = make_user(services, "acme", role="engineer")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Notebooks").click()
        page.get_by_role("link", name="/team/hello").click()
        expect(page.locator(".cell")).to_have_count(3)
        _shot(page, "20-notebook")
        page.get_by_label("Parameters").fill("who=console")
        page.get_by_role("button", name="Execute").click()
        expect(page.locator("#run [data-state]")).to_have_attribute("data-state", "succeeded", timeout=120_000)
        expect(page.locator("#run")).to_contain_text("hello console")
        expect(page.locator("#run table")).to_contain_text("42")
        _shot(page, "21-notebook-run")


def test_an_agent_is_deployed_and_answers_in_the_test_chat(page: Page, tmp_path: pathlib.Path) -> None:
    with running_fake_llm() as llm:
        llm.reset("sk-fake-browser")
        ai = AISettings(
            provider="openai", model="fake-model", api_key="sk-fake-browser", base_url=llm.base_url("openai")
        )  # type: ignore[arg-type]  # pydantic turns str into SecretStr
        settings = Settings(home=tmp_path / "home", ai=ai, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
        services = Services.open(settings)
        try:
            owner = make_principal(services, "acme", role="engineer")[0]
            add_orders(services, owner)
            agents.create_agent(services, owner, "analyst", instructions="Answer from the orders table.")
            email, password = make_user(services, "acme", role="engineer")
            with live_server(services) as base:
                _sign_in(page, base, email, password)
                page.get_by_role("link", name="Agents").click()
                page.get_by_role("link", name="analyst").first.click()
                _shot(page, "30-agent")
                page.get_by_label("Endpoint name").fill("orders-bot")
                page.get_by_role("button", name="Deploy").click()
                expect(page.locator("#endpoint [data-state]")).to_have_attribute("data-state", "READY")
                llm.script = [
                    Scripted(tool_calls=[("query_sql", {"sql": "SELECT COUNT(*) AS n FROM silver.orders"})]),
                    Scripted(text="There are 3 orders."),
                ]
                page.get_by_label("Message").fill("How many orders?")
                page.get_by_role("button", name="Send").click()
                expect(page.locator("#chat-log .turn-assistant")).to_contain_text("There are 3 orders.")
                expect(page.get_by_label("Message")).to_have_value("")
                _shot(page, "31-endpoint-chat")
        finally:
            services.close()


def test_a_bronze_table_is_cleaned_into_silver_with_a_live_preview(
    services: Services, page: Page, tmp_path: pathlib.Path
) -> None:
    email, password = make_user(services, "acme", role="engineer")
    csv = tmp_path / "orders.csv"
    csv.write_text("Order ID,Region,Amount\n1, north ,10.5\n2,south,3.25\n")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_label("File (CSV, TSV, Excel, Parquet, JSON, NDJSON)").set_input_files(str(csv))
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_contain_text("bronze.orders")
        page.get_by_role("link", name="Silver & gold").click()
        page.get_by_role("link", name="Clean into silver").click()
        expect(page.locator("#preview table")).to_contain_text("order_id")  # previewed on load
        page.get_by_label("Cleaning spec").fill('{"rename": {"order_id": "id"}}')
        expect(page.locator("#preview thead")).to_contain_text("id")
        expect(page.locator("#preview thead")).not_to_contain_text("order_id")  # updated as typed
        _shot(page, "40-silver-preview")
        page.get_by_role("button", name="Build silver").click()
        expect(page.locator('[data-layer="silver"]')).to_contain_text("silver.orders")
        _shot(page, "41-layers")


def test_the_sql_editor_charts_a_result_keeps_its_history_and_turns_words_into_sql(
    services: Services, page: Page
) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    add_orders(services, owner)
    email, password = make_user(services, "acme", role="analyst")
    scripts: list[tuple[str, str | None]] = []
    page.on(
        "response", lambda r: scripts.append((r.url, r.headers.get("content-encoding"))) if ".js" in r.url else None
    )
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.goto(f"{base}/sql")
        expect(page.locator("#history")).to_contain_text("Statements you run show here")
        assert not any("vega" in url for url, _ in scripts)  # the chart libraries wait for a chart
        _write_sql(page, "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region ORDER BY region")
        page.get_by_role("button", name="Chart").click()
        expect(page.locator(".vega-chart")).to_have_attribute("data-drawn", "true")
        expect(page.locator(".vega-chart svg")).to_have_count(1)
        expect(page.locator("figcaption")).to_contain_text("explain_data")
        expect(page.locator("figcaption")).to_contain_text("without a model")
        assert {encoding for url, encoding in scripts if "vega" in url} == {"gzip"}
        page.get_by_role("button", name="Run").click()
        expect(page.locator("#result")).to_contain_text("22.5")
        expect(page.locator(".vega-chart svg")).to_have_count(1)  # the chart of this very statement stays
        _shot(page, "50-sql-chart-history")
        _write_sql(page, "SELECT COUNT(*) AS n FROM silver.orders")
        page.get_by_label("Databricks SQL").press("Control+Enter")
        expect(page.locator("#result")).to_contain_text("3")
        expect(page.locator("#history li")).to_have_count(2)
        expect(page.locator("#chart figure")).to_have_count(0)  # another statement's result: no stale chart

        page.locator("#history").get_by_role("button", name="SELECT region").click()  # runs it again
        expect(page.locator("#result")).to_contain_text("22.5")
        expect(page.locator("#history li").first).to_contain_text("SELECT region")

        page.get_by_label("Ask in words").fill("how many orders")
        page.get_by_role("button", name="Suggest SQL").click()
        expect(page.locator("#suggestion")).to_contain_text("Answered without a model")
        expect(page.locator("textarea#sql")).to_have_value(re.compile(r"count.*orders", re.IGNORECASE))
        expect(page.locator(".CodeMirror")).to_contain_text(re.compile(r"count.*orders", re.IGNORECASE))
        expect(page.locator("#result")).to_contain_text("22.5")  # suggested, not run
        page.get_by_label("Ask in words").fill("why did churn rise after the spring campaign")
        page.get_by_role("button", name="Suggest SQL").click()
        expect(page.locator("#suggestion [role=alert]")).to_be_visible()
        _shot(page, "51-sql-ask")


def test_sql_typed_into_the_code_editor_is_highlighted_and_runs_with_ctrl_enter(services: Services, page: Page) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    add_orders(services, owner)
    email, password = make_user(services, "acme", role="analyst")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.goto(f"{base}/sql")
        expect(page.locator("textarea#sql")).to_be_hidden()  # enhanced: the editor shows its text
        page.get_by_text("Databricks SQL").click()  # the label leads to the editor
        editor = page.get_by_label("Databricks SQL")
        expect(editor).to_be_focused()
        editor.press_sequentially("SELECT region, COUNT(*) AS n\nFROM silver.orders GROUP BY region ORDER BY region")
        expect(page.locator(".CodeMirror .cm-keyword").first).to_have_text(re.compile("select", re.IGNORECASE))
        expect(page.locator(".CodeMirror-line")).to_have_count(2)
        editor.press("Control+Enter")
        rows = page.locator("#result tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator("td")).to_have_text(["north", "2"])
        expect(rows.nth(1).locator("td")).to_have_text(["south", "1"])
        expect(page.locator("#history li")).to_have_count(1)
        editor.press("Tab")  # no keyboard trap: Tab goes on to the Run button
        expect(page.get_by_role("button", name="Run")).to_be_focused()
        _shot(page, "59-sql-code-editor")


def test_a_notebook_cell_is_edited_in_the_code_editor_and_saved_as_a_new_version(
    services: Services, page: Page
) -> None:
    owner = make_principal(services, "acme")[0]
    notebooks.create_notebook(services, owner, "/team/edit", cells=[{"source": "x = 1"}])
    email, password = make_user(services, "acme", role="engineer")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Notebooks").click()
        page.get_by_role("link", name="/team/edit").click()
        expect(page.locator(".cell .CodeMirror .cm-variable").first).to_have_text("x")  # Python, highlighted
        cell = page.get_by_label("Cell 0")
        cell.press("Control+End")
        cell.press_sequentially("\nprint(x + 1)")
        page.get_by_role("button", name="Save cells").click()
        expect(page.get_by_text("version 2")).to_be_visible()
        expect(page.locator(".cell .CodeMirror")).to_contain_text("print(x + 1)")
        _shot(page, "22-notebook-code-editor")
    saved = notebooks.get_notebook(services, owner, page.url.rsplit("/", 1)[1])
    assert saved.cells[0].source == "x = 1\nprint(x + 1)"  # a form's CRLF line breaks are not kept


def test_a_dataset_page_shows_lineage_a_profile_on_demand_and_an_earlier_version(
    services: Services, page: Page
) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    uploads.upload_file(services, owner, file_name="orders.csv", dataset_name="orders", content=b"id,region\n1,north\n")
    uploads.upload_file(
        services, owner, file_name="more.csv", dataset_name="orders", content=b"id,region\n2,east\n", mode="append"
    )
    silver.transform_to_silver(services, owner, "bronze.orders")
    email, password = make_user(services, "acme", role="analyst")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.locator("#dataset-list").get_by_role("link", name="orders").click()
        expect(page.locator("#downstream")).to_contain_text("silver.orders")
        page.get_by_role("button", name="Profile the table").click()
        expect(page.locator("#profile .profile")).to_have_attribute("data-rows", "2")
        page.get_by_label("Version").select_option("0")
        page.get_by_role("button", name="Preview as of this version").click()
        expect(page.locator("#as-of")).to_contain_text("As of version 0")
        expect(page.locator("#as-of")).to_contain_text("north")
        expect(page.locator("#as-of")).not_to_contain_text("east")
        _shot(page, "52-dataset-lineage-profile-as-of")


def test_a_vector_index_is_found_in_the_list_and_searched_in_words(services: Services, page: Page) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    write_source(
        services,
        owner,
        "docs",
        [
            {"id": 1, "body": "how to reset a forgotten password"},
            {"id": 2, "body": "refunds are paid back within five days"},
        ],
    )
    build_index(services, owner, "help", "gold.docs")
    email, password = make_user(services, "acme", role="analyst")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Vectors").click()
        expect(page.locator('tr[data-index="help"]')).to_contain_text("ready")
        _shot(page, "53-vector-indexes")
        page.get_by_role("link", name="help").click()
        expect(page.get_by_role("button", name="Sync now")).to_have_count(0)
        page.get_by_label("Search for").fill("password reset")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#hits tbody tr").first).to_contain_text("forgotten password")
        _shot(page, "54-vector-search")


def test_an_engineer_creates_a_vector_index_from_a_table_sees_it_built_and_searches_it(
    services: Services, page: Page
) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    write_source(
        services,
        owner,
        "faq",
        [
            {"id": 1, "body": "how to reset a forgotten password"},
            {"id": 2, "body": "refunds are paid back within five days"},
        ],
    )
    email, password = make_user(services, "acme", role="engineer")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Vectors").click()
        page.get_by_label("Index name").fill("answers")
        page.get_by_label("Source table").fill("gold.faq")
        page.get_by_label("Key column").fill("id")
        page.get_by_label("Text column").fill("nope")
        page.get_by_role("button", name="Create index").click()
        expect(page.locator("[role=alert]")).to_have_attribute("data-code", "invalid_input")
        expect(page.get_by_label("Index name")).to_have_value("answers")  # kept for the correction
        _shot(page, "60-vector-create-refused")
        page.get_by_label("Text column").fill("body")
        page.get_by_role("button", name="Create index").click()
        expect(page).to_have_url(f"{base}/vectors/answers")
        expect(page.locator("[data-state]")).to_have_attribute("data-state", "ready", timeout=120_000)  # in place
        page.get_by_role("link", name="Vector indexes").click()
        expect(page.locator('tr[data-index="answers"]')).to_contain_text("gold.faq")
        _shot(page, "61-vector-created")
        page.get_by_role("link", name="answers").click()
        page.get_by_label("Search for").fill("money back")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#hits tbody tr").first).to_contain_text("refunds")


def test_a_platform_admin_creates_a_tenant_whose_first_admin_signs_in_to_it(services: Services, page: Page) -> None:
    email, password = make_user(services, "acme", role="admin", platform_admin=True)
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Admin").click()
        page.get_by_label("Slug").fill("Globex Corp")
        page.get_by_role("button", name="Create tenant").click()
        expect(page.locator("[role=alert]")).to_have_attribute("data-code", "invalid_identifier")
        _shot(page, "62-tenant-refused")
        page.get_by_label("Slug").fill("globex")
        page.get_by_label("Tenant name").fill("Globex Corporation")
        page.get_by_label("First admin's e-mail").fill("boss@globex.example")
        page.get_by_label("First admin's password").fill("a-long-password-1")
        page.get_by_role("button", name="Create tenant").click()
        expect(page.get_by_role("status")).to_contain_text("globex")
        _shot(page, "63-tenant-created")
        page.get_by_role("button", name="Sign out").click()
        page.goto(f"{base}/signin")
        page.get_by_label("E-mail").fill("boss@globex.example")
        page.get_by_label("Password").fill("a-long-password-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("header .who")).to_contain_text("globex · admin")


def test_the_overview_draws_the_last_two_weeks_of_syncs_and_runs_without_script(services: Services, page: Page) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    with services.store.session() as session:
        for kind in ("sync", "sync", "job_run"):
            run = runs_repo.create_run(
                session, tenant_id=owner.tenant_id, kind=kind, subject="s", role="engineer", params={}
            )
            run.state = "succeeded"
    email, password = make_user(services, "acme", role="analyst")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Overview").click()
        chart = page.get_by_role("img", name=re.compile("Syncs and runs, last 14 days"))
        expect(chart).to_be_visible()
        expect(page.locator('svg.day-chart rect[data-series="syncs"]')).to_have_attribute("data-count", "2")
        _shot(page, "55-overview-activity")


def test_a_pipelines_schedule_is_set_and_paused_from_its_page(services: Services, page: Page) -> None:
    owner = make_principal(services, "acme")[0]
    create(services, owner, "nightly", [sql_task("extract", "CREATE OR REPLACE TABLE silver.raw AS SELECT 1 AS one")])
    email, password = make_user(services, "acme", role="engineer")
    with live_server(services) as base:
        _sign_in(page, base, email, password)
        page.get_by_role("link", name="Pipelines").click()
        page.get_by_role("link", name="nightly").click()
        expect(page.locator("#schedule")).to_contain_text("No schedule")
        page.get_by_label("Quartz expression").fill("0 0 6 * * ?")
        page.get_by_role("button", name="Save schedule").click()
        expect(page.locator("#schedule .fire-times time").first).to_be_visible()
        _shot(page, "56-pipeline-schedule")
        page.get_by_role("button", name="Pause schedule").click()
        expect(page.locator("#schedule [data-paused]")).to_have_attribute("data-paused", "true")
        expect(page.get_by_role("button", name="Resume schedule")).to_be_visible()


def test_an_mcp_client_is_allowed_on_the_consent_page_and_shows_up_on_the_admin_page(
    services: Services, page: Page
) -> None:
    email, password = make_user(services, "acme", role="admin")
    pkce = Pkce.new()
    with live_server(services) as base:
        client_id = register(base, client_name="Claude").json()["client_id"]
        landed: list[str] = []

        def app_callback(route: Route) -> None:  # the app's own listener, on the user's machine
            landed.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>Connected</title>")

        page.route(f"{REDIRECT_URI}**", app_callback)
        page.goto(base + authorization_url(client_id, pkce, state="browser-state"))
        expect(page).to_have_url(re.compile(re.escape(f"{base}/signin?next=")))
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

        expect(page.get_by_role("heading", name="Allow Claude to use ServiceTsunami as you?")).to_be_visible()
        expect(page.locator("#consent-tenant")).to_have_text("acme")
        expect(page.locator("#consent-role")).to_have_text("admin")
        expect(page.locator("#consent-redirect")).to_have_text("http://127.0.0.1:43117")
        _shot(page, "57-oauth-consent")
        page.get_by_role("button", name="Allow").click()  # the policy lets the form lead to the app
        expect(page).to_have_title("Connected")
        params = parse_qs(urlsplit(landed[0]).query)
        assert params["state"] == ["browser-state"] and params["iss"] == [base]
        assert exchange(base, client_id, params["code"][0], pkce.verifier).status_code == 200

        page.goto(f"{base}/admin")
        expect(page.locator("tr[data-grant]")).to_contain_text("Claude")
        _shot(page, "58-admin-oauth-grants")
        page.get_by_role("button", name=f"Revoke Claude for {email}").click()
        expect(page.locator("tr[data-grant]")).to_contain_text("revoked")
