"""The warehouse tools through a real in-memory MCP client: the embedded engine as its one warehouse,
and a whole service on the Databricks engine (the fake workspace) with its SQL warehouses."""

from __future__ import annotations

from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings
from tests.fakes.databricks.server import FakeDatabricks
from tests.fakes.databricks.state import Warehouse
from tests.helpers import make_principal
from tests.integration.mcp.support import SALES_CSV, b64, error_code, local_client, result_text


async def test_locally_the_embedded_engine_is_the_one_running_warehouse(services: Services) -> None:
    _, admin = make_principal(services, "acme", "admin")
    async with local_client(services, admin) as client:
        listed = await client.call_tool("list_warehouses", {})
        assert listed.structured_content is not None
        [only] = listed.structured_content["warehouses"]
        assert (only["id"], only["state"], only["engine"]) == ("embedded", "RUNNING", "local")
        got = await client.call_tool("get_warehouse", {"warehouse_id": "embedded"})
        assert got.structured_content == only
        started = await client.call_tool("start_warehouse", {"warehouse_id": "embedded"})
        assert started.structured_content is not None and started.structured_content["state"] == "RUNNING"
        missing = await client.call_tool_mcp("get_warehouse", {"warehouse_id": "wh-123"})
        assert error_code(missing) == "not_found"
        bad = await client.call_tool_mcp("get_warehouse", {"warehouse_id": "../x"})
        assert error_code(bad) == "invalid_input"


async def test_an_analyst_cannot_start_a_warehouse(services: Services) -> None:
    _, analyst = make_principal(services, "acme", "analyst")
    async with local_client(services, analyst) as client:
        names = {t.name for t in await client.list_tools()}
        assert {"list_warehouses", "get_warehouse"} <= names and "start_warehouse" not in names
        refused = await client.call_tool_mcp("start_warehouse", {"warehouse_id": "embedded"})
        assert error_code(refused) == "permission_denied"


async def test_on_databricks_the_tools_show_upload_query_and_start_the_workspace_warehouses(
    on_databricks: Services, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    assert fake_workspace.token is not None
    state = databricks_fake.state(fake_workspace.token.get_secret_value())
    state.warehouses["wh-big"] = Warehouse("wh-big", "Big", "Large", state="STOPPED")
    _, admin = make_principal(on_databricks, "acme", "admin")
    async with local_client(on_databricks, admin) as client:
        uploaded = await client.call_tool_mcp(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        assert not uploaded.is_error, result_text(uploaded)
        queried = await client.call_tool(
            "query_sql", {"sql": "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"}
        )
        assert queried.structured_content is not None
        assert queried.structured_content["rows"] == [["north", 17.5], ["south", 3.25]]
        listed = await client.call_tool("list_warehouses", {})
        assert listed.structured_content is not None
        states = {w["id"]: (w["state"], w["size"]) for w in listed.structured_content["warehouses"]}
        assert states == {"wh-small": ("RUNNING", "2X-Small"), "wh-big": ("STOPPED", "Large")}
        started = await client.call_tool("start_warehouse", {"warehouse_id": "wh-big"})
        assert started.structured_content is not None and started.structured_content["state"] == "STARTING"
        got = await client.call_tool("get_warehouse", {"warehouse_id": "wh-big"})
        assert got.structured_content is not None and got.structured_content["state"] == "RUNNING"
        missing = await client.call_tool_mcp("get_warehouse", {"warehouse_id": "wh-none"})
        assert error_code(missing) == "not_found"
