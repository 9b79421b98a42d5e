"""Data sources: connect any kind (or PostgreSQL by its own tool), test, discover, and sync tables into bronze.

Passwords passed to ``connect_postgres`` end up in the chat transcript; the tool says so and
offers ``password_env`` (single-user servers) — ``tsunami connections create`` prompts instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, resource_json, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections, syncs

READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)


class SourceTables(BaseModel):
    connection_id: str
    tables: list[connections.SourceTable]


class SourceKinds(BaseModel):
    kinds: list[connections.SourceKindPublic]


class SyncList(BaseModel):
    syncs: list[syncs.SyncPublic]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(
            title="Connect PostgreSQL",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
        output_schema=output_schema(connections.ConnectionCreated),
    )
    async def connect_postgres(
        name: Annotated[str, Field(description="A short name for the connection: lower-case letters, digits, _")],
        host: Annotated[str, Field(description="Host name or address of the PostgreSQL server")],
        database: Annotated[str, Field(description="Database name")],
        user: Annotated[str, Field(description="User name")],
        port: Annotated[int, Field(ge=1, le=65535)] = 5432,
        password: Annotated[
            str | None,
            Field(
                description="Stored encrypted, never shown again. Note: it stays in this chat's transcript; "
                "prefer password_env or `tsunami connections create`."
            ),
        ] = None,
        password_env: Annotated[
            str | None, Field(description="Name of an environment variable of the server holding the password")
        ] = None,
        sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer",
        schemas: Annotated[
            list[str] | None, Field(description="Schemas to offer; all readable ones if omitted")
        ] = None,
    ) -> ToolResult:
        """Store an encrypted PostgreSQL connection and test it. Returns its id and the test result."""
        result = await call_service(
            connections.connect_postgres,
            services,
            caller.principal(),
            name=name,
            host=host,
            port=port,
            database=database,
            user=user,
            password=password,
            password_env=password_env,
            sslmode=sslmode,
            schemas=schemas,
        )
        return tool_result(result)

    @server.tool(tags={"read"}, annotations=READ, output_schema=output_schema(SourceKinds))
    async def list_source_kinds() -> ToolResult:
        """The kinds of source connect_source accepts, each with the JSON schema of its settings (and
        which of them are secrets)."""
        kinds = await call_service(connections.list_source_kinds, services, caller.principal())
        return tool_result(SourceKinds(kinds=kinds))

    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(
            title="Connect a source",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
        output_schema=output_schema(connections.ConnectionCreated),
    )
    async def connect_source(
        kind: Annotated[str, Field(description="A kind from list_source_kinds, e.g. mysql, postgres, files")],
        name: Annotated[str, Field(description="A short name for the connection: lower-case letters, digits, _")],
        config: Annotated[
            dict[str, Any], Field(description="The kind's settings (list_source_kinds gives their schema), no secrets")
        ],
        secrets: Annotated[
            dict[str, str] | None,
            Field(
                description="The kind's secret settings (e.g. password); stored encrypted, never shown again. "
                "Note: they stay in this chat's transcript; `tsunami connections connect` prompts instead."
            ),
        ] = None,
    ) -> ToolResult:
        """Store an encrypted connection of any kind and test it. Returns its id and the test result."""
        result = await call_service(
            connections.connect_source,
            services,
            caller.principal(),
            kind=kind,
            name=name,
            config=config,
            secrets=secrets,
        )
        return tool_result(result)

    @server.tool(tags={"read"}, annotations=READ, output_schema=output_schema(connections.ConnectionTest))
    async def test_connection(connection_id: str) -> ToolResult:
        """Connect and report latency and server version, or what failed and what to do about it."""
        result = await call_service(connections.test_connection, services, caller.principal(), connection_id)
        return tool_result(result)

    @server.tool(tags={"read"}, annotations=READ, output_schema=output_schema(SourceTables))
    async def list_source_tables(connection_id: str, schema: str | None = None) -> ToolResult:
        """Tables and views of a connection with row estimates, sizes, primary keys, columns and types,
        and the columns that suit an incremental cursor."""
        tables = await call_service(
            connections.list_source_tables, services, caller.principal(), connection_id, schema=schema
        )
        return tool_result(SourceTables(connection_id=connection_id, tables=tables))

    @server.tool(
        tags={"write"},
        annotations=ToolAnnotations(
            title="Sync a table to bronze",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        ),
        output_schema=output_schema(syncs.SyncRunPublic),
    )
    async def sync_table_to_bronze(
        connection_id: str,
        table_name: Annotated[str, Field(description="Source table, e.g. public.customers")],
        ctx: Context,
        sync_mode: Literal["full_refresh", "incremental_append", "incremental_merge"] = "full_refresh",
        cursor_column: Annotated[
            str | None, Field(description="Incremental modes: the column that grows; suggested one if omitted")
        ] = None,
        primary_key: Annotated[
            list[str] | None, Field(description="incremental_merge: key columns; the table's primary key if omitted")
        ] = None,
        target_table: Annotated[
            str | None, Field(description="Bronze table; the source table's name if omitted")
        ] = None,
    ) -> ToolResult:
        """Copy a source table into bronze, exactly once even across crashes. Waits a while and reports
        progress; a longer sync continues in the background: poll get_sync_status(run_id)."""
        principal = caller.principal()
        run_id = await call_service(
            syncs.start_sync,
            services,
            principal,
            connection_id,
            table_name,
            sync_mode=sync_mode,
            cursor_column=cursor_column,
            primary_key=primary_key,
            target_table=target_table,
        )

        async def report(status: syncs.SyncRunPublic) -> None:
            percent = status.progress.get("batch_percent")
            await ctx.report_progress(
                float(status.rows),
                None,
                f"{status.rows} rows in {status.batches} batches"
                + (f", current batch {percent:.0f}%" if isinstance(percent, int | float) else ""),
            )

        wait = services.settings.sync.wait_seconds
        return tool_result(await syncs.await_run(services, principal, run_id, timeout=wait, on_progress=report))

    @server.tool(tags={"read"}, annotations=READ, output_schema=output_schema(syncs.SyncRunPublic))
    async def get_sync_status(run_id: str) -> ToolResult:
        """Status, rows, bytes, timings and error of a sync run."""
        return tool_result(await call_service(syncs.get_sync_status, services, caller.principal(), run_id))

    @server.tool(
        tags={"write"},
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
        output_schema=output_schema(syncs.SyncRunPublic),
    )
    async def cancel_sync(run_id: str) -> ToolResult:
        """Stop a running sync cleanly: the bronze table keeps its last committed version."""
        return tool_result(await call_service(syncs.cancel_sync, services, caller.principal(), run_id))

    @server.tool(tags={"read"}, annotations=READ, output_schema=output_schema(SyncList))
    async def list_syncs() -> ToolResult:
        """Configured syncs with their mode, cursor state and last run."""
        return tool_result(SyncList(syncs=await call_service(syncs.list_syncs, services, caller.principal())))

    @server.resource(
        "datasource://{connection_id}/status", name="datasource_status", mime_type="application/json", tags={"read"}
    )
    async def datasource_status(connection_id: str) -> str:
        """The connection (without its secret) and a fresh test of it."""
        principal = caller.principal()
        info = await call_service(connections.get_connection, services, principal, connection_id)
        test = await call_service(connections.test_connection, services, principal, connection_id)
        return resource_json(connections.ConnectionCreated(**info.model_dump(), test=test))

    @server.resource(
        "datasource://{connection_id}/tables", name="datasource_tables", mime_type="application/json", tags={"read"}
    )
    async def datasource_tables(connection_id: str) -> str:
        """The connection's tables, as list_source_tables returns them."""
        tables = await call_service(connections.list_source_tables, services, caller.principal(), connection_id)
        return resource_json(SourceTables(connection_id=connection_id, tables=tables))

    @server.prompt(name="troubleshoot_connection", tags={"read"})
    def troubleshoot_connection(connection_id: str) -> str:
        """Walk through why a data source connection fails, step by step."""
        return (
            f"Help me fix data source connection {connection_id}.\n"
            f"1. Call test_connection(connection_id='{connection_id}') and read `problem` and `diagnosis`.\n"
            "2. By problem: dns -> check the host name's spelling or use the IP address; refused -> check the "
            "port and that PostgreSQL listens on that address (listen_addresses, firewall); timeout -> a "
            "firewall or security group drops the traffic; auth -> wrong user or password (reconnect with "
            "connect_postgres and the right one); database -> the database name is wrong; ssl -> change "
            "sslmode (prefer/require/disable) to what the server supports; access -> pg_hba.conf does not "
            "allow this client; permission -> GRANT USAGE on the schema and SELECT on the tables. For MySQL and "
            "REST connections the same codes apply (MySQL: ssl -> change ssl_mode; permission -> GRANT SELECT "
            "on the database); REST adds not_found -> a resource's path is wrong, rate_limited -> sync again "
            "later, json -> the endpoint does not answer JSON. Google Sheets: permission -> share the "
            "spreadsheet with the service account's client_email (or, for auth public, with anyone who has "
            "the link); auth -> the service account key is wrong or deleted. Salesforce: auth -> check the "
            "connected app's client_id and client_secret (or refresh_token); query -> a field or object is not "
            "readable by the integration user; rate_limited -> the org's daily API limit is spent, sync again "
            "later. Other kinds reconnect with connect_source; "
            "list_source_kinds shows their settings.\n"
            f"3. Then call list_source_tables(connection_id='{connection_id}') and report any table whose "
            "`readable` is false, with its `problem`.\n"
            "Never ask me to paste a password into the chat; suggest password_env, `tsunami connections create` "
            "or `tsunami connections connect`."
        )
