"""Asset Bundle tools: ``analyze_notebook``, ``generate_bundle``, ``validate_bundle``, ``create_tests``.

With ``list_notebooks`` and ``export_notebook`` (notebook tools) they are seed 003's path from a
notebook to a deployable bundle. Bundles travel as ``files`` (path -> text); ``generate_bundle`` can
add the zip as base64 and ``validate_bundle`` can take one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.errors import InvalidInput
from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.bundles import analysis, generate, loading, scaffold, validate
from servicetsunami.services.bundles.analysis import NotebookAnalysis
from servicetsunami.services.bundles.generate import GeneratedBundle
from servicetsunami.services.bundles.scaffold import GeneratedFiles
from servicetsunami.services.bundles.validate import ValidationReport
from servicetsunami.services.container import Services

_READ = ToolAnnotations(title="Bundles", read_only_hint=True, open_world_hint=False)

Files = Annotated[dict[str, str] | None, Field(description="Bundle files: path relative to its root -> text")]


class GeneratedBundleOut(GeneratedBundle):
    zip_base64: str | None = Field(None, description="The files as a zip archive, base64 (with as_zip)")


def _generate(services: Services, principal: Any, as_zip: bool, **kwargs: Any) -> GeneratedBundleOut:
    made = generate.generate_bundle(services, principal, kwargs.pop("name"), **kwargs)
    out = GeneratedBundleOut(**made.model_dump())
    if as_zip:
        out.zip_base64 = base64.b64encode(generate.to_zip(made.files, root=made.name)).decode()
    return out


def bundle_files(files: dict[str, str] | None, zip_base64: str | None, /) -> dict[str, str]:
    """The bundle given as files or as a base64 zip (exactly one)."""
    if (files is None) == (zip_base64 is None):
        raise InvalidInput("give the bundle as files or as zip_base64 (one of them)")
    if files is not None:
        return files
    try:
        data = base64.b64decode(str(zip_base64), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("zip_base64 is not base64") from None
    return loading.files_from_zip(data)


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(NotebookAnalysis))
    async def analyze_notebook(
        notebook: Annotated[str, Field(description="A notebook id, or its workspace path like /reports/daily")],
        version: Annotated[int | None, Field(ge=1, description="An older version; default the newest")] = None,
    ) -> ToolResult:
        """What a notebook imports, reads, writes and asks for (widgets), with findings to review."""
        return tool_result(
            await call_service(analysis.analyze_notebook, services, caller.principal(), notebook, version=version)
        )

    @server.tool(tags={"write"}, annotations=_READ, output_schema=output_schema(GeneratedBundleOut))
    async def generate_bundle(
        name: Annotated[str, Field(description="The bundle's name: letters, digits, _ and -")],
        jobs: Annotated[list[str] | None, Field(description="Job ids or names (jobs they run come too)")] = None,
        notebooks: Annotated[list[str] | None, Field(description="More notebooks, by id or path")] = None,
        targets: Annotated[
            dict[str, dict[str, str]] | None,
            Field(description="dev/prod -> {catalog, warehouse_id, host, root_path}"),
        ] = None,
        compute: Annotated[
            Literal["serverless", "job_cluster"], Field(description="Default serverless")
        ] = "serverless",
        as_zip: Annotated[bool, Field(description="Also return the files as a base64 zip")] = False,
    ) -> ToolResult:
        """A Databricks Asset Bundle (databricks.yml, job resources, notebooks, SQL files) of your jobs."""
        return tool_result(
            await call_service(
                _generate,
                services,
                caller.principal(),
                as_zip,
                name=name,
                jobs=jobs,
                notebooks=notebooks,
                targets=targets,
                compute=compute,
            )
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(ValidationReport))
    async def validate_bundle(
        files: Files = None,
        zip_base64: Annotated[str | None, Field(description="Or the bundle as a base64 zip")] = None,
    ) -> ToolResult:
        """Check a bundle offline: YAML, fields, keys, dependencies, files, references, schedules."""
        principal = caller.principal()

        def run() -> ValidationReport:
            return validate.validate_bundle(principal, bundle_files(files, zip_base64))

        return tool_result(await call_service(run))

    @server.tool(tags={"write"}, annotations=_READ, output_schema=output_schema(GeneratedFiles))
    async def create_tests(
        notebook: Annotated[str | None, Field(description="A notebook id or path")] = None,
        bundle: Files = None,
        parameter_sets: Annotated[
            list[dict[str, str]] | None, Field(description="Widget values to run with, besides the defaults")
        ] = None,
    ) -> ToolResult:
        """A pytest scaffold that runs a notebook (or a bundle's) locally and checks what it writes."""
        return tool_result(
            await call_service(
                scaffold.create_tests,
                services,
                caller.principal(),
                notebook=notebook,
                bundle=bundle,
                parameter_sets=parameter_sets,
            )
        )
