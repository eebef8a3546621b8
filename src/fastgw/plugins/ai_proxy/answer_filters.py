"""Answer filters: plugins that change the model's answer on its way back
(ai-sanitizer: restore what it hid from the model, hide what the model says).

Like a gate, a filter registers itself in its access phase
(``add_answer_filter``); ai-proxy hands the request's filters to the
``LLMExchange``, which passes them the answer in its canonical form (OpenAI's
Chat Completions or Responses shapes, whatever the provider and the front
door) before it is written in the client's API: a whole answer once, a
stream chunk by chunk. An answer with filters is always written from that
form, never passed through as the provider wrote it; but for the Responses
API spoken to OpenAI itself, whose own answer and events the filters edit
(``events``).
"""

from __future__ import annotations

from typing import Any

from fastgw.plugins.context import RequestContext

_FILTERS = object()  # ctx.shared key: this request's answer filters, in priority order


class AnswerFilter:
    """What a filter may do at each point of the answer; each default leaves
    the answer as it is, so a filter overrides only what it changes or reads."""

    __slots__ = ()

    def answer(self, answer: dict[str, Any]) -> None:
        """Change (or read) a whole canonical answer in place."""

    def chunks(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stream chunks to send for ``chunks``: changed, and with text
        held back that the next chunks may complete."""
        return chunks

    def finish(self, tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stream's last chunks, after whatever was held back (only a
        stream that ends cleanly gets here)."""
        return tail

    def events(self, events: list[dict[str, Any]], last: bool) -> list[dict[str, Any]]:
        """The Responses API's own events (OpenAI's, passed through): the
        events to send for ``events``; ``last``: the stream ends after them."""
        return events

    def logged(self, text: str) -> str:
        """What a log may show of the answer the client got (``text``)."""
        return text


def add_answer_filter(ctx: RequestContext, answer_filter: AnswerFilter) -> None:
    ctx.shared.setdefault(_FILTERS, []).append(answer_filter)


def answer_filters(ctx: RequestContext) -> list[AnswerFilter]:
    """The request's filters: the list itself, which plugins that run after
    ai-proxy's access (ai-semantic-cache) still add to."""
    return ctx.shared.setdefault(_FILTERS, [])
