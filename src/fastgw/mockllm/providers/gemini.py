"""Google Gemini API shapes: `models/{model}:generateContent` and `:streamGenerateContent`.

Gemini's REST API accepts both camelCase and snake_case field names (proto JSON), so the
request reader looks for both.
"""

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
    string_list,
)
from fastgw.mockllm.replies import (
    CONTENT_JSON,
    CONTENT_SSE,
    ApiError,
    JsonReply,
    StreamEvent,
    StreamReply,
    json_reply,
    sse_data,
)
from fastgw.mockllm.textgen import (
    FINISH_LENGTH,
    ChatRequest,
    Generation,
    ToolSpec,
    generate,
    new_id,
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GeminiProvider(Provider):
    name = "gemini"

    def error_payload(self, status: int, message: str, param: str | None) -> object:
        default_status = "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
        status_name = _STATUS_NAMES.get(status, default_status)
        return {"error": {"code": status, "message": message, "status": status_name}}

    def generate_content(self, call: Call) -> JsonReply:
        model = call.path_params["model"]
        generation = generate(_chat_request(call, model))
        return json_reply(200, _response_json(generation, model, new_id("resp-"), None, final=True))

    def stream_generate_content(self, call: Call) -> StreamReply:
        model = call.path_params["model"]
        generation = generate(_chat_request(call, model))
        events = _stream_chunks(generation, model, new_id("resp-"))
        if call.query.get("alt") == "sse":
            return StreamReply(CONTENT_SSE, ((sse_data(chunk), paced) for chunk, paced in events))
        # Without alt=sse Gemini streams one JSON array, element by element.
        return StreamReply(CONTENT_JSON, _json_array(events))

    def models(self, call: Call) -> JsonReply:
        models = [
            {
                "name": f"models/{model_id}",
                "displayName": model_id,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
            }
            for model_id in MODEL_IDS["gemini"]
        ]
        return json_reply(200, {"models": models})


def _field(mapping: Any, camel: str, snake: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def _parts_text(parts: Any) -> str:
    texts = []
    for part in as_list(parts):
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        for key, snake in (
            ("functionCall", "function_call"),
            ("functionResponse", "function_response"),
        ):
            value = _field(part, key, snake)
            if value is not None:
                texts.append(orjson.dumps(value).decode())
    return " ".join(texts)


def _function_response(parts: Any) -> str | None:
    responses = [_field(part, "functionResponse", "function_response") for part in as_list(parts)]
    responses = [response for response in responses if isinstance(response, dict)]
    if not responses:
        return None
    return " ".join(orjson.dumps(response.get("response", {})).decode() for response in responses)


def _chat_request(call: Call, model: str) -> ChatRequest:
    body = call.body
    contents = require_list(body, "contents")
    system = _field(body, "systemInstruction", "system_instruction")
    texts = [_parts_text(system.get("parts")) if isinstance(system, dict) else ""]
    last_user_text = ""
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise ApiError(400, f"Invalid value at 'contents[{index}]': expected an object.")
        text = _parts_text(content.get("parts"))
        texts.append(text)
        if (
            content.get("role", "user") == "user"
            and _function_response(content.get("parts")) is None
        ):
            last_user_text = text
    tool_result = _function_response(contents[-1].get("parts"))
    config = _field(body, "generationConfig", "generation_config") or {}
    return ChatRequest(
        model=model,
        prompt_text="\n".join(texts),
        last_user_text=last_user_text,
        tool_result=tool_result,
        tool_to_call=None if tool_result is not None else _tool_to_call(body),
        max_tokens=optional_positive_int(
            _field(config, "maxOutputTokens", "max_output_tokens"),
            "generationConfig.maxOutputTokens",
        ),
        stop=string_list(
            _field(config, "stopSequences", "stop_sequences"), "generationConfig.stopSequences"
        ),
        output_tokens=call.output_tokens,
    )


def _tool_to_call(body: dict) -> ToolSpec | None:
    tools = []
    for tool in as_list(body.get("tools")):
        for declaration in as_list(_field(tool, "functionDeclarations", "function_declarations")):
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = declaration.get("parameters") or _field(
                    declaration, "parametersJsonSchema", "parameters_json_schema"
                )
                tools.append(ToolSpec(declaration["name"], schema or {}))
    config = _field(
        _field(body, "toolConfig", "tool_config"),
        "functionCallingConfig",
        "function_calling_config",
    )
    if _field(config, "mode", "mode") == "NONE":
        return None
    allowed = as_list(_field(config, "allowedFunctionNames", "allowed_function_names")) or [None]
    return choose_tool(tools, allowed[0])


def _finish_reason(generation: Generation) -> str:
    return "MAX_TOKENS" if generation.finish == FINISH_LENGTH else "STOP"


def _response_json(
    generation: Generation, model: str, response_id: str, text: str | None, final: bool
) -> dict:
    """One GenerateContentResponse; `text` overrides the full answer for stream chunks."""
    call = generation.tool_call
    if call is not None:
        part: dict = {"functionCall": {"name": call.name, "args": call.arguments}}
    else:
        part = {"text": generation.text if text is None else text}
    candidate: dict = {"content": {"parts": [part], "role": "model"}, "index": 0}
    usage = {
        "promptTokenCount": generation.prompt_tokens,
        "totalTokenCount": generation.prompt_tokens,
    }
    if final:
        candidate["finishReason"] = _finish_reason(generation)
        usage["candidatesTokenCount"] = generation.completion_tokens
        usage["totalTokenCount"] = generation.total_tokens
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def _stream_chunks(
    generation: Generation, model: str, response_id: str
) -> Iterator[tuple[dict, bool]]:
    """Response chunks with their pacing flag; the last one carries finishReason and usage."""
    if generation.tool_call is not None:
        # Gemini sends a function call whole, in one chunk.
        yield _response_json(generation, model, response_id, None, final=True), True
        return
    pieces = generation.pieces or [""]
    last = len(pieces) - 1
    for index, piece in enumerate(pieces):
        yield _response_json(generation, model, response_id, piece, final=index == last), True


def _json_array(chunks: Iterator[tuple[dict, bool]]) -> Iterator[StreamEvent]:
    separator = b"["
    for chunk, paced in chunks:
        yield separator + orjson.dumps(chunk), paced
        separator = b",\r\n"
    yield b"]", False
