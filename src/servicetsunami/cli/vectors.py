"""``tsunami vectors``: create, sync, search, list, describe and delete vector indexes."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services, progress_bar

app = typer.Typer(help="Vector indexes: build them from a table, keep them in sync, search them.", no_args_is_help=True)


def _follow(svc: Any, principal: Any, run_id: str, label: str) -> str:
    from servicetsunami.services.runs import service as runs
    from servicetsunami.services.runs.model import RunPublic

    with progress_bar(label) as update:

        def show(status: RunPublic) -> None:
            p = status.progress
            update(total=p.total, completed=p.done or 0, info=p.message or status.state)

        return runs.wait_for_run(svc, principal, run_id, timeout=float("inf"), on_progress=show).state


@app.command("create")
def vectors_create(
    name: Annotated[str, typer.Argument(help="Index name; its table is gold.<name>")],
    source: Annotated[str, typer.Option("--source", help="The table to index (default schema gold)")],
    key: Annotated[str, typer.Option("--key", help="The primary key column")],
    text: Annotated[str | None, typer.Option("--text", help="The text column to embed")] = None,
    model: Annotated[
        str | None, typer.Option(help="wordllama (default), openai, or databricks:<serving endpoint>")
    ] = None,
    embedding_column: Annotated[str | None, typer.Option(help="Instead of a model: a column of vectors")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", "-c", help="A column to sync, repeatable")] = None,
    continuous: Annotated[bool, typer.Option(help="Follow the source table's versions on its own")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the build, with a progress bar")] = False,
) -> None:
    """Build a vector index of a table. With --wait, exits 1 unless the build succeeded."""
    from servicetsunami.services.vectors import indexes

    with open_services() as svc:
        principal = key_principal(svc)
        made = indexes.create_vector_index(
            svc,
            principal,
            name,
            source_table=source,
            primary_key=key,
            text_column=text,
            embedding_model=model,
            embedding_column=embedding_column,
            columns_to_sync=column,
            sync_mode="continuous" if continuous else "triggered",
        )
        state = _follow(svc, principal, made.run_id, f"building {name}") if wait else None
        facts = indexes.describe_vector_index(svc, principal, made.index.index_id)
    console.print_json(json.dumps({"index": facts.model_dump(mode="json"), "run_id": made.run_id}))
    if wait and state != "succeeded":
        raise typer.Exit(1)


@app.command("sync")
def vectors_sync(
    index: Annotated[str, typer.Argument(help="Index name or id")],
    full: Annotated[bool, typer.Option(help="Re-embed every row")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the end, with a progress bar")] = False,
) -> None:
    """Sync an index with its source table (only added and changed rows are embedded)."""
    from servicetsunami.services.vectors import indexes

    with open_services() as svc:
        principal = key_principal(svc)
        made = indexes.sync_vector_index(svc, principal, index, full=full)
        state = _follow(svc, principal, made.run_id, f"syncing {index}") if wait else None
        facts = indexes.describe_vector_index(svc, principal, made.index.index_id)
    console.print_json(json.dumps({"index": facts.model_dump(mode="json"), "run_id": made.run_id}))
    if wait and state != "succeeded":
        raise typer.Exit(1)


@app.command("search")
def vectors_search(
    index: Annotated[str, typer.Argument(help="Index name or id")],
    query: Annotated[str, typer.Argument(help="What to look for")],
    k: Annotated[int, typer.Option("-k", help="How many rows")] = 10,
    hybrid: Annotated[bool, typer.Option(help="Vectors and keywords (BM25), fused by rank")] = False,
    filters: Annotated[str | None, typer.Option(help='JSON, like {"topic": "billing", "year >=": 2024}')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
) -> None:
    """The rows of an index nearest a text, best first, with scores."""
    from servicetsunami.services.vectors.search import search_vectors

    try:
        parsed = json.loads(filters) if filters else None
    except ValueError:
        raise typer.BadParameter("not JSON", param_hint="--filters") from None
    with open_services() as svc:
        found = search_vectors(
            svc,
            key_principal(svc),
            index,
            query_text=query,
            k=k,
            filters=parsed,
            query_type="hybrid" if hybrid else "ann",
        )
    if as_json:
        console.print_json(json.dumps(found, default=str))
        return
    table = Table("score", *found["columns"], title=f"{index} ({found['method']})")
    for score, row in zip(found["scores"], found["rows"], strict=True):
        table.add_row(f"{score:.4f}", *("" if v is None else str(v) for v in row))
    console.print(table)
    if found["truncated"]:
        console.print(f"[yellow]{found['hint']}[/yellow]")


@app.command("list")
def vectors_list() -> None:
    """The tenant's vector indexes."""
    from servicetsunami.services.vectors import indexes

    with open_services() as svc:
        listed = indexes.list_vector_indexes(svc, key_principal(svc), limit=1000)
    table = Table("name", "source", "state", "rows", "model", "search", "id")
    for i in listed.indexes:
        model = i.embedding_model or f"({i.embedding_column})"
        table.add_row(i.name, i.source_table, i.state, str(i.row_count), model, i.search, i.index_id)
    console.print(table)


@app.command("describe")
def vectors_describe(index: Annotated[str, typer.Argument(help="Index name or id")]) -> None:
    """An index's definition, state and last sync."""
    from servicetsunami.services.vectors import indexes

    with open_services() as svc:
        facts = indexes.describe_vector_index(svc, key_principal(svc), index)
    console.print_json(facts.model_dump_json())


@app.command("delete")
def vectors_delete(index: Annotated[str, typer.Argument(help="Index name or id")]) -> None:
    """Delete an index (its table and graph; the source table stays)."""
    from servicetsunami.services.vectors import indexes

    with open_services() as svc:
        gone = indexes.delete_vector_index(svc, key_principal(svc), index)
    console.print(f"deleted vector index {gone.name} ({gone.index_id})")
