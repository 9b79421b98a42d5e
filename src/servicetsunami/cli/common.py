"""What the commands share: opening the services, the principal of ``TSUNAMI_API_KEY``, printing,
and the checks every command makes at start (unknown ``TSUNAMI_*`` names, the data folder); with
``--server URL``, the REST client the commands with a REST twin use instead (:func:`remote`).

Every command fails the same way: a ``TsunamiError`` is printed as ``error (code): message`` on
standard error and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Column

from servicetsunami.errors import AuthError, NotFound, TsunamiError
from servicetsunami.settings import Settings, unknown_environment_names

if TYPE_CHECKING:
    from pydantic import BaseModel

    from servicetsunami.cli.remote import RestClient
    from servicetsunami.services.container import Services
    from servicetsunami.tenancy import Principal

console = Console()
err = Console(stderr=True)


def id_column(header: str, ids: Iterable[str]) -> Column:
    """A table column of ``ids``, which the next command is given: kept whole on one line, so a
    narrow terminal shortens the other columns instead (``--json`` prints everything)."""
    return Column(header, no_wrap=True, min_width=max([len(header), *(len(i) for i in ids)]))


# The commands that may run against a server (--server): those with a REST twin.
REMOTE_COMMANDS = frozenset({"query", "upload", "tables", "sync", "syncs", "runs", "tools", "clusters"})


class _Target:
    """Where the commands run: the data folder (None) or the server given by ``--server``."""

    server: str | None = None


target = _Target()


@contextmanager
def remote() -> Iterator[RestClient | None]:
    """The REST client of ``--server`` as the principal of ``TSUNAMI_API_KEY`` (None without
    ``--server``: the command opens the data folder); errors inside are reported."""
    if target.server is None:
        yield None
        return
    from servicetsunami.cli.remote import RestClient

    with reported_errors(), RestClient(target.server, Settings().api_key) as client:
        yield client


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a ``TsunamiError`` raised inside into the CLI's error line and exit status 2."""
    try:
        yield
    except TsunamiError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2) from None


def warn_unknown_environment() -> None:
    """A warning line on stderr for each ``TSUNAMI_*`` environment name that nothing reads (a typo
    would otherwise be ignored without a word)."""
    for name, closest in unknown_environment_names(os.environ):
        hint = f"; did you mean {closest}?" if closest else " (README.md, Configuration, lists the names)"
        err.print(
            f"[yellow]warning[/yellow]: {name} is not a ServiceTsunami setting and is ignored{hint}",
            highlight=False,
            soft_wrap=True,
        )


def warn_unknown_config() -> None:
    """A warning line on stderr for each key of ``tsunami.yaml`` that nothing reads; an unreadable
    file (bad YAML, a secret written in it) is reported and the command exits with status 2."""
    from servicetsunami.config_file import config_path, read_file, unknown_keys

    with reported_errors():
        data = read_file(config_path(os.environ.get("TSUNAMI_HOME") or None))
        for note in unknown_keys(Settings, data):
            err.print(f"[yellow]warning[/yellow]: tsunami.yaml: {note}", highlight=False, soft_wrap=True)
        Settings()  # a secret written in the file is refused here, before any command starts


def require_home(settings: Settings) -> None:
    """Refuse to open a data folder that does not exist unless ``TSUNAMI_HOME`` chose it.

    Only ``tsunami serve`` starts a new one by default; any other command run from another folder would
    create an empty ``./.tsunami`` and then refuse the keys of the real one.
    """
    home = settings.resolved_home
    if "home" not in settings.model_fields_set and not home.exists():
        raise NotFound(
            f"no data folder at {home} (TSUNAMI_HOME is not set, so ./.tsunami of the current folder is used). "
            "Run this from the folder where `tsunami serve` keeps its data, or set TSUNAMI_HOME to that data "
            "folder (e.g. export TSUNAMI_HOME=/path/to/servicetsunami/.tsunami)."
        )


@contextmanager
def open_services(settings: Settings | None = None) -> Iterator[Services]:
    """The services for one command on an existing data folder, closed when it ends; errors inside
    are reported."""
    from servicetsunami.services.container import Services

    settings = settings or Settings()
    with reported_errors():
        require_home(settings)
    svc = Services.open(settings)
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
