"""ai-prompt-guard: refuse prompts that match a deny pattern, or that match
none of the allow patterns, before any model sees them.

As Kong: the user's prompts are checked (every role's with
``match_all_roles``), the whole conversation joined latest first, or only the
latest prompt with ``allow_all_conversation_history``; a refusal is a 400
saying only "bad request" (a client is not told a guard is there), in the
route's API (OpenAI's or Anthropic's error shape).
"""

from __future__ import annotations

import re
from typing import Any

from fastgw.ai.prompt_text import prompt_texts
from fastgw.plugins.ai_prompt_guard.schema import python_pattern
from fastgw.plugins.ai_proxy.prompt_plugin import PromptPlugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

REFUSED = "bad request"


class AIPromptGuard(PromptPlugin):
    name = "ai-prompt-guard"
    PRIORITY = 771

    __slots__ = ("allow", "deny", "latest_only", "all_roles")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        # One alternation each: a prompt is searched once per list.
        self.deny = _combined(config["deny_patterns"])
        self.allow = _combined(config["allow_patterns"])
        self.latest_only = config["allow_all_conversation_history"]
        self.all_roles = config["match_all_roles"]
        self.max_body = config["max_request_body_size"]

    def handle(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        prompt = self._prompt(body)
        if self.deny is not None and self.deny.search(prompt):
            self.refuse(ctx, 400, REFUSED)
        elif self.allow is not None and not self.allow.search(prompt):
            self.refuse(ctx, 400, REFUSED)
        else:
            _record(ctx, {"guarded": True})

    def _prompt(self, body: dict[str, Any]) -> str:
        """The text checked: the chosen roles' prompts, latest first."""
        texts = [text for role, text in prompt_texts(body)
                 if role == "user" or self.all_roles]
        texts.reverse()
        if self.latest_only:
            return texts[0] if texts else ""
        return " ".join(texts)

    def refuse(self, ctx: RequestContext, status: int, message: str) -> None:
        _record(ctx, {"guarded": True, "blocked": True})
        super().refuse(ctx, status, message)


def _combined(patterns: list[str] | None) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{python_pattern(pattern)})" for pattern in patterns))


def _record(ctx: RequestContext, section: dict[str, Any]) -> None:
    if ctx.ai is None:
        ctx.ai = {}
    ctx.ai["prompt_guard"] = section


HANDLER = AIPromptGuard
