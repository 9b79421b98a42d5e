"""AI-assisted tools: ``analyze_schema``, ``suggest_query``, ``explain_data``, and the MCP sampling path.

Sampling asks the client's own model. On the 2026-07-28 protocol a server cannot send the client a
request mid-call, so a tool that needs an answer returns ``InputRequiredResult`` with a
``sampling/createMessage`` request; the client answers and calls the tool again with the response,
and the answers so far travel in ``request_state`` (sealed by the framework). Each round replays the
service flow with the answers already given (:class:`ClientSampling`), so the flow itself stays an
ordinary synchronous service function. On older protocols the request goes over the session's
back-channel instead (over HTTP, one that works across worker processes:
:mod:`servicetsunami.mcp.backchannel`), waiting at most :data:`SAMPLING_TIMEOUT_SECONDS`. A
client without sampling goes straight to the configured provider, then to the deterministic answer.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp.types as mcp_types
from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from servicetsunami.errors import TsunamiError
from servicetsunami.llm.base import LLM, Answer, LLMUnavailable, SamplingNeeded
from servicetsunami.llm.chain import Chain
from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import DoorError
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.ai import tools
from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

ASK = ToolAnnotations(read_only_hint=True, open_world_hint=True)
# A client's model may wait for its user to approve a sampling request; past this, the next path answers.
SAMPLING_TIMEOUT_SECONDS = 300.0
_KEY = "sample"
T = TypeVar("T")


class ClientSampling:
    """Answers from the client's model: those already given in earlier rounds, then a request for more."""

    name = "sampling"

    def __init__(self, answers: list[str]) -> None:
        self._answers = answers
        self._used = 0

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        if self._used < len(self._answers):
            text = self._answers[self._used]
            self._used += 1
            if not text.strip():
                raise LLMUnavailable("the client's model gave no answer")
            return Answer(text, self.name)
        raise SamplingNeeded(system, prompt, max_tokens)


class BackChannelSampling:
    """Sampling over the session's back-channel (protocols before 2026-07-28), from a worker thread."""

    name = "sampling"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        async def ask() -> mcp_types.CreateMessageResult:
            # Sampling is deprecated in the newest protocol, which we handle apart: no warning here.
            with anyio.fail_after(SAMPLING_TIMEOUT_SECONDS), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return await self._ctx.session.create_message(
                    [_message(prompt)],
                    max_tokens=max_tokens,
                    system_prompt=system,
                    related_request_id=self._ctx.request_id,
                )

        try:
            result = anyio.from_thread.run(ask)
        except Exception as exc:  # the client refused or failed: try the next path
            raise LLMUnavailable("the client's model did not answer") from exc
        return Answer(_text(result), self.name, result.model)


def _message(prompt: str) -> mcp_types.SamplingMessage:
    return mcp_types.SamplingMessage(role="user", content=mcp_types.TextContent(type="text", text=prompt))


def _text(result: Any) -> str:
    content = getattr(result, "content", None)
    parts = content if isinstance(content, list) else [content]
    return "".join(p.text for p in parts if isinstance(p, mcp_types.TextContent))


def _client_samples(ctx: Context) -> bool:
    try:
        return bool(
            ctx.session.check_client_capability(mcp_types.ClientCapabilities(sampling=mcp_types.SamplingCapability()))
        )
    except Exception:  # no session (a background task): no sampling
        return False


def _modern(ctx: Context) -> bool:
    rc = ctx.request_context
    return rc is not None and rc.protocol_version in MODERN_PROTOCOL_VERSIONS


