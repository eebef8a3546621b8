"""Google Gemini: ``generateContent``, ``streamGenerateContent?alt=sse``, ``batchEmbedContents``.

Google AI Studio by default (``/v1beta/models/{model}:...``, key in the
``x-goog-api-key`` header or ``?key=``); Vertex AI when ``options.gemini`` names
an api_endpoint, project and location (credential: a bearer token header).
Gemini answers tool results by function name, not call id, so names are looked
up in the conversation; its function calls carry no id, so ids are made here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastgw.ai.config import ModelConfig
from fastgw.ai.errors import TranslationError, UnsupportedRouteType
from fastgw.ai.openai_format import (
    ROUTE_CHAT,
    ROUTE_EMBEDDINGS,
    assistant_message,
    chat_choice,
    chat_completion,
    embeddings_list,
    new_id,
    tool_call,
)
from fastgw.ai.providers.base import (
    SYSTEM_ROLES,
    ProviderTranslator,
    SSEStreamTranslator,
    answer_model,
    content_parts,
    content_text,
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
from fastgw.ai.sse import SSEEvent
from fastgw.ai.usage import Usage

_FILTERED = (
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
)
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED, "content_filter"),
}
# JSON Schema keywords outside the OpenAPI subset Gemini accepts for function parameters.
_UNSUPPORTED_SCHEMA_KEYS = frozenset(("$schema", "$id", "additionalProperties", "strict"))
_SCHEMA_MAPS = frozenset(("properties", "$defs", "definitions"))
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# OpenAI chat fields this translation has no place for: refused when set.
UNTRANSLATABLE = ("logprobs", "top_logprobs", "logit_bias", "modalities", "audio",
                  "prediction", "reasoning_effort")
_GENERATION_FIELDS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def finish_reason(reason: str, called_tools: bool) -> str:
    mapped = FINISH_REASONS.get(reason, "stop")
    # Gemini ends a function-calling turn with STOP; OpenAI clients look for tool_calls.
    return "tool_calls" if called_tools and mapped == "stop" else mapped


def gemini_usage(metadata: dict[str, Any] | None) -> Usage | None:
    """Thinking tokens are outside candidatesTokenCount but inside OpenAI's completion_tokens."""
    if not metadata:
        return None
    thoughts = metadata.get("thoughtsTokenCount")
    return Usage.of(
        metadata.get("promptTokenCount") or 0,
        (metadata.get("candidatesTokenCount") or 0) + (thoughts or 0),
        metadata.get("totalTokenCount"),
        reasoning=thoughts,
        cached=metadata.get("cachedContentTokenCount"),
    )


def gemini_schema(schema: Any) -> Any:
    """A JSON Schema stripped of keywords Gemini rejects; property names are never touched."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned = {}
    for key, value in schema.items():
        if key in _UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            cleaned[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        else:
            cleaned[key] = gemini_schema(value)
    return cleaned


# Gemini 3 refuses a conversation whose past function calls lost their
# thoughtSignature, and OpenAI's format has no field for it: it rides in the
# tool-call id, which clients return verbatim. base64url keeps the id within
# the [A-Za-z0-9_-] that Anthropic clients accept.
_SIGNATURE_MARK = "_ts_"


def tool_call_id(part: dict[str, Any]) -> str:
    """The OpenAI id of a functionCall part: Gemini's id (or a new one) and its signature."""
    call_id = part["functionCall"].get("id") or new_tool_call_id()
    signature = part.get("thoughtSignature")
    if signature:
        encoded = signature.replace("+", "-").replace("/", "_").rstrip("=")
        call_id = f"{call_id}{_SIGNATURE_MARK}{encoded}"
    return call_id


def thought_signature(call_id: str) -> str | None:
    _, mark, encoded = call_id.partition(_SIGNATURE_MARK)
    if not mark:
        return None
    return encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4)


def openai_tool_call(part: dict[str, Any]) -> dict[str, Any]:
    """A functionCall part as an OpenAI tool call (Gemini sends its arguments whole)."""
    call = part["functionCall"]
    return tool_call(tool_call_id(part), call.get("name"), json_text(call.get("args") or {}))


# --- request ---------------------------------------------------------------------


