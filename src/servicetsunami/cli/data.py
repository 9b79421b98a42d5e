"""``tsunami query``, ``upload`` and ``tables``: the lakehouse, as the principal of ``TSUNAMI_API_KEY``
(on the data folder, or with ``--server URL`` on a running server over REST)."""

from __future__ import annotations

import pathlib
from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services, remote

app = typer.Typer()


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only Databricks SQL statement")],
    max_rows: Annotated[int | None, typer.Option(help="Lower the row cap")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a query as the principal of TSUNAMI_API_KEY."""
    from servicetsunami.services.catalog.query import query_sql
    from servicetsunami.services.models import QueryResult

    with remote() as server:
        if server is not None:
            body = {"sql": sql, **({"max_rows": max_rows} if max_rows is not None else {})}
            result = QueryResult.model_validate(server.call("POST", "/query", json=body))
    if server is None:
        with open_services() as svc:
            result = query_sql(svc, key_principal(svc), sql, max_rows=max_rows)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    table = Table(*[f"{c.name}\n[dim]{c.type}[/dim]" for c in result.columns])
    for row in result.rows:
        table.add_row(*["NULL" if v is None else str(v) for v in row])
    console.print(table)
    console.print(
        f"{result.row_count} rows in {result.elapsed_ms:.1f} ms" + (f" — {result.hint}" if result.truncated else "")
    )


@app.command()
def upload(
    path: Annotated[pathlib.Path, typer.Argument(exists=True, dir_okay=False, help="File to ingest")],
    dataset: Annotated[str, typer.Option(help="Bronze table name")],
    mode: Annotated[str, typer.Option(help="create | append | overwrite")] = "create",
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (default: all)")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: detect)")] = None,
    encoding: Annotated[str | None, typer.Option(help="utf-8 | utf-16 | latin-1")] = None,
) -> None:
    """Ingest a local file into bronze as the principal of TSUNAMI_API_KEY."""
    from servicetsunami.services.ingestion.uploads import FileOptions, upload_file
    from servicetsunami.services.models import UploadResult

    with remote() as server:
        if server is not None:
            options = {"sheet": sheet, "delimiter": delimiter, "encoding": encoding}
            fields = {"name": dataset, "mode": mode, **{k: v for k, v in options.items() if v is not None}}
            result = UploadResult.model_validate(server.upload(path, fields))
    if server is None:
        with open_services() as svc:
            result = upload_file(
                svc,
                key_principal(svc),
                file_name=path.name,
                dataset_name=dataset,
                path=path,
                mode=mode,
                options=FileOptions(sheet=sheet, delimiter=delimiter, encoding=encoding),
            )
    console.print(f"{result.rows} rows into {result.table} (version {result.version}) in {result.elapsed_ms:.0f} ms")


@app.command()
def tables(layer: Annotated[str | None, typer.Option(help="bronze | silver | gold")] = None) -> None:
    """List the tables of your catalog (principal of TSUNAMI_API_KEY)."""
    from servicetsunami.services.catalog.tables import list_tables
    from servicetsunami.services.models import TableInfo

    with remote() as server:
        if server is not None:
            params = {"layer": layer} if layer else {}
            rows = [TableInfo.model_validate(t) for t in server.pages("/tables", **params)]
    if server is None:
        with open_services() as svc:
            rows = list_tables(svc, key_principal(svc), layer=layer)
    table = Table("table", "version", "rows", "bytes")
    for r in rows:
        table.add_row(f"{r.schema_}.{r.name}", str(r.version), str(r.rows), str(r.size_bytes))
    console.print(table)
