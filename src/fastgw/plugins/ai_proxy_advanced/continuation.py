"""balancer.stream_continuation (fastgw): the pieces of a streamed answer
that another target finishes after its first provider broke off.

``Transcript`` keeps what the client was sent of the answer (the model's own
words, before any answer filter, since they are what the next model is
shown). ``continuation_request`` asks the next target to go on from there:
a provider that continues an assistant message given last (Anthropic's
prefill) gets the text so; the others get it followed by an instruction to
continue without repeating. ``Splice`` makes the next provider's chunks
read as the rest of the first stream (its id, no second role, no doubled
space). The plugin's handler runs the call itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fastgw._core.token_estimate import estimate_tokens
from fastgw.ai.usage import Usage

# Providers whose API continues an assistant message that ends the request.
PREFILL_PROVIDERS = frozenset(("anthropic",))
CONTINUE_INSTRUCTION = (
    "Your previous message was cut off. Continue it from exactly where it stops: do not "
    "repeat any of it, do not comment, start with the very next characters.")


class Transcript:
    """What a stream has sent so far, told each canonical chunk."""

    __slots__ = ("parts", "continuable", "finished", "first")

    def __init__(self) -> None:
        self.parts: list[str] = []
        # Only plain text is continued: not a tool call's arguments, nor
        # several choices at once.
        self.continuable = True
        self.finished = False  # a finish_reason went out: nothing is missing
        self.first: tuple[Any, Any] | None = None  # the stream's (id, created)

    def add(self, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            if self.first is None and chunk.get("id") is not None:
                self.first = (chunk.get("id"), chunk.get("created"))
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    self.continuable = False
                    continue
                delta = choice.get("delta") or {}
                if delta.get("tool_calls") or delta.get("function_call"):
                    self.continuable = False
                content = delta.get("content")
                if isinstance(content, str):
                    self.parts.append(content)
                if choice.get("finish_reason"):
                    self.finished = True

    @property
    def text(self) -> str:
        return "".join(self.parts)


def continuation_request(request: dict[str, Any], text: str,
                         provider: str) -> tuple[dict[str, Any], str]:
    """The canonical request that asks ``provider`` for the rest of an
    answer of which ``text`` was sent, and how it asks (``prefill``,
    ``instruction``, or ``again`` when no text went out yet). The output
    ceiling shrinks by what was sent."""
    request = dict(request)
    messages = list(request["messages"])
    if not text.strip():
        how = "again"
    elif provider in PREFILL_PROVIDERS:
        # Anthropic refuses a prefill that ends in whitespace; Splice drops
        # the whitespace the continuation then starts with.
        messages.append({"role": "assistant", "content": text.rstrip()})
        how = "prefill"
    else:
        messages.append({"role": "assistant", "content": text})
        messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
        how = "instruction"
    request["messages"] = messages
    sent = estimate_tokens(text) if text else 0
    for field in ("max_completion_tokens", "max_tokens"):
        ceiling = request.get(field)
        if isinstance(ceiling, int) and not isinstance(ceiling, bool):
            request[field] = max(1, ceiling - sent)
    return request, how


class Splice:
    """Rewrites the next provider's chunks as the rest of the first stream."""

    __slots__ = ("first", "trim")

    def __init__(self, transcript: Transcript) -> None:
        self.first = transcript.first
        # The text sent ends in whitespace: the rest must not start with more.
        text = transcript.text
        self.trim = bool(text) and text[-1].isspace()

    def __call__(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for chunk in chunks:
            if self.first is not None:
                chunk["id"], chunk["created"] = self.first
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    continue
                delta.pop("role", None)  # named once, by the first stream
                content = delta.get("content")
                if self.trim and isinstance(content, str) and content:
                    delta["content"] = content.lstrip()
                    self.trim = not delta["content"]
        return chunks


class Part(NamedTuple):
    """One call's share of an answer: what it is billed and counted as."""

    target: Any  # LLMTarget
    provider: str
    model_name: str
    usage: Usage | None


def with_total_usage(tail: list[dict[str, Any]], total: Usage) -> list[dict[str, Any]]:
    """The last chunks of a continued stream, its usage chunk (when the
    client asked for one) counting every call of the answer."""
    for chunk in tail:
        if chunk.get("usage") is not None:
            chunk["usage"] = total.to_openai()
    return tail
