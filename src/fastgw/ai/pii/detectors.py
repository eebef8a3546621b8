"""Personal data and credentials in text, found in one pass.

Every built-in detector is one alternative of a single compiled pattern
(``Detectors.pattern``), so a text is scanned once whatever the detectors;
a match is then checked the way its kind allows (a card's Luhn digit, an
IBAN's mod-97, an SSN's reserved areas, an IP's octets, a key's shape),
which is what turns look-alikes (order numbers, versions, dates, hashes)
away. Custom patterns (``custom_patterns``) are alternatives of the same
pattern, after the built-in ones.

Each detector has a ``kind``: the anonymize category of Kong's ai-sanitizer
it belongs to (email, phone, creditcard, bank, ssn, ip, url, credentials,
custom). Precision and recall per detector on the labelled set shipped under
``tests/ai/data/pii_*.jsonl`` are printed by ``python -m fastgw.ai.pii.measure``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import re2
from re2 import _re2

from fastgw._core.pii_checks import bounded, credit_card

# Kong's anonymize categories that fastgw detects, and what each holds.
KINDS = {
    "email": ("email",),
    "phone": ("phone",),
    "creditcard": ("credit_card",),
    "bank": ("iban",),
    "ssn": ("ssn",),
    "ip": ("ipv4", "ipv6"),
    "url": ("url_credentials",),
    "credentials": ("openai_key", "anthropic_key", "aws_access_key", "github_token", "jwt",
                    "private_key", "bearer_token"),
}
# "all" is every kind of personal data; "all_and_credentials" adds keys.
ALL = ("email", "phone", "creditcard", "bank", "ssn", "ip", "url")
# Kong's categories that need a language model or a country's rules fastgw
# does not have: refused by the config check, never ignored.
NOT_DETECTED = ("crypto", "date", "domain", "driverlicense", "general", "medical", "nationalid",
                "nrp", "passport")

# The patterns are RE2's (google-re2): one automaton for all of them scans a
# 2 KB prompt in a few microseconds, where Python's re, trying each
# alternative at each position, takes most of a millisecond. RE2 has no
# look-behind, look-ahead or back-references: what a pattern cannot say
# about its neighbours or its own separators, its check does
# (``_Detector.not_before``, ``not_after``, ``check``).
#
# The order matters where two could match at the same place (the earlier
# wins): URLs with credentials before e-mail addresses, Anthropic keys before
# OpenAI's, cards before phones.
_PATTERNS = {
    "private_key": (r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s:,\-]+?"
                    r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "url_credentials": (r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s:/@?#]{1,128}:[^\s/@?#]{1,256}"
                        r"@[A-Za-z0-9\-.\[\]:]+"),
    "email": (r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
              r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"),
    "anthropic_key": r"\bsk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{32,}",
    "openai_key": r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    "aws_access_key": r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b",
    "jwt": r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,}",
    "bearer_token": r"\b[Bb]earer[ \t]+[A-Za-z0-9\-._~+/]{16,}=*",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    "credit_card": r"\d{4}(?:[ \-]?\d{4}){2,3}(?:[ \-]?\d{1,3})?|\d{4}[ \-]?\d{6}[ \-]?\d{4,5}",
    "ssn": r"\d{3}[ \-]\d{2}[ \-]\d{4}",
    "ipv4": r"(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?",
    "ipv6": (r"(?:(?:[0-9A-Fa-f]{1,4}:){1,7}:?|::)(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?"
             r"(?:(?:\d{1,3}\.){3}\d{1,3})?(?:/\d{1,3})?"),
    "phone": (r"(?:\+|00)\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,5}(?:[ .\-]\d{1,8}){1,5}"
              r"|\+\d{8,14}|\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}|\d{3}[.\- ]\d{3}[.\- ]\d{4}"),
}
# What may not stand right before or right after a match (what the patterns'
# look-arounds would have said): the characters, and (_WORD_*) letters, digits and _.
_NOT_BEFORE = {
    "email": "._%+-/", "credit_card": "-.", "ssn": "-.", "ipv4": ".", "ipv6": ":.",
    "phone": "+-.",
}
_WORD_BEFORE = {"email", "credit_card", "ssn", "ipv4", "ipv6", "phone"}
_NOT_AFTER = {"credit_card": "", "ssn": "", "ipv4": "", "ipv6": ":", "phone": ""}
_WORD_AFTER = {"credit_card", "ssn", "ipv4", "ipv6", "phone"}
# IBAN lengths per country (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26,
    "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _separators(value: str) -> set[str]:
    return {char for char in value if not char.isdigit()}


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def _ssn(value: str) -> bool:
    if len(_separators(value)) != 1:
        return False
    digits = _digits(value)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (area not in ("000", "666") and area[0] != "9" and group != "00"
            and serial != "0000")


def _ipv4(value: str) -> bool:
    address = value.split("/")[0]
    for octet in address.split("."):
        if int(octet) > 255 or (len(octet) > 1 and octet[0] == "0"):
            return False
    return True


def _ipv6(value: str) -> bool:
    address = value.split("/")[0]
    if address == "::1":
        return True
    if not any(char.isdigit() for char in address) or address.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _phone(value: str) -> bool:
    digits = _digits(value)
    if value.startswith("00"):
        digits = digits[2:]
    if value[0].isdigit() and not value.startswith("00") and len(_separators(value)) != 1:
        return False  # 555-123-4567, 555.123.4567, 555 123 4567: one separator
    return 7 <= len(digits) <= 15


def _mixed(token: str) -> bool:
    return (any(c.isdigit() for c in token) and any(c.isupper() for c in token)
            and any(c.islower() for c in token))


def _openai_key(value: str) -> bool:
    return len(value) >= 35 and _mixed(value[3:])


def _bearer(value: str) -> bool:
    token = value.split()[-1]
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _jwt(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return decoded.startswith(b"{") and b'"alg"' in decoded


_CHECKS: dict[str, Callable[[str], bool]] = {
    "credit_card": credit_card,
    "iban": iban_valid,
    "ssn": _ssn,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "phone": _phone,
    "openai_key": _openai_key,
    "bearer_token": _bearer,
    "jwt": _jwt,
}
DETECTORS = tuple(_PATTERNS)


class Finding(NamedTuple):
    detector: str  # a built-in detector's name, or a custom pattern's
    kind: str  # its anonymize category
    start: int
    end: int
    value: str


_new_tuple = tuple.__new__


class CustomPattern(NamedTuple):
    name: str
    regex: str
    score: float = 0.5


def _bounds(name: str) -> tuple[str, bool, str, bool, bool]:
    """What ``bounded`` asks of the neighbours of a built-in detector's matches."""
    return (_NOT_BEFORE.get(name, ""), name in _WORD_BEFORE, _NOT_AFTER.get(name, ""),
            name in _WORD_AFTER, name == "ipv4")


