"""The APIs clients speak to the gateway: OpenAI's (Chat Completions and the
others, or the Responses API), and Anthropic's Messages API.

A front door checks a client's request and turns it into the canonical
OpenAI-format request the provider translators start from; on the way back
it renders the canonical answer, stream and errors in the client's API. It
knows nothing about providers, so every front door works with every provider.

Request checks follow Kong's ``kong.llm.is_compatible`` (the body must look
like the route type's operation) and keep its messages, so a client of Kong
reads the same errors here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastgw.ai.anthropic_format import (
    AnthropicStreamEncoder,
    anthropic_error,
    anthropic_to_openai_request,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
    untranslated_fields,
)
from fastgw.ai.errors import TranslationError, json_shape
from fastgw.ai.openai_format import (
    OPENAI_DONE,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_RESPONSES,
    encode_openai_chunk,
    encode_openai_stream_error,
    openai_error,
)
from fastgw.ai.responses_format import (
    ResponsesStreamEncoder,
    chat_to_response,
    responses_to_chat_request,
)
from fastgw.ai.usage import Usage, estimate_prompt_tokens

# The field that tells each OpenAI operation's requests apart (Kong's identify_request).
_OPERATION_FIELDS = (
    (ROUTE_CHAT, "messages"),
    (ROUTE_COMPLETIONS, "prompt"),
    (ROUTE_EMBEDDINGS, "input"),
)


def _check_objects(body: dict[str, Any], name: str) -> None:
    """``body[name]``, when present, must be a list of objects (translators walk them)."""
    items = body.get(name)
    if items is None:
        return
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TranslationError(f"{name}: expected a list of objects")


def _check_messages(body: dict[str, Any]) -> None:
    _check_objects(body, "messages")
    _check_objects(body, "tools")
    for index, message in enumerate(body["messages"]):
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
            raise TranslationError(
                f"messages[{index}].content: expected a string or a list of objects"
            )


def _operation_of(body: dict[str, Any]) -> str:
    found = []
    for route_type, field in _OPERATION_FIELDS:
        value = body.get(field)
        if route_type == ROUTE_CHAT:
            matches = isinstance(value, list) and len(value) > 0
        else:
            matches = isinstance(value, (str, list)) and len(value) > 0
        if matches:
            found.append(route_type)
    if len(found) > 1:
        raise TranslationError("request matches multiple LLM request formats")
    if not found:
        raise TranslationError("request format not recognised")
    return found[0]


class StreamWriter:
    """Renders canonical stream chunks as the client's event stream."""

    __slots__ = ()

    def chunks(self, chunks: list[dict[str, Any]]) -> bytes:
        raise NotImplementedError

    def finish(self, tail: list[dict[str, Any]], usage: Usage | None) -> bytes:
        """The events of a clean end: ``tail`` is what the stream translator's finish() gave."""
        raise NotImplementedError

    def error(self, error: dict[str, Any], status: int | None = None) -> bytes:
        """The event that ends a failed stream; ``error`` is OpenAI-shaped."""
        raise NotImplementedError


class OpenAIStreamWriter(StreamWriter):
    __slots__ = ()

    def chunks(self, chunks: list[dict[str, Any]]) -> bytes:
        return b"".join(map(encode_openai_chunk, chunks))

    def finish(self, tail: list[dict[str, Any]], usage: Usage | None) -> bytes:
        return self.chunks(tail) + OPENAI_DONE

    def error(self, error: dict[str, Any], status: int | None = None) -> bytes:
        return encode_openai_stream_error(error)


class EncoderStreamWriter(StreamWriter):
    """A writer over an encoder of canonical chunks (Anthropic's, the Responses API's)."""

    __slots__ = ("encoder",)

    def __init__(self, encoder: AnthropicStreamEncoder | ResponsesStreamEncoder) -> None:
        self.encoder = encoder

    def chunks(self, chunks: list[dict[str, Any]]) -> bytes:
        encode = self.encoder.encode
        return b"".join([encode(chunk) for chunk in chunks])

    def finish(self, tail: list[dict[str, Any]], usage: Usage | None) -> bytes:
        return self.chunks(tail) + self.encoder.finish(usage)

    def error(self, error: dict[str, Any], status: int | None = None) -> bytes:
        return self.encoder.error(error, status)


