"""Config of ai-prompt-guard, with Kong's fields and limits
(``kong/plugins/ai-prompt-guard/schema.lua``). Patterns are compiled when the
config is checked, so a broken one is a config error, never a 500."""

from __future__ import annotations

import re

from fastgw.config.schema import Array, Boolean, Integer, Path, Record, String, Validation

_INLINE_FLAGS = re.compile(r"\(\?([aimsux]+)\)")


def python_pattern(pattern: str) -> str:
    """A PCRE-style pattern (Kong's) as Python reads it: an inline flag group
    such as ``(?i)`` applies from where it stands to the end, which Python
    only allows at the very start, so the rest becomes a scoped group."""
    depth = 0
    escaped = False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            found = _INLINE_FLAGS.match(pattern, index)
            if found and depth == 0:
                rest = python_pattern(pattern[found.end():])
                return f"{pattern[:index]}(?{found.group(1)}:{rest})"
            depth += 1
        elif char == ")":
            depth -= 1
    return pattern


def _check_regex(pattern: str) -> str | None:
    if not 1 <= len(pattern) <= 500:
        return "length must be between 1 and 500"
    try:
        re.compile(python_pattern(pattern))
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


def _patterns(description: str) -> Array:
    return Array(String(check=_check_regex, description="A regular expression."),
                 len_max=10, description=description)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if not config["allow_patterns"] and not config["deny_patterns"]:
        ctx.error(path, "at least one of these fields must be non-empty: "
                  "'config.allow_patterns', 'config.deny_patterns'")
    if config["match_all_roles"] and config["allow_all_conversation_history"]:
        ctx.error((path, "allow_all_conversation_history"),
                  "must be false when match_all_roles is true")


SCHEMA = Record(
    {
        "allow_patterns": _patterns("The prompt must match one of these (when any is set)."),
        "deny_patterns": _patterns("The prompt must match none of these."),
        "allow_all_conversation_history": Boolean(
            default=False,
            description="Check only the latest prompt, not the conversation before it.",
        ),
        "match_all_roles": Boolean(
            default=False,
            description="Check every role's messages (system, assistant, tool), not only the "
            "user's.",
        ),
        "max_request_body_size": Integer(
            default=8 * 1024, between=(1, 2**31 - 1),
            description="Largest request body, in bytes, that is read and checked (larger: 413).",
        ),
    },
    validator=_check,
    description="Refuse prompts that match deny patterns, or match no allow pattern.",
)
