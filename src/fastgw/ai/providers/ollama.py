"""Ollama's native API: ``/api/chat``, ``/api/generate``, ``/api/embed``.

Streams are newline-delimited JSON, each line a partial answer, the last one
with ``"done": true`` and the token counts. Ollama streams unless told not to,
so ``stream`` is always sent. Sampling settings go in ``options``; images are
bare base64 strings; tool-call arguments are objects, not JSON strings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError
from fastgw.ai.openai_format import (
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    assistant_message,
    chat_choice,
    chat_completion,
    embeddings_list,
    new_id,
    openai_error,
    text_completion,
    tool_call,
)
from fastgw.ai.providers.base import (
    SYSTEM_ROLES,
    ProviderTranslator,
    StreamTranslator,
    answer_model,
    content_parts,
    embedding_inputs,
    estimated_usage,
    image_url_of,
    json_text,
    load_json_object,
    new_tool_call_id,
    normalize_error,
    parse_data_url,
    refuse_untranslatable,
    requested_max_tokens,
    stop_sequences,
    tool_arguments,
    tool_names_by_id,
)
from fastgw.ai.sse import NDJSONSplitter
from fastgw.ai.usage import Usage

# OpenAI fields Ollama's API has no place for: refused when set.
UNTRANSLATABLE = ("n", "logprobs", "top_logprobs", "logit_bias", "modalities", "audio",
                  "prediction", "reasoning_effort")
_OPTION_FIELDS = ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")


def ollama_usage(answer: dict[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in answer and "eval_count" not in answer:
        return None
    return Usage.of(answer.get("prompt_eval_count") or 0, answer.get("eval_count") or 0)


def finish_reason(done_reason: str | None, called_tools: bool) -> str:
    if called_tools:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = {key: body[key] for key in _OPTION_FIELDS if body.get(key) is not None}
    max_tokens = requested_max_tokens(body)
    if max_tokens:
        options["num_predict"] = max_tokens
    stops = stop_sequences(body.get("stop"))
    if stops:
        options["stop"] = stops
    return options


def _format(body: dict[str, Any]) -> Any:
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema") or "json"
    return "json" if response_format.get("type") == "json_object" else None


def _message(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    role = message.get("role")
    content = message.get("content")
    text, images = _text_and_images(content)
    if role in SYSTEM_ROLES:
        return {"role": "system", "content": text}
    converted: dict[str, Any] = {"role": role, "content": text}
    if images:
        converted["images"] = images
    if role == "assistant":
        calls = [_ollama_call(call) for call in message.get("tool_calls") or ()]
        if calls:
            converted["tool_calls"] = calls
    elif role == "tool":
        call_id = message.get("tool_call_id")
        # Only a string id can name a tool call.
        name = names.get(call_id) if isinstance(call_id, str) else None
        if name:
            converted["tool_name"] = name
    elif role != "user":
        raise TranslationError(f"message role '{role}' is not supported by ollama")
    return converted


def _ollama_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "function": {
            "name": function.get("name"),
            "arguments": tool_arguments(function.get("arguments")),
        }
    }


def _text_and_images(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "image_url":
            images.append(_image(part))
        else:
            raise TranslationError(f"content part type '{kind}' is not supported by ollama")
    return "".join(texts), images


def _image(part: dict[str, Any]) -> str:
    inline = parse_data_url(image_url_of(part))
    if inline is None:
        raise TranslationError("ollama accepts images only as base64 data URLs")
    return inline[1]


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(
            tool_call(
                call.get("id") or new_tool_call_id(),
                function.get("name"),
                arguments if isinstance(arguments, str) else json_text(arguments or {}),
            )
        )
    return calls


class OllamaStreamTranslator(StreamTranslator):
    """NDJSON lines -> OpenAI chunks; the line with ``done: true`` ends the answer."""

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        super().__init__(route_type, model_name, request)
        self._lines = NDJSONSplitter()
        self._tool_calls_made = 0

    def _feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._translate_each(self._lines.feed(data), self._on_line)

    def finish(self) -> list[dict[str, Any]]:
        # The last line may lack its newline; it can still be the one that ends the answer.
        last: list[dict[str, Any]] = []
        if self.error is None:
            for line in self._lines.flush():
                self._on_line(line, last, at_eof=True)
        return last + super().finish()

    def _on_line(self, line: bytes, out: list[dict[str, Any]], at_eof: bool = False) -> None:
        try:
            answer = orjson.loads(line)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            if not at_eof:  # a broken last line is a cut, which finish() reports as one
                self.unreadable = True
                self._fail(openai_error("unreadable stream line", "api_error", status=502))
            return
        if answer.get("error"):
            self._fail(normalize_error(answer, 502, b""))
            return
        if self._chat:
            self._on_message(answer.get("message") or {}, out)
        elif answer.get("response"):
            out.append(self._text(answer["response"]))
        if answer.get("done"):
            self.usage = ollama_usage(answer)
            out.append(
                self._finish_chunk(
                    finish_reason(answer.get("done_reason"), self._tool_calls_made > 0)
                )
            )
            self.done = True

    def _on_message(self, message: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if message.get("thinking"):
            out.append(self._reasoning(message["thinking"]))
        if message.get("content"):
            out.append(self._text(message["content"]))
        calls = _tool_calls(message)
        if calls:
            for call in calls:
                call["index"] = self._tool_calls_made
                self._tool_calls_made += 1
            out.append(self._tool_calls(calls))


class OllamaTranslator(ProviderTranslator):
    name = "ollama"
    untranslatable_fields = UNTRANSLATABLE
    default_base_url = "http://localhost:11434"
    route_types = frozenset((ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS))
    stream_content_type = "application/x-ndjson"
    stream_translator_class = OllamaStreamTranslator
    paths: ClassVar[dict[str, str]] = {
        ROUTE_CHAT: "/api/chat",
        ROUTE_COMPLETIONS: "/api/generate",
        ROUTE_EMBEDDINGS: "/api/embed",
    }

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        return self.paths[route_type]

    def request_payload(
        self,
        route_type: str,
        body: dict[str, Any],
        model: ModelConfig,
        model_name: str,
        stream: bool,
    ) -> dict[str, Any]:
        if route_type == ROUTE_EMBEDDINGS:
            payload: dict[str, Any] = {"model": model_name, "input": embedding_inputs(body)}
            if body.get("dimensions"):
                payload["dimensions"] = body["dimensions"]
            return payload
        refuse_untranslatable(body, self.untranslatable_fields, self.name)
        payload = {"model": model_name, "stream": stream}
        if route_type == ROUTE_CHAT:
            messages = body.get("messages") or []
            names = tool_names_by_id(messages)
            payload["messages"] = [_message(message, names) for message in messages]
            if body.get("tools"):
                payload["tools"] = body["tools"]  # Ollama takes OpenAI's tool format
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1:
                prompt = prompt[0]
            if not isinstance(prompt, str):
                raise TranslationError("ollama completions need 'prompt' as one string")
            payload["prompt"] = prompt
            if body.get("suffix"):
                payload["suffix"] = body["suffix"]
        options = _options(body)
        if options:
            payload["options"] = options
        response_format = _format(body)
        if response_format:
            payload["format"] = response_format
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
        answer = load_json_object(body)
        model = answer_model(answer.get("model"), model_name, request)
        if route_type == ROUTE_EMBEDDINGS:
            counted = answer.get("prompt_eval_count")
            if counted is None:
                usage = estimated_usage(route_type, request)
            else:
                usage = Usage.of(counted, 0)
            encoding = (request or {}).get("encoding_format")
            vectors = answer.get("embeddings") or []
            return embeddings_list(vectors, model, usage.to_openai_embeddings(), encoding), usage
        if route_type == ROUTE_COMPLETIONS:
            text = answer.get("response") or ""
            usage = ollama_usage(answer) or estimated_usage(route_type, request, text)
            reason = finish_reason(answer.get("done_reason"), False)
            return text_completion(new_id("cmpl-"), model, text, reason, usage.to_openai()), usage
        message = answer.get("message") or {}
        text = message.get("content") or ""
        calls = _tool_calls(message)
        usage = ollama_usage(answer) or estimated_usage(route_type, request, text)
        reply = assistant_message(
            text if text or not calls else None, calls, message.get("thinking")
        )
        choice = chat_choice(0, reply, finish_reason(answer.get("done_reason"), bool(calls)))
        return chat_completion(new_id("chatcmpl-"), model, [choice], usage.to_openai()), usage
