"""OpenAI, and any OpenAI-compatible server (vLLM, llama.cpp, LM Studio) via upstream_url.

The canonical format is OpenAI's own, so requests and answers pass through
almost untouched: the configured model replaces the client's, and streams ask for the final usage chunk
so the gateway can count tokens even when the client did not ask for it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastgw.ai.config import ModelConfig
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS, embeddings_list
from fastgw.ai.providers.base import (
    ProviderTranslator,
    SSEStreamTranslator,
    answer_model,
    content_text,
    estimated_usage,
    load_json_object,
    normalize_error,
    refuse_untranslatable,
)
from fastgw.ai.sse import SSEEvent
from fastgw.ai.usage import Usage


class OpenAIStreamTranslator(SSEStreamTranslator):
    """Passes OpenAI chunks through, watching them for usage, errors and the end."""

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        super().__init__(route_type, model_name, request)
        self._upstream_usage_chunk: dict[str, Any] | None = None
        self._finish_seen = False

    def _on_event(self, event: SSEEvent, out: list[dict[str, Any]]) -> None:
        if event.data == "[DONE]":
            self.done = True
            return
        chunk = self._load(event.data)
        if chunk is None:
            return
        if chunk.get("error"):
            self._fail(normalize_error(chunk, 502, b""))
            return
        usage = chunk.get("usage")
        if usage:
            self.usage = Usage.from_openai(usage)
        choices = chunk.get("choices")
        if not choices:
            # The include_usage chunk is held until finish(), which sends it only
            # if the client asked; other choice-less chunks (Azure's prompt filter
            # results) carry nothing a client needs.
            if usage:
                self._upstream_usage_chunk = chunk
            return
        for choice in choices:
            self._count(choice)
            if choice.get("finish_reason"):
                self._finish_seen = True
        out.append(chunk)

    def _count(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        texts = (
            [choice.get("text")]
            if delta is None
            else [delta.get("content"), delta.get("reasoning_content")]
        )
        for call in (delta or {}).get("tool_calls") or ():
            function = call.get("function") or {}
            texts += (function.get("name"), function.get("arguments"))
        for text in texts:
            if text:
                self._output.add(text)
                self.first_token_seen = True

    def finish(self) -> list[dict[str, Any]]:
        # Some OpenAI-compatible servers close right after the last finish_reason
        # without [DONE]; the answer is complete, so that is not a cut.
        if self._finish_seen:
            self.done = True
        return super().finish()

    def _usage_chunk(self) -> dict[str, Any]:
        return self._upstream_usage_chunk or super()._usage_chunk()


class OpenAITranslator(ProviderTranslator):
    name = "openai"
    default_base_url = "https://api.openai.com"
    route_types = frozenset((ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS))
    paths: ClassVar[dict[str, str]] = {
        ROUTE_CHAT: "/v1/chat/completions",
        ROUTE_COMPLETIONS: "/v1/completions",
        ROUTE_EMBEDDINGS: "/v1/embeddings",
    }
    # Hints a stricter server refuses, dropped. None here: every field goes as
    # it came, since OpenAI-compatible servers take more than OpenAI (vLLM's
    # top_k) and OpenAI answers a field it does not know with its own 400.
    dropped_fields: ClassVar[frozenset[str]] = frozenset()
    # Request fields renamed for this provider's API.
    renamed_fields: ClassVar[dict[str, str]] = {}
    # Embeddings come back as floats and are base64-encoded here when asked.
    encodes_embeddings: ClassVar[bool] = False
    stream_translator_class = OpenAIStreamTranslator

    def request_payload(
        self,
        route_type: str,
        body: dict[str, Any],
        model: ModelConfig,
        model_name: str,
        stream: bool,
    ) -> dict[str, Any]:
        refuse_untranslatable(body, self.untranslatable_fields, self.name)
        renamed = self.renamed_fields
        dropped = self.dropped_fields
        payload = {renamed.get(key, key): value for key, value in body.items()
                   if key not in dropped}
        payload["model"] = model_name
        if stream and self.requests_stream_usage(model):
            payload["stream_options"] = {
                **(payload.get("stream_options") or {}),
                "include_usage": True,
            }
        return payload

    def requests_stream_usage(self, model: ModelConfig) -> bool:
        return True

    def answers_in_openai_format(self, route_type: str, request: dict[str, Any]) -> bool:
        # All but the embeddings that _parse_response encodes in base64 itself.
        return not (self.encodes_embeddings and route_type == ROUTE_EMBEDDINGS
                    and request.get("encoding_format") == "base64")

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        return self.paths[route_type]

    def _parse_response(
        self,
        route_type: str,
        status: int,
        body: bytes,
        request: dict[str, Any] | None = None,
        *,
        model_name: str | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        answer = load_json_object(body)
        usage = Usage.from_openai(answer.get("usage"))
        if route_type == ROUTE_EMBEDDINGS:
            if usage is None:
                usage = estimated_usage(route_type, request)
            if self.encodes_embeddings and request and request.get("encoding_format") == "base64":
                vectors = [item.get("embedding") for item in answer.get("data") or ()]
                answer = embeddings_list(
                    vectors,
                    answer_model(answer.get("model"), model_name, request),
                    usage.to_openai_embeddings(),
                    "base64",
                )
        elif usage is None:
            usage = estimated_usage(route_type, request, _answer_text(answer))
        return answer, usage


def _answer_text(answer: dict[str, Any]) -> str:
    texts = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") or {}
        texts.append(choice.get("text") or content_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            texts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(texts)
