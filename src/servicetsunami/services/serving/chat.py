"""Chat: a signed-in person talks to an agent of their tenant (the default agent, with the tenant's
SQL tools and the configured model, when none is named); the conversation is kept in the store.

Each message runs the agent (:mod:`.loop`) with the conversation's last
``TSUNAMI_SERVING__HISTORY_MESSAGES`` turns, as the person: the same guard, caps and masking as
every other door. It is recorded as an ``agent_invocation`` run like an endpoint's invocation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.llm.chat import Message
from servicetsunami.security.ratelimits import RateLimiter
from servicetsunami.services.serving.agents import AgentDefinition
from servicetsunami.services.serving.endpoints import record_invocation
from servicetsunami.services.serving.loop import AgentResult, Emit, run_agent
from servicetsunami.store.repositories import serving as serving_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_MESSAGE_CHARS = 20_000


class ChatAnswer(BaseModel):
    conversation_id: str
    agent: str | None = Field(None, description="The agent that answered; null: the default agent")
    message: str = Field(description="The agent's answer")
    tool_calls: list[dict[str, Any]] = Field(description="The tools it called: name, arguments, ok, rows")
    run_id: str = Field(description="The agent_invocation run that recorded it")
    input_tokens: int
    output_tokens: int


def chat_message(
    svc: Services,
    principal: Principal,
    message: str,
    /,
    *,
    conversation_id: str | None = None,
    agent: str | None = None,
    limiter: RateLimiter | None = None,
    emit: Emit | None = None,
) -> ChatAnswer:
    principal.require(Scope.READ)
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"message must be non-empty text of at most {MAX_MESSAGE_CHARS} characters")
    with svc.store.session(write_lock=True) as session:
        if conversation_id is None:
            conversation = serving_repo.create_conversation(
                session, tenant_id=principal.tenant_id, subject=principal.subject, agent_name=None
            )
            agent_name = agent
        else:
            conversation = serving_repo.get_conversation(
                session, conversation_id, tenant_id=principal.tenant_id, subject=principal.subject
            )
            agent_name = conversation.agent_name
            if agent is not None and agent != agent_name:
                raise InvalidInput("a conversation keeps its agent; start a new conversation for another one")
        if agent_name is not None:
            row = serving_repo.get_agent(session, agent_name, tenant_id=principal.tenant_id)
            agent_name = row.name
            definition = AgentDefinition.model_validate(row.definition)
        else:
            definition = AgentDefinition()
        conversation.agent_name = agent_name
        conversation_id = conversation.id
        history = _recent(list(conversation.messages), svc.settings.serving.history_messages)
    if limiter is not None:
        limiter.hit_rate(
            "chat", svc.settings.serving.rate_limit, principal.tenant_id, principal.subject, what="chat messages"
        )
    turn: Message = {"role": "user", "content": message}
    started = time.perf_counter()
    result: AgentResult | None = None
    error: TsunamiError | None = None
    try:
        result = run_agent(svc, principal, definition, [*history, turn], emit=emit)
    except TsunamiError as exc:
        error = exc
    run_id = record_invocation(
        svc,
        principal,
        [result] if result is not None else [],
        error,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        resource_id=conversation_id,
        params={"conversation": conversation_id, "agent": agent_name},
        endpoint_id=None,
    )
    if error is not None:
        raise error
    assert result is not None
    with svc.store.session(write_lock=True) as session:
        conversation = serving_repo.get_conversation(
            session, conversation_id, tenant_id=principal.tenant_id, subject=principal.subject
        )
        serving_repo.append_messages(session, conversation, [turn, *result.messages])
    return ChatAnswer(
        conversation_id=conversation_id,
        agent=agent_name,
        message=result.text,
        tool_calls=result.trace,
        run_id=run_id,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )


def _recent(messages: list[Message], keep: int) -> list[Message]:
    """The last ``keep`` turns, starting at a user turn (a tool turn without its call is refused by models)."""
    recent = messages[-keep:]
    while recent and recent[0].get("role") != "user":
        recent.pop(0)
    return recent


class ConversationPublic(BaseModel):
    conversation_id: str
    agent: str | None
    messages: list[dict[str, Any]]


def get_conversation(svc: Services, principal: Principal, conversation_id: str, /) -> ConversationPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        found = serving_repo.get_conversation(
            session, conversation_id, tenant_id=principal.tenant_id, subject=principal.subject
        )
        return ConversationPublic(conversation_id=found.id, agent=found.agent_name, messages=list(found.messages))
