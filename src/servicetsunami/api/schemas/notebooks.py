"""Request bodies of /notebooks (the answers are the service's own shapes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CellCreate(BaseModel):
    cell_type: Literal["code", "markdown"] = "code"
    source: str = Field(max_length=1_000_000, description="Python, or a %sql / %md / %run ./other cell")
    title: str | None = Field(None, max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=20)


class NotebookCreate(BaseModel):
    path: str = Field(max_length=500, description="Workspace path, like /reports/daily")
    cells: list[CellCreate] | None = Field(None, max_length=2000)
    content: str | None = Field(None, description="Instead of cells: a Jupyter or Databricks source file's text")
    format: Literal["auto", "jupyter", "source"] = "auto"
    language: Literal["python", "sql"] | None = None


class NotebookUpdate(BaseModel):
    cells: list[CellCreate] | None = Field(None, max_length=2000)
    content: str | None = None
    format: Literal["auto", "jupyter", "source"] = "auto"
    path: str | None = Field(None, max_length=500, description="Move the notebook here")
    expected_version: int | None = Field(None, ge=1, description="Refuse when a newer version was saved meanwhile")


class NotebookImport(BaseModel):
    path: str = Field(max_length=500)
    content: str = Field(description="A Jupyter .ipynb or Databricks source (.py / .sql) file's text")
    format: Literal["auto", "jupyter", "source"] = "auto"
    language: Literal["python", "sql"] | None = None
    overwrite: bool = False


class NotebookRunCreate(BaseModel):
    parameters: dict[str, str] = Field(default_factory=dict, description="Widget values, set after 'parameters'")
    timeout_seconds: float | None = Field(None, gt=0)
    wait_seconds: float = Field(0, ge=0, le=60, description="Answer once the run ends, or after this long")
