"""Request bodies of agents, serving endpoints and chat."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Letters, digits, '_' and '-', starting with a letter")
    instructions: str | None = Field(None, description="The system prompt; default: answer from the tenant's data")
    model: str | None = Field(
        None, description="'default', a model name of the configured provider, or 'endpoint:<name>'"
    )
    tools: list[str] | None = Field(None, description="Any of query_sql, list_tables, describe_table (default: all)")
    vector_indexes: list[str] | None = Field(None, description="Vector index names the agent may search")
    description: str | None = None


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instructions: str | None = None
    model: str | None = None
    tools: list[str] | None = None
    vector_indexes: list[str] | None = None
    description: str | None = None


class AgentDeploy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The endpoint's name (in its URL)")
    rate_limit: str | None = Field(None, description="Requests per caller, like '100/minute' (default from settings)")
    workload_size: str = Field("Small", description="Small, Medium or Large (used on Databricks)")
    wait_seconds: float | None = Field(None, ge=0, le=120, description="Wait this long for the deployment run")


class EndpointCreate(AgentDeploy):
    agent: str = Field(description="The agent to serve, by name or id")


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="What the person says")
    conversation_id: str | None = Field(None, description="Continue this conversation (else a new one starts)")
    agent: str | None = Field(None, description="The agent to talk to (default: the tenant's SQL agent)")


class WorkspaceModelDeploy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The endpoint's name (in its URL)")
    entity_name: str = Field(description="<your catalog>.<schema>.<model> (Unity Catalog) or system.ai.<model>")
    entity_version: str | None = Field(None, description="The model version, like '3'")
    workload_size: str = Field("Small", description="Small, Medium or Large")
    rate_limit: str | None = Field(None, description="Requests per caller, like '100/minute' (default from settings)")
    wait_seconds: float | None = Field(None, ge=0, le=120, description="Wait this long for the deployment run")
