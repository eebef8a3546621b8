"""OpenAI API shapes: chat completions, legacy completions, embeddings, models.

Also serves Azure OpenAI (the deployment name stands in for the model) and Mistral, which use
the same shapes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from fastgw.ai.errors import TranslationError
from fastgw.ai.responses_format import (
    ResponsesStreamEncoder,
    chat_to_response,
    responses_to_chat_request,
)
from fastgw.ai.usage import Usage
from fastgw.mockllm import embeddings
from fastgw.mockllm.providers._common import (
    MODEL_IDS,
    MODELS_CREATED,
    Call,
    Provider,
    as_list,
    choose_tool,
    openai_style_tools,
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
    sse_data,
)
from fastgw.mockllm.textgen import (
    FINISH_LENGTH,
    FINISH_TOOL_CALL,
    ChatRequest,
    Generation,
    ToolSpec,
    count_tokens,
    generate,
    new_id,
)

_FINISH_REASONS = {FINISH_LENGTH: "length", FINISH_TOOL_CALL: "tool_calls"}
_ERROR_KINDS = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
}
_SYSTEM_FINGERPRINT = "fp_fastgw_mock"
_DONE = b"data: [DONE]\n\n"
# The legacy completions API stops at 16 tokens when max_tokens is not given.
_LEGACY_DEFAULT_MAX_TOKENS = 16


class OpenAIProvider(Provider):
    name = "openai"

    def error_payload(self, status: int, message: str, param: str | None) -> object:
        default_kind = "server_error" if status >= 500 else "invalid_request_error"
        kind, code = _ERROR_KINDS.get(status, (default_kind, None))
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}

    # --- chat completions ------------------------------------------------------------------

    def chat(self, call: Call) -> JsonReply | StreamReply:
        body = call.body
        model = _model(call)
        generation = generate(_chat_request(call, model))
        created = int(time.time())
        completion_id = new_id("chatcmpl-")
        if body.get("stream") is True:
            events = _chat_events(generation, completion_id, created, model, _include_usage(body))
            return StreamReply(CONTENT_SSE, events)
        message: dict = {"role": "assistant", "content": generation.text, "refusal": None}
        if generation.tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [_tool_call_json(generation)]
        message["annotations"] = []
        return json_reply(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _finish_reason(generation),
                    }
                ],
                "usage": usage_json(generation.prompt_tokens, generation.completion_tokens),
                "service_tier": "default",
                "system_fingerprint": _SYSTEM_FINGERPRINT,
            },
        )

    # --- responses ----------------------------------------------------------------------------

    def responses(self, call: Call) -> JsonReply | StreamReply:
        """The Responses API, stateless: the same generation as a chat, as a
        Response object or its typed events (rendered by fastgw.ai's encoder)."""
        body = call.body
        try:
            request = responses_to_chat_request(body)
        except TranslationError as refusal:
            raise ApiError(400, str(refusal)) from None
        chat_call = dataclasses.replace(call, body=request)
        model = _model(chat_call)
        generation = generate(_chat_request(chat_call, model))
        usage = Usage.of(generation.prompt_tokens, generation.completion_tokens)
        if body.get("stream") is True:
            return StreamReply(CONTENT_SSE, _response_events(generation, model, request, body,
                                                             usage))
        message: dict = {"role": "assistant", "content": generation.text}
        if generation.tool_call is not None:
            message = {"role": "assistant", "content": None,
                       "tool_calls": [_tool_call_json(generation)]}
        answer = {"model": model, "created": int(time.time()), "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(generation)}]}
        return json_reply(200, chat_to_response(answer, usage, request, body))

    # --- legacy completions ----------------------------------------------------------------

    def completions(self, call: Call) -> JsonReply | StreamReply:
        body = call.body
        model = _model(call)
        max_tokens = optional_positive_int(body.get("max_tokens"), "max_tokens")
        stop = string_list(body.get("stop"), "stop")
        generations = [
            generate(
                ChatRequest(
                    model=model,
                    prompt_text=prompt,
                    last_user_text=prompt,
                    max_tokens=max_tokens or _LEGACY_DEFAULT_MAX_TOKENS,
                    stop=stop,
                    output_tokens=call.output_tokens,
                )
            )
            for prompt in _legacy_prompts(body.get("prompt"))
        ]
        created = int(time.time())
        completion_id = new_id("cmpl-")
        base = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
        }
        if body.get("stream") is True:
            return StreamReply(CONTENT_SSE, _legacy_events(generations, base, _include_usage(body)))
        choices = [
            _legacy_choice(index, gen.text, _finish_reason(gen))
            for index, gen in enumerate(generations)
        ]
        return json_reply(200, {**base, "choices": choices, "usage": _total_usage(generations)})

    # --- embeddings --------------------------------------------------------------------------

    def embeddings(self, call: Call) -> JsonReply:
        body = call.body
        model = _model(call)
        texts = _embedding_inputs(body.get("input"))
        dimensions = optional_positive_int(body.get("dimensions"), "dimensions")
        dimensions = dimensions or embeddings.DEFAULT_DIMENSIONS
        if dimensions > embeddings.MAX_DIMENSIONS:
            raise ApiError(
                400, f"'dimensions' must be at most {embeddings.MAX_DIMENSIONS}.", "dimensions"
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise ApiError(400, "'encoding_format' must be 'float' or 'base64'.", "encoding_format")
        data = []
        for index, text in enumerate(texts):
            vector = embeddings.embed(text, dimensions)
            encoded = embeddings.to_base64(vector) if encoding == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(map(count_tokens, texts))
        return json_reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # --- models --------------------------------------------------------------------------------

    def models(self, call: Call) -> JsonReply:
        return json_reply(
            200, {"object": "list", "data": [_model_json(model) for model in MODEL_IDS["openai"]]}
        )

    def model(self, call: Call) -> JsonReply:
        return json_reply(200, _model_json(call.path_params["model"]))


def usage_json(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _model(call: Call) -> str:
    # Azure names the deployment in the path and needs no model in the body.
    deployment = call.path_params.get("deployment")
    return (
        deployment
        if deployment
        else require_str(call.body, "model", "You must provide a model parameter.")
    )


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _finish_reason(generation: Generation) -> str:
    return _FINISH_REASONS.get(generation.finish, "stop")


def _chat_request(call: Call, model: str) -> ChatRequest:
    body = call.body
    messages = require_list(body, "messages")
    texts: list[str] = []
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(
                400,
                f"Invalid 'messages[{index}]': expected an object with a role.",
                f"messages[{index}]",
            )
        text = text_of_parts(message.get("content"))
        for tool_call in as_list(message.get("tool_calls")):
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict):
                text += f" {function.get('name', '')} {function.get('arguments', '')}"
        texts.append(text)
        if message["role"] == "user":
            last_user_text = text
    ends_with_tool_result = messages[-1]["role"] in ("tool", "function")
    return ChatRequest(
        model=model,
        prompt_text="\n".join(texts),
        last_user_text=last_user_text,
        tool_result=texts[-1] if ends_with_tool_result else None,
        tool_to_call=None if ends_with_tool_result else _tool_to_call(body),
        max_tokens=optional_positive_int(
            body.get("max_completion_tokens", body.get("max_tokens")),
            "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens",
        ),
        stop=string_list(body.get("stop"), "stop"),
        output_tokens=call.output_tokens,
    )


def _tool_to_call(body: dict) -> ToolSpec | None:
    tools = openai_style_tools(body.get("tools"))
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    wanted = None
    if isinstance(choice, dict):
        if isinstance(choice.get("function"), dict):
            wanted = choice["function"].get("name")
        elif isinstance(choice.get("allowed_tools"), dict):
            # {"type": "allowed_tools", "allowed_tools": {"mode": ..., "tools": [...]}}
            allowed = openai_style_tools(choice["allowed_tools"].get("tools"))
            wanted = allowed[0].name if allowed else None
    return choose_tool(tools, wanted)


def _tool_call_json(generation: Generation) -> dict:
    call = generation.tool_call
    assert call is not None  # only asked for a generation that calls a tool
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def _chat_events(
    generation: Generation, completion_id: str, created: int, model: str, include_usage: bool
) -> Iterator[StreamEvent]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    if include_usage:
        # With include_usage, every chunk carries `usage: null` until the final usage chunk.
        base["usage"] = None

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse_data({**base, "choices": [choice]})

    tool_call = generation.tool_call
    if tool_call is None:
        yield chunk({"role": "assistant", "content": "", "refusal": None}), False
        for piece in generation.pieces:
            yield chunk({"content": piece}), True
    else:
        opening = {
            "index": 0,
            "id": tool_call.id,
            "type": "function",
            "function": {"name": tool_call.name, "arguments": ""},
        }
        yield chunk({"role": "assistant", "content": None, "tool_calls": [opening]}), False
        for piece in generation.pieces:
            argument_delta = {"index": 0, "function": {"arguments": piece}}
            yield chunk({"tool_calls": [argument_delta]}), True
    yield chunk({}, _finish_reason(generation)), False
    if include_usage:
        usage = usage_json(generation.prompt_tokens, generation.completion_tokens)
        yield sse_data({**base, "choices": [], "usage": usage}), False
    yield _DONE, False


def _response_events(generation: Generation, model: str, request: dict, body: dict,
                     usage: Usage) -> Iterator[StreamEvent]:
    encoder = ResponsesStreamEncoder(model, request, body)

    def delta(fields: dict, finish_reason: str | None = None) -> bytes:
        return encoder.encode({"choices": [{"index": 0, "delta": fields,
                                            "finish_reason": finish_reason}]})

    tool_call = generation.tool_call
    if tool_call is not None:
        yield delta({"tool_calls": [{"index": 0, "id": tool_call.id, "type": "function",
                                     "function": {"name": tool_call.name,
                                                  "arguments": ""}}]}), False
    for piece in generation.pieces:
        if tool_call is None:
            yield delta({"content": piece}), True
        else:
            yield delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}), True
    yield delta({}, _finish_reason(generation)) + encoder.finish(usage), False


