"""The Anthropic front door (ai-proxy ``llm_format: anthropic``).

Clients that speak Anthropic Messages get translated into the canonical
OpenAI format on the way in (``anthropic_to_openai_request``), and the
canonical answer, stream or error back into Anthropic's shapes on the way out,
whatever provider served it (an Anthropic provider gets the request as it came:
see ``ProviderTranslator.build_native_request``). Structured outputs
(``output_config.format``) and thinking budgets are translated; any other
top-level field is refused by the front door (``untranslated_fields``). Hints
with no equivalent are dropped: thinking blocks in history, ``is_error`` on
tool results, cache control marks, and which stop sequence matched (a stop
reports ``end_turn``).
"""

from __future__ import annotations

from typing import Any

import orjson

from fastgw.ai.errors import TranslationError
from fastgw.ai.openai_format import new_id
from fastgw.ai.providers.anthropic import THINKING_BUDGETS, openai_tool_call
from fastgw.ai.providers.base import content_text, tool_arguments
from fastgw.ai.sse import encode_sse
from fastgw.ai.stream_encoding import FirstChoiceEncoder
from fastgw.ai.usage import Usage

STOP_REASON_BY_FINISH_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Anthropic's documented error types, by HTTP status.
ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_TYPES = frozenset((*ERROR_TYPE_BY_STATUS.values(), "api_error"))
_REQUEST_FIELDS = ("max_tokens", "temperature", "top_p", "top_k", "stream")
# Block kinds made from text deltas: (empty block, delta type, delta field).
_TEXT_BLOCKS = {
    "text": ({"type": "text", "text": ""}, "text_delta", "text"),
    "thinking": (
        {"type": "thinking", "thinking": "", "signature": ""},
        "thinking_delta",
        "thinking",
    ),
}


# --- errors ----------------------------------------------------------------------


def anthropic_error(
    message: str, error_type: str | None = None, *, status: int | None = None
) -> dict[str, Any]:
    """Anthropic's error body: ``{"type": "error", "error": {"type", "message"}}``."""
    if error_type not in ERROR_TYPES:
        error_type = ERROR_TYPE_BY_STATUS.get(status or 500, "api_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


def openai_error_to_anthropic(error: dict[str, Any], status: int | None = None) -> dict[str, Any]:
    """An OpenAI error body (what translators produce) in Anthropic's shape."""
    nested = error.get("error")
    details = nested if isinstance(nested, dict) else {}
    message = details.get("message") or error.get("message") or "upstream error"
    return anthropic_error(str(message), details.get("type"), status=status)


def encode_anthropic_event(event_type: str, data: dict[str, Any]) -> bytes:
    return encode_sse(orjson.dumps(data), event_type)


def encode_anthropic_stream_error(error: dict[str, Any], status: int | None = None) -> bytes:
    """The ``event: error`` that ends a failed stream; ``error`` may be in either shape."""
    if error.get("type") != "error":
        error = openai_error_to_anthropic(error, status)
    return encode_anthropic_event("error", error)


# --- request: Anthropic -> OpenAI --------------------------------------------------


def _openai_part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text") or ""}
    if kind == "image":
        source = block.get("source") or {}
        url: str | None
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = source.get("url")
        else:
            raise TranslationError(f"image source type '{source.get('type')}' is not supported")
        return {"type": "image_url", "image_url": {"url": url}}
    raise TranslationError(f"content block type '{kind}' is not supported")


def _openai_content(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_openai_part(block) for block in content or ()]


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn: its tool results become OpenAI tool messages, placed first."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages = []
    parts = []
    for block in content or ():
        if block.get("type") == "tool_result":
            result = block.get("content")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": _openai_content(result if result is not None else ""),
                }
            )
        else:
            parts.append(_openai_part(block))
    if parts:
        messages.append({"role": "user", "content": parts})
    return messages


def _assistant_message(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts, calls = [], []
    for block in content or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(openai_tool_call(block))
        # thinking and redacted_thinking blocks are Anthropic-only history: dropped.
    # A plain string, not parts: some OpenAI-compatible servers take no parts from the assistant.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        if tool.get("type") not in (None, "custom"):
            raise TranslationError(f"server tool '{tool.get('type')}' is not supported")
        function = {"name": tool.get("name"), "parameters": tool.get("input_schema") or {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        converted.append({"type": "function", "function": function})
    return converted


def _openai_tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    choices: dict[Any, str] = {"auto": "auto", "any": "required", "none": "none"}
    return choices.get(kind, "auto")


def anthropic_to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI chat completions request."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _openai_content(body["system"])})
    for message in body.get("messages") or ():
        role = message.get("role")
        if role == "user":
            messages.extend(_user_messages(message.get("content")))
        elif role == "assistant":
            messages.append(_assistant_message(message.get("content")))
        else:
            raise TranslationError(f"message role '{role}' is not supported")
    request: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for key in _REQUEST_FIELDS:
        if body.get(key) is not None:
            request[key] = body[key]
    if body.get("stop_sequences"):
        request["stop"] = body["stop_sequences"]
    if body.get("tools"):
        request["tools"] = _openai_tools(body["tools"])
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        request["tool_choice"] = _openai_tool_choice(choice)
        if choice.get("disable_parallel_tool_use"):
            request["parallel_tool_calls"] = False
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        request["user"] = user_id
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        request["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": output_format.get("schema"), "strict": True}}
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        request["reasoning_effort"] = _effort_for(thinking.get("budget_tokens"))
    return request


def _effort_for(budget: Any) -> str:
    """A thinking budget as OpenAI's reasoning_effort (the inverse of the
    Anthropic translator's THINKING_BUDGETS)."""
    if not isinstance(budget, int) or budget <= THINKING_BUDGETS["low"]:
        return "low"
    return "medium" if budget <= THINKING_BUDGETS["medium"] else "high"


# Top-level Messages API fields the translation to another provider carries
# (cache_control marks inside them are hints, dropped on the way).
_TRANSLATED_FIELDS = frozenset((
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stream",
    "stop_sequences", "tools", "tool_choice", "metadata", "thinking", "output_config",
))  # fmt: skip


def untranslated_fields(body: dict[str, Any]) -> list[str]:
    """What an Anthropic request asks for that no other provider is told:
    refused by the front door rather than dropped."""
    missing = sorted(key for key in body if key not in _TRANSLATED_FIELDS
                     and body[key] is not None)
    output_config = body.get("output_config")
    if isinstance(output_config, dict):
        missing += [f"output_config.{key}" for key in sorted(output_config) if key != "format"]
        output_format = output_config.get("format")
        if isinstance(output_format, dict) and output_format.get("type") != "json_schema":
            missing.append("output_config.format.type")
    return missing


# --- answers: OpenAI -> Anthropic ---------------------------------------------------


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASON_BY_FINISH_REASON.get(finish_reason or "", "end_turn")


def anthropic_usage_of(usage: Usage) -> dict[str, Any]:
    """Anthropic's ``input_tokens`` excludes cache reads and writes, which
    OpenAI's prompt_tokens includes."""
    cached = usage.cached_tokens or 0
    written = usage.cache_write_tokens or 0
    result: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - cached - written, 0),
        "output_tokens": usage.completion_tokens,
    }
    if usage.cache_write_tokens is not None:
        result["cache_creation_input_tokens"] = usage.cache_write_tokens
    if usage.cached_tokens is not None:
        result["cache_read_input_tokens"] = usage.cached_tokens
    return result