def _image_part(part: dict[str, Any]) -> dict[str, Any]:
    url = image_url_of(part)
    inline = parse_data_url(url)
    if inline is None:
        return {"fileData": {"fileUri": url, "mimeType": _guess_image_type(url)}}
    media_type, data = inline
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _guess_image_type(url: str) -> str:
    extension = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "gif": "image/gif", "webp": "image/webp"}.get(
        extension, "image/jpeg"
    )


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image_part(part))
        else:
            raise TranslationError(f"content part type '{kind}' is not supported by gemini")
    return parts


def _function_response(content: Any) -> dict[str, Any]:
    # Gemini wants an object; a tool's JSON object answer is passed as is.
    text = content_text(content)
    parsed = tool_arguments(text) if text.lstrip().startswith("{") else None
    return parsed if parsed else {"content": text}


def _append_turn(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _function_call_part(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    part: dict[str, Any] = {
        "functionCall": {
            "name": function.get("name"),
            "args": tool_arguments(function.get("arguments")),
        }
    }
    signature = thought_signature(call.get("id") or "")
    if signature:
        part["thoughtSignature"] = signature
    return part


def _contents(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = tool_names_by_id(messages)
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in SYSTEM_ROLES:
            system_parts.extend(_parts(content))
        elif role == "user":
            _append_turn(contents, "user", _parts(content))
        elif role == "assistant":
            parts = _parts(content)
            parts.extend(_function_call_part(call) for call in message.get("tool_calls") or ())
            _append_turn(contents, "model", parts)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            # Only a string id can name a tool call.
            known = names.get(call_id) if isinstance(call_id, str) else None
            name = known or message.get("name")
            if not name:
                raise TranslationError("tool message answers no tool call of the conversation")
            response = {"functionResponse": {"name": name, "response": _function_response(content)}}
            _append_turn(contents, "user", [response])
        else:
            raise TranslationError(f"message role '{role}' is not supported by gemini")
    return system_parts, contents


def _function_declaration(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise TranslationError(f"tool type '{tool.get('type')}' is not supported by gemini")
    function = tool.get("function") or {}
    declaration = {"name": function.get("name")}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    # Gemini rejects an OBJECT schema with no properties: a tool without arguments has none.
    if parameters and parameters.get("properties"):
        declaration["parameters"] = gemini_schema(parameters)
    return declaration


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise TranslationError("unsupported tool_choice for gemini")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {
        gemini_key: body[key] for key, gemini_key in _GENERATION_FIELDS if body.get(key) is not None
    }
    max_tokens = requested_max_tokens(body)
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    stops = stop_sequences(body.get("stop"))
    if stops:
        config["stopSequences"] = stops
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = gemini_schema(schema)
    return config


# --- answers ---------------------------------------------------------------------


def _candidate_output(candidate: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            calls.append(openai_tool_call(part))
        elif "text" in part:
            (reasoning if part.get("thought") else texts).append(part["text"])
    return "".join(texts), "".join(reasoning), calls


class GeminiStreamTranslator(SSEStreamTranslator):
    """Each SSE event is a whole GenerateContentResponse; the one with finishReason ends it."""

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        super().__init__(route_type, model_name, request)
        self._tool_calls_made = 0

    def _on_event(self, event: SSEEvent, out: list[dict[str, Any]]) -> None:
        data = self._load(event.data)
        if data is None:
            return
        if data.get("error"):
            self._fail(normalize_error(data, 502, b""))
            return
        if data.get("usageMetadata"):
            self.usage = gemini_usage(data["usageMetadata"])
        self.model_name = data.get("modelVersion") or self.model_name
        candidates = data.get("candidates") or ()
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            self._on_parts((candidate.get("content") or {}).get("parts") or (), index, out)
            reason = candidate.get("finishReason")
            if reason:
                out.append(
                    self._finish_chunk(finish_reason(reason, self._tool_calls_made > 0), index)
                )
                self.done = True
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            out.append(self._finish_chunk("content_filter"))
            self.done = True

    def _on_parts(self, parts: Any, index: int, out: list[dict[str, Any]]) -> None:
        for part in parts:
            if "functionCall" in part:
                delta = {"index": self._tool_calls_made, **openai_tool_call(part)}
                self._tool_calls_made += 1
                out.append(self._tool_calls([delta], index))
            elif part.get("text"):
                text = part["text"]
                out.append(
                    self._reasoning(text, index) if part.get("thought") else self._text(text, index)
                )


# --- translator ------------------------------------------------------------------


class GeminiTranslator(ProviderTranslator):
    name = "gemini"
    untranslatable_fields = UNTRANSLATABLE
    default_base_url = "https://generativelanguage.googleapis.com"
    route_types = frozenset((ROUTE_CHAT, ROUTE_EMBEDDINGS))
    stream_translator_class = GeminiStreamTranslator

    def base_url(self, model: ModelConfig) -> str:
        gemini = model.options.gemini
        return f"https://{gemini.api_endpoint}" if gemini.vertex else self.default_base_url

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        gemini = model.options.gemini
        name = quote(model_name.removeprefix("models/"), safe="-._~")
        if route_type == ROUTE_EMBEDDINGS:
            if gemini.vertex:
                raise UnsupportedRouteType(
                    "embeddings on Vertex AI are not supported by the gemini provider"
                )
            operation = "batchEmbedContents"
        else:
            operation = "streamGenerateContent?alt=sse" if stream else "generateContent"
        if gemini.vertex:
            return (
                f"/v1/projects/{gemini.project_id}/locations/{gemini.location_id}"
                f"/publishers/google/models/{name}:{operation}"
            )
        return f"/{gemini.api_version}/models/{name}:{operation}"

    def custom_path(self, path: str, stream: bool) -> str:
        # A configured generateContent URL serves streams from its streaming twin.
        if stream and path.endswith(":generateContent"):
            return path.removesuffix(":generateContent") + ":streamGenerateContent?alt=sse"
        return path

    def request_payload(
        self,
        route_type: str,
        body: dict[str, Any],
        model: ModelConfig,
        model_name: str,
        stream: bool,
    ) -> dict[str, Any]:
        if route_type == ROUTE_EMBEDDINGS:
            return self._embeddings_payload(body, model_name)
        refuse_untranslatable(body, self.untranslatable_fields, self.name)
        system_parts, contents = _contents(body.get("messages") or [])
        payload: dict[str, Any] = {"contents": contents}
        if system_parts:
            payload["systemInstruction"] = {"parts": system_parts}
        generation = _generation_config(body)
        if generation:
            payload["generationConfig"] = generation
        if body.get("tools"):
            payload["tools"] = [
                {"functionDeclarations": [_function_declaration(t) for t in body["tools"]]}
            ]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            payload["toolConfig"] = tool_config
        return payload

    @staticmethod
    def _embeddings_payload(body: dict[str, Any], model_name: str) -> dict[str, Any]:
        model_path = model_name if model_name.startswith("models/") else f"models/{model_name}"
        extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
        return {
            "requests": [
                {"model": model_path, "content": {"parts": [{"text": text}]}, **extra}
                for text in embedding_inputs(body)
            ]
        }

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
        model_name = answer_model(answer.get("modelVersion"), model_name, request)
        if route_type == ROUTE_EMBEDDINGS:
            vectors = [item.get("values") or [] for item in answer.get("embeddings") or ()]
            # Gemini reports no usage for embeddings.
            usage = estimated_usage(route_type, request)
            encoding = (request or {}).get("encoding_format")
            return embeddings_list(
                vectors, model_name, usage.to_openai_embeddings(), encoding
            ), usage
        choices, output = [], []
        for position, candidate in enumerate(answer.get("candidates") or ()):
            text, reasoning, calls = _candidate_output(candidate)
            output.append(text)
            message = assistant_message(text if text or not calls else None, calls, reasoning)
            reason = finish_reason(candidate.get("finishReason") or "STOP", bool(calls))
            choices.append(chat_choice(candidate.get("index", position), message, reason))
        if not choices:
            # A blocked prompt (promptFeedback.blockReason) yields no candidates at all.
            choices.append(chat_choice(0, assistant_message(""), "content_filter"))
        usage = gemini_usage(answer.get("usageMetadata")) or estimated_usage(
            route_type, request, "".join(output)
        )
        completion_id = (
            "chatcmpl-" + answer["responseId"] if answer.get("responseId") else new_id("chatcmpl-")
        )
        return chat_completion(completion_id, model_name, choices, usage.to_openai()), usage