def _legacy_prompts(prompt: object) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(item, int) for item in prompt):
            return [_token_ids_text(prompt)]
        if all(isinstance(item, str) for item in prompt):
            return prompt
        if all(isinstance(item, list) for item in prompt):
            return [_token_ids_text(item) for item in prompt]
    raise ApiError(400, "Missing or invalid parameter: 'prompt'.", "prompt")


def _token_ids_text(token_ids: list) -> str:
    # Token ids have no text in the mock; one word per id keeps the token count equal.
    return " ".join(f"t{token_id}" for token_id in token_ids)


def _legacy_choice(index: int, text: str, finish_reason: str | None) -> dict:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def _total_usage(generations: list[Generation]) -> dict:
    return usage_json(
        sum(gen.prompt_tokens for gen in generations),
        sum(gen.completion_tokens for gen in generations),
    )


def _legacy_events(
    generations: list[Generation], base: dict, include_usage: bool
) -> Iterator[StreamEvent]:
    for index, generation in enumerate(generations):
        for piece in generation.pieces:
            yield sse_data({**base, "choices": [_legacy_choice(index, piece, None)]}), True
        final = _legacy_choice(index, "", _finish_reason(generation))
        yield sse_data({**base, "choices": [final]}), False
    if include_usage:
        yield sse_data({**base, "choices": [], "usage": _total_usage(generations)}), False
    yield _DONE, False


def _embedding_inputs(value: object) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        texts = [_token_ids_text(value)]
    elif isinstance(value, list) and value and all(isinstance(item, (str, list)) for item in value):
        texts = [item if isinstance(item, str) else _token_ids_text(item) for item in value]
    else:
        raise ApiError(400, "Missing required parameter: 'input'.", "input")
    if not all(texts):
        raise ApiError(400, "'input' cannot contain an empty string.", "input")
    return texts


def _model_json(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "fastgw-mock"}
