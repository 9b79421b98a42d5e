"""Request bodies of /bundles."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BundleAnalyze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notebook: str = Field(max_length=1000, description="A notebook id, or its workspace path like /reports/daily")
    version: int | None = Field(None, ge=1, description="An older version; default the newest")


class BundleGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="The bundle's name: letters, digits, _ and -")
    jobs: list[str] = Field(default_factory=list, max_length=50, description="Job ids or names")
    notebooks: list[str] = Field(default_factory=list, max_length=200, description="Notebook ids or paths")
    targets: dict[str, dict[str, str]] | None = Field(
        None, description="dev/prod -> {catalog, warehouse_id, host, root_path}"
    )
    compute: Literal["serverless", "job_cluster"] = "serverless"


class BundleFilesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(description="Bundle files: path relative to its root -> text")


class BundleTests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notebook: str | None = Field(None, max_length=1000, description="A notebook id or path")
    bundle: dict[str, str] | None = Field(None, description="Or a bundle's files (path -> text)")
    parameter_sets: list[dict[str, str]] | None = Field(None, description="Widget values besides the defaults")
