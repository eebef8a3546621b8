"""Anthropic Messages API (``POST /v1/messages``).

OpenAI -> Anthropic: system messages become the top-level ``system``; tool
results become ``tool_result`` blocks of a user turn; consecutive turns of one
role are merged, since Anthropic wants user and assistant to alternate;
``max_tokens`` is required, so a default is sent when neither the request nor
the config sets one. Answers and stream events come back as OpenAI's shapes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastgw.ai.config import DEFAULT_ANTHROPIC_VERSION, ModelConfig
from fastgw.ai.errors import TranslationError, UpstreamFormatError
from fastgw.ai.openai_format import (
    assistant_message,
    chat_choice,
    chat_completion,
    new_id,
    tool_call,
)
from fastgw.ai.providers.base import (
    SYSTEM_ROLES,
    ProviderTranslator,
    SSEStreamTranslator,
    answer_model,
    content_parts,
    estimated_usage,
    image_url_of,
    json_text,
    load_json,
    normalize_error,
    parse_data_url,
    refuse_untranslatable,
    requested_max_tokens,
    stop_sequences,
    tool_arguments,
)
from fastgw.ai.sse import SSEEvent
from fastgw.ai.usage import Usage

# Anthropic requires max_tokens; this is sent when neither request nor config has one.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASON_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASON_BY_STOP_REASON.get(stop_reason or "", "stop")


# OpenAI request fields with no equivalent in the Messages API: a request that
# sets one is refused (400 naming it) rather than answered as if it had not.
UNTRANSLATABLE = ("n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty",
                  "frequency_penalty", "seed", "modalities", "audio", "prediction")
# reasoning_effort as a thinking budget (the API's least is 1,024 tokens).
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def _output_format(response_format: Any) -> dict[str, Any] | None:
    """OpenAI's response_format as the Messages API's output_config.format."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise TranslationError("response_format.json_schema.schema: expected an object")
        return {"type": "json_schema", "schema": schema}
    raise TranslationError(
        f"response_format.type: '{kind}' has no equivalent for provider 'anthropic' "
        "(json_schema has: give the schema)", code="unsupported_parameter")


