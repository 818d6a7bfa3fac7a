"""The ChatModel protocol: the only thing the agent knows about a model backend."""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from joe_agent.messages import Chunk, Message, ModelInfo


class ChatModel(Protocol):
    """A streaming chat backend.

    - `info()` is called once at session start (Ollama: /api/show) and is cached.
    - `stream()` yields Chunks; the last one has `done=True` and token counts when the server
      gives them. Errors are raised as joe_agent.errors.ModelError subclasses, never as
      library exceptions: ModelUnreachable / ModelNotFound before the first chunk,
      ToolsUnsupported when the server refuses tools, StreamError after chunks were yielded.
    - `tools` is a list of JSON-schema tool definitions (OpenAI/Ollama "function" shape), or
      None when the model gets the tool protocol in its prompt instead.
    """

    name: str
    num_ctx: int  # the context size every request of this session uses (constant)

    def info(self) -> ModelInfo: ...

    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Iterator[Chunk]: ...

    def list_models(self) -> list[str]: ...
