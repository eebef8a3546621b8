"""ai-sanitizer: personal data and credentials found in the prompt are
replaced before the model sees them, and put back in its answer.

Built in: the detectors (``fastgw.ai.pii.detectors``) run in-process in one
pass over each text, with no external service. In the request, every text
the model reads is sanitized (messages and their parts, tool-call arguments
and tool results, Anthropic's system prompt, the Responses API's input and
instructions, a template's properties); ids, roles, names, URLs and image
data are not. Each value gets one replacement for the whole request.

On the way back (an answer filter: ``fastgw.plugins.ai_proxy.answer_filters``)
the answer's text and tool-call arguments go through two stages: with
``sanitization_mode`` OUTPUT or BOTH, values the model wrote are replaced
(``StreamRedactor`` holds back the tail of a streamed field so a value cut
across events is found whole); then, with ``recover_redacted``, the prompt's
replacements are restored (``StreamRestorer`` holds back what may be the
start of one). The mapping lives in the request's context only; the log
line gets counts per detector, never a value.
"""

from __future__ import annotations

from typing import Any

import orjson

from fastgw.ai.pii.detectors import CustomPattern, Detectors, detectors_for
from fastgw.ai.pii.redaction import (
    MASK,
    Redaction,
    RedactionPolicy,
    StreamRedactor,
    StreamRestorer,
)
from fastgw.plugins.ai_proxy.answer_filters import AnswerFilter, add_answer_filter
from fastgw.plugins.ai_proxy.prompt_plugin import PromptPlugin
from fastgw.plugins.ai_proxy.request_body import replace_json_body
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

BLOCKED = "request blocked by ai-sanitizer: it holds sensitive data ({})"
# Where the model's text is in a request, on any front door.
_TEXT_ROOTS = ("messages", "system", "input", "instructions", "prompt", "properties")
# Keys whose strings are not text for the model.
_NOT_TEXT = frozenset(("role", "type", "id", "tool_call_id", "tool_use_id", "call_id", "model",
                       "name", "media_type", "url", "data", "image_url", "cache_control",
                       "signature", "status", "format", "detail", "mime_type", "file_id",
                       "file_data", "image_data", "encoding_format"))
# The conversations whose history allow_all_conversation_history leaves alone.
_CONVERSATIONS = ("messages", "input")


def json_string_contents(value: str) -> str:
    """``value`` as it is written inside a JSON string (tool-call arguments)."""
    return orjson.dumps(value).decode()[1:-1]


class AISanitizer(PromptPlugin):
    name = "ai-sanitizer"
    PRIORITY = 776

    __slots__ = ("policy", "sanitize_input", "sanitize_output", "recover", "block", "history",
                 "hold")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        anonymize = config["anonymize"]
        custom = [CustomPattern(p["name"], p["regex"], p["score"])
                  for p in config["custom_patterns"] or ()]
        if not {"custom", "all", "all_and_credentials"} & set(anonymize):
            custom = []
        self.policy = RedactionPolicy(Detectors(detectors_for(anonymize), custom),
                                      config["redact_type"], config["mask_keep_last"],
                                      config["mask_char"])
        mode = config["sanitization_mode"]
        self.sanitize_input = mode in ("INPUT", "BOTH")
        self.sanitize_output = mode in ("OUTPUT", "BOTH")
        # A mask cannot be undone: there is nothing to restore.
        self.recover = config["recover_redacted"] and config["redact_type"] != MASK
        self.block = config["block_if_detected"]
        self.history = config["allow_all_conversation_history"]
        self.hold = config["output_hold_chars"]
        self.max_body = config["max_request_body_size"]

    def handle(self, ctx: RequestContext, body: dict[str, Any], raw: bytes) -> None:
        redaction = Redaction(self.policy)
        section: dict[str, Any] = {"input": redaction.counts}
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["sanitizer"] = section
        if self.sanitize_input:
            sanitized = self._sanitize_request(body, redaction)
            if redaction.counts:
                if self.block:
                    section["blocked"] = True
                    found = ", ".join(f"{name}: {count}" for name, count in
                                      redaction.counts.items())
                    self.refuse(ctx, 400, BLOCKED.format(found))
                    return
                replace_json_body(ctx, sanitized)
        recover = self.recover and bool(redaction.originals)
        if self.sanitize_output or recover:
            answer_filter = SanitizerFilter(redaction, self.sanitize_output, recover, self.hold)
            section["output"] = answer_filter.output.counts
            add_answer_filter(ctx, answer_filter)
            ctx.plugin_state(self)["filter"] = answer_filter

    def log(self, ctx: RequestContext) -> None:
        answer_filter = ctx.plugin_state(self).get("filter")
        if answer_filter is not None and ctx.ai is not None and "sanitizer" in ctx.ai:
            ctx.ai["sanitizer"]["restored"] = answer_filter.redaction.restored

    def _sanitize_request(self, body: dict[str, Any], redaction: Redaction) -> dict[str, Any]:
        sanitized = body
        for key in _TEXT_ROOTS:
            value = body.get(key)
            if value is None:
                continue
            if not self.history and key in _CONVERSATIONS and isinstance(value, list) and value:
                # Only the latest message: the conversation before it is left as it was.
                new = [*value[:-1], _walk(value[-1], key, redaction)]
                changed = new[-1] is not value[-1]
            else:
                new = _walk(value, key, redaction)
                changed = new is not value
            if changed:
                if sanitized is body:
                    sanitized = dict(body)
                sanitized[key] = new
        return sanitized


