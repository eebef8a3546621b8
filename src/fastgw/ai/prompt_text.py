"""The text of a prompt, whichever API wrote it: OpenAI's chat messages and
completions prompt, Anthropic's messages and top-level system, the Responses
API's instructions and input. For the plugins that read prompts (the guard,
the sanitizer) without knowing the route's front door."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or its text parts joined (None: no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = [part["text"] for part in content
                            if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return " ".join(texts) if texts else None
    return None


def prompt_texts(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, text) of every prompt part, in the order the model reads them."""
    for key in ("system", "instructions"):
        text = _text_of(body.get(key))
        if text is not None:
            yield "system", text
    messages = body.get("messages")
    items = messages if isinstance(messages, list) else body.get("input")
    if isinstance(items, str):
        yield "user", items
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            role = item.get("role")
            if item.get("type") == "function_call_output" or role == "tool":
                text = _text_of(item.get("output", item.get("content")))
                role = "tool"
            else:
                text = _text_of(item.get("content"))
            if isinstance(role, str) and text is not None:
                yield role, text
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        yield "user", prompt
    elif isinstance(prompt, list):
        for part in prompt:
            if isinstance(part, str):
                yield "user", part


def last_user_text(request: dict[str, Any]) -> str:
    """The text of a canonical (OpenAI-shaped) request's last user message:
    what routing by meaning or by complexity reads."""
    for message in reversed(request.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content")) or ""
    return ""
