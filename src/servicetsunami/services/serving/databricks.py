"""An agent's model on the Databricks engine: a Model Serving endpoint (a Foundation Model, or any
chat endpoint) queried through the workspace's SDK client, in the chat-completions shape with tools.
With ``on_text`` the query is streamed (``stream: true``, OpenAI-compatible ``chat.completion.chunk``
events) and each piece of text reaches ``on_text`` as the endpoint sends it."""

from __future__ import annotations

from collections.abc import Callable

from servicetsunami.engines.databricks.serving import ModelServing
from servicetsunami.errors import TsunamiError
from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.chat import (
    ChatReply,
    Message,
    ToolSpec,
    chat_body,
    parse_chat_completion,
    read_chat_stream,
    sse_data,
)


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
        body = chat_body(messages, tools, max_tokens)
        try:
            if on_text is not None:
                lines = self.serving.query_stream(self.model, body)
                return read_chat_stream(sse_data(lines), on_text=on_text, default_model=self.model)
            data = self.serving.query(self.model, body)
        except TsunamiError as exc:
            raise LLMUnavailable(f"serving endpoint {self.model}: {exc.message}") from exc
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise LLMUnavailable(f"serving endpoint {self.model} streamed an unexpected shape") from exc
        return parse_chat_completion(data, default_model=self.model)
