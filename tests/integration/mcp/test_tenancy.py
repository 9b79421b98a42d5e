"""One tenant's key never reaches another tenant's tables, whatever name or URI it tries."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from servicetsunami.services.container import Services
from tests.integration.mcp.support import Keys, error_code, local_client, result_text, upload_sales

SECRET_CSV = b"id,code\n1,TOP-SECRET-GLOBEX\n"

# A name without a catalog resolves in the caller's own catalog, where the table does not exist; a
# name with the other catalog is refused before anything runs; paths and table functions never run.
FOREIGN_NAMES = [
    ("payroll", "not_found"),
    ("bronze.payroll", "not_found"),
    ("tenant_globex.bronze.payroll", "permission_denied"),
    ("`tenant_globex`.`bronze`.`payroll`", "permission_denied"),
    ("TENANT_GLOBEX.BRONZE.PAYROLL", "permission_denied"),
]

FOREIGN_QUERIES = [
    ("SELECT * FROM payroll", "not_found"),
    ("SELECT * FROM bronze.payroll", "not_found"),
    ("SELECT * FROM tenant_globex.bronze.payroll", "permission_denied"),
    ("SELECT * FROM `tenant_globex`.`bronze`.`payroll`", "permission_denied"),
    ('SELECT * FROM "tenant_globex"."bronze"."payroll"', "permission_denied"),
    ("SELECT * FROM tenant_globex.bronze.payroll VERSION AS OF 0", "permission_denied"),
    ("WITH p AS (SELECT * FROM tenant_globex.bronze.payroll) SELECT * FROM p", "permission_denied"),
    (
        "SELECT * FROM bronze.sales WHERE id IN (SELECT id FROM tenant_globex.bronze.payroll)",
        "permission_denied",
    ),
    ("SELECT * FROM bronze.sales JOIN tenant_globex.bronze.payroll USING (id)", "permission_denied"),
    ("DESCRIBE tenant_globex.bronze.payroll", "permission_denied"),
    ("SHOW TABLES IN tenant_globex.bronze", "permission_denied"),
    ("SELECT * FROM delta_scan('tenant_globex/bronze/payroll')", "query_refused"),
    ("SELECT * FROM 'tenant_globex/bronze/payroll/*.parquet'", "query_refused"),
]


@pytest.fixture
async def globex_payroll(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.globex_engineer) as client:
        await upload_sales(client, "payroll", SECRET_CSV)


@pytest.mark.usefixtures("globex_payroll")
async def test_another_tenants_table_is_not_listed(services: Services, keys: Keys) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        await upload_sales(client)
        listed = await client.call_tool_mcp("list_tables", {})
    assert listed.structured_content is not None
    assert [t["full_name"] for t in listed.structured_content["tables"]] == ["tenant_acme.bronze.sales"]


@pytest.mark.usefixtures("globex_payroll")
@pytest.mark.parametrize("tool", ["describe_table", "get_lineage"])
@pytest.mark.parametrize(("name", "code"), FOREIGN_NAMES)
async def test_another_tenants_table_cannot_be_described_or_traced_by_any_name(
    services: Services, keys: Keys, tool: str, name: str, code: str
) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        result = await client.call_tool_mcp(tool, {"table_name": name})
    assert error_code(result) == code


@pytest.mark.usefixtures("globex_payroll")
@pytest.mark.parametrize(("sql", "code"), FOREIGN_QUERIES)
async def test_another_tenants_table_cannot_be_queried_by_any_name(
    services: Services, keys: Keys, sql: str, code: str
) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        await upload_sales(client)
        result = await client.call_tool_mcp("query_sql", {"sql": sql})
    assert error_code(result) == code
    assert "TOP-SECRET" not in result_text(result)


@pytest.mark.usefixtures("globex_payroll")
@pytest.mark.parametrize("kind", ["schema", "preview"])
async def test_another_tenants_table_cannot_be_read_through_a_resource_uri(
    services: Services, keys: Keys, kind: str
) -> None:
    async with local_client(services, keys.acme_engineer) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"table://tenant_globex/bronze/payroll/{kind}")
    data = raised.value.error.data
    assert isinstance(data, dict) and data["code"] == "permission_denied"
    assert "TOP-SECRET" not in str(raised.value)
