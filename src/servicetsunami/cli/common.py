"""What the commands share: opening the services, the principal of ``TSUNAMI_API_KEY``, printing.

Every command fails the same way: a ``TsunamiError`` is printed as ``error (code): message`` on
standard error and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from servicetsunami.errors import AuthError, TsunamiError
from servicetsunami.settings import Settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from servicetsunami.services.container import Services
    from servicetsunami.tenancy import Principal

console = Console()
err = Console(stderr=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a ``TsunamiError`` raised inside into the CLI's error line and exit status 2."""
    try:
        yield
    except TsunamiError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2) from None


@contextmanager
def open_services(settings: Settings | None = None) -> Iterator[Services]:
    """The services for one command, closed when it ends; errors inside are reported."""
    from servicetsunami.services.container import Services

    svc = Services.open(settings or Settings())
    try:
        with reported_errors():
            yield svc
    finally:
        svc.close()


def key_principal(svc: Services) -> Principal:
    """The principal of the API key in ``TSUNAMI_API_KEY`` (from the environment or ``.env``)."""
    key = svc.settings.api_key
    if not key:
        raise AuthError("set TSUNAMI_API_KEY to an API key (create one with `tsunami keys create`)")
    return svc.authenticate(key)


def print_json_rows(rows: Sequence[BaseModel]) -> None:
    """Print records as one JSON array (the ``--json`` output of list commands)."""
    console.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr while a run is waited for; yields ``update(info=..., completed=...,
    total=...)`` (the rich ``Progress.update`` of its one task)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(description, total=None, info="starting")
        yield functools.partial(bar.update, task)
