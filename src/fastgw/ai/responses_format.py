"""OpenAI's Responses API (``POST /v1/responses``) on top of Chat Completions.

A Responses request becomes the canonical (Chat Completions) request every
provider translator starts from; the canonical answer, stream and errors
become a Response object, its typed stream events and OpenAI's error body.
Stateless only: a request that needs the provider to remember an earlier
response (``previous_response_id``, ``store: true``, ``conversation``) or a
tool the provider runs itself (web search, file search, ...) is refused with
a 400 that names the field, as is every field with no Chat Completions
equivalent. Nothing is dropped silently but the hints listed in
``docs/ai-translation.md``.
"""

from __future__ import annotations

from typing import Any

import orjson

from fastgw.ai.errors import TranslationError
from fastgw.ai.openai_format import new_id, now
from fastgw.ai.stream_encoding import FirstChoiceEncoder
from fastgw.ai.usage import Usage

# Responses fields and the Chat Completions fields they become as they are.
_SAME_FIELDS = ("model", "temperature", "top_p", "stream", "parallel_tool_calls", "user",
                "metadata", "service_tier", "safety_identifier", "prompt_cache_key",
                "top_logprobs")
# Fields handled one by one below.
_TRANSLATED_FIELDS = frozenset((*_SAME_FIELDS, "input", "instructions", "tools", "tool_choice",
                                "max_output_tokens", "text", "reasoning", "store",
                                "previous_response_id", "include", "truncation",
                                "stream_options", "background"))
# Hints with no effect on the answer a client reads, dropped in translation.
_HINTS = ("stream_options",)
STATELESS = "the gateway does not keep responses; send the whole conversation in 'input'"


def _refuse(field: str, why: str) -> TranslationError:
    return TranslationError(f"{field}: {why}", code="unsupported_parameter")


def _text_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _refuse(f"{where}.file_id", "images are passed by image_url (a URL or a "
                          "data: URL); stored files are not kept by the gateway")
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _refuse(f"{where}.type", f"content of type '{kind}' cannot be translated")


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise TranslationError(f"{where}.role: expected user, assistant, system or developer")
    content = item.get("content")
    if isinstance(content, list):
        parts = [_text_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
        if all(part["type"] == "text" for part in parts):
            content = "".join(part["text"] for part in parts) if role != "user" else parts
        else:
            content = parts
    elif not isinstance(content, str):
        raise TranslationError(f"{where}.content: expected a string or a list of objects")
    # Chat Completions' system role carries developer instructions to every provider.
    return {"role": "system" if role == "developer" else role, "content": content}


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise TranslationError("instructions: expected a string")
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    if not isinstance(items, list) or not items:
        raise TranslationError("input: expected a string or a non-empty list of items")
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise TranslationError(f"{where}: expected an object")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"),
                                 "arguments": item.get("arguments") or ""}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            elif last is not None and last["role"] == "assistant" and \
                    isinstance(last.get("content"), str):
                last["tool_calls"] = [call]
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = "".join(_text_part(part, f"{where}.output[{i}]").get("text", "")
                                 for i, part in enumerate(output))
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": output if isinstance(output, str) else
                             orjson.dumps(output).decode()})
        elif kind == "reasoning":
            continue  # an earlier turn's reasoning: a hint only the model that wrote it reads
        elif kind == "item_reference":
            raise _refuse(f"{where}.type", STATELESS)
        else:
            raise _refuse(f"{where}.type",
                          f"items of type '{kind}' cannot be translated to Chat Completions")
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise TranslationError("tools: expected a list of objects")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise TranslationError(f"tools[{index}]: expected an object")
        if tool.get("type") != "function":
            raise _refuse(f"tools[{index}].type",
                          f"'{tool.get('type')}' is a tool the provider runs itself; only "
                          "function tools can be translated")
        function = {"name": tool.get("name")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) or choice is None:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise _refuse("tool_choice", f"'{kind}' cannot be translated; use auto, none, required "
                  "or a function")


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        raise TranslationError("text: expected an object")
    unknown = sorted(set(text) - {"format", "verbosity"})
    if unknown:
        raise _refuse(f"text.{unknown[0]}", "cannot be translated")
    form = text.get("format")
    if form is None or form.get("type") == "text":
        return None
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    if form.get("type") == "json_schema":
        schema = {"name": form.get("name"), "schema": form.get("schema")}
        for key in ("description", "strict"):
            if form.get(key) is not None:
                schema[key] = form[key]
        return {"type": "json_schema", "json_schema": schema}
    raise _refuse("text.format.type", f"'{form.get('type')}' cannot be translated")