def _walk(value: Any, key: str, redaction: Redaction) -> Any:
    """``value`` with its texts sanitized; the same object when nothing changed."""
    if isinstance(value, str):
        if key in _NOT_TEXT:
            return value
        if key == "arguments":
            return _arguments(value, redaction)
        return redaction.redact(value)
    if isinstance(value, dict):
        changed = None
        for name, item in value.items():
            new = _walk(item, name, redaction)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[name] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = None
        for index, item in enumerate(value):
            new = _walk(item, key, redaction)
            if new is not item:
                if items is None:
                    items = list(value)
                items[index] = new
        return value if items is None else items
    return value


def _arguments(text: str, redaction: Redaction) -> str:
    """Tool-call arguments: a JSON text whose strings are sanitized as JSON
    (a value with a newline stays valid), or plain text when it is not JSON."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return redaction.redact(text)
    sanitized = _walk(parsed, "", redaction)
    return text if sanitized is parsed else orjson.dumps(sanitized).decode()


class _FieldText:
    """One text field of a streamed answer: the output stage, then the restore."""

    __slots__ = ("redactor", "restorer")

    def __init__(self, redactor: StreamRedactor | None, restorer: StreamRestorer | None) -> None:
        self.redactor = redactor
        self.restorer = restorer

    def feed(self, piece: str) -> str:
        if self.redactor is not None:
            piece = self.redactor.feed(piece)
        if self.restorer is not None:
            piece = self.restorer.feed(piece)
        return piece

    def flush(self) -> str:
        text = ""
        if self.redactor is not None:
            text = self.redactor.flush()
        if self.restorer is not None:
            text = self.restorer.feed(text) + self.restorer.flush()
        return text


class SanitizerFilter(AnswerFilter):
    """The answer's side of one request: values the model wrote are hidden
    (``output``), the prompt's replacements are restored (``redaction``)."""

    __slots__ = ("redaction", "output", "sanitize_output", "recover", "hold", "fields",
                 "template", "inserted")

    def __init__(self, redaction: Redaction, sanitize_output: bool, recover: bool,
                 hold: int) -> None:
        self.redaction = redaction
        self.output = Redaction(redaction.policy, after=redaction)
        self.sanitize_output = sanitize_output
        self.recover = recover
        self.hold = hold
        self.fields: dict[tuple, _FieldText] = {}
        self.template: dict[str, Any] | None = None  # the last chunk, for one of our own
        self.inserted = 0  # events of our own in a Responses stream (sequence numbers)

    # -- whole answers ----------------------------------------------------------

    def _text(self, text: str, json_text: bool = False, again: bool = False) -> str:
        """``again``: a text the stream's deltas already brought (a Responses
        ``*.done`` event): the same replacements, not counted twice."""
        if again:
            counts, restored = dict(self.output.counts), self.redaction.restored
        if self.sanitize_output:
            text = self.output.redact(text)
        if self.recover:
            text = self.redaction.restore(text, json_string_contents if json_text else None)
        if again:
            self.output.counts.clear()
            self.output.counts.update(counts)
            self.redaction.restored = restored
        return text

    def answer(self, answer: dict[str, Any]) -> None:
        for choice in answer.get("choices") or ():
            if isinstance(choice.get("text"), str):
                choice["text"] = self._text(choice["text"])
            message = choice.get("message")
            if isinstance(message, dict):
                self._message(message)
        for item in answer.get("output") or ():  # the Responses API
            if isinstance(item, dict):
                self._output_item(item)

    def _output_item(self, item: dict[str, Any], again: bool = False) -> None:
        for part in item.get("content") or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = self._text(part["text"], again=again)
        if isinstance(item.get("arguments"), str):
            item["arguments"] = self._text(item["arguments"], json_text=True, again=again)

    def _message(self, message: dict[str, Any]) -> None:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = self._text(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = self._text(part["text"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                function["arguments"] = self._text(function["arguments"], json_text=True)

    def logged(self, text: str) -> str:
        # The restored values never reach a log: they are replaced again.
        return self.redaction.hide(text)

    # -- streams ------------------------------------------------------------------

    def _field(self, key: tuple, json_text: bool) -> _FieldText:
        field = self.fields.get(key)
        if field is None:
            field = self.fields[key] = _FieldText(
                StreamRedactor(self.output, self.hold) if self.sanitize_output else None,
                self.redaction.restorer(json_string_contents if json_text else None)
                if self.recover else None)
        return field

    def chunks(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for chunk in chunks:
            choices = chunk.get("choices")
            if not isinstance(choices, list):
                continue
            self.template = chunk
            for choice in choices:
                if isinstance(choice, dict):
                    self._choice(choice)
        return chunks

    def _choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        if isinstance(choice.get("text"), str):  # llm/v1/completions
            choice["text"] = self._field((index, "text"), False).feed(choice["text"])
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str):
                delta["content"] = self._field((index, "content"), False).feed(delta["content"])
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    field = self._field((index, "tool", call.get("index", 0)), True)
                    function["arguments"] = field.feed(function["arguments"])
        if choice.get("finish_reason") is not None:
            self._flush_choice(index, choice)

    def _flush_choice(self, index: Any, choice: dict[str, Any]) -> None:
        """The choice ends in this chunk: what its fields held goes with it."""
        for key in [key for key in self.fields if key[0] == index]:
            text = self.fields.pop(key).flush()
            if not text:
                continue
            if key[1] == "text":
                choice["text"] = (choice.get("text") or "") + text
                continue
            delta = choice.setdefault("delta", {})
            if key[1] == "content":
                delta["content"] = (delta.get("content") or "") + text
            else:
                delta.setdefault("tool_calls", []).append(
                    {"index": key[2], "function": {"arguments": text}})

    # -- the Responses API's own events -----------------------------------------

    def events(self, events: list[dict[str, Any]], last: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            kind = event.get("type")
            where = (event.get("output_index", 0), event.get("content_index", 0))
            if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
                event["delta"] = self._field(("text", *where), False).feed(event["delta"])
            elif kind == "response.function_call_arguments.delta" and \
                    isinstance(event.get("delta"), str):
                event["delta"] = self._field(("args", where[0]), True).feed(event["delta"])
            elif kind == "response.output_text.done":
                self._flush_event(("text", *where), event, out)
                if isinstance(event.get("text"), str):
                    event["text"] = self._text(event["text"], again=True)
            elif kind == "response.function_call_arguments.done":
                self._flush_event(("args", where[0]), event, out)
                if isinstance(event.get("arguments"), str):
                    event["arguments"] = self._text(event["arguments"], True, again=True)
            elif kind in ("response.content_part.done", "response.output_item.done"):
                item = event.get("part") if kind == "response.content_part.done" else \
                    event.get("item")
                if isinstance(item, dict):
                    self._output_item({"content": [item]} if "part" in event else item,
                                      again=True)
            elif kind in ("response.completed", "response.incomplete"):
                for item in (event.get("response") or {}).get("output") or ():
                    if isinstance(item, dict):
                        self._output_item(item, again=True)
            self._renumber(event)
            out.append(event)
        if last:
            for key in list(self.fields):
                self._flush_event(key, {"output_index": key[1]}, out)
        return out

    def _flush_event(self, key: tuple, before: dict[str, Any],
                     out: list[dict[str, Any]]) -> None:
        """What a field of a Responses stream held, as one more delta event."""
        field = self.fields.pop(key, None)
        text = field.flush() if field is not None else ""
        if not text:
            return
        event: dict[str, Any] = {
            "type": "response.output_text.delta" if key[0] == "text"
            else "response.function_call_arguments.delta",
            "item_id": before.get("item_id"), "output_index": key[1], "delta": text}
        if key[0] == "text":
            event["content_index"] = key[2]
        if "sequence_number" in before:
            event["sequence_number"] = before["sequence_number"]
            self._renumber(event)
        self.inserted += 1
        out.append(event)

    def _renumber(self, event: dict[str, Any]) -> None:
        number = event.get("sequence_number")
        if isinstance(number, int) and self.inserted:
            event["sequence_number"] = number + self.inserted

    def finish(self, tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tail = self.chunks(tail)
        if not self.fields or self.template is None:
            return tail
        # Fields still open (a stream that never said it finished): theirs
        # goes out in one more chunk, before the last ones.
        choices: dict[Any, dict[str, Any]] = {}
        for index in {key[0] for key in self.fields}:
            choice: dict[str, Any] = {"index": index}
            if any(key[0] == index and key[1] != "text" for key in self.fields):
                choice["delta"] = {}
            self._flush_choice(index, choice)
            choice["finish_reason"] = None
            choices[index] = choice
        extra = {key: value for key, value in self.template.items()
                 if key not in ("choices", "usage")}
        extra["choices"] = list(choices.values())
        return [extra, *tail]


HANDLER = AISanitizer
