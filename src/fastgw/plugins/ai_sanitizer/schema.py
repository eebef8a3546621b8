"""Config of ai-sanitizer, with the fields of Kong's plugin of that name
(Kong's calls an external PII service; fastgw's detectors are built in, so
the fields that address that service are accepted only at Kong's defaults).

fastgw's additions: ``redact_type: mask`` with ``mask_keep_last`` and
``mask_char``; ``output_hold_chars`` (how much of a streamed answer is held
back to be checked whole, sanitization_mode OUTPUT or BOTH)."""

from __future__ import annotations

from typing import Any

from fastgw.ai.pii.detectors import KINDS, NOT_DETECTED, re2_error
from fastgw.config.schema import (
    Array,
    Boolean,
    Field,
    Integer,
    Number,
    Path,
    Record,
    String,
    Validation,
)

ANONYMIZE = ("all", "all_and_credentials", *KINDS, "custom", *NOT_DETECTED)


def _detected(kind: str) -> str | None:
    if kind in NOT_DETECTED:
        return (f"'{kind}' is not detected by fastgw's built-in sanitizer (it detects: "
                f"{', '.join(KINDS)}, and custom_patterns)")
    return None


def _custom_regex(regex: str) -> str | None:
    if not 1 <= len(regex) <= 1000:
        return "length must be between 1 and 1000"
    reason = re2_error(regex)
    return None if reason is None else f"not a pattern fastgw can run (RE2 syntax): {reason}"


def _kong_default(kind: type[Field], name: str, default: Any) -> Field:
    """A field of Kong's that addresses its external PII service: fastgw's
    sanitizer is built in, so only Kong's default passes (another value
    would be ignored)."""
    return kind(default=default, check=lambda value: None if value == default else (
        f"fastgw's sanitizer is built in and calls no service: {name} must stay {default!r}"),
        description=f"Kong's PII service {name} (fastgw's sanitizer is built in).")


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if "custom" in config["anonymize"] and not config["custom_patterns"]:
        ctx.error((path, "custom_patterns"), "required when anonymize includes 'custom'")
    if config["custom_patterns"] and "custom" not in config["anonymize"] and \
            "all" not in config["anonymize"] and "all_and_credentials" not in config["anonymize"]:
        ctx.error((path, "anonymize"),
                  "custom_patterns are set but anonymize includes neither 'custom' nor 'all'")


SCHEMA = Record(
    {
        "anonymize": Array(
            String(one_of=ANONYMIZE, check=_detected), default=["all_and_credentials"],
            description="What to look for: email, phone, creditcard, bank (IBAN), ssn, ip, "
            "url (URLs with credentials), credentials (API keys, tokens, private keys), custom; "
            "all (every kind but credentials), all_and_credentials."),
        "custom_patterns": Array(
            Record({
                "name": String(required=True, match=r"^[A-Za-z][A-Za-z0-9_]{0,40}$",
                               match_message="a letter, then letters, digits or _ "
                               "(at most 41)", description="Names the placeholder."),
                "regex": String(required=True, check=_custom_regex,
                                description="What to find, in RE2 syntax (no look-arounds "
                                "or back-references)."),
                "score": Number(default=0.5, between=(0, 1),
                                description="Kong's confidence threshold for its service; "
                                "fastgw acts on every match."),
            }),
            len_max=20, description="Patterns of your own (anonymize 'custom')."),
        "redact_type": String(
            default="placeholder", one_of=("placeholder", "synthetic", "mask"),
            description="placeholder (<EMAIL_1>), synthetic (a made-up value of the same "
            "kind), or mask (all but the last characters hidden; cannot be restored)."),
        "mask_keep_last": Integer(default=4, between=(0, 64),
                                  description="mask: letters and digits left visible at the end."),
        "mask_char": String(default="*", len_max=1, description="mask: what hides the rest."),
        "recover_redacted": Boolean(
            default=True,
            description="Put the original values back where the model's answer repeats "
            "their replacements (placeholder and synthetic)."),
        "sanitization_mode": String(
            default="INPUT", one_of=("INPUT", "OUTPUT", "BOTH"),
            description="Sanitize the request (INPUT), the model's answer (OUTPUT), or both."),
        "block_if_detected": Boolean(
            default=False,
            description="Refuse a request holding anything found (400 naming the kinds and "
            "counts) instead of sanitizing it."),
        "allow_all_conversation_history": Boolean(
            default=True,
            description="Sanitize every message of the conversation; false: only the latest."),
        "skip_logging_sanitized_items": Boolean(
            default=False,
            description="Kong: leave the sanitized values out of the log. fastgw never logs "
            "them (only counts per kind), whatever this says."),
        "output_hold_chars": Integer(
            default=256, between=(16, 65536),
            description="OUTPUT and BOTH with a streamed answer: the characters held back so "
            "a value cut across events is checked whole."),
        "max_request_body_size": Integer(
            default=8 * 1024, between=(1, 2**31 - 1),
            description="Largest request body, in bytes, that is read and sanitized "
            "(larger: 413)."),
        "host": _kong_default(String, "host", "localhost"),
        "port": _kong_default(Number, "port", 8080),
        "scheme": _kong_default(String, "scheme", "http"),
        "timeout": _kong_default(Number, "timeout", 10000),
        "keepalive_timeout": _kong_default(Number, "keepalive_timeout", 60000),
        "stop_on_error": _kong_default(Boolean, "stop_on_error", True),
    },
    validator=_check,
    description="Find personal data and credentials in prompts (and answers), hide them from "
    "the model, and put them back in its answer.",
)
