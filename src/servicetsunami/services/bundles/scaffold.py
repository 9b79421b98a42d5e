"""``create_tests``: a pytest scaffold that runs notebooks on the local engine and checks what they
write.

For a notebook of the caller's tenant (by id or path), or for every notebook of a bundle (its files,
as ``generate_bundle`` returns them), it writes ``tests/conftest.py``, one ``tests/test_<notebook>.py``
per notebook and ``tests/README.md``. Each test runs a notebook through the ``tsunami`` CLI (against
``TSUNAMI_HOME`` as the key in ``TSUNAMI_API_KEY``) once with its widgets' defaults and once per given
parameter set, asserts that the run succeeded, and that each table the analysis says it writes
exists afterwards with the columns it has now (when it exists when the scaffold is made). A bundle's
notebooks are imported first, under ``/bundles/<bundle name>/``, so ``%run`` between them resolves.
"""

from __future__ import annotations

import graphlib
import posixpath
import pprint
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, Field

from servicetsunami.errors import BadFile, InvalidInput, NotFound, TsunamiError
from servicetsunami.services.bundles import templates
from servicetsunami.services.bundles.analysis import NotebookAnalysis, analyze_notebook, analyze_source
from servicetsunami.services.catalog.tables import describe_table
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_BUNDLE_FILES = 500
MAX_PARAMETER_SETS = 50
MAX_PARAMETERS = 100
MAX_VALUE_CHARS = 10_000
_FILE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_ .\-]*)*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_UNSAFE_SEGMENT = re.compile(r"[^A-Za-z0-9 _.\-]")


class GeneratedFiles(BaseModel):
    files: dict[str, str] = Field(description="Relative path -> text")


@dataclass
class _Notebook:
    name: str  # the test module's suffix
    workspace_path: str  # where the test runs it
    file: str | None  # the bundle file imported there first (None: already in the workspace)
    analysis: NotebookAnalysis


def create_tests(
    services: Services,
    principal: Principal,
    *,
    notebook: str | None = None,
    bundle: dict[str, str] | None = None,
    parameter_sets: list[dict[str, str]] | None = None,
) -> GeneratedFiles:
    """The scaffold's files for ``notebook`` (an id or workspace path) or for ``bundle``'s notebooks."""
    principal.require(Scope.READ)
    if (notebook is None) == (bundle is None):
        raise InvalidInput("give either a notebook (id or path) or a bundle (its files)")
    sets = _check_sets(parameter_sets)
    if notebook is not None:
        analysis = analyze_notebook(services, principal, notebook)
        targets = [_Notebook(_module_name(analysis.path.rsplit("/", 1)[-1]), analysis.path, None, analysis)]
    else:
        assert bundle is not None
        targets = _bundle_notebooks(bundle, principal)
    names: set[str] = set()
    files: dict[str, str] = {}
    for target in targets:
        while target.name in names:
            target.name += "_2"
        names.add(target.name)
        files[f"tests/test_{target.name}.py"] = _test_module(services, principal, target, sets)
    imports = {t.file: t.workspace_path for t in targets if t.file is not None}
    order = [f"test_{t.name}" for t in _run_order(targets)]
    conftest = templates.CONFTEST.replace("__IMPORTS__", _literal(imports)).replace("__ORDER__", _literal(order))
    files["tests/conftest.py"] = conftest
    files["tests/README.md"] = templates.README
    return GeneratedFiles(files=files)


def _run_order(targets: list[_Notebook]) -> list[_Notebook]:
    """Notebooks after the ones that write the tables they read (by name when that is circular)."""
    by_name = {t.name: t for t in targets}
    writers: dict[str, set[str]] = {}
    for t in targets:
        for use in t.analysis.tables:
            if use.access == "write":
                writers.setdefault(use.table, set()).add(t.name)
    graph = {
        t.name: {
            w for use in t.analysis.tables if use.access == "read" for w in writers.get(use.table, ()) if w != t.name
        }
        for t in targets
    }
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return sorted(targets, key=lambda t: t.name)
    ordered: list[_Notebook] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += [by_name[n] for n in ready]
        sorter.done(*ready)
    return ordered


