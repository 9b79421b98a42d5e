"""Pipelines (jobs) over REST: request bodies. The answers are the service's JobPublic and JobRunPublic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PipelineCreate(BaseModel):
    """A job definition: ours ({name, tasks, parameters, schedule, ...}) or the earlier API's ({name, config: {tasks,
    schedule}}). Validated by the service, which names what is wrong (invalid_job)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    name: str = Field(min_length=1, max_length=200)

    def definition(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=False)


class PipelineUpdate(PipelineCreate):
    """The whole new definition (it replaces the old one)."""


class PipelineRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, str] = Field(default_factory=dict, description="Job parameters for this run")
    wait_seconds: float = Field(0, ge=0, le=60, description="Answer once the run ends, or after this long")


class PipelineRepair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] | None = Field(None, description="Only these task_keys (default: the failed and skipped ones)")
    wait_seconds: float = Field(0, ge=0, le=60)


class PipelinePause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool = Field(description="True pauses the schedule; False resumes it from the next tick")
