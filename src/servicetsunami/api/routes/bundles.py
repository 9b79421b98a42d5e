"""Asset Bundles: analyze a notebook, generate a bundle from jobs and notebooks (JSON files, or a zip
with ``Accept: application/zip``), validate one (JSON files, or a zip body with ``Content-Type:
application/zip``), and make a test scaffold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.bundles import BundleAnalyze, BundleFilesIn, BundleGenerate, BundleTests
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.errors import InvalidInput
from servicetsunami.services.bundles import analysis, generate, loading, scaffold, validate
from servicetsunami.services.bundles.analysis import NotebookAnalysis
from servicetsunami.services.bundles.generate import GeneratedBundle
from servicetsunami.services.bundles.scaffold import GeneratedFiles
from servicetsunami.services.bundles.validate import ValidationReport

router = APIRouter(prefix="/bundles", tags=["bundles"])
ZIP = "application/zip"


@router.post("/analyze", operation_id="analyze_notebook", response_model=NotebookAnalysis, responses=COMMON_ERRORS)
async def analyze_notebook(body: BundleAnalyze, services: ServicesDep, principal: PrincipalDep) -> NotebookAnalysis:
    """What a notebook imports, reads, writes and asks for (widgets), with findings to review."""
    return await run_in_threadpool(
        lambda: analysis.analyze_notebook(services, principal, body.notebook, version=body.version)
    )


@router.post(
    "/generate",
    operation_id="generate_bundle",
    response_model=GeneratedBundle,
    responses={**COMMON_ERRORS, 200: {"content": {ZIP: {}}, "description": "The bundle (JSON, or a zip)"}},
)
async def generate_bundle(
    body: BundleGenerate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Any:
    """A Databricks Asset Bundle of jobs and notebooks; ``Accept: application/zip`` answers the zip."""
    made = await run_in_threadpool(
        lambda: generate.generate_bundle(
            services,
            principal,
            body.name,
            jobs=body.jobs,
            notebooks=body.notebooks,
            targets=body.targets,
            compute=body.compute,
        )
    )
    if ZIP in request.headers.get("accept", ""):
        return Response(
            generate.to_zip(made.files, root=made.name),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{made.name}.zip"'},
        )
    return made


@router.post(
    "/validate",
    operation_id="validate_bundle",
    response_model=ValidationReport,
    responses=COMMON_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": BundleFilesIn.model_json_schema()},
                ZIP: {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def validate_bundle(request: Request, principal: PrincipalDep) -> ValidationReport:
    """Check a bundle offline (JSON ``{"files": {...}}`` or a zip body); the report says which checks ran."""
    body = await request.body()
    if request.headers.get("content-type", "").split(";")[0].strip() == ZIP:
        files = await run_in_threadpool(lambda: loading.files_from_zip(body))
    else:
        try:
            files = BundleFilesIn.model_validate_json(body).files
        except ValidationError:
            raise InvalidInput(
                'send {"files": {"path": "text", ...}} as JSON, or the bundle as application/zip'
            ) from None
    return await run_in_threadpool(lambda: validate.validate_bundle(principal, files))


@router.post("/tests", operation_id="create_tests", response_model=GeneratedFiles, responses=COMMON_ERRORS)
async def create_tests(body: BundleTests, services: ServicesDep, principal: PrincipalDep) -> GeneratedFiles:
    """A pytest scaffold that runs a notebook (or a bundle's notebooks) locally and checks what it writes."""
    return await run_in_threadpool(
        lambda: scaffold.create_tests(
            services, principal, notebook=body.notebook, bundle=body.bundle, parameter_sets=body.parameter_sets
        )
    )