class FrontDoor:
    """One client API. Errors come in as OpenAI error bodies (what translators raise)."""

    name: ClassVar[str] = ""
    # Route types a client of this API can use.
    route_types: ClassVar[frozenset[str]] = frozenset()

    def canonical_request(self, body: dict[str, Any], route_type: str) -> dict[str, Any]:
        """The client's request as an OpenAI-format request of ``route_type``;
        a body whose fields have the wrong types is a 400, never a crash."""
        with json_shape(f"the {self.name} request body", TranslationError):
            return self._canonical_request(body, route_type)

    def _canonical_request(self, body: dict[str, Any], route_type: str) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, answer: dict[str, Any], usage: Usage, request: dict[str, Any],
               body: dict[str, Any] | None) -> dict[str, Any]:
        """A canonical (OpenAI-format) answer in the client's API; ``request``
        is the canonical request, ``body`` the client's own."""
        raise NotImplementedError

    def error(self, error: dict[str, Any], status: int) -> dict[str, Any]:
        raise NotImplementedError

    def message_error(self, message: str, status: int) -> dict[str, Any]:
        """An error body in the client's API from a bare message."""
        return self.error(openai_error(message, status=status), status)

    def refuse_untranslated(self, body: dict[str, Any], provider: str) -> None:
        """Refuse (400 naming it) a field of the client's request that the
        translation to ``provider``'s API would drop."""

    def stream_writer(self, model_name: str, request: dict[str, Any],
                      body: dict[str, Any] | None) -> StreamWriter:
        """``request`` is the canonical request the stream answers, ``body`` the client's."""
        raise NotImplementedError


class OpenAIFrontDoor(FrontDoor):
    name = "openai"
    route_types = frozenset((ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS))

    def _canonical_request(self, body: dict[str, Any], route_type: str) -> dict[str, Any]:
        operation = _operation_of(body)
        if operation != route_type:
            raise TranslationError(
                f"[{operation}] message format is not compatible with [{route_type}] route type"
            )
        if route_type == ROUTE_CHAT:
            _check_messages(body)
        return body

    def answer(self, answer: dict[str, Any], usage: Usage, request: dict[str, Any],
               body: dict[str, Any] | None) -> dict[str, Any]:
        return answer

    def error(self, error: dict[str, Any], status: int) -> dict[str, Any]:
        return error

    def stream_writer(self, model_name: str, request: dict[str, Any],
                      body: dict[str, Any] | None) -> StreamWriter:
        return OpenAIStreamWriter()


class AnthropicFrontDoor(FrontDoor):
    name = "anthropic"
    route_types = frozenset((ROUTE_CHAT,))

    def _canonical_request(self, body: dict[str, Any], route_type: str) -> dict[str, Any]:
        messages = body.get("messages")
        # Anthropic's own wording for a request without messages.
        if not isinstance(messages, list) or not messages:
            raise TranslationError("messages: Field required")
        _check_messages(body)
        system = body.get("system")
        if system is not None and not isinstance(system, str):
            _check_objects(body, "system")
        stop = body.get("stop_sequences")
        if stop is not None and not isinstance(stop, list):
            raise TranslationError("stop_sequences: expected a list")
        return anthropic_to_openai_request(body)

    def answer(self, answer: dict[str, Any], usage: Usage, request: dict[str, Any],
               body: dict[str, Any] | None) -> dict[str, Any]:
        return openai_to_anthropic_response(answer, usage)

    def error(self, error: dict[str, Any], status: int) -> dict[str, Any]:
        return openai_error_to_anthropic(error, status)

    def message_error(self, message: str, status: int) -> dict[str, Any]:
        return anthropic_error(message, status=status)

    def refuse_untranslated(self, body: dict[str, Any], provider: str) -> None:
        missing = untranslated_fields(body)
        if missing:
            raise TranslationError(f"{missing[0]}: cannot be translated for provider "
                                   f"'{provider}'", code="unsupported_parameter")

    def stream_writer(self, model_name: str, request: dict[str, Any],
                      body: dict[str, Any] | None) -> StreamWriter:
        # message_start goes out before the provider has counted the prompt.
        input_tokens = estimate_prompt_tokens(ROUTE_CHAT, request)
        return EncoderStreamWriter(AnthropicStreamEncoder(model_name, input_tokens=input_tokens))


class ResponsesFrontDoor(OpenAIFrontDoor):
    """OpenAI's Responses API (``route_type: llm/v1/responses``), over Chat
    Completions: OpenAI's error shape, its own answers and stream events."""

    name = "responses"
    route_types = frozenset((ROUTE_RESPONSES,))

    def _canonical_request(self, body: dict[str, Any], route_type: str) -> dict[str, Any]:
        request = responses_to_chat_request(body)
        _check_messages(request)
        return request

    def answer(self, answer: dict[str, Any], usage: Usage, request: dict[str, Any],
               body: dict[str, Any] | None) -> dict[str, Any]:
        return chat_to_response(answer, usage, request, body)

    def stream_writer(self, model_name: str, request: dict[str, Any],
                      body: dict[str, Any] | None) -> StreamWriter:
        return EncoderStreamWriter(ResponsesStreamEncoder(model_name, request, body))


FRONT_DOORS: dict[str, FrontDoor] = {
    door.name: door for door in (OpenAIFrontDoor(), AnthropicFrontDoor())
}
RESPONSES_FRONT_DOOR = ResponsesFrontDoor()


def front_door(llm_format: str, route_type: str) -> FrontDoor:
    """The API a route's clients speak: its llm_format's, or the Responses API."""
    return RESPONSES_FRONT_DOOR if route_type == ROUTE_RESPONSES else FRONT_DOORS[llm_format]
