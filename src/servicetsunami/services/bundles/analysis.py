"""``analyze_notebook``: what a notebook needs and touches, read without running it.

For each code cell (Python with :mod:`ast`, SQL with sqlglot in the Databricks dialect; magics
first): the modules it imports and the PyPI packages that provide them in the kernel's environment,
``%pip`` lines, the tables it reads and writes resolved to the tenant's catalog (unqualified names
in the default schema the notebook runner uses, ``bronze``), widgets and their defaults, ``dbutils``
calls, paths outside the tenant's volumes, network calls, ``%run`` targets, and findings a reviewer
should see, each with its cell and line. A cell that does not parse is a finding, not a failure.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
from typing import TYPE_CHECKING

from nbformat import NotebookNode

from servicetsunami.errors import InvalidInput
from servicetsunami.services.bundles.python_scan import State, record_sql, scan_python
from servicetsunami.services.bundles.report import (
    Collector,
    Finding,
    NotebookAnalysis,
    PackageUse,
    TableUse,
    Widget,
)
from servicetsunami.services.bundles.secrets_scan import secret_kind
from servicetsunami.services.bundles.sql_scan import scan_sql
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

__all__ = [
    "Finding",
    "NotebookAnalysis",
    "PackageUse",
    "TableUse",
    "Widget",
    "analyze_node",
    "analyze_notebook",
    "analyze_source",
]

# Modules the Databricks runtime and the local kernel's shim provide: not libraries to install.
RUNTIME_MODULES = frozenset({"pyspark", "py4j", "delta", "dbruntime", "databricks"})
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[^\]]*\])?\s*===?\s*[^\s,;]+$")
_PIP_OPTIONS_WITH_VALUE = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-e"}
)


def analyze_notebook(
    services: Services, principal: Principal, notebook: str, *, version: int | None = None
) -> NotebookAnalysis:
    """The analysis of a notebook of the caller's tenant, by id or workspace path (``NotFound``
    for a notebook of another tenant, as for one that does not exist)."""
    if not isinstance(notebook, str) or not notebook.strip():
        raise InvalidInput("give a notebook id or a workspace path like /reports/daily")
    if version is not None and (not isinstance(version, int) or version < 1):
        raise InvalidInput("version is a whole number from 1")
    facts, nb = notebooks.load(services, principal, notebooks.resolve(services, principal, notebook), version=version)
    return analyze_node(nb, principal=principal, notebook_id=facts.notebook_id, path=facts.path, version=facts.version)


def analyze_source(
    source: str,
    *,
    principal: Principal,
    language: str = "python",
    path: str = "",
    format: str = "auto",
    notebook_id: str = "",
    version: int = 0,
) -> NotebookAnalysis:
    """The analysis of a notebook file (Databricks source or Jupyter), such as one in a bundle."""
    if language not in sf.LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(sf.LANGUAGES)}")
    nb = sf.read_any(source, format=format, language=language)
    return analyze_node(nb, principal=principal, notebook_id=notebook_id, path=path, version=version)


def analyze_node(
    nb: NotebookNode, /, *, principal: Principal, notebook_id: str = "", path: str = "", version: int = 0
) -> NotebookAnalysis:
    language = sf.notebook_language(nb)
    out = Collector()
    state = State(catalog=principal.catalog)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            _cell(sf._text(cell.source), index, language, state, out)
    for name, (cell_index, line) in out.widget_reads.items():
        if name not in out.widgets:
            out.finding(
                "undeclared_widget",
                "warning",
                f"the widget {name!r} is read but never created; a run without a parameter of that name fails",
                cell_index,
                line,
            )
    return NotebookAnalysis(
        notebook_id=notebook_id,
        path=path,
        version=version,
        language=language,
        cells=len(nb.cells),
        packages=_packages(out),
        pip_lines=out.pip_lines,
        tables=list(out.tables.values()),
        widgets=list(out.widgets.values()),
        dbutils=list(out.dbutils),
        external_paths=list(out.paths),
        network_calls=list(out.network),
        runs=out.runs,
        findings=out.sorted_findings(),
    )


def _cell(source: str, index: int, language: str, state: State, out: Collector) -> None:
    if not source.strip():
        return
    first, _, rest = source.partition("\n")
    magic = sf.cell_magic(source)
    if magic is None and first.startswith("%%sql"):
        magic = "sql"
    if magic is None:
        if language == "sql":
            _sql_cell(source, index, 0, out, state)
        elif language == "python":
            _python_cell(source, index, 0, state, out)
        else:
            out.finding("not_analysed", "info", f"{language} cells are kept but not analysed", index, None)
        return
    inline = first.lstrip("%").partition(" ")[2] if " " in first else ""
    body, offset = (inline + ("\n" + rest if rest else ""), 0) if inline.strip() else (rest, 1)
    if magic == "sql":
        _sql_cell(body, index, offset, out, state)
    elif magic == "python":
        _python_cell(body, index, offset, state, out)
    elif magic in ("pip", "conda"):
        _python_cell(source, index, 0, state, out)  # each %pip line is one command
    elif magic == "run":
        target = body.strip().split()[0] if body.strip() else ""
        if target:
            out.runs.append(target)
        else:
            out.finding("run_without_target", "error", "%run needs a notebook path, like %run ./helpers", index, 1)
    elif magic == "sh":
        out.finding("shell_cell", "warning", "a %sh cell runs shell commands; the bundle cannot check them", index, 1)
        _secrets_in_text(source, index, out)
    elif magic == "fs":
        out.dbutils.setdefault("dbutils.fs", None)
    elif magic in ("scala", "r"):
        out.finding("not_analysed", "info", f"%{magic} cells are not analysed and do not run locally", index, 1)


def _python_cell(source: str, index: int, offset: int, state: State, out: Collector) -> None:
    lines = source.split("\n")
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            command = stripped.lstrip("%!")
            if re.match(r"^(?:pip|pip3|conda)\s", command):
                _pip(stripped, index, n + 1 + offset, out)
            lines[n] = ""
    scan_python("\n".join(lines), cell=index, offset=offset, state=state, out=out)


def _sql_cell(source: str, index: int, offset: int, out: Collector, state: State) -> None:
    scanned = scan_sql(source, catalog=state.catalog, temp_views=state.temp_views)
    record_sql(scanned, out, cell=index, via="%sql", at=lambda n: n + offset)
    _secrets_in_text(source, index, out, offset=offset)


def _secrets_in_text(source: str, index: int, out: Collector, *, offset: int = 0) -> None:
    for n, line in enumerate(source.split("\n"), start=1):
        kind = secret_kind(line)
        if kind is not None:
            out.finding(
                "hard_coded_secret",
                "error",
                f"a hard-coded {kind}; read it from a secret scope instead",
                index,
                n + offset,
            )


def _pip(line: str, index: int, at: int, out: Collector) -> None:
    out.pip_lines.append(line)
    words = line.split()[1:]
    if words and words[0] in ("install",):
        words = words[1:]
    else:
        return
    out.finding(
        "pip_in_notebook",
        "info",
        "%pip does not run in the local kernel (no network): install the package in the service's environment, "
        "and list it as a library of the bundle's job",
        index,
        at,
    )
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _PIP_OPTIONS_WITH_VALUE
            continue
        if "/" in word or word.endswith((".whl", ".tar.gz", ".zip")) or word.startswith("$"):
            continue
        requirement = word.strip("'\"")
        if not _PIN.match(requirement):
            out.finding(
                "pip_unpinned",
                "warning",
                f"{requirement} is installed without a version; pin it (name==version) so runs repeat",
                index,
                at,
            )


def _packages(out: Collector) -> list[PackageUse]:
    found: list[PackageUse] = []
    for module, cells in out.modules.items():
        if module in sys.stdlib_module_names or module in RUNTIME_MODULES or module == "__future__":
            continue
        package, version = _distribution(module)
        found.append(PackageUse(module=module, package=package, version=version, cells=cells))
        if package is None:
            out.finding(
                "unknown_module",
                "warning",
                f"{module} is not installed where notebooks run; install it or remove the import",
                cells[0],
                None,
            )
    return found


def _distribution(module: str) -> tuple[str | None, str | None]:
    names = _module_packages().get(module)
    if not names:
        return None, None
    name = sorted(names)[0]
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return name, None


@functools.cache
def _module_packages() -> dict[str, list[str]]:
    # The kernel runs on this interpreter (runs/sandbox/kernels.py), so its environment is this one.
    return dict(importlib.metadata.packages_distributions())