def _check_sets(parameter_sets: Any) -> list[dict[str, str]]:
    if parameter_sets is None:
        return []
    if not isinstance(parameter_sets, list) or len(parameter_sets) > MAX_PARAMETER_SETS:
        raise InvalidInput(f"parameter_sets is a list of at most {MAX_PARAMETER_SETS} objects of name: value")
    for n, params in enumerate(parameter_sets, start=1):
        if not isinstance(params, dict) or len(params) > MAX_PARAMETERS:
            raise InvalidInput(f"parameter set {n} is an object of at most {MAX_PARAMETERS} name: value pairs")
        for name, value in params.items():
            if not isinstance(name, str) or not _PARAM_NAME.match(name):
                raise InvalidInput(f"parameter set {n}: {str(name)[:40]!r} is not a parameter name")
            if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
                raise InvalidInput(f"parameter set {n}: the value of {name} is text of at most {MAX_VALUE_CHARS} chars")
    return [dict(p) for p in parameter_sets]


def _bundle_notebooks(bundle: Any, principal: Principal) -> list[_Notebook]:
    if not isinstance(bundle, dict) or not bundle:
        raise InvalidInput("a bundle is an object of relative file path: text")
    if len(bundle) > MAX_BUNDLE_FILES:
        raise InvalidInput(f"a bundle has at most {MAX_BUNDLE_FILES} files")
    for path, text in bundle.items():
        if not isinstance(path, str) or not _FILE_PATH.match(path) or ".." in path.split("/"):
            raise InvalidInput(f"{str(path)[:80]!r} is not a relative file path inside the bundle")
        if not isinstance(text, str):
            raise InvalidInput(f"{path}: the file's content is text")
    root = f"/bundles/{_segment(_bundle_name(bundle))}"
    found: list[_Notebook] = []
    for path, text in sorted(bundle.items()):
        language = sf.detect_language(text)
        is_jupyter = path.endswith(".ipynb")
        if language is None and not is_jupyter:
            continue
        stem = posixpath.splitext(path)[0]
        workspace_path = root + "/" + "/".join(_segment(s) for s in stem.split("/"))
        try:
            analysis = analyze_source(
                text,
                principal=principal,
                language=language or "python",
                format="jupyter" if is_jupyter else "source",
                path=workspace_path,
            )
        except BadFile as exc:
            raise InvalidInput(f"{path}: {exc.message}") from exc
        found.append(_Notebook(_module_name(stem.removeprefix("src/")), workspace_path, path, analysis))
    if not found:
        raise InvalidInput("the bundle has no notebooks (files starting with '# Databricks notebook source' or .ipynb)")
    return found


def _bundle_name(bundle: dict[str, str]) -> str:
    text = bundle.get("databricks.yml") or bundle.get("databricks.yaml")
    if text is None:
        return "bundle"
    if len(text) > 1024 * 1024:
        raise InvalidInput("databricks.yml is larger than 1 MB")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput("databricks.yml is not valid YAML") from exc
    name = config.get("bundle", {}).get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name.strip() else "bundle"


def _test_module(services: Services, principal: Principal, target: _Notebook, sets: list[dict[str, str]]) -> str:
    analysis = target.analysis
    defaults = {w.name: w.default or "" for w in analysis.widgets}
    parameter_sets = {"defaults": defaults}
    for n, params in enumerate(sets, start=1):
        parameter_sets[f"set_{n}"] = {**defaults, **params}
    writes = _writes(services, principal, analysis)
    skip = ""
    if analysis.language not in ("python", "sql"):
        skip = f'@pytest.mark.skip(reason="{analysis.language} notebooks do not run on the local engine")\n'
    return templates.TEST_MODULE.format(
        path=analysis.path,
        notebook=repr(target.workspace_path),
        parameter_sets=_literal(parameter_sets),
        writes=_literal(writes),
        name=target.name,
        skip=skip,
    )


def _writes(services: Services, principal: Principal, analysis: NotebookAnalysis) -> dict[str, list[str] | None]:
    """``schema.table`` -> its columns now (None: it does not exist yet), for each table written."""
    prefix = principal.catalog + "."
    out: dict[str, list[str] | None] = {}
    for use in analysis.tables:
        if use.access != "write" or not use.table.startswith(prefix) or "{" in use.table:
            continue
        short = use.table.removeprefix(prefix)
        if short in out:
            continue
        try:
            out[short] = [c.name for c in describe_table(services, principal, short).columns]
        except NotFound:
            out[short] = None
        except TsunamiError:
            out[short] = None
    return out


def _module_name(path: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "notebook"
    return f"nb_{name}" if name[0].isdigit() else name


def _segment(text: str) -> str:
    cleaned = _UNSAFE_SEGMENT.sub("_", text).strip(" .") or "notebook"
    return ("_" + cleaned if not cleaned[0].isalnum() and cleaned[0] != "_" else cleaned)[:100]


def _literal(value: object) -> str:
    return pprint.pformat(value, indent=4, width=100, sort_dicts=False)
