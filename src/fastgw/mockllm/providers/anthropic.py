"""Anthropic Messages API shapes: `POST /v1/messages` (JSON and SSE) and the models list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from fastgw.mockllm.providers._common import (
    MODEL_IDS,
    Call,
    Provider,
    as_list,
    choose_tool,
    optional_positive_int,
    require_list,
    require_str,
    string_list,
    text_of_parts,
)
from fastgw.mockllm.replies import (
    CONTENT_SSE,
    ApiError,
    JsonReply,
    StreamEvent,
    StreamReply,
    json_reply,
    sse_event,
)
from fastgw.mockllm.textgen import (
    FINISH_LENGTH,
    FINISH_STOP_SEQUENCE,
    FINISH_TOOL_CALL,
    ChatRequest,
    Generation,
    ToolSpec,
    generate,
    new_id,
)

_STOP_REASONS = {
    FINISH_LENGTH: "max_tokens",
    FINISH_STOP_SEQUENCE: "stop_sequence",
    FINISH_TOOL_CALL: "tool_use",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MODELS_CREATED_AT = "2025-01-01T00:00:00Z"


class AnthropicProvider(Provider):
    name = "anthropic"

    def error_payload(self, status: int, message: str, param: str | None) -> object:
        default_type = "api_error" if status >= 500 else "invalid_request_error"
        if param and status == 400:
            message = f"{param}: {message}"
        return {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, default_type), "message": message},
            "request_id": new_id("req_"),
        }

    def messages(self, call: Call) -> JsonReply | StreamReply:
        body = call.body
        model = require_str(body, "model", "Field required")
        generation = generate(_chat_request(call, model), tool_call_id_prefix="toolu_")
        message_id = new_id("msg_")
        if body.get("stream") is True:
            return StreamReply(CONTENT_SSE, _message_events(generation, message_id, model))
        message = _message_json(
            message_id,
            model,
            [_content_block(generation, complete=True)],
            _stop_reason(generation),
            generation.stop_sequence,
            _usage(generation.prompt_tokens, generation.completion_tokens),
        )
        return json_reply(200, message)

    def models(self, call: Call) -> JsonReply:
        ids = MODEL_IDS["anthropic"]
        data = [
            {
                "type": "model",
                "id": model_id,
                "display_name": model_id,
                "created_at": _MODELS_CREATED_AT,
            }
            for model_id in ids
        ]
        return json_reply(
            200, {"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]}
        )


def _message_json(
    message_id: str,
    model: str,
    content: list,
    stop_reason: str | None,
    stop_sequence: str | None,
    usage: dict,
) -> dict:
    """A Message object: a whole answer, or the empty one a stream starts with."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _usage(input_tokens: int, output_tokens: int) -> dict:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def _stop_reason(generation: Generation) -> str:
    return _STOP_REASONS.get(generation.finish, "end_turn")


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {orjson.dumps(block.get('input')).decode()}"
    if kind == "tool_result":
        return text_of_parts(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_block_text(block) for block in content)
    return ""


def _tool_result(content: Any) -> str | None:
    if isinstance(content, list):
        results = [
            _block_text(b)
            for b in content
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        if results:
            return " ".join(results)
    return None


def _chat_request(call: Call, model: str) -> ChatRequest:
    body = call.body
    if "max_tokens" not in body:
        raise ApiError(400, "Field required", "max_tokens")
    max_tokens = optional_positive_int(body["max_tokens"], "max_tokens")
    messages = require_list(body, "messages")
    texts = [_content_text(body.get("system"))]
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ApiError(400, "Input should be 'user' or 'assistant'", f"messages.{index}.role")
        text = _content_text(message.get("content"))
        texts.append(text)
        if message["role"] == "user":
            last_user_text = text
    last = messages[-1]
    tool_result = _tool_result(last.get("content")) if last["role"] == "user" else None
    return ChatRequest(
        model=model,
        prompt_text="\n".join(texts),
        last_user_text=last_user_text,
        tool_result=tool_result,
        tool_to_call=None if tool_result is not None else _tool_to_call(body),
        max_tokens=max_tokens,
        stop=string_list(body.get("stop_sequences"), "stop_sequences"),
        output_tokens=call.output_tokens,
    )


def _tool_to_call(body: dict) -> ToolSpec | None:
    tools = [
        ToolSpec(tool["name"], tool.get("input_schema") or {})
        for tool in as_list(body.get("tools"))
        # Server tools (web search...) have a `type` and no input schema: the mock skips them.
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool
    ]
    given_choice = body.get("tool_choice")
    choice = given_choice if isinstance(given_choice, dict) else {}
    if choice.get("type") == "none":
        return None
    return choose_tool(tools, choice.get("name") if choice.get("type") == "tool" else None)


def _content_block(generation: Generation, complete: bool) -> dict:
    """The text or tool_use block; streams open it empty and fill it with deltas."""
    call = generation.tool_call
    if call is None:
        return {"type": "text", "text": generation.text if complete else ""}
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": call.arguments if complete else {},
    }


def _message_events(generation: Generation, message_id: str, model: str) -> Iterator[StreamEvent]:
    start = _message_json(message_id, model, [], None, None, _usage(generation.prompt_tokens, 1))
    yield sse_event(b"message_start", {"type": "message_start", "message": start}), False
    block = _content_block(generation, complete=False)
    yield (
        sse_event(
            b"content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        False,
    )
    yield sse_event(b"ping", {"type": "ping"}), False
    if generation.tool_call is None:
        delta_kind, delta_field = "text_delta", "text"
    else:
        delta_kind, delta_field = "input_json_delta", "partial_json"
    for piece in generation.pieces:
        delta = {"type": delta_kind, delta_field: piece}
        yield (
            sse_event(
                b"content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            ),
            True,
        )
    yield sse_event(b"content_block_stop", {"type": "content_block_stop", "index": 0}), False
    message_delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": _stop_reason(generation),
            "stop_sequence": generation.stop_sequence,
        },
        "usage": {"output_tokens": generation.completion_tokens},
    }
    yield sse_event(b"message_delta", message_delta), False
    yield sse_event(b"message_stop", {"type": "message_stop"}), False
