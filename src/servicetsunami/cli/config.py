"""``tsunami config show`` (every setting, secrets hidden, and where it came from) and ``tsunami config
check`` (the file, unknown keys and ``TSUNAMI_*`` names, values the settings refuse)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from servicetsunami.cli.common import console, err, reported_errors
from servicetsunami.config_file import config_path, describe, read_file, unknown_keys
from servicetsunami.errors import InvalidConfig
from servicetsunami.settings import Settings, unknown_environment_names

app = typer.Typer(help="The configuration: tsunami.yaml, TSUNAMI_* variables and defaults.", no_args_is_help=True)

EXIT_PROBLEMS = 1  # `config check`: something is ignored (unknown keys or names)
EXIT_INVALID = 2  # the settings cannot be read


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per setting")] = False,
) -> None:
    """Every setting's value (secrets as ********) and where it came from: env, file or default."""
    with reported_errors():
        settings = Settings()
        rows = describe(settings, os.environ)
    if as_json:
        console.print_json(json.dumps([{"name": n, "value": v, "source": s} for n, v, s in rows]))
        return
    table = Table("setting", "value", "source")
    for name, value, source in rows:
        table.add_row(name, value, source)
    console.print(table)


@app.command("check")
def check() -> None:
    """Read the configuration as the server would; list what is wrong or ignored. Exit status: 0 all
    read, 1 something ignored, 2 the settings cannot be used."""
    path = config_path(os.environ.get("TSUNAMI_HOME") or None)
    notes: list[str] = []
    with reported_errors():
        data = read_file(path)
        notes += unknown_keys(Settings, data)
    console.print(f"configuration file: {path} ({'read' if data else 'none'})", highlight=False)
    for name, closest in unknown_environment_names(os.environ):
        notes.append(
            f"{name}: not a ServiceTsunami setting; it is ignored" + (f" (did you mean {closest}?)" if closest else "")
        )
    try:
        Settings()
    except InvalidConfig as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            err.print(f"[red]error[/red] (invalid_config): {where}: {error['msg']}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    for note in notes:
        err.print(f"[yellow]warning[/yellow]: {note}", highlight=False, soft_wrap=True)
    if notes:
        raise typer.Exit(EXIT_PROBLEMS)
    console.print("ok: every setting is read")
