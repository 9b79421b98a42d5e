"""Notebook tools: ``create_notebook``, ``get_notebook``, ``update_notebook``, ``list_notebooks``,
``delete_notebook``, ``import_notebook``, ``export_notebook``, ``run_notebook``,
``get_notebook_run``, ``cancel_notebook_run``. A run waits (with progress) up to ``wait_seconds``
and answers with its run id either way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks, workspace
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.notebooks.notebooks import NotebookDetail, NotebookExport, NotebookList
from servicetsunami.services.notebooks.runs import NotebookRunPublic
from servicetsunami.services.notebooks.workspace import WorkspaceCopy
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.model import RunPublic

_READ = ToolAnnotations(title="Notebooks", read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(
    title="Change a notebook",
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=False,
    open_world_hint=False,
)
_DELETE = ToolAnnotations(
    title="Delete a notebook", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
_RUN = ToolAnnotations(
    title="Run a notebook", read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
MAX_WAIT_SECONDS = 120.0

NotebookRef = Annotated[str, Field(description="A notebook id, or its workspace path like /reports/daily")]
Path = Annotated[str, Field(description="Workspace path: /folder/name (letters, digits, spaces, _ . -)")]


class CellIn(BaseModel):
    cell_type: Literal["code", "markdown"] = "code"
    source: str = Field(description="Python, or a %sql / %md / %run ./other cell as in Databricks")
    title: str | None = None
    tags: list[str] = Field(default_factory=list, description="'parameters' marks the cell parameters follow")


class Deleted(BaseModel):
    notebook_id: str
    deleted: bool = True


def _cells(cells: list[CellIn] | None) -> list[dict[str, Any]] | None:
    return None if cells is None else [c.model_dump() for c in cells]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(NotebookDetail))
    async def create_notebook(
        path: Path,
        cells: Annotated[list[CellIn] | None, Field(description="The cells, in order")] = None,
        content: Annotated[
            str | None, Field(description="Instead of cells: a Jupyter .ipynb or Databricks source file's text")
        ] = None,
        language: Annotated[Literal["python", "sql"] | None, Field(description="Default: python")] = None,
    ) -> ToolResult:
        """Create a notebook from cells, or from a Jupyter or Databricks source file."""
        return tool_result(
            await call_service(
                notebooks.create_notebook,
                services,
                caller.principal(),
                path,
                cells=_cells(cells),
                content=content,
                language=language,
            )
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(NotebookDetail))
    async def get_notebook(
        notebook: NotebookRef,
        version: Annotated[int | None, Field(ge=1, description="An older version; default the newest")] = None,
    ) -> ToolResult:
        """A notebook's cells and facts (path, language, version)."""
        return tool_result(
            await call_service(notebooks.get_notebook, services, caller.principal(), notebook, version=version)
        )

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(NotebookDetail))
    async def update_notebook(
        notebook: NotebookRef,
        cells: Annotated[list[CellIn] | None, Field(description="The new cells (a new version)")] = None,
        content: Annotated[str | None, Field(description="Or a whole Jupyter / Databricks source file")] = None,
        path: Annotated[str | None, Field(description="Move it to this path")] = None,
        expected_version: Annotated[
            int | None, Field(ge=1, description="Refuse if someone saved a newer version meanwhile")
        ] = None,
    ) -> ToolResult:
        """Save new cells or content as a new version, and/or move the notebook."""
        return tool_result(
            await call_service(
                notebooks.update_notebook,
                services,
                caller.principal(),
                notebook,
                cells=_cells(cells),
                content=content,
                path=path,
                expected_version=expected_version,
            )
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(NotebookList))
    async def list_notebooks(
        folder: Annotated[str, Field(description="A folder path; / for all")] = "/",
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> ToolResult:
        """Notebooks under a folder (by path) and the folders directly below it."""
        return tool_result(
            await call_service(
                notebooks.list_notebooks, services, caller.principal(), folder=folder, limit=limit, after=cursor
            )
        )

    @server.tool(tags={"write"}, annotations=_DELETE, output_schema=output_schema(Deleted))
    async def delete_notebook(notebook: NotebookRef) -> ToolResult:
        """Delete a notebook and all its versions."""
        principal = caller.principal()
        notebook_id = await call_service(notebooks.resolve, services, principal, notebook)
        await call_service(notebooks.delete_notebook, services, principal, notebook_id)
        return tool_result(Deleted(notebook_id=notebook_id))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(NotebookDetail))
    async def import_notebook(
        path: Path,
        content: Annotated[str, Field(description="A Jupyter .ipynb or Databricks source (.py / .sql) file's text")],
        format: Annotated[Literal["auto", "jupyter", "source"], Field(description="auto: by the content")] = "auto",
        overwrite: Annotated[bool, Field(description="Replace a notebook at this path (as a new version)")] = False,
    ) -> ToolResult:
        """Import a notebook file (Jupyter or Databricks source format)."""
        return tool_result(
            await call_service(
                notebooks.import_notebook,
                services,
                caller.principal(),
                path,
                content,
                format=format,
                overwrite=overwrite,
            )
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(NotebookExport))
    async def export_notebook(
        notebook: NotebookRef,
        format: Annotated[
            Literal["source", "jupyter", "html"], Field(description="Databricks source, Jupyter, or HTML")
        ] = "source",
        version: Annotated[int | None, Field(ge=1)] = None,
    ) -> ToolResult:
        """A notebook as a file: Databricks source (.py / .sql), Jupyter (.ipynb) or HTML."""
        return tool_result(
            await call_service(
                notebooks.export_notebook, services, caller.principal(), notebook, format=format, version=version
            )
        )

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(WorkspaceCopy))
    async def publish_notebook(notebook: NotebookRef) -> ToolResult:
        """Databricks engine: put the notebook's newest version into the workspace (your catalog's folder)."""
        return tool_result(await call_service(workspace.publish_notebook, services, caller.principal(), notebook))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(WorkspaceCopy))
    async def pull_notebook(notebook: NotebookRef) -> ToolResult:
        """Databricks engine: save the notebook's workspace copy (edited there) as its next version."""
        return tool_result(await call_service(workspace.pull_notebook, services, caller.principal(), notebook))

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(NotebookRunPublic))
    async def run_notebook(
        notebook: NotebookRef,
        ctx: Context,
        parameters: Annotated[
            dict[str, str] | None, Field(description="Widget values / variables, set after the 'parameters' cell")
        ] = None,
        wait_seconds: Annotated[
            float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait (with progress) at most this long")
        ] = 30,
        timeout_seconds: Annotated[float | None, Field(gt=0, description="Stop the run after this long")] = None,
    ) -> ToolResult:
        """Run a notebook in the sandbox with parameters; answers with the run (id, state, cells, result)."""
        principal = caller.principal()
        run_id = await call_service(
            nbruns.run_notebook, services, principal, notebook, parameters=parameters, timeout_seconds=timeout_seconds
        )

        async def report(run: RunPublic) -> None:
            p = run.progress
            await ctx.report_progress(float(p.done or 0), p.total, p.message or run.state)

        if wait_seconds > 0:
            await runs.await_run(services, principal, run_id, timeout=wait_seconds, on_progress=report)
        return tool_result(await call_service(nbruns.get_notebook_run, services, principal, run_id))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(NotebookRunPublic))
    async def get_notebook_run(
        run_id: Annotated[str, Field(description="The run id run_notebook returned")],
        include_notebook: Annotated[bool, Field(description="Also the executed notebook (Jupyter JSON)")] = False,
    ) -> ToolResult:
        """A notebook run: state, each cell's status, time, text and tables, and the exit value."""
        return tool_result(
            await call_service(
                nbruns.get_notebook_run, services, caller.principal(), run_id, include_notebook=include_notebook
            )
        )

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(NotebookRunPublic))
    async def cancel_notebook_run(run_id: Annotated[str, Field(description="The run id")]) -> ToolResult:
        """Stop a notebook run (the kernel is interrupted, then killed)."""
        return tool_result(await call_service(nbruns.cancel_notebook_run, services, caller.principal(), run_id))
