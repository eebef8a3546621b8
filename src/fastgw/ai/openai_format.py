"""The canonical format: OpenAI chat completions, legacy completions, embeddings.

Every provider translator turns its provider's answers into these shapes, and
every front door starts from them. Builders here keep the field order and the
``null`` fields that the official ``openai`` SDK expects.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from array import array
from typing import Any

import orjson

ROUTE_CHAT = "llm/v1/chat"
ROUTE_COMPLETIONS = "llm/v1/completions"
ROUTE_EMBEDDINGS = "llm/v1/embeddings"
# OpenAI's Responses API: translated to and from Chat Completions (responses_format).
ROUTE_RESPONSES = "llm/v1/responses"
ROUTE_TYPES = (ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS, ROUTE_RESPONSES)


def translation_route(route_type: str) -> str:
    """The operation provider translators speak for a route type."""
    return ROUTE_CHAT if route_type == ROUTE_RESPONSES else route_type


OPENAI_DONE = b"data: [DONE]\n\n"

# OpenAI's own error types, chosen by HTTP status when the upstream gives none.
_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for_status(status: int | None) -> str:
    if status is None or status >= 500:
        return "api_error"
    return _ERROR_TYPE_BY_STATUS.get(status, "invalid_request_error")


def openai_error(
    message: str,
    error_type: str | None = None,
    *,
    status: int | None = None,
    code: str | int | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {
        "error": {
            "message": message,
            "type": error_type or error_type_for_status(status),
            "param": param,
            "code": code,
        }
    }


def new_id(prefix: str) -> str:
    # 96 random bits: unique enough for response ids, cheaper than uuid4().
    return prefix + os.urandom(12).hex()


def now() -> int:
    return int(time.time())


def encode_openai_chunk(chunk: dict[str, Any]) -> bytes:
    """One SSE event as the OpenAI API sends it: ``data: {...}\\n\\n``."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_openai_stream_error(error: dict[str, Any]) -> bytes:
    """The event that ends a failed stream for an OpenAI client (never followed by [DONE])."""
    return encode_openai_chunk(error)


def tool_call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    # id and name pass through as the provider sent them, null included.
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant_message(
    text: str | None,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        # Not in OpenAI's API; the de-facto field of DeepSeek, vLLM and LiteLLM.
        message["reasoning_content"] = reasoning
    return message


def chat_choice(index: int, message: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}


def chat_completion(
    completion_id: str, model: str, choices: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def text_completion(
    completion_id: str, model: str, text: str, finish_reason: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


def _float32_base64(vector: list[float]) -> str:
    packed = array("f", vector)
    # OpenAI's base64 embeddings are little-endian float32.
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embeddings_list(
    vectors: list[list[float]], model: str, usage: dict[str, Any], encoding_format: str | None
) -> dict[str, Any]:
    """OpenAI's embeddings answer; ``encoding_format="base64"`` is what the openai SDK asks for."""
    as_base64 = encoding_format == "base64"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _float32_base64(vector) if as_base64 else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    return {"object": "list", "data": data, "model": model, "usage": usage}
