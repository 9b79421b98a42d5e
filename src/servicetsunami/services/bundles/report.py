"""What an analysis reports (the shapes :mod:`.analysis` publishes) and the collector that builds
them while cells are scanned: one place deduplicates and orders what the scanners find."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "warning", "error"]


class Finding(BaseModel):
    code: str = Field(description="What kind of finding, e.g. hard_coded_secret, other_catalog")
    severity: Severity
    message: str
    cell: int | None = Field(default=None, description="Index of the cell (0-based, as get_notebook numbers them)")
    line: int | None = Field(default=None, description="Line within the cell, 1-based")


class PackageUse(BaseModel):
    module: str = Field(description="Top-level module imported")
    package: str | None = Field(description="Its PyPI distribution in the kernel's environment; None: not installed")
    version: str | None
    cells: list[int]


class TableUse(BaseModel):
    table: str = Field(description="catalog.schema.table in the tenant's catalog; as written when dynamic")
    access: Literal["read", "write"]
    cell: int
    line: int | None
    via: str = Field(description="spark.sql, %sql, spark.table, spark.read.table, saveAsTable, insertInto, writeTo")


class Widget(BaseModel):
    name: str
    kind: str = Field(description="text, dropdown, combobox or multiselect")
    default: str | None
    choices: list[str] = Field(default_factory=list)
    cell: int


class NotebookAnalysis(BaseModel):
    notebook_id: str
    path: str
    version: int
    language: str
    cells: int
    packages: list[PackageUse]
    pip_lines: list[str]
    tables: list[TableUse]
    widgets: list[Widget]
    dbutils: list[str] = Field(description="dbutils functions called, like dbutils.widgets.get")
    external_paths: list[str] = Field(description="Paths outside the tenant's volumes: /dbfs, s3://, local ...")
    network_calls: list[str] = Field(description="Network functions called, like requests.get")
    runs: list[str] = Field(description="%run targets")
    findings: list[Finding]


class Collector:
    """Everything found in a notebook so far, in the order it was found."""

    def __init__(self) -> None:
        self.modules: dict[str, list[int]] = {}
        self.pip_lines: list[str] = []
        self.tables: dict[tuple[str, str, int, str], TableUse] = {}
        self.widgets: dict[str, Widget] = {}
        self.dbutils: dict[str, None] = {}
        self.paths: dict[str, None] = {}
        self.network: dict[str, None] = {}
        self.runs: list[str] = []
        self.widget_reads: dict[str, tuple[int, int | None]] = {}  # name -> where it is first read
        self.findings: list[Finding] = []
        self._finding_keys: set[tuple[str, int | None, int | None, str]] = set()

    def module(self, name: str, cell: int) -> None:
        cells = self.modules.setdefault(name, [])
        if cell not in cells:
            cells.append(cell)

    def table(self, table: str, access: Literal["read", "write"], cell: int, line: int | None, via: str) -> None:
        key = (table, access, cell, via)
        if key not in self.tables:
            self.tables[key] = TableUse(table=table, access=access, cell=cell, line=line, via=via)

    def widget(self, widget: Widget) -> None:
        self.widgets.setdefault(widget.name, widget)

    def finding(self, code: str, severity: Severity, message: str, cell: int | None, line: int | None) -> None:
        key = (code, cell, line, message)
        if key not in self._finding_keys:
            self._finding_keys.add(key)
            self.findings.append(Finding(code=code, severity=severity, message=message, cell=cell, line=line))

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.cell if f.cell is not None else -1, f.line or 0))
