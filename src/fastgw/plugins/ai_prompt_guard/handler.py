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
from re import _constants, _parser  # type: ignore[attr-defined]
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

    def handle(self, ctx: RequestContext, body: dict[str, Any], raw: bytes) -> None:
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


class Patterns:
    """Patterns searched in a prompt, each behind a cheap test: a literal that
    every match of it contains (found in the parsed pattern) is looked for
    with ``in`` first, and the regex runs only when it is there.

    PERF: a 2 KB prompt costs ~80 µs through three regexes and ~3 µs through
    the literal tests. Case-insensitive literals are tested on ASCII prompts
    only: Unicode case folding (``ſ`` matches ``s``) is the regex's to judge.
    """

    __slots__ = ("entries",)

    def __init__(self, patterns: list[str]) -> None:
        self.entries = [(re.compile(python_pattern(p)), *_required_literal(python_pattern(p)))
                        for p in patterns]

    def search(self, text: str) -> bool:
        lowered = text.lower() if text.isascii() else None
        for regex, literal, ignore_case in self.entries:
            if literal:
                if not ignore_case:
                    if literal not in text:
                        continue
                elif lowered is not None and literal not in lowered:
                    continue
            if regex.search(text):
                return True
        return False


def _required_literal(pattern: str) -> tuple[str, bool]:
    """The longest literal (3 characters or more) that every match of
    ``pattern`` contains, and whether it matches ignoring case; ("", False)
    when none can be told."""
    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return "", False
    best = ("", False)

    def keep(run: list[str], ignore_case: bool) -> None:
        nonlocal best
        literal = "".join(run)
        if ignore_case:
            if not literal.isascii():
                return
            literal = literal.lower()
        if len(literal) >= 3 and len(literal) > len(best[0]):
            best = (literal, ignore_case)

    def walk(items: Any, ignore_case: bool) -> None:
        # Only a sequence's own items are certain to be in every match: a
        # branch or a repeat breaks the run, a group is walked on its own.
        run: list[str] = []
        for op, arg in items:
            if op is _constants.LITERAL:
                run.append(chr(arg))
                continue
            keep(run, ignore_case)
            run = []
            if op is _constants.SUBPATTERN:
                _, added, removed, inner = arg
                walk(inner, (ignore_case or bool(added & re.IGNORECASE))
                     and not removed & re.IGNORECASE)
        keep(run, ignore_case)

    walk(list(parsed), bool(parsed.state.flags & re.IGNORECASE))
    return best


def _combined(patterns: list[str] | None) -> Patterns | None:
    return Patterns(patterns) if patterns else None


def _record(ctx: RequestContext, section: dict[str, Any]) -> None:
    if ctx.ai is None:
        ctx.ai = {}
    ctx.ai["prompt_guard"] = section


HANDLER = AIPromptGuard