class _Round:
    """One round of a tool call: the chain to use and the state to hand back if more is needed."""

    def __init__(self, services: Services, ctx: Context) -> None:
        state = json.loads(ctx.request_state) if ctx.request_state else {}
        self.answers: list[str] = list(state.get("answers", []))
        responses = ctx.input_responses or {}
        if _KEY in responses:
            self.answers.append(_text(responses[_KEY]))
        sampling: LLM | None = None
        if _client_samples(ctx):
            sampling = ClientSampling(self.answers) if _modern(ctx) else BackChannelSampling(ctx)
        self.chain = Chain.from_settings(services.settings.ai, sampling=sampling)

    def input_required(self, need: SamplingNeeded) -> mcp_types.InputRequiredResult:
        request = mcp_types.CreateMessageRequest(
            params=mcp_types.CreateMessageRequestParams(
                messages=[_message(need.prompt)], system_prompt=need.system, max_tokens=need.max_tokens
            )
        )
        return mcp_types.InputRequiredResult(
            input_requests={_KEY: request}, request_state=json.dumps({"answers": self.answers})
        )


async def _run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Like ``call_service``, but lets :class:`SamplingNeeded` through to the tool."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    except (SamplingNeeded, DoorError):
        raise
    except TsunamiError as exc:
        raise DoorError.from_error(exc) from exc
    except Exception as exc:
        logger.exception("AI tool %s failed", getattr(fn, "__qualname__", repr(fn)))
        raise DoorError.internal() from exc


async def _answer(services: Services, ctx: Context, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    current = _Round(services, ctx)
    try:
        result = await _run(fn, *args, chain=current.chain, **kwargs)
    except SamplingNeeded as need:
        return current.input_required(need)
    return tool_result(result)


TABLE = Annotated[str, Field(description="'schema.table' (e.g. 'silver.orders'), or 'table' for bronze.")]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"read"},
        annotations=ASK.model_copy(update={"title": "Analyze a table's schema"}),
        output_schema=output_schema(tools.SchemaAnalysis),
    )
    async def analyze_schema(table_name: TABLE, ctx: Context) -> ToolResult | mcp_types.InputRequiredResult:
        """What a table holds: column meanings, keys, relationships to other tables, quality issues and
        personal data. Answered by your own model (sampling) when available, else by the configured
        provider, else from the table's profile; `answered_by` says which."""
        result: ToolResult | mcp_types.InputRequiredResult = await _answer(
            services, ctx, tools.analyze_schema, services, caller.principal(), table_name
        )
        return result

    @server.tool(
        tags={"read"},
        annotations=ASK.model_copy(update={"title": "Suggest a SQL query"}),
        output_schema=output_schema(tools.SuggestedQuery),
    )
    async def suggest_query(
        question: Annotated[str, Field(description="The question in plain words, e.g. 'revenue by region in 2024'.")],
        ctx: Context,
        tables: Annotated[
            list[str] | None, Field(description="Tables to use; picked from your catalog by name if omitted.")
        ] = None,
        execute: Annotated[bool, Field(description="Also run the query and return its (capped) result.")] = False,
    ) -> ToolResult | mcp_types.InputRequiredResult:
        """Turn a question into Databricks SQL over your tables. The SQL is checked by the query guard
        and EXPLAIN (errors are fed back to the model, up to 3 attempts) and is not run unless
        execute=true. Returns the SQL, the tables used, an explanation and every attempt."""
        result: ToolResult | mcp_types.InputRequiredResult = await _answer(
            services, ctx, tools.suggest_query, services, caller.principal(), question, tables=tables, execute=execute
        )
        return result

    @server.tool(
        tags={"read"},
        annotations=ASK.model_copy(update={"title": "Explain query results"}),
        output_schema=output_schema(tools.DataExplanation),
    )
    async def explain_data(
        sql: Annotated[str, Field(description="One read-only Databricks SQL query (guarded and capped).")],
        ctx: Context,
    ) -> ToolResult | mcp_types.InputRequiredResult:
        """Run a query and summarise its result: shape, distributions, trends and outliers, with a
        Vega-Lite chart spec when a chart helps."""
        result: ToolResult | mcp_types.InputRequiredResult = await _answer(
            services, ctx, tools.explain_data, services, caller.principal(), sql
        )
        return result
