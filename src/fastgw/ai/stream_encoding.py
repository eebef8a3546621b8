"""What the encoders of one-answer stream APIs share (Anthropic's events, the
Responses API's): walking the first choice of canonical Chat Completions
chunks, delta kind by delta kind, into the subclass's events."""

from __future__ import annotations

from typing import Any

from fastgw.ai.usage import Usage


class FirstChoiceEncoder:
    """Canonical chunks in, the client API's SSE events out. Those APIs have
    one answer: choices other than the first have no place in them."""

    _usage: Usage | None

    def encode(self, chunk: dict[str, Any]) -> bytes:
        events: list[bytes] = []
        self._start(events)
        if chunk.get("usage"):
            self._usage = Usage.from_openai(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                self._reasoning_delta(delta["reasoning_content"], events)
            if delta.get("content"):
                self._content_delta(delta["content"], events)
            if delta.get("refusal"):
                self._refusal_delta(delta["refusal"], events)
            for call in delta.get("tool_calls") or ():
                self._tool_delta(call, events)
            if choice.get("finish_reason"):
                self._finish(choice["finish_reason"])
        return b"".join(events)

    def _start(self, events: list[bytes]) -> None:
        raise NotImplementedError

    def _reasoning_delta(self, text: str, events: list[bytes]) -> None:
        raise NotImplementedError

    def _content_delta(self, text: str, events: list[bytes]) -> None:
        raise NotImplementedError

    def _refusal_delta(self, text: str, events: list[bytes]) -> None:
        # An API without a place for refusals gets them as text.
        self._content_delta(text, events)

    def _tool_delta(self, call: dict[str, Any], events: list[bytes]) -> None:
        raise NotImplementedError

    def _finish(self, finish_reason: str) -> None:
        raise NotImplementedError
