"""``tsunami notebooks``: import, export, list and run notebooks (runs in the sandbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services, progress_bar

app = typer.Typer(help="Notebooks: import, export, list and run them in the sandbox.", no_args_is_help=True)


@app.command("import")
def notebooks_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .ipynb, or a Databricks .py / .sql")],
    path: Annotated[str, typer.Option(help="Workspace path, like /reports/daily")],
    overwrite: Annotated[bool, typer.Option(help="Replace a notebook at this path (as a new version)")] = False,
) -> None:
    """Import a Jupyter or Databricks source notebook."""
    from servicetsunami.services.notebooks import notebooks

    with open_services() as svc:
        made = notebooks.import_notebook(svc, key_principal(svc), path, file.read_text("utf-8"), overwrite=overwrite)
    console.print_json(made.model_dump_json(exclude={"cells"}))


@app.command("export")
def notebooks_export(
    notebook: Annotated[str, typer.Argument(help="Notebook id or workspace path")],
    format: Annotated[str, typer.Option(help="source | jupyter | html")] = "source",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here; default standard output")] = None,
) -> None:
    """A notebook as a Databricks source, Jupyter or HTML file."""
    from servicetsunami.services.notebooks import notebooks

    with open_services() as svc:
        out = notebooks.export_notebook(svc, key_principal(svc), notebook, format=format)  # type: ignore[arg-type]
    if output is None:
        typer.echo(out.content, nl=False)
    else:
        output.write_text(out.content, "utf-8")
        console.print(f"wrote {out.file_name} to {output}")


@app.command("list")
def notebooks_list(folder: Annotated[str, typer.Option(help="A folder path")] = "/") -> None:
    """Notebooks under a folder."""
    from servicetsunami.services.notebooks import notebooks

    with open_services() as svc:
        listed = notebooks.list_notebooks(svc, key_principal(svc), folder=folder, limit=1000)
    table = Table("path", "language", "version", "id")
    for n in listed.notebooks:
        table.add_row(n.path, n.language, str(n.version), n.notebook_id)
    console.print(table)


@app.command("run")
def notebooks_run(
    notebook: Annotated[str, typer.Argument(help="Notebook id or workspace path")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value, repeatable")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end, with a progress bar")] = False,
    timeout: Annotated[float | None, typer.Option(help="Stop the run after this many seconds")] = None,
) -> None:
    """Run a notebook in the sandbox. With --wait, exits 1 unless it succeeded."""
    from servicetsunami.services.notebooks import runs as nbruns
    from servicetsunami.services.runs import service as runs
    from servicetsunami.services.runs.model import RunPublic

    parameters: dict[str, str] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not name=value", param_hint="--param")
        parameters[name] = value
    with open_services() as svc:
        principal = key_principal(svc)
        run_id = nbruns.run_notebook(svc, principal, notebook, parameters=parameters, timeout_seconds=timeout)
        if wait:
            with progress_bar(f"notebook run {run_id[:8]}") as update:

                def show(status: RunPublic) -> None:
                    p = status.progress
                    update(total=p.total, completed=p.done or 0, info=p.message or status.state)

                runs.wait_for_run(svc, principal, run_id, timeout=float("inf"), on_progress=show)
        done = nbruns.get_notebook_run(svc, principal, run_id)
    console.print_json(done.model_dump_json())
    if wait and done.run.state != "succeeded":
        raise typer.Exit(1)
