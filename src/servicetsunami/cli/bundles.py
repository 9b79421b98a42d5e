"""``tsunami bundle``: analyze a notebook, generate a Databricks Asset Bundle into a folder, validate a
bundle folder, and write a test scaffold for a notebook or a bundle folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, err, key_principal, open_services, reported_errors

if TYPE_CHECKING:
    from servicetsunami.services.bundles.models import Finding

app = typer.Typer(help="Asset Bundles: analyze, generate, validate, tests.", no_args_is_help=True)
_SKIP = {".git", ".databricks", "__pycache__", ".venv", "node_modules"}


def _read_folder(folder: Path) -> dict[str, str]:
    from servicetsunami.errors import InvalidInput, LimitExceeded
    from servicetsunami.services.bundles import loading

    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or path.is_symlink() or any(part in _SKIP for part in relative.parts):
            continue
        if len(files) >= loading.MAX_FILES:
            raise LimitExceeded(f"a bundle has at most {loading.MAX_FILES} files")
        if path.stat().st_size > loading.MAX_FILE_BYTES:
            raise LimitExceeded(f"{relative} is larger than a bundle file may be")
        try:
            files[relative.as_posix()] = path.read_text("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{relative} is not UTF-8 text") from None
    return files


def _write_folder(out: Path, files: dict[str, str], *, force: bool) -> None:
    from servicetsunami.errors import Conflict
    from servicetsunami.services.bundles import loading

    targets = {out / loading.clean_path(name): text for name, text in files.items()}
    there = sorted(str(t.relative_to(out)) for t in targets if t.exists())
    if there and not force:
        raise Conflict(f"{out} already has {', '.join(there[:5])}; choose another folder or pass --force")
    for target, text in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")


def _print_findings(findings: list[Finding]) -> None:
    if not findings:
        return
    table = Table("severity", "code", "where", "message")
    for f in findings:
        where = f"{f.file}{':' + str(f.line) if f.line else ''} {f.path}".strip()
        table.add_row(f.severity, f.code, where, f.message)
    err.print(table)


@app.command("analyze")
def bundle_analyze(
    notebook: Annotated[str, typer.Argument(help="Notebook id or workspace path")],
    version: Annotated[int | None, typer.Option(help="An older version; default the newest")] = None,
) -> None:
    """What a notebook imports, reads, writes and asks for (JSON)."""
    from servicetsunami.services.bundles.analysis import analyze_notebook

    with open_services() as svc:
        found = analyze_notebook(svc, key_principal(svc), notebook, version=version)
    console.print_json(found.model_dump_json())


@app.command("generate")
def bundle_generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the bundle into")],
    job: Annotated[list[str] | None, typer.Option("--job", help="Job id or name, repeatable")] = None,
    notebook: Annotated[list[str] | None, typer.Option("--notebook", help="Notebook id or path, repeatable")] = None,
    name: Annotated[str | None, typer.Option(help="The bundle's name; default the folder's name")] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="TARGET.NAME=VALUE, e.g. prod.warehouse_id=abc; repeatable")
    ] = None,
    compute: Annotated[str, typer.Option(help="serverless | job_cluster")] = "serverless",
    force: Annotated[bool, typer.Option(help="Write into a folder that is not empty")] = False,
) -> None:
    """Generate a Databricks Asset Bundle of jobs and notebooks into a folder."""
    from servicetsunami.services.bundles.generate import generate_bundle

    targets: dict[str, dict[str, str]] = {}
    for item in var or []:
        key, sep, value = item.partition("=")
        target_name, dot, variable = key.partition(".")
        if not sep or not dot or not target_name or not variable:
            raise typer.BadParameter(f"{item!r} is not TARGET.NAME=VALUE", param_hint="--var")
        targets.setdefault(target_name, {})[variable] = value
    with open_services() as svc:
        made = generate_bundle(
            svc,
            key_principal(svc),
            name or out.resolve().name,
            jobs=job or [],
            notebooks=notebook or [],
            targets=targets,
            compute=compute,  # type: ignore[arg-type]  # checked by the service
        )
        _write_folder(out, made.files, force=force)
    _print_findings(made.findings)
    console.print(f"wrote {len(made.files)} files to {out}")


@app.command("validate")
def bundle_validate(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The bundle's folder")],
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check a bundle folder offline. Exits 1 when a finding is an error."""
    from servicetsunami.services.bundles.validate import validate_bundle

    with open_services() as svc, reported_errors():
        report = validate_bundle(key_principal(svc), _read_folder(folder))
    if json:
        console.print_json(report.model_dump_json())
    else:
        _print_findings(report.findings)
        console.print(
            f"{'valid' if report.valid else 'not valid'}: {len(report.findings)} findings; checks: "
            f"{', '.join(report.checks)}; databricks CLI: {report.databricks_cli}",
            highlight=False,
            soft_wrap=True,
        )
    if not report.valid:
        raise typer.Exit(1)


@app.command("tests")
def bundle_tests(
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the scaffold into")],
    folder: Annotated[Path | None, typer.Argument(file_okay=False, help="A bundle folder")] = None,
    notebook: Annotated[str | None, typer.Option(help="Or a notebook id or path")] = None,
    params: Annotated[list[str] | None, typer.Option("--params", help="A parameter set: a=1,b=2; repeatable")] = None,
    force: Annotated[bool, typer.Option(help="Write into a folder that is not empty")] = False,
) -> None:
    """Write a pytest scaffold that runs the notebook (or the bundle's notebooks) locally."""
    from servicetsunami.services.bundles.scaffold import create_tests

    if (folder is None) == (notebook is None):
        raise typer.BadParameter("give a bundle folder or --notebook (one of them)")
    sets: list[dict[str, str]] = []
    for item in params or []:
        values: dict[str, str] = {}
        for pair in item.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise typer.BadParameter(f"{pair!r} is not name=value", param_hint="--params")
            values[key.strip()] = value
        sets.append(values)
    with open_services() as svc:
        bundle = _read_folder(folder) if folder is not None else None
        made = create_tests(svc, key_principal(svc), notebook=notebook, bundle=bundle, parameter_sets=sets or None)
        _write_folder(out, made.files, force=force)
    console.print(f"wrote {len(made.files)} files to {out}")