def _thinking_for(effort: Any, max_tokens: int) -> dict[str, Any]:
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise TranslationError(f"reasoning_effort: unknown value {effort!r}")
    # The budget is part of max_tokens, as reasoning tokens are part of
    # OpenAI's max_completion_tokens; it must leave room for the answer.
    budget = min(budget, max_tokens // 2)
    if budget < 1024:
        raise TranslationError(
            "reasoning_effort: provider 'anthropic' needs max_completion_tokens of 2048 or "
            "more to think (a thinking budget of at least 1024 tokens)",
            code="unsupported_parameter")
    return {"type": "enabled", "budget_tokens": budget}


def anthropic_usage(usage: dict[str, Any] | None) -> Usage | None:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; OpenAI's
    ``prompt_tokens`` includes them, with cache reads reported as ``cached_tokens``."""
    if not usage:
        return None
    cache_read = usage.get("cache_read_input_tokens")
    cache_write = usage.get("cache_creation_input_tokens")
    prompt = (usage.get("input_tokens") or 0) + (cache_read or 0) + (cache_write or 0)
    return Usage.of(prompt, usage.get("output_tokens") or 0, cached=cache_read,
                    cache_write=cache_write)


def openai_tool_call(tool_use: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``tool_use`` block as an OpenAI tool call."""
    return tool_call(
        tool_use.get("id"), tool_use.get("name"), json_text(tool_use.get("input") or {})
    )


# --- request ---------------------------------------------------------------------


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = image_url_of(part)
    inline = parse_data_url(url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content parts as Anthropic blocks; empty text is dropped (Anthropic rejects it)."""
    blocks = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        else:
            raise TranslationError(f"content part type '{kind}' is not supported by anthropic")
    return blocks


def _assistant_content(message: dict[str, Any]) -> str | list[dict[str, Any]]:
    content = message.get("content")
    calls = message.get("tool_calls")
    if isinstance(content, str) and not calls:
        return content
    blocks = _blocks(content)
    for call in calls or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_arguments(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    result = content if isinstance(content, str) else _blocks(content)
    return [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": result}]


def _append_turn(
    turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]
) -> None:
    if not content:
        return  # Anthropic rejects empty turns; an empty OpenAI message carries nothing
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]["content"]
        turns[-1]["content"] = _as_blocks(previous) + _as_blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _system_and_turns(messages: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    system_contents = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in SYSTEM_ROLES:
            system_contents.append(message.get("content"))
        elif role == "user":
            content = message.get("content")
            _append_turn(turns, "user", content if isinstance(content, str) else _blocks(content))
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_content(message))
        elif role == "tool":
            _append_turn(turns, "user", _tool_result(message))
        else:
            raise TranslationError(f"message role '{role}' is not supported by anthropic")
    if len(system_contents) == 1 and isinstance(system_contents[0], str):
        return system_contents[0], turns
    system_blocks = [block for content in system_contents for block in _blocks(content)]
    return system_blocks or None, turns


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            raise TranslationError(f"tool type '{tool.get('type')}' is not supported by anthropic")
        function = tool.get("function") or {}
        entry = {
            "name": function.get("name"),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        converted.append(entry)
    return converted


def _tool_choice(choice: Any, parallel_tool_calls: Any) -> dict[str, Any] | None:
    if choice is None and parallel_tool_calls is not False:
        return None
    converted: dict[str, Any]
    if choice is None or choice == "auto":
        converted = {"type": "auto"}
    elif choice == "required":
        converted = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        converted = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise TranslationError("unsupported tool_choice for anthropic")
    if parallel_tool_calls is False:
        converted["disable_parallel_tool_use"] = True
    return converted


class AnthropicStreamTranslator(SSEStreamTranslator):
    """message_start, content_block_* and message_delta events -> OpenAI chunks."""

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        super().__init__(route_type, model_name, request)
        self._tool_index_by_block: dict[int, int] = {}
        self._usage_fields: dict[str, Any] = {}

    def _on_event(self, event: SSEEvent, out: list[dict[str, Any]]) -> None:
        if event.event == "ping":
            return
        data = self._load(event.data)
        if data is None:
            return
        kind = data.get("type") or event.event
        if kind == "content_block_delta":
            self._on_block_delta(data, out)
        elif kind == "content_block_start":
            self._on_block_start(data, out)
        elif kind == "message_start":
            message = data.get("message") or {}
            self.model_name = message.get("model") or self.model_name
            self._add_usage(message.get("usage"))
            out.append(self._delta({"content": ""}))
        elif kind == "message_delta":
            # Counts here are cumulative totals: they replace those of message_start.
            self._add_usage(data.get("usage"))
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason:
                out.append(self._finish_chunk(finish_reason(stop_reason)))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self._fail(normalize_error(data, 502, b""))

    def _on_block_start(self, data: dict[str, Any], out: list[dict[str, Any]]) -> None:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use":
            tool_index = len(self._tool_index_by_block)
            self._tool_index_by_block[data.get("index", 0)] = tool_index
            # The arguments follow as input_json_delta events.
            start = {"index": tool_index, **tool_call(block.get("id"), block.get("name"), "")}
            out.append(self._tool_calls([start]))
        elif block.get("type") == "text" and block.get("text"):
            out.append(self._text(block["text"]))

    def _on_block_delta(self, data: dict[str, Any], out: list[dict[str, Any]]) -> None:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            if delta.get("text"):
                out.append(self._text(delta["text"]))
        elif kind == "input_json_delta":
            tool_index = self._tool_index_by_block.get(data.get("index", 0))
            if tool_index is not None and delta.get("partial_json"):
                arguments = {"index": tool_index, "function": {"arguments": delta["partial_json"]}}
                out.append(self._tool_calls([arguments]))
        elif kind == "thinking_delta":
            if delta.get("thinking"):
                out.append(self._reasoning(delta["thinking"]))

    def _add_usage(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self._usage_fields.update(
                (key, value) for key, value in usage.items() if value is not None
            )
            self.usage = anthropic_usage(self._usage_fields)


class AnthropicTranslator(ProviderTranslator):
    name = "anthropic"
    untranslatable_fields = UNTRANSLATABLE
    default_base_url = "https://api.anthropic.com"
    stream_translator_class = AnthropicStreamTranslator
    native_format = "anthropic"
    native_fallbacks: ClassVar[dict[str, Any]] = {"max_tokens": DEFAULT_MAX_TOKENS}

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        return "/v1/messages"

    def extra_headers(self, model: ModelConfig) -> list[tuple[str, str]]:
        return [("anthropic-version", model.options.anthropic_version or DEFAULT_ANTHROPIC_VERSION)]

    def request_payload(
        self,
        route_type: str,
        body: dict[str, Any],
        model: ModelConfig,
        model_name: str,
        stream: bool,
    ) -> dict[str, Any]:
        refuse_untranslatable(body, self.untranslatable_fields, self.name)
        system, turns = _system_and_turns(body.get("messages") or [])
        payload: dict[str, Any] = {
            "model": model_name,
            "max_tokens": requested_max_tokens(body) or DEFAULT_MAX_TOKENS,
            "messages": turns,
        }
        output_format = _output_format(body.get("response_format"))
        if output_format is not None:
            payload["output_config"] = {"format": output_format}
        effort = body.get("reasoning_effort")
        if effort is not None:
            payload["thinking"] = _thinking_for(effort, payload["max_tokens"])
        if system:
            payload["system"] = system
        for key in ("temperature", "top_p", "top_k"):
            if body.get(key) is not None:
                payload[key] = body[key]
        stops = stop_sequences(body.get("stop"))
        if stops:
            payload["stop_sequences"] = stops
        if body.get("tools"):
            payload["tools"] = _tools(body["tools"])
        tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if tool_choice:
            payload["tool_choice"] = tool_choice
        if isinstance(body.get("user"), str):
            payload["metadata"] = {"user_id": body["user"]}
        if stream:
            payload["stream"] = True
        return payload

    def _parse_response(
        self,
        route_type: str,
        status: int,
        body: bytes,
        request: dict[str, Any] | None = None,
        *,
        model_name: str | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        answer = load_json(body)
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise UpstreamFormatError("upstream answer is not an Anthropic message")
        texts, reasoning, calls = [], [], []
        for block in answer["content"]:
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text") or "")
            elif kind == "tool_use":
                calls.append(openai_tool_call(block))
            elif kind == "thinking":
                reasoning.append(block.get("thinking") or "")
        text = "".join(texts)
        message = assistant_message(text if texts or not calls else None, calls, "".join(reasoning))
        usage = anthropic_usage(answer.get("usage")) or estimated_usage(route_type, request, text)
        completion = chat_completion(
            answer.get("id") or new_id("chatcmpl-"),
            answer_model(answer.get("model"), model_name, request),
            [chat_choice(0, message, finish_reason(answer.get("stop_reason")))],
            usage.to_openai(),
        )
        return completion, usage
