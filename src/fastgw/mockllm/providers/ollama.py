"""Ollama API shapes: `POST /api/chat` (NDJSON stream by default) and `GET /api/tags`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import orjson

from fastgw.mockllm.providers._common import (
    MODEL_IDS,
    Call,
    Provider,
    as_list,
    choose_tool,
    openai_style_tools,
    optional_positive_int,
    require_list,
    require_str,
    string_list,
)
from fastgw.mockllm.replies import (
    CONTENT_NDJSON,
    ApiError,
    JsonReply,
    StreamEvent,
    StreamReply,
    json_reply,
    ndjson_line,
)
from fastgw.mockllm.textgen import FINISH_LENGTH, ChatRequest, Generation, generate

_MODIFIED_AT = "2025-01-01T00:00:00Z"


class OllamaProvider(Provider):
    name = "ollama"

    def error_payload(self, status: int, message: str, param: str | None) -> object:
        return {"error": message}

    def chat(self, call: Call) -> JsonReply | StreamReply:
        body = call.body
        model = require_str(body, "model", "model is required")
        generation = generate(_chat_request(call, model))
        created_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        if body.get("stream", True) is not False:
            return StreamReply(CONTENT_NDJSON, _chat_lines(generation, model, created_at, call))
        message: dict = {"role": "assistant", "content": generation.text}
        if generation.tool_call is not None:
            message["tool_calls"] = [_tool_call_json(generation)]
        return json_reply(200, _final_json(generation, model, created_at, call, message))

    def tags(self, call: Call) -> JsonReply:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": _MODIFIED_AT,
                "size": 0,
                "digest": "0" * 64,
                "details": {"format": "gguf", "family": name.split(":")[0]},
            }
            for name in MODEL_IDS["ollama"]
        ]
        return json_reply(200, {"models": models})


def _chat_request(call: Call, model: str) -> ChatRequest:
    body = call.body
    messages = require_list(body, "messages")
    texts = []
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(400, f"invalid message at index {index}: expected an object with a role")
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        for tool_call in as_list(message.get("tool_calls")):
            if isinstance(tool_call, dict):
                text += " " + orjson.dumps(tool_call.get("function")).decode()
        texts.append(text)
        if message["role"] == "user":
            last_user_text = text
    ends_with_tool_result = messages[-1]["role"] == "tool"
    given_options = body.get("options")
    options = given_options if isinstance(given_options, dict) else {}
    return ChatRequest(
        model=model,
        prompt_text="\n".join(texts),
        last_user_text=last_user_text,
        tool_result=texts[-1] if ends_with_tool_result else None,
        # Ollama has no tool_choice: a model given tools may call one, and the mock always does.
        tool_to_call=None
        if ends_with_tool_result
        else choose_tool(openai_style_tools(body.get("tools")), None),
        max_tokens=optional_positive_int(options.get("num_predict"), "options.num_predict"),
        stop=string_list(options.get("stop"), "options.stop"),
        output_tokens=call.output_tokens,
    )


def _tool_call_json(generation: Generation) -> dict:
    call = generation.tool_call
    assert call is not None  # only asked for a generation that calls a tool
    return {"function": {"name": call.name, "arguments": call.arguments}}


def _final_json(
    generation: Generation, model: str, created_at: str, call: Call, message: dict
) -> dict:
    total_ns = time.perf_counter_ns() - call.started_ns
    return {
        "model": model,
        "created_at": created_at,
        "message": message,
        "done_reason": "length" if generation.finish == FINISH_LENGTH else "stop",
        "done": True,
        "total_duration": total_ns,
        "load_duration": 0,
        "prompt_eval_count": generation.prompt_tokens,
        "prompt_eval_duration": 0,
        "eval_count": generation.completion_tokens,
        "eval_duration": total_ns,
    }


def _partial_line(model: str, created_at: str, message: dict) -> bytes:
    """A stream line before the final one: a piece of the answer, without counts."""
    return ndjson_line({"model": model, "created_at": created_at, "message": message, "done": False})


def _chat_lines(
    generation: Generation, model: str, created_at: str, call: Call
) -> Iterator[StreamEvent]:
    if generation.tool_call is not None:
        # Ollama delivers tool calls whole, in one message before the final line.
        message = {"role": "assistant", "content": "", "tool_calls": [_tool_call_json(generation)]}
        yield _partial_line(model, created_at, message), True
    else:
        for piece in generation.pieces:
            message = {"role": "assistant", "content": piece}
            yield _partial_line(model, created_at, message), True
    final = _final_json(generation, model, created_at, call, {"role": "assistant", "content": ""})
    yield ndjson_line(final), False
