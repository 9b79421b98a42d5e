"""Agents of a tenant: create, update, get, list, delete (DESIGN.md section 12).

An agent is a name, instructions, a model and tools. ``model`` is one of:

- ``"default"`` (or empty): the LLM provider configured in settings (``TSUNAMI_AI__*``), its model;
- a model name (``"gpt-4o-mini"``, ``"databricks-meta-llama-3-3-70b-instruct"``): the configured
  provider, asked for that model (a Foundation Model endpoint when its ``base_url`` is a workspace's
  ``/serving-endpoints``);
- ``"endpoint:<name>"``: the Databricks serving endpoint ``<name>`` of the configured workspace
  (``TSUNAMI_DATABRICKS__HOST`` and its token), spoken to in the OpenAI-compatible shape.

MCP sampling is no model for an agent: an endpoint answers when no MCP client is connected.

``tools`` picks from :data:`SQL_TOOLS` (the tenant's guarded SQL, list and describe tables);
``vector_indexes`` names the tenant's vector indexes the agent may search (names only here; each
search checks the index like every other door).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from servicetsunami.errors import InvalidInput, invalid_arguments
from servicetsunami.store.models import Agent
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import serving as serving_repo
from servicetsunami.tenancy import Principal, Scope, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

SQL_TOOLS = ("query_sql", "list_tables", "describe_table")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$")
DEFAULT_INSTRUCTIONS = (
    "You answer questions about the user's data. Use the tools to look at the tables and query them "
    "with one read-only Databricks SQL statement at a time; answer briefly from what the tools return."
)


def check_name(name: str, /, *, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"{what} {name!r} is not valid: letters, digits, '_' and '-', starting with a letter (at most 63)"
        )
    return name


class AgentDefinition(BaseModel):
    """What an agent is made of (stored as is; every field has a default but the name)."""

    instructions: str = Field(DEFAULT_INSTRUCTIONS, max_length=20_000, description="The system prompt.")
    model: str = Field(
        "default",
        max_length=200,
        description="'default' (the configured provider), a model name for it, or 'endpoint:<name>' (Databricks)",
    )
    tools: list[str] = Field(default_factory=lambda: list(SQL_TOOLS), description=f"Any of {', '.join(SQL_TOOLS)}")
    vector_indexes: list[str] = Field(default_factory=list, description="Vector index names the agent may search")
    description: str = Field("", max_length=2000)

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in SQL_TOOLS]
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {', '.join(SQL_TOOLS)}")
        return list(dict.fromkeys(value))

    @field_validator("vector_indexes")
    @classmethod
    def _indexes(cls, value: list[str]) -> list[str]:
        for name in value:
            check_identifier(name, what="vector index")
        if len(value) > 20:
            raise ValueError("at most 20 vector indexes")
        return list(dict.fromkeys(value))

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        value = value.strip() or "default"
        if value.startswith("endpoint:"):
            check_name(value.removeprefix("endpoint:"), what="serving endpoint")
        elif not re.fullmatch(r"[A-Za-z0-9_.:/\-]{1,200}", value):
            raise ValueError("a model name is letters, digits and _ . : / -")
        return value


class AgentPublic(AgentDefinition):
    agent_id: str
    name: str
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class AgentList(BaseModel):
    agents: list[AgentPublic]


def definition_of(fields: dict[str, Any], /) -> AgentDefinition:
    try:
        return AgentDefinition.model_validate(fields)
    except ValidationError as exc:
        raise invalid_arguments(list(exc.errors()), what="agent") from None


def public(agent: Agent, /) -> AgentPublic:
    return AgentPublic(
        **AgentDefinition.model_validate(agent.definition).model_dump(),
        agent_id=agent.id,
        name=agent.name,
        version=agent.version,
        created_by=agent.created_by,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def create_agent(
    svc: Services,
    principal: Principal,
    name: str,
    /,
    *,
    instructions: str | None = None,
    model: str | None = None,
    tools: list[str] | None = None,
    vector_indexes: list[str] | None = None,
    description: str | None = None,
) -> AgentPublic:
    principal.require(Scope.WRITE)
    check_name(name, what="agent name")
    given = {"instructions": instructions, "model": model, "tools": tools}
    given |= {"vector_indexes": vector_indexes, "description": description}
    definition = definition_of({k: v for k, v in given.items() if v is not None})
    with svc.store.session(write_lock=True) as session:
        agent = serving_repo.create_agent(
            session,
            tenant_id=principal.tenant_id,
            name=name,
            definition=definition.model_dump(),
            created_by=principal.subject,
        )
        audit_repo.record_audit(
            session, action="agent.create", subject=principal.subject, tenant_id=principal.tenant_id, target=name
        )
        return public(agent)


def update_agent(
    svc: Services,
    principal: Principal,
    agent: str,
    /,
    *,
    instructions: str | None = None,
    model: str | None = None,
    tools: list[str] | None = None,
    vector_indexes: list[str] | None = None,
    description: str | None = None,
) -> AgentPublic:
    """Change the given fields (the others stay); a deployed endpoint keeps serving the definition
    it was deployed with until it is deployed again."""
    principal.require(Scope.WRITE)
    changes = {"instructions": instructions, "model": model, "tools": tools}
    changes |= {"vector_indexes": vector_indexes, "description": description}
    with svc.store.session(write_lock=True) as session:
        row = serving_repo.get_agent(session, agent, tenant_id=principal.tenant_id)
        merged = {**row.definition, **{k: v for k, v in changes.items() if v is not None}}
        serving_repo.update_agent(session, row, definition=definition_of(merged).model_dump())
        audit_repo.record_audit(
            session, action="agent.update", subject=principal.subject, tenant_id=principal.tenant_id, target=row.name
        )
        return public(row)


def get_agent(svc: Services, principal: Principal, agent: str, /) -> AgentPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return public(serving_repo.get_agent(session, agent, tenant_id=principal.tenant_id))


def list_agents(svc: Services, principal: Principal, /) -> AgentList:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return AgentList(agents=[public(a) for a in serving_repo.list_agents(session, tenant_id=principal.tenant_id)])


def delete_agent(svc: Services, principal: Principal, agent: str, /) -> AgentPublic:
    """Delete an agent; endpoints deployed from it keep serving their copy until deleted."""
    principal.require(Scope.WRITE)
    with svc.store.session(write_lock=True) as session:
        row = serving_repo.get_agent(session, agent, tenant_id=principal.tenant_id)
        gone = public(row)
        serving_repo.delete_agent(session, row)
        audit_repo.record_audit(
            session, action="agent.delete", subject=principal.subject, tenant_id=principal.tenant_id, target=row.name
        )
        return gone
