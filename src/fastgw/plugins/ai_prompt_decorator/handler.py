"""ai-prompt-decorator: messages put before and after every conversation
(house rules, a persona, a reminder at the end), in the route's own API.

OpenAI's chat messages and the Responses API's input items get the
messages as they are. Anthropic's Messages API keeps its system prompt
apart, in the top-level ``system``: system-role decorations go there (before
and after the client's own), the others into ``messages``.
"""

from __future__ import annotations

from typing import Any

from fastgw.plugins.ai_proxy.prompt_plugin import PromptPlugin
from fastgw.plugins.ai_proxy.request_body import front_door_of, replace_json_body
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

NOT_CHAT = "this LLM route only supports llm/chat type requests"


class AIPromptDecorator(PromptPlugin):
    name = "ai-prompt-decorator"
    PRIORITY = 772

    __slots__ = ("prepend", "append")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        prompts = config["prompts"]
        self.prepend = [(p["role"], p["content"]) for p in prompts["prepend"] or ()]
        self.append = [(p["role"], p["content"]) for p in prompts["append"] or ()]
        self.max_body = config["max_request_body_size"]

    def handle(self, ctx: RequestContext, body: dict[str, Any], raw: bytes) -> None:
        front = front_door_of(ctx).name
        if front == "responses":
            decorated = self._responses(body)
        elif front == "anthropic":
            decorated = self._anthropic(body)
        else:
            decorated = self._chat(body)
        if decorated is None:
            self.refuse(ctx, 400, NOT_CHAT)
            return
        replace_json_body(ctx, decorated)
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["prompt_decorator"] = {"prepended": len(self.prepend),
                                      "appended": len(self.append)}

    def _chat(self, body: dict[str, Any]) -> dict[str, Any] | None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return None
        return {**body, "messages": [*_messages(self.prepend), *messages,
                                     *_messages(self.append)]}

    def _responses(self, body: dict[str, Any]) -> dict[str, Any] | None:
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        if not isinstance(items, list):
            return None
        return {**body, "input": [*_messages(self.prepend), *items, *_messages(self.append)]}

    def _anthropic(self, body: dict[str, Any]) -> dict[str, Any] | None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return None
        before = [text for role, text in self.prepend if role == "system"]
        after = [text for role, text in self.append if role == "system"]
        decorated = {**body, "messages": [
            *_messages([p for p in self.prepend if p[0] != "system"]), *messages,
            *_messages([p for p in self.append if p[0] != "system"])]}
        if before or after:
            decorated["system"] = _system(body.get("system"), before, after)
        return decorated


def _messages(prompts: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in prompts]


def _system(system: Any, before: list[str], after: list[str]) -> Any:
    """Anthropic's system prompt with texts before and after the client's own:
    text blocks when it was blocks (their cache marks stay where they were)."""
    if isinstance(system, list):
        return [*({"type": "text", "text": text} for text in before), *system,
                *({"type": "text", "text": text} for text in after)]
    own = [system] if isinstance(system, str) and system else []
    return "\n\n".join([*before, *own, *after])


HANDLER = AIPromptDecorator