def message_id(completion_id: str | None) -> str:
    if completion_id and completion_id.startswith("msg_"):
        return completion_id
    return new_id("msg_")


def openai_to_anthropic_response(
    completion: dict[str, Any], usage: Usage | None = None
) -> dict[str, Any]:
    """A canonical chat completion as an Anthropic message."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        content.append(
            {"type": "thinking", "thinking": message["reasoning_content"], "signature": ""}
        )
    text = content_text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name"),
                "input": tool_arguments(function.get("arguments")),
            }
        )
    usage = usage or Usage.from_openai(completion.get("usage")) or Usage()
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or "",
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage_of(usage),
    }


class AnthropicStreamEncoder(FirstChoiceEncoder):
    """Canonical OpenAI chunks -> Anthropic's stream events, as SSE bytes.

    Anthropic frames an answer in content blocks (text, thinking, tool_use),
    each opened, filled with deltas and closed; OpenAI's flat deltas open a new
    block whenever their kind changes. Usage and the stop reason go out in
    ``finish``, since OpenAI sends usage after the finish_reason.
    """

    def __init__(
        self, model: str, *, input_tokens: int = 0, completion_id: str | None = None
    ) -> None:
        self.model = model
        self.message_id = message_id(completion_id)
        self._input_tokens = input_tokens
        self._started = False
        self._block_index = -1
        self._block_kind: str | None = None
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._stop_reason: str | None = None
        self._usage: Usage | None = None

    def _reasoning_delta(self, text: str, events: list[bytes]) -> None:
        self._text_delta("thinking", text, events)

    def _content_delta(self, text: str, events: list[bytes]) -> None:
        self._text_delta("text", text, events)

    def _finish(self, finish_reason: str) -> None:
        self._stop_reason = stop_reason(finish_reason)

    def finish(self, usage: Usage | None = None) -> bytes:
        """The closing events; ``usage`` is the stream translator's (reported or estimated)."""
        events: list[bytes] = []
        self._start(events)
        self._close_block(events)
        usage = usage or self._usage or Usage.of(self._input_tokens, 0, estimated=True)
        delta = {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": None}
        events.append(
            self._event("message_delta", {"delta": delta, "usage": anthropic_usage_of(usage)})
        )
        events.append(self._event("message_stop", {}))
        return b"".join(events)

    def error(self, error: dict[str, Any], status: int | None = None) -> bytes:
        """The event ending a failed stream (no message_stop follows)."""
        return encode_anthropic_stream_error(error, status)

    def _event(self, event_type: str, fields: dict[str, Any]) -> bytes:
        return encode_anthropic_event(event_type, {"type": event_type, **fields})

    def _start(self, events: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        events.append(self._event("message_start", {"message": message}))

    def _open_block(self, kind: str, block: dict[str, Any], events: list[bytes]) -> None:
        self._close_block(events)
        self._block_index += 1
        self._block_kind = kind
        events.append(
            self._event("content_block_start", {"index": self._block_index, "content_block": block})
        )

    def _close_block(self, events: list[bytes]) -> None:
        if self._block_kind is not None:
            events.append(self._event("content_block_stop", {"index": self._block_index}))
            self._block_kind = None

    def _text_delta(self, kind: str, text: str, events: list[bytes]) -> None:
        empty_block, delta_type, field = _TEXT_BLOCKS[kind]
        if self._block_kind != kind:
            self._open_block(kind, dict(empty_block), events)
        delta = {"type": delta_type, field: text}
        events.append(
            self._event("content_block_delta", {"index": self._block_index, "delta": delta})
        )

    def _tool_delta(self, call: dict[str, Any], events: list[bytes]) -> None:
        tool_index = call.get("index", 0)
        function = call.get("function") or {}
        if tool_index not in self._tool_blocks:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name") or "",
                "input": {},
            }
            self._open_block("tool_use", block, events)
            self._tool_blocks[tool_index] = self._block_index
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(
                self._event(
                    "content_block_delta", {"index": self._tool_blocks[tool_index], "delta": delta}
                )
            )
