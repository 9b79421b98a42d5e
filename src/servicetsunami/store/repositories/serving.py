"""Agents, serving endpoints and chat conversations of a tenant (see the package docstring for the
conventions). Every read and write is scoped by ``tenant_id``: another tenant's row is not found."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, NotFound
from servicetsunami.store.models import Agent, Conversation, ServingEndpoint, utcnow


def create_agent(
    session: Session, /, *, tenant_id: str, name: str, definition: dict[str, Any], created_by: str
) -> Agent:
    try:
        with session.begin_nested():
            agent = Agent(tenant_id=tenant_id, name=name, definition=definition, version=1, created_by=created_by)
            session.add(agent)
            session.flush()
    except IntegrityError:
        raise Conflict(f"an agent named {name!r} already exists") from None
    return agent


def get_agent(session: Session, ref: str, /, *, tenant_id: str) -> Agent:
    """An agent by id or by name."""
    agent = session.scalar(select(Agent).where(Agent.tenant_id == tenant_id, (Agent.id == ref) | (Agent.name == ref)))
    if agent is None:
        raise NotFound(f"agent {ref!r} not found")
    return agent


def list_agents(session: Session, /, *, tenant_id: str) -> list[Agent]:
    return list(session.scalars(select(Agent).where(Agent.tenant_id == tenant_id).order_by(Agent.name)))


def update_agent(session: Session, agent: Agent, /, *, definition: dict[str, Any]) -> Agent:
    agent.definition = definition
    agent.version += 1
    agent.updated_at = utcnow()
    session.flush()
    return agent


def delete_agent(session: Session, agent: Agent, /) -> None:
    session.delete(agent)
    session.flush()


def create_endpoint(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    kind: str,
    agent_id: str | None,
    config: dict[str, Any],
    rate_limit: str,
    created_by: str,
) -> ServingEndpoint:
    try:
        with session.begin_nested():
            endpoint = ServingEndpoint(
                tenant_id=tenant_id,
                name=name,
                kind=kind,
                agent_id=agent_id,
                config=config,
                state="NOT_READY",
                rate_limit=rate_limit,
                created_by=created_by,
                meta={},
            )
            session.add(endpoint)
            session.flush()
    except IntegrityError:
        raise Conflict(f"a serving endpoint named {name!r} already exists") from None
    return endpoint


def get_endpoint(session: Session, ref: str, /, *, tenant_id: str) -> ServingEndpoint:
    """An endpoint by name or by id."""
    endpoint = session.scalar(
        select(ServingEndpoint).where(
            ServingEndpoint.tenant_id == tenant_id, (ServingEndpoint.name == ref) | (ServingEndpoint.id == ref)
        )
    )
    if endpoint is None:
        raise NotFound(f"serving endpoint {ref!r} not found")
    return endpoint


def list_endpoints(session: Session, /, *, tenant_id: str) -> list[ServingEndpoint]:
    return list(
        session.scalars(
            select(ServingEndpoint).where(ServingEndpoint.tenant_id == tenant_id).order_by(ServingEndpoint.name)
        )
    )


def set_endpoint_state(
    session: Session, endpoint_id: str, /, *, state: str, error: str | None = None, run_id: str | None = None
) -> None:
    values: dict[str, Any] = {"state": state, "error": error[:4000] if error else None, "updated_at": utcnow()}
    if run_id is not None:
        values["run_id"] = run_id
    session.execute(update(ServingEndpoint).where(ServingEndpoint.id == endpoint_id).values(**values))


def set_endpoint_run(session: Session, endpoint_id: str, run_id: str, /) -> None:
    """Name the run deploying the endpoint, leaving its state alone (the run may have set it already)."""
    session.execute(
        update(ServingEndpoint).where(ServingEndpoint.id == endpoint_id).values(run_id=run_id, updated_at=utcnow())
    )


def delete_endpoint(session: Session, endpoint: ServingEndpoint, /) -> None:
    session.execute(delete(ServingEndpoint).where(ServingEndpoint.id == endpoint.id))


def create_conversation(session: Session, /, *, tenant_id: str, subject: str, agent_name: str | None) -> Conversation:
    conversation = Conversation(tenant_id=tenant_id, subject=subject, agent_name=agent_name, messages=[], meta={})
    session.add(conversation)
    session.flush()
    return conversation


def get_conversation(session: Session, conversation_id: str, /, *, tenant_id: str, subject: str) -> Conversation:
    """A conversation of this person; another person's (or tenant's) is not found."""
    found = session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.tenant_id == tenant_id, Conversation.subject == subject
        )
    )
    if found is None:
        raise NotFound("conversation not found")
    return found


def append_messages(session: Session, conversation: Conversation, messages: list[dict[str, Any]], /) -> None:
    conversation.messages = [*conversation.messages, *messages]
    conversation.updated_at = utcnow()
    session.flush()
