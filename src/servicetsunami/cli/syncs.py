"""``tsunami sync`` (run one sync, following its progress) and ``tsunami syncs`` (the configured syncs),
on the data folder or with ``--server URL`` on a running server over REST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services, progress_bar, remote

if TYPE_CHECKING:
    from servicetsunami.services.ingestion.syncs import SyncRunPublic

app = typer.Typer()


@app.command()
def sync(
    connection_id: Annotated[str, typer.Argument(help="Connection id")],
    table: Annotated[str, typer.Argument(help="Source table, e.g. public.customers")],
    mode: Annotated[str, typer.Option(help="full_refresh | incremental_append | incremental_merge")] = "full_refresh",
    cursor: Annotated[str | None, typer.Option(help="Cursor column (incremental modes)")] = None,
    key: Annotated[list[str] | None, typer.Option(help="Primary key column (merge; repeat for more)")] = None,
    target: Annotated[str | None, typer.Option(help="Bronze table (default: the source table's name)")] = None,
) -> None:
    """Sync a source table into bronze, with a progress bar; exactly once even if interrupted."""
    from servicetsunami.services.ingestion.syncs import SyncRunPublic, start_sync, wait_for_run

    with remote() as server:
        if server is not None:
            body = {
                "table_name": table,
                "sync_mode": mode,
                "cursor_column": cursor,
                "primary_key": key or None,
                "target_table": target,
            }
            started = server.call("POST", f"/data-sources/{connection_id}/syncs", json=body)
            server.wait_run(started["run_id"], float("inf"))
            status = SyncRunPublic.model_validate(server.call("GET", f"/data-sources/syncs/{started['run_id']}"))
    if server is not None:
        _print_sync(status)
        return
    with open_services() as svc:
        principal = key_principal(svc)
        run_id = start_sync(
            svc,
            principal,
            connection_id,
            table,
            sync_mode=mode,
            cursor_column=cursor,
            primary_key=key or None,
            target_table=target,
        )
        with progress_bar(f"sync {table}") as update:

            def show(status: SyncRunPublic) -> None:
                rows = status.rows
                pct = status.progress.get("batch_percent")
                update(info=f"{rows:,} rows" + (f", batch {pct:.0f}%" if isinstance(pct, float) else ""))

            status = wait_for_run(svc, principal, run_id, timeout=float("inf"), on_progress=show)
    _print_sync(status)


def _print_sync(status: SyncRunPublic) -> None:
    console.print(
        f"{status.status}: {status.rows:,} rows, {status.bytes:,} bytes into {status.bronze_table} "
        f"(version {status.table_version}) in {status.duration_seconds} s"
        + (f" — {status.error}" if status.error else "")
    )
    if status.status != "succeeded":
        raise typer.Exit(1)


@app.command("syncs")
def syncs_list() -> None:
    """Configured syncs with their state and last run."""
    from servicetsunami.services.ingestion.syncs import SyncPublic, list_syncs

    with remote() as server:
        if server is not None:
            rows = [
                SyncPublic.model_validate(found)
                for source in server.pages("/data-sources")
                for found in server.pages(f"/data-sources/{source['id']}/syncs")
            ]
    if server is None:
        with open_services() as svc:
            rows = list_syncs(svc, key_principal(svc))
    table = Table("bronze table", "source", "mode", "cursor", "last run")
    for r in rows:
        cursor = (r.state.get("cursor") or {}).get("value", "-")
        last = f"{r.last_run.status} ({r.last_run.rows} rows)" if r.last_run else "-"
        table.add_row(r.bronze_table, r.source_table, r.mode, str(cursor), last)
    console.print(table)
