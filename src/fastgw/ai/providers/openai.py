"""OpenAI, and any OpenAI-compatible server (vLLM, llama.cpp, LM Studio) via upstream_url.

The canonical format is OpenAI's own, so requests and answers pass through
almost untouched: the configured model replaces the client's, and streams ask for the final usage chunk
so the gateway can count tokens even when the client did not ask for it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import UpstreamFormatError
from fastgw.ai.openai_format import (
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_RESPONSES,
    embeddings_list,
    openai_error,
)
from fastgw.ai.providers.base import (
    ProviderTranslator,
    SSEStreamTranslator,
    StreamTranslator,
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


class ResponsesStreamTranslator(SSEStreamTranslator):
    """Reads OpenAI's own Responses stream, which the client gets as it is:
    tokens for the timings and estimates, the usage of ``response.completed``,
    and the failures (``error``, ``response.failed``)."""

    DELTAS = frozenset(("response.output_text.delta", "response.refusal.delta",
                        "response.function_call_arguments.delta",
                        "response.reasoning_summary_text.delta",
                        "response.reasoning_text.delta"))
    ENDS = frozenset(("response.completed", "response.incomplete"))

    def __init__(self, route_type: str, model_name: str,
                 request: dict[str, Any] | None = None) -> None:
        super().__init__(route_type, model_name, request)
        # Set to a list by a caller that rewrites the events (an answer
        # filter): each event read is added to it, parsed.
        self.events: list[dict[str, Any]] | None = None

    def _on_event(self, event: SSEEvent, out: list[dict[str, Any]]) -> None:
        data = self._load(event.data)
        if data is None:
            return
        if self.events is not None:
            self.events.append(data)
        kind = data.get("type") or event.event
        if kind in self.DELTAS:
            delta = data.get("delta")
            if isinstance(delta, str) and delta:
                self._output.add(delta)
                self.first_token_seen = True
        elif kind in self.ENDS:
            response = data.get("response") or {}
            self.usage = Usage.from_responses(response.get("usage"))
            self.done = True
        elif kind == "response.failed":
            error = (data.get("response") or {}).get("error") or {}
            self._fail(openai_error(error.get("message") or "the response failed", "api_error",
                                    status=502, code=error.get("code")))
        elif kind == "error":
            self._fail(openai_error(data.get("message") or "the provider reported an error",
                                    "api_error", status=502, code=data.get("code")))


class OpenAITranslator(ProviderTranslator):
    name = "openai"
    default_base_url = "https://api.openai.com"
    # llm/v1/responses: OpenAI's own Responses API, for its clients as they are.
    route_types = frozenset((ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS, ROUTE_RESPONSES))
    paths: ClassVar[dict[str, str]] = {
        ROUTE_CHAT: "/v1/chat/completions",
        ROUTE_COMPLETIONS: "/v1/completions",
        ROUTE_EMBEDDINGS: "/v1/embeddings",
        ROUTE_RESPONSES: "/v1/responses",
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

    def max_tokens_field(self, route_type: str) -> str:
        return "max_output_tokens" if route_type == ROUTE_RESPONSES else "max_tokens"

    def stream_translator(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> StreamTranslator:
        if route_type != ROUTE_RESPONSES:
            return super().stream_translator(route_type, model_name, request)
        stream = ResponsesStreamTranslator(route_type, model_name, request)
        stream.provider_name = self.name
        return stream

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
        if route_type == ROUTE_RESPONSES:
            if not isinstance(answer.get("output"), list):
                raise UpstreamFormatError("upstream answered without a Response's output")
            reported = Usage.from_responses(answer.get("usage"))
            return answer, reported or estimated_usage(route_type, request,
                                                       _response_text(answer))
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


def _response_text(answer: dict[str, Any]) -> str:
    texts = []
    for item in answer.get("output") or ():
        for part in item.get("content") or ():
            texts.append(part.get("text") or part.get("refusal") or "")
        texts.append(item.get("arguments") or "")
    return "".join(texts)
