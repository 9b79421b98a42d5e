"""An agent's model on the Databricks engine: a Model Serving endpoint (a Foundation Model, or any
chat endpoint) queried through the workspace's SDK client, in the chat-completions shape with tools.
The answer's text reaches ``on_text`` in one piece (the query is not streamed)."""

from __future__ import annotations

from collections.abc import Callable

from servicetsunami.engines.databricks.serving import ModelServing
from servicetsunami.errors import TsunamiError
from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.chat import ChatReply, Message, ToolSpec, chat_body, parse_chat_completion


class DatabricksEndpointChat:
    name = "databricks"

    def __init__(self, serving: ModelServing, endpoint: str) -> None:
        self.serving = serving
        self.model = endpoint

    def chat(
        self,
        messages: list[Message],
        /,
        *,
        tools: list[ToolSpec],
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        try:
            data = self.serving.query(self.model, chat_body(messages, tools, max_tokens))
        except TsunamiError as exc:
            raise LLMUnavailable(f"serving endpoint {self.model}: {exc.message}") from exc
        reply = parse_chat_completion(data, default_model=self.model)
        if on_text is not None and reply.text:
            on_text(reply.text)
        return reply
