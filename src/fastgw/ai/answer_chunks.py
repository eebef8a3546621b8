"""A canonical Chat Completions answer and its stream, each made from the
other: ``AnswerBuilder`` gathers a stream's chunks into the whole answer
they tell, ``answer_chunks`` tells a whole answer as chunks. A cached answer
is replayed this way in the client's mode, whichever way it was produced."""

from __future__ import annotations

from typing import Any


class AnswerBuilder:
    """Canonical chunks in (``add``), the whole ``chat.completion`` out."""

    __slots__ = ("head", "choices", "usage")

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {key: chunk[key] for key in ("id", "created", "model") if key in chunk}
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self.choices.setdefault(index, {"role": "assistant", "content": [],
                                                    "tool_calls": {}, "finish_reason": None})
            delta = choice.get("delta") or {}
            if isinstance(delta.get("role"), str):
                state["role"] = delta["role"]
            if isinstance(delta.get("content"), str):
                state["content"].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                entry = state["tool_calls"].setdefault(call.get("index", 0), {
                    "id": None, "type": "function", "name": None, "arguments": []})
                if call.get("id"):
                    entry["id"] = call["id"]
                function = call.get("function") or {}
                if function.get("name"):
                    entry["name"] = function["name"]
                if isinstance(function.get("arguments"), str):
                    entry["arguments"].append(function["arguments"])
            if choice.get("finish_reason") is not None:
                state["finish_reason"] = choice["finish_reason"]

    @property
    def complete(self) -> bool:
        """Every choice said how it finished."""
        return bool(self.choices) and all(c["finish_reason"] is not None
                                          for c in self.choices.values())

    def answer(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self.choices):
            state = self.choices[index]
            message: dict[str, Any] = {"role": state["role"],
                                       "content": "".join(state["content"]) or None}
            if state["tool_calls"]:
                message["tool_calls"] = [
                    {"id": call["id"], "type": call["type"],
                     "function": {"name": call["name"], "arguments": "".join(call["arguments"])}}
                    for _, call in sorted(state["tool_calls"].items())]
            choices.append({"index": index, "message": message,
                            "finish_reason": state["finish_reason"]})
        answer = {**self.head, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            answer["usage"] = self.usage
        return answer


def answer_chunks(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole canonical chat answer as the chunks of its stream: per choice
    its role, its text, each tool call whole, then how it finished."""
    head = {"id": answer.get("id"), "object": "chat.completion.chunk",
            "created": answer.get("created"), "model": answer.get("model")}
    chunks = []
    for choice in answer.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}

        def chunk(delta: dict[str, Any], finish: str | None = None,
                  index: int = index) -> dict[str, Any]:
            return {**head, "choices": [{"index": index, "delta": delta,
                                         "finish_reason": finish}]}

        chunks.append(chunk({"role": message.get("role") or "assistant", "content": ""}))
        if isinstance(message.get("content"), str) and message["content"]:
            chunks.append(chunk({"content": message["content"]}))
        for position, call in enumerate(message.get("tool_calls") or ()):
            chunks.append(chunk({"tool_calls": [{
                "index": position, "id": call.get("id"), "type": call.get("type", "function"),
                "function": call.get("function") or {}}]}))
        chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    return chunks