def re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = 64 << 20  # the combined automaton of every detector fits
    options.log_errors = False  # a bad custom pattern is reported by the config check
    return options


def _compiled(regex: str) -> Any:
    """RE2's own object: ``Match`` on UTF-8 bytes gives byte spans, without
    the Python wrapper's work per match (a span for every group, mapped back
    to characters), which costs more than the scan itself."""
    compiled = _re2.RE2(regex.encode(), re2_options())
    if not compiled.ok():
        raise re2.error(compiled.error())
    return compiled


def re2_error(regex: str) -> str | None:
    """Why RE2 cannot compile ``regex`` (a custom pattern), or None."""
    try:
        _compiled(regex)
    except re2.error as exc:
        return str(exc) or "not a pattern RE2 can run (look-arounds and back-references " \
            "are not supported)"
    return None


class Detectors:
    """The chosen detectors, compiled into one pattern.

    The scan is one RE2 search over the text for the leftmost match of any
    detector (the alternatives of a pattern without groups: RE2's DFA alone);
    which detector it was is asked of an RE2 set of the detectors' own
    patterns, matched against the match's bytes: the first in order that
    spans them is the alternative the scan chose (an earlier one that
    matched there at all would have been chosen instead).
    """

    __slots__ = ("scan", "which", "alternatives")

    def __init__(self, detectors: Iterable[str], custom: Iterable[CustomPattern] = ()) -> None:
        alternatives: list[tuple[str, str, str]] = []  # (detector, kind, regex)
        kind_of = {name: kind for kind, names in KINDS.items() for name in names}
        chosen = set(detectors)
        for name, regex in _PATTERNS.items():
            if name in chosen:
                alternatives.append((name, kind_of[name], regex))
        for pattern in custom:
            alternatives.append((pattern.name, "custom", pattern.regex))
        # (detector, kind, its neighbours' check, its own check) per alternative.
        self.alternatives: list[tuple[str, str, Any, Any]] = [
            (name, kind, None, None) if kind == "custom" else
            (name, kind, _bounds(name), _CHECKS.get(name))
            for name, kind, _ in alternatives]
        self.scan = _compiled("|".join(f"(?:{regex})" for _, _, regex in alternatives)) \
            if alternatives else None
        # Which alternatives span a match exactly, all asked in one call.
        self.which = _re2.Set(_ANCHOR_BOTH, re2_options())
        for _, _, regex in alternatives:
            self.which.Add(regex.encode())
        self.which.Compile()

    def find(self, text: str) -> Iterator[Finding]:
        scan = self.scan
        if scan is None or not text:
            return
        ascii_only = text.isascii()
        data = text.encode() if not ascii_only else text.encode("ascii")
        size = len(data)
        position = 0
        while position <= size:
            spans = scan.Match(_UNANCHORED, data, position, size)
            start, end = spans[0]
            if start < 0:
                return
            position = end if end > start else end + 1
            if end == start:
                continue
            spanning = self.which.Match(data[start:end])
            if not spanning:
                continue  # only in the text's context (a \b at its edge): let it be
            detector, kind, bounds, check = self.alternatives[min(spanning)]
            if ascii_only:
                char_start, char_end = start, end
            else:
                char_start = len(data[:start].decode("utf-8", "ignore"))
                char_end = char_start + len(data[start:end].decode("utf-8", "ignore"))
            value = text[char_start:char_end]
            if bounds is not None and not bounded(text, char_start, char_end, bounds):
                continue
            if check is not None and not check(value):
                continue
            # PERF: the tuple made directly (Finding's own __new__ is a Python call).
            yield _new_tuple(Finding, (detector, kind, char_start, char_end, value))


def detectors_for(anonymize: Iterable[str]) -> tuple[str, ...]:
    """The built-in detectors an ``anonymize`` list asks for."""
    kinds: set[str] = set()
    for name in anonymize:
        if name == "all":
            kinds.update(ALL)
        elif name == "all_and_credentials":
            kinds.update(ALL)
            kinds.add("credentials")
        elif name in KINDS:
            kinds.add(name)
    return tuple(name for kind in KINDS if kind in kinds for name in KINDS[kind])