def responses_to_chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses request as the canonical Chat Completions request."""
    unknown = sorted(key for key in body if key not in _TRANSLATED_FIELDS
                     and body[key] is not None)
    if unknown:
        raise _refuse(unknown[0], "cannot be translated to Chat Completions")
    if body.get("previous_response_id") is not None:
        raise _refuse("previous_response_id", STATELESS)
    if body.get("store") is True:
        raise _refuse("store", "the gateway does not keep responses; send store: false")
    if body.get("background") is True:
        raise _refuse("background", "background responses need a store the gateway does "
                      "not keep")
    if body.get("include"):
        raise _refuse("include", "extra output items cannot be translated")
    if body.get("truncation") not in (None, "disabled"):
        raise _refuse("truncation", "only 'disabled' can be translated")
    request: dict[str, Any] = {key: body[key] for key in _SAME_FIELDS if key in body}
    request["messages"] = _messages(body)
    if body.get("tools"):
        request["tools"] = _tools(body["tools"])
    if "tool_choice" in body:
        request["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("max_output_tokens") is not None:
        request["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("text") is not None:
        response_format = _response_format(body["text"])
        if response_format is not None:
            request["response_format"] = response_format
        if body["text"].get("verbosity") is not None:
            request["verbosity"] = body["text"]["verbosity"]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise TranslationError("reasoning: expected an object")
        unknown = sorted(set(reasoning) - {"effort", "summary", "generate_summary"})
        if unknown:
            raise _refuse(f"reasoning.{unknown[0]}", "cannot be translated")
        if reasoning.get("effort") is not None:
            request["reasoning_effort"] = reasoning["effort"]
    return request


# --- answers ---------------------------------------------------------------------


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens or 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens,
    }


def _echo(request: dict[str, Any], body: dict[str, Any] | None) -> dict[str, Any]:
    """The request settings a Response object repeats."""
    body = body or {}
    text = body.get("text") or {"format": {"type": "text"}}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": text,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "user": body.get("user"),
    }


def response_object(response_id: str, model: str, status: str, output: list[dict[str, Any]],
                    usage: Usage | None, request: dict[str, Any],
                    body: dict[str, Any] | None, created_at: int,
                    error: dict[str, Any] | None = None,
                    incomplete: str | None = None) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model,
        "output": output,
        "usage": responses_usage(usage),
        **_echo(request, body),
    }


def _message_item(item_id: str, text: str, refusal: str | None, status: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text or not refusal:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content}


def _function_item(item_id: str, call: dict[str, Any], status: str) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "function_call", "id": item_id, "call_id": call.get("id"),
            "name": function.get("name"), "arguments": function.get("arguments") or "",
            "status": status}


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id,
            "summary": [{"type": "summary_text", "text": text}]}


def _incomplete_reason(finish_reason: str | None) -> str | None:
    if finish_reason == "length":
        return "max_output_tokens"
    if finish_reason == "content_filter":
        return "content_filter"
    return None


def chat_to_response(answer: dict[str, Any], usage: Usage, request: dict[str, Any],
                     body: dict[str, Any] | None) -> dict[str, Any]:
    """A canonical Chat Completions answer as a Response object (its first choice)."""
    choices = answer.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if reasoning:
        output.append(_reasoning_item(new_id("rs_"), reasoning))
    content = message.get("content")
    if isinstance(content, list):  # some servers answer in parts
        content = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    if content or message.get("refusal") or not message.get("tool_calls"):
        output.append(_message_item(new_id("msg_"), content or "", message.get("refusal"),
                                    "completed"))
    for call in message.get("tool_calls") or ():
        output.append(_function_item(new_id("fc_"), call, "completed"))
    incomplete = _incomplete_reason(choice.get("finish_reason"))
    return response_object(new_id("resp_"), answer.get("model") or request.get("model") or "",
                           "incomplete" if incomplete else "completed", output, usage, request,
                           body, answer.get("created") or now(), incomplete=incomplete)


# --- streams -----------------------------------------------------------------------


def encode_response_event(event: dict[str, Any]) -> bytes:
    """One Responses API stream event as Server-Sent Events."""
    return b"event: " + str(event.get("type", "")).encode() + b"\ndata: " + \
        orjson.dumps(event) + b"\n\n"


class ResponsesStreamEncoder(FirstChoiceEncoder):
    """Canonical Chat Completions chunks -> the Responses API's typed events.

    Each output item (reasoning, the message, each function call) is added,
    filled with deltas and done, in order; ``response.completed`` repeats them
    whole with the usage. Every event carries its sequence number.
    """

    def __init__(self, model: str, request: dict[str, Any], body: dict[str, Any] | None) -> None:
        self.model = model
        self.request = request
        self.body = body
        self.response_id = new_id("resp_")
        self.created_at = now()
        self._sequence = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # items done
        self._open: dict[str, Any] | None = None  # the item being filled
        self._open_kind = ""
        self._tool_items: dict[int, dict[str, Any]] = {}  # tool call index -> item
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    # -- events --

    def _event(self, event_type: str, fields: dict[str, Any]) -> bytes:
        data = {"type": event_type, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return encode_response_event(data)

    def _response(self, status: str, error: dict[str, Any] | None = None,
                  incomplete: str | None = None) -> dict[str, Any]:
        return response_object(self.response_id, self.model, status, list(self._output),
                               self._usage if status != "in_progress" else None, self.request,
                               self.body, self.created_at, error=error, incomplete=incomplete)

    def _start(self, events: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        snapshot = self._response("in_progress")
        events.append(self._event("response.created", {"response": snapshot}))
        events.append(self._event("response.in_progress", {"response": snapshot}))

    def _content_delta(self, text: str, events: list[bytes]) -> None:
        self._text_delta(text, events)

    def _finish(self, finish_reason: str) -> None:
        self._finish_reason = finish_reason

    @property
    def _index(self) -> int:
        return len(self._output)

    def _open_item(self, kind: str, item: dict[str, Any], events: list[bytes]) -> None:
        self._close_item(events)
        self._open = item
        self._open_kind = kind
        events.append(self._event("response.output_item.added",
                                  {"output_index": self._index, "item": item}))

    def _reasoning_delta(self, text: str, events: list[bytes]) -> None:
        item = self._open
        if item is None or self._open_kind != "reasoning":
            item = {"type": "reasoning", "id": new_id("rs_"), "summary": []}
            self._open_item("reasoning", item, events)
            events.append(self._event("response.reasoning_summary_part.added", {
                "item_id": item["id"], "output_index": self._index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}))
            item["_text"] = ""
        item["_text"] += text
        events.append(self._event("response.reasoning_summary_text.delta", {
            "item_id": item["id"], "output_index": self._index, "summary_index": 0,
            "delta": text}))

    def _message_open(self, events: list[bytes]) -> dict[str, Any]:
        if self._open_kind != "message":
            self._open_item("message", {"type": "message", "id": new_id("msg_"),
                                        "status": "in_progress", "role": "assistant",
                                        "content": []}, events)
            assert self._open is not None
            self._open["_text"] = None
            self._open["_refusal"] = None
        assert self._open is not None
        return self._open

    def _text_delta(self, text: str, events: list[bytes]) -> None:
        item = self._message_open(events)
        if item["_text"] is None:
            item["_text"] = ""
            events.append(self._event("response.content_part.added", {
                "item_id": item["id"], "output_index": self._index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [],
                         "logprobs": []}}))
        item["_text"] += text
        events.append(self._event("response.output_text.delta", {
            "item_id": item["id"], "output_index": self._index, "content_index": 0,
            "delta": text, "logprobs": []}))

    def _refusal_delta(self, text: str, events: list[bytes]) -> None:
        item = self._message_open(events)
        index = 0 if item["_text"] is None else 1
        if item["_refusal"] is None:
            item["_refusal"] = ""
            events.append(self._event("response.content_part.added", {
                "item_id": item["id"], "output_index": self._index, "content_index": index,
                "part": {"type": "refusal", "refusal": ""}}))
        item["_refusal"] += text
        events.append(self._event("response.refusal.delta", {
            "item_id": item["id"], "output_index": self._index, "content_index": index,
            "delta": text}))

    def _tool_delta(self, call: dict[str, Any], events: list[bytes]) -> None:
        position = call.get("index", 0)
        function = call.get("function") or {}
        item = self._tool_items.get(position)
        if item is None:
            item = {"type": "function_call", "id": new_id("fc_"), "call_id": call.get("id"),
                    "name": function.get("name"), "arguments": "", "status": "in_progress"}
            self._tool_items[position] = item
            self._open_item("function_call", item, events)
        elif item is not self._open:
            return  # a late delta for a call already done: Chat servers send calls in order
        arguments = function.get("arguments")
        if arguments:
            item["arguments"] += arguments
            events.append(self._event("response.function_call_arguments.delta", {
                "item_id": item["id"], "output_index": self._index, "delta": arguments}))

    def _close_item(self, events: list[bytes]) -> None:
        item = self._open
        if item is None:
            return
        index = self._index
        kind = self._open_kind
        if kind == "reasoning":
            text = item.pop("_text")
            part = {"type": "summary_text", "text": text}
            events.append(self._event("response.reasoning_summary_text.done", {
                "item_id": item["id"], "output_index": index, "summary_index": 0,
                "text": text}))
            events.append(self._event("response.reasoning_summary_part.done", {
                "item_id": item["id"], "output_index": index, "summary_index": 0,
                "part": part}))
            done = _reasoning_item(item["id"], text)
        elif kind == "message":
            text = item.pop("_text")
            refusal = item.pop("_refusal")
            if text is not None:
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                events.append(self._event("response.output_text.done", {
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "text": text, "logprobs": []}))
                events.append(self._event("response.content_part.done", {
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "part": part}))
            if refusal is not None:
                refusal_index = 0 if text is None else 1
                events.append(self._event("response.refusal.done", {
                    "item_id": item["id"], "output_index": index,
                    "content_index": refusal_index, "refusal": refusal}))
                events.append(self._event("response.content_part.done", {
                    "item_id": item["id"], "output_index": index,
                    "content_index": refusal_index,
                    "part": {"type": "refusal", "refusal": refusal}}))
            done = _message_item(item["id"], text or "", refusal, "completed")
        else:
            events.append(self._event("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": index, "name": item["name"],
                "arguments": item["arguments"]}))
            done = {**item, "status": "completed"}
        events.append(self._event("response.output_item.done",
                                  {"output_index": index, "item": done}))
        self._output.append(done)
        self._open = None
        self._open_kind = ""

    def finish(self, usage: Usage | None = None) -> bytes:
        """The closing events; ``usage`` is the stream translator's (reported or estimated)."""
        events: list[bytes] = []
        self._start(events)
        self._close_item(events)
        if usage is not None:
            self._usage = usage
        incomplete = _incomplete_reason(self._finish_reason)
        if incomplete:
            events.append(self._event("response.incomplete", {
                "response": self._response("incomplete", incomplete=incomplete)}))
        else:
            events.append(self._event("response.completed",
                                      {"response": self._response("completed")}))
        return b"".join(events)

    def error(self, error: dict[str, Any], status: int | None = None) -> bytes:
        """An ``error`` event, then ``response.failed`` when a response was
        started (nothing follows). Before any (or over the provider's own
        stream, which started its response itself) the error event alone."""
        events: list[bytes] = []
        nested = error.get("error")
        details: dict[str, Any] = nested if isinstance(nested, dict) else error
        code = details.get("code") or details.get("type") or "server_error"
        message = details.get("message") or "the provider's answer broke off"
        events.append(self._event("error", {"code": code, "message": message,
                                            "param": details.get("param")}))
        if not self._started:
            return b"".join(events)
        failed = self._response("failed", error={"code": code, "message": message})
        events.append(self._event("response.failed", {"response": failed}))
        return b"".join(events)
