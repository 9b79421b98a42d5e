"""The MCP tools and resources through a real in-memory client, as ``tsunami mcp`` serves them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mcp.types as mcp_types
import pytest
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import MCPError

from servicetsunami import logs
from servicetsunami.mcp.errors import INTERNAL_ERROR_MESSAGE
from servicetsunami.services.catalog import query as query_service
from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.mcp.support import (
    SALES_CSV,
    Keys,
    b64,
    error_code,
    local_client,
    result_text,
    upload_sales,
)


async def test_an_uploaded_csv_can_be_listed_described_and_queried(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        uploaded = await client.call_tool_mcp(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        assert not uploaded.is_error, result_text(uploaded)
        assert uploaded.structured_content is not None
        assert uploaded.structured_content["table"] == "bronze.sales"
        assert uploaded.structured_content["rows"] == 3
        # The text block carries the same JSON, for clients that ignore structured content.
        assert json.loads(result_text(uploaded)) == uploaded.structured_content

        listed = await client.call_tool_mcp("list_tables", {})
        assert listed.structured_content is not None
        tables = listed.structured_content["tables"]
        assert [(t["schema"], t["name"], t["rows"]) for t in tables] == [("bronze", "sales", 3)]

        described = await client.call_tool_mcp("describe_table", {"table_name": "bronze.sales"})
        assert described.structured_content is not None
        columns = [c["name"] for c in described.structured_content["columns"]]
        assert columns[:3] == ["id", "region", "amount"]

        queried = await client.call_tool_mcp(
            "query_sql",
            {"sql": "SELECT region, SUM(amount) AS total FROM bronze.sales GROUP BY region ORDER BY 1"},
        )
        assert queried.structured_content is not None
        assert queried.structured_content["rows"] == [["north", 17.5], ["south", 3.25]]
        assert queried.structured_content["truncated"] is False


async def test_results_validate_against_the_published_output_schemas(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        await upload_sales(client)
        # call_tool (unlike call_tool_mcp) makes the client validate structured content against the
        # tool's outputSchema, so a drift between the two fails here.
        for name, arguments in [
            ("list_tables", {}),
            ("describe_table", {"table_name": "sales"}),
            ("query_sql", {"sql": "SELECT * FROM bronze.sales"}),
            ("execute_dbsql", {"sql": "SELECT * FROM bronze.sales", "wait_seconds": 10}),
            ("health", {}),
            ("metrics", {}),
        ]:
            result = await client.call_tool(name, arguments)
            assert result.structured_content is not None


async def test_tool_annotations_say_which_tools_only_read(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        tools = {tool.name: tool for tool in await client.list_tools()}
    assert set(tools) == {
        "upload_file",
        "list_tables",
        "describe_table",
        "query_sql",
        "execute_dbsql",
        "get_statement",
        "cancel_statement",  # long statements
        "health",  # the lakehouse
        "metrics",  # the tenant's own figures; status needs the admin role
        "test_connection",
        "list_source_kinds",
        "list_source_tables",
        "sync_table_to_bronze",
        "get_sync_status",
        "cancel_sync",
        "list_syncs",  # data sources; connect_postgres and connect_source need the admin role
        "transform_to_silver",
        "preview_transform",
        "create_gold_table",
        "refresh_gold_table",
        "get_lineage",
        "profile_table",  # silver, gold, lineage; set_mask_pii needs the admin role
        "analyze_schema",
        "suggest_query",
        "explain_data",  # AI-assisted
        "list_warehouses",
        "get_warehouse",  # warehouses; start_warehouse needs the admin role
        "get_run",
        "list_runs",
        "cancel_run",  # runs of any kind
        "list_jobs",
        "get_job",
        "create_job",
        "update_job",
        "delete_job",
        "run_job",
        "get_job_run_status",
        "list_job_runs",
        "cancel_job_run",
        "repair_job_run",  # jobs (pipelines)
        "create_notebook",
        "get_notebook",
        "update_notebook",
        "list_notebooks",
        "delete_notebook",
        "import_notebook",
        "export_notebook",
        "run_notebook",
        "get_notebook_run",
        "cancel_notebook_run",
        "publish_notebook",
        "pull_notebook",  # notebooks
        "list_dbfs_files",
        "download_volume_file",
        "upload_volume_file",
        "delete_volume_file",  # volume files
        "create_context",
        "execute_command",
        "get_command_status",
        "cancel_command",
        "destroy_context",  # command execution contexts
        "list_clusters",
        "get_cluster",  # compute; start, terminate and resize need the admin role
        "create_vector_index",
        "sync_vector_index",
        "search_vectors",
        "describe_vector_index",
        "list_vector_indexes",
        "delete_vector_index",  # vector indexes
        "create_agent",
        "update_agent",
        "get_agent",
        "list_agents",
        "delete_agent",
        "deploy_agent",
        "list_endpoints",
        "get_endpoint",
        "delete_endpoint",
        "invoke_endpoint",
        "deploy_model",
        "invoke_model",
        "deploy_workspace_model",  # agents and serving endpoints
        "analyze_notebook",
        "generate_bundle",
        "validate_bundle",
        "create_tests",  # asset bundles
    }
    for name in ("list_tables", "describe_table", "query_sql", "execute_dbsql", "get_statement", "health", "metrics"):
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is True and annotations.open_world_hint is False
    for name in ("test_connection", "list_source_tables", "get_sync_status", "list_syncs", "get_run", "list_runs"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True
    for name in ("analyze_notebook", "generate_bundle", "validate_bundle", "create_tests"):  # files out, nothing kept
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True
    upload = tools["upload_file"].annotations
    assert upload is not None
    assert upload.read_only_hint is False
    assert upload.destructive_hint is True and upload.idempotent_hint is False
    assert upload.open_world_hint is False
    assert not any("tenant" in (tool.input_schema.get("properties") or {}) for tool in tools.values())


async def test_an_analyst_does_not_see_upload_file_and_is_refused_when_calling_it(
    services: Services, keys: Keys
) -> None:
    async with local_client(services, keys.acme_analyst) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert "upload_file" not in names
        assert {"list_tables", "describe_table", "query_sql", "health"} <= names

        result = await client.call_tool_mcp(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        assert error_code(result) == "permission_denied"

        listed = await client.call_tool_mcp("list_tables", {})
        assert listed.structured_content == {"tables": []}


async def test_a_refused_sql_is_a_tool_error_with_a_helpful_message_not_a_stack_trace(
    services: Services, keys: Keys
) -> None:
    async with local_client(services, keys.acme_analyst) as client:
        result = await client.call_tool_mcp("query_sql", {"sql": "select * from read_csv('/etc/passwd')"})
    assert error_code(result) == "query_refused"
    text = result_text(result)
    assert "Traceback" not in text and "/etc/passwd" not in text
    assert "query_refused" in text


async def test_a_capped_query_says_truncated_with_a_hint(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        await upload_sales(client)
        result = await client.call_tool_mcp("query_sql", {"sql": "SELECT * FROM bronze.sales", "max_rows": 2})
    assert result.structured_content is not None
    assert result.structured_content["truncated"] is True
    assert result.structured_content["row_count"] == 2
    assert result.structured_content["hint"]


async def test_file_content_that_is_not_base64_is_a_clear_tool_error(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        result = await client.call_tool_mcp(
            "upload_file",
            {"file_name": "sales.csv", "dataset_name": "sales", "file_content": "this is not base64!"},
        )
    assert error_code(result) == "invalid_input"
    assert "base64" in result_text(result)


async def test_the_local_server_uploads_a_file_from_the_users_own_disk(
    services: Services, keys: Keys, tmp_path: Path
) -> None:
    local_file = tmp_path / "regions.csv"
    local_file.write_bytes(SALES_CSV)
    async with local_client(services, keys.acme_engineer) as client:
        result = await client.call_tool_mcp(
            "upload_file", {"file_name": "regions.csv", "dataset_name": "regions", "path": str(local_file)}
        )
    assert not result.is_error, result_text(result)
    assert result.structured_content is not None and result.structured_content["rows"] == 3


async def test_an_unexpected_failure_is_masked_for_the_client_and_logged_with_its_traceback(
    services: Services, keys: Keys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_query(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire at /srv/secret/path")

    monkeypatch.setattr(query_service, "query_sql", broken_query)
    with caplog.at_level(logging.ERROR, logger="servicetsunami.mcp"):
        async with local_client(services, keys.acme_analyst) as client:
            result = await client.call_tool_mcp("query_sql", {"sql": "SELECT 1"})
            with pytest.raises(ToolError, match="internal error"):
                await client.call_tool("query_sql", {"sql": "SELECT 1"})
    assert error_code(result) == "internal_error"
    assert INTERNAL_ERROR_MESSAGE in result_text(result)
    assert "disk on fire" not in result_text(result)
    logged = [r for r in caplog.records if r.exc_info and r.name.startswith("servicetsunami.mcp")]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError)  # type: ignore[index]


async def test_table_resources_give_the_schema_and_a_preview_as_json(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        await upload_sales(client)
        templates = {t.uri_template for t in await client.list_resource_templates()}
        assert templates == {
            "table://{catalog}/{schema}/{name}/schema",
            "table://{catalog}/{schema}/{name}/preview",
            "datasource://{connection_id}/status",
            "datasource://{connection_id}/tables",
        }

        schema = await client.read_resource("table://tenant_acme/bronze/sales/schema")
        preview = await client.read_resource("table://tenant_acme/bronze/sales/preview")
    assert isinstance(schema[0], mcp_types.TextResourceContents)
    assert isinstance(preview[0], mcp_types.TextResourceContents)
    assert schema[0].mime_type == "application/json"
    described = json.loads(schema[0].text)
    assert described["full_name"] == "tenant_acme.bronze.sales"
    assert json.loads(preview[0].text)["row_count"] == 3


async def test_a_missing_table_resource_is_an_invalid_params_error_with_a_code(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource("table://tenant_acme/bronze/nothing_here/schema")
    assert raised.value.error.code == mcp_types.INVALID_PARAMS
    assert isinstance(raised.value.error.data, dict) and raised.value.error.data["code"] == "not_found"


async def test_a_resource_of_a_source_that_refuses_the_connection_is_an_internal_error_with_its_code(
    services: Services, keys: Keys
) -> None:
    _, admin_key = make_principal(services, "acme", "admin")
    async with local_client(services, admin_key) as client:
        created = await client.call_tool_mcp(
            "connect_postgres",  # nothing listens on port 1 of the loopback
            {"name": "gone", "host": "127.0.0.1", "port": 1, "database": "x", "user": "x", "sslmode": "disable"},
        )
        assert not created.is_error, result_text(created)
        assert created.structured_content is not None
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"datasource://{created.structured_content['id']}/tables")
    # The source failed, not the request: JSON-RPC's internal error, with our code to act on.
    assert raised.value.error.code == mcp_types.INTERNAL_ERROR
    assert isinstance(raised.value.error.data, dict) and raised.value.error.data["code"] == "source_error"


async def test_the_instructions_explain_the_layers_the_dialect_and_the_caps(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_analyst) as client:
        instructions = client.instructions or ""
    assert all(word in instructions for word in ("bronze", "silver", "gold", "Databricks SQL", "truncated"))
    assert str(services.settings.query.max_rows) in instructions


async def test_service_calls_run_with_the_callers_tenant_in_the_logging_context(
    services: Services, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_query = query_service.query_sql

    def spying_query(*args: Any, **kwargs: Any) -> Any:
        seen.append(logs.tenant.get())
        return real_query(*args, **kwargs)

    monkeypatch.setattr(query_service, "query_sql", spying_query)
    async with local_client(services, keys.acme_analyst) as client:
        await client.call_tool("query_sql", {"sql": "SELECT 1 AS one"})
    assert seen == ["acme"]
    assert logs.tenant.get() == "-"


@pytest.mark.parametrize(
    ("tool", "arguments", "said"),
    [
        (
            "upload_file",
            {"file_name": "a.csv", "dataset_name": "a", "file_content": "YSxiCjEsMgo=", "mode": "bogus"},
            "mode must be 'create', 'append' or 'overwrite' (got 'bogus')",
        ),
        ("query_sql", {"sql": "SELECT 1", "max_rows": 0}, "max_rows must be greater than or equal to 1 (got 0)"),
        ("query_sql", {}, "sql is required"),
        ("query_sql", {"sql": "SELECT 1", "rows": 3}, "rows is not an argument (the arguments are: max_rows, sql)"),
    ],
)
async def test_arguments_that_do_not_fit_are_explained_in_plain_words(
    services: Services, keys: Keys, tool: str, arguments: dict[str, Any], said: str
) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        result = await client.call_tool_mcp(tool, arguments)
    assert error_code(result) == "invalid_input"
    assert said in result_text(result)
    assert "pydantic" not in result_text(result)


async def test_a_mistyped_statement_is_a_syntax_error_with_its_position(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_analyst) as client:
        result = await client.call_tool_mcp("query_sql", {"sql": "slect 1"})
    assert error_code(result) == "sql_syntax_error"
    assert "line 1, column 1" in result_text(result) and "SELECT" in result_text(result)
