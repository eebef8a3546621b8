"""What a found value is replaced with, and how it comes back.

A ``Redaction`` lives for one request: it replaces each value its detectors
find (the same value, the same replacement, wherever it occurs), keeps the
mapping, and restores the originals in the model's answer, whole
(``restore``) or as a stream (``StreamRestorer``: a replacement cut across
two events is held back until it is whole). The mapping never leaves the
request: nothing here logs, and ``counts`` (per detector) is all a log line
gets.

Replacements (``redact_type``):
- ``placeholder``: ``<EMAIL_1>``, ``<CREDIT_CARD_2>``; unmistakable for the
  model, and for the restore.
- ``synthetic``: a made-up value of the same kind and shape (a documentation
  address, a test card that passes Luhn, an IBAN with a valid checksum, a
  key with the same prefix and length), for prompts whose meaning needs a
  real-looking value.
- ``mask``: all but the last ``keep_last`` letters and digits replaced by
  ``mask_char`` (``**** **** **** 1111``); one-way, nothing to restore.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from fastgw._core.pii_checks import luhn_valid
from fastgw.ai.pii.detectors import Detectors, Finding

PLACEHOLDER = "placeholder"
# What every placeholder looks like: <EMAIL_1>, <CREDIT_CARD_12>, <EMPLOYEE_ID_3>.
_PLACEHOLDERS = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9]+>")
SYNTHETIC = "synthetic"
MASK = "mask"


class RedactionPolicy:
    """A plugin's choice of detectors and replacement, shared by its requests."""

    __slots__ = ("detectors", "redact_type", "keep_last", "mask_char")

    def __init__(self, detectors: Detectors, redact_type: str = PLACEHOLDER,
                 keep_last: int = 4, mask_char: str = "*") -> None:
        self.detectors = detectors
        self.redact_type = redact_type
        self.keep_last = keep_last
        self.mask_char = mask_char

    def findings(self, text: str) -> list[Finding]:
        return list(self.detectors.find(text))


class Redaction:
    """One request's replacements and the originals they stand for."""

    __slots__ = ("policy", "originals", "replacements", "counts", "numbered", "_pattern",
                 "after", "keep", "restored")

    def __init__(self, policy: RedactionPolicy, after: Redaction | None = None) -> None:
        """``after``: another redaction of the same request (the prompt's, for
        the answer's): replacements are numbered after its own, and values
        that are its replacements are left as they are (they are restored)."""
        self.policy = policy
        self.after = after
        self.keep: dict[str, str] = after.originals if after is not None else {}
        self.restored = 0  # replacements put back by restore
        self.originals: dict[str, str] = {}  # replacement -> original
        self.replacements: dict[str, str] = {}  # original -> replacement
        self.counts: dict[str, int] = {}  # detector -> values replaced
        self.numbered: dict[str, int] = {}  # detector -> values given a replacement
        self._pattern: re.Pattern[str] | None = None

    def redact(self, text: str, findings: list[Finding] | None = None) -> str:
        """``text`` with every value found (or every one of ``findings``) replaced."""
        if findings is None:
            findings = self.policy.findings(text)
        if not findings:
            return text
        pieces = []
        position = 0
        keep = self.keep
        for finding in findings:
            if finding.value in keep:
                continue
            pieces.append(text[position:finding.start])
            pieces.append(self._replacement(finding))
            position = finding.end
            self.counts[finding.detector] = self.counts.get(finding.detector, 0) + 1
        pieces.append(text[position:])
        return "".join(pieces)

    def _replacement(self, finding: Finding) -> str:
        value = finding.value
        known = self.replacements.get(value)
        if known is not None:
            return known
        policy = self.policy
        if policy.redact_type == MASK:
            return mask(value, policy.keep_last, policy.mask_char)
        number = self._numbered(finding.detector) + 1
        if policy.redact_type == SYNTHETIC:
            replacement = synthetic(finding.detector, value, number)
        else:
            replacement = f"<{finding.detector.upper()}_{number}>"
        while replacement in self.originals or replacement in self.keep:
            number += 1000
            replacement = synthetic(finding.detector, value, number) \
                if policy.redact_type == SYNTHETIC else f"<{finding.detector.upper()}_{number}>"
        self.replacements[value] = replacement
        self.originals[replacement] = value
        self.numbered[finding.detector] = self.numbered.get(finding.detector, 0) + 1
        self._pattern = None
        return replacement

    def _numbered(self, detector: str) -> int:
        """How many values of ``detector`` this redaction (and the one it
        follows) replaced."""
        count = self.numbered.get(detector, 0)
        return count + (self.after._numbered(detector) if self.after is not None else 0)

    # -- restore ----------------------------------------------------------------

    @property
    def restorable(self) -> bool:
        return bool(self.originals)

    def _restore_pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            if self.policy.redact_type == PLACEHOLDER:
                # PERF: every placeholder has one shape; no pattern per request.
                self._pattern = _PLACEHOLDERS
            else:
                # Longest first, so a replacement that begins another never cuts it.
                alternatives = sorted(self.originals, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives)))
        return self._pattern

    def restore(self, text: str, escape: Callable[[str], str] | None = None) -> str:
        """``text`` with the originals back; ``escape`` writes each original
        where it goes (a JSON string's contents, for tool-call arguments)."""
        if not self.originals or not text:
            return text
        if self.policy.redact_type == PLACEHOLDER and "<" not in text:
            return text
        originals = self.originals
        write: Callable[[str], str] = escape or str

        def original(match: re.Match[str]) -> str:
            found = match.group()
            value = originals.get(found)
            if value is None:
                return found  # shaped like a placeholder, but not one of ours
            self.restored += 1
            return write(value)

        return self._restore_pattern().sub(original, text)

    def hide(self, text: str) -> str:
        """``text`` with the originals this redaction knows replaced again
        (what a log may show of an answer whose replacements were restored)."""
        if not self.replacements or not text:
            return text
        replacements = self.replacements
        pattern = re.compile("|".join(map(re.escape, sorted(replacements, key=len,
                                                                 reverse=True))))
        return pattern.sub(lambda m: replacements[m.group()], text)

    def last_end(self, text: str) -> int:
        """Where the last whole replacement in ``text`` ends (0: none)."""
        end = 0
        for match in self._restore_pattern().finditer(text):
            if match.group() in self.originals:
                end = match.end()
        return end

    def restorer(self, escape: Callable[[str], str] | None = None) -> StreamRestorer:
        return StreamRestorer(self, escape)


class StreamRestorer:
    """Restores the text of one stream field (a choice's content, a tool
    call's arguments) as it arrives in pieces."""

    __slots__ = ("redaction", "escape", "held")

    def __init__(self, redaction: Redaction, escape: Callable[[str], str] | None) -> None:
        self.redaction = redaction
        self.escape = escape
        self.held = ""

    def feed(self, piece: str) -> str:
        text = self.held + piece
        keep = _pending_prefix(text, self.redaction.originals)
        if keep:
            # Never hold back part of a replacement that is whole already.
            whole = self.redaction.last_end(text)
            keep = min(keep, len(text) - whole)
        self.held = text[len(text) - keep:] if keep else ""
        ready = text[:len(text) - keep] if keep else text
        return self.redaction.restore(ready, self.escape)

    def flush(self) -> str:
        text, self.held = self.held, ""
        return self.redaction.restore(text, self.escape)


class StreamRedactor:
    """Redacts the text of one stream field as it arrives: the last ``hold``
    characters (and any value that reaches into them) wait for the next
    piece, so a value cut across events is found whole."""

    __slots__ = ("redaction", "hold", "held")

    def __init__(self, redaction: Redaction, hold: int) -> None:
        self.redaction = redaction
        self.hold = hold
        self.held = ""

    def feed(self, piece: str) -> str:
        text = self.held + piece
        cut = len(text) - self.hold
        if cut <= 0:
            self.held = text
            return ""
        findings = self.redaction.policy.findings(text)
        for finding in findings:
            if finding.start < cut < finding.end:
                cut = finding.start
        self.held = text[cut:]
        return self.redaction.redact(text[:cut], [f for f in findings if f.end <= cut])

    def flush(self) -> str:
        text, self.held = self.held, ""
        return self.redaction.redact(text) if text else ""


def _pending_prefix(text: str, replacements: Iterable[str]) -> int:
    """The length of the longest end of ``text`` that begins a replacement
    (and is not one whole): what may be completed by the next piece."""
    longest = 0
    for replacement in replacements:
        upto = min(len(replacement) - 1, len(text))
        for size in range(upto, longest, -1):
            if replacement.startswith(text[len(text) - size:]):
                longest = size
                break
    return longest


# -- made-up values ------------------------------------------------------------------


def mask(value: str, keep_last: int, mask_char: str) -> str:
    kept = 0
    out = []
    for char in reversed(value):
        if char.isalnum():
            if kept < keep_last:
                kept += 1
                out.append(char)
            else:
                out.append(mask_char)
        else:
            out.append(char)
    return "".join(reversed(out))


def _fill_digits(value: str, digits: str, skip: int = 0) -> str:
    """``value`` with its digits (after the first ``skip``) taken from ``digits``."""
    out, index, seen = [], 0, 0
    for char in value:
        if char.isdigit():
            seen += 1
            if seen > skip:
                out.append(digits[index % len(digits)])
                index += 1
                continue
        out.append(char)
    return "".join(out)


def _card(value: str, number: int) -> str:
    count = sum(c.isdigit() for c in value)
    body = ("4" + str(number).zfill(count - 2))[-(count - 1):]
    body = "4" + body[1:]
    for check in "0123456789":
        if luhn_valid(body + check):
            return _fill_digits(value, body + check)
    return _fill_digits(value, body + "0")  # unreachable: one digit always passes


def _iban(value: str, number: int) -> str:
    compact = value.replace(" ", "")
    country, bban = compact[:2], compact[4:]
    filler = str(number).zfill(len(bban))
    bban = "".join("X" if c.isalpha() else filler[i] for i, c in enumerate(bban))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    made = f"{country}{check:02d}{bban}"
    if " " in value:
        made = " ".join(made[i:i + 4] for i in range(0, len(made), 4))
    return made


def _keep_prefix(value: str, prefix_end: int, number: int) -> str:
    filler = (f"EXAMPLE{number}" + "x" * len(value))
    return value[:prefix_end] + filler[:len(value) - prefix_end]


def _key_prefix(value: str) -> int:
    for prefix in ("sk-ant-", "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-", "github_pat_"):
        if value.startswith(prefix):
            return len(prefix)
    if value[:3] in ("ghp", "gho", "ghu", "ghs", "ghr") and value[3:4] == "_":
        return 4
    return 4 if value[:4] in ("AKIA", "ASIA", "ABIA", "ACCA") else 0


def synthetic(detector: str, value: str, number: int) -> str:
    """A made-up value of ``detector``'s kind, shaped like ``value``."""
    if detector == "email":
        return f"user{number}@example.com"
    if detector == "phone":
        skip = 1 if value.startswith("+1") else 2 if value.startswith("+") else 0
        return _fill_digits(value, "555" + str(number).zfill(4) + "0123456789", skip)
    if detector == "credit_card":
        return _card(value, number)
    if detector == "iban":
        return _iban(value, number)
    if detector == "ssn":
        # Area 9xx is never issued as an SSN.
        return _fill_digits(value, f"9{number % 100:02d}" + "00" + str(number).zfill(4)[-4:])
    if detector == "ipv4":
        return f"192.0.2.{number}" if number < 255 else f"198.51.100.{number % 254 + 1}"
    if detector == "ipv6":
        return f"2001:db8::{number:x}"
    if detector == "url_credentials":
        scheme, _, rest = value.partition("://")
        host = rest.rpartition("@")[2]
        return f"{scheme}://user{number}:password{number}@{host}"
    if detector == "private_key":
        first, _, rest = value.partition("\n")
        last = rest.rpartition("\n")[2]
        return f"{first}\nEXAMPLE{number}\n{last}"
    if detector == "jwt":
        return ("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                f"eyJzdWIiOiJ1c2VyIn0.EXAMPLE{number}xxxxxxxxxxxxxxxx")
    if detector == "bearer_token":
        word, _, token = value.partition(" ")
        return f"{word} " + _keep_prefix(token.strip(), 0, number)
    if detector in ("openai_key", "anthropic_key", "aws_access_key", "github_token"):
        made = _keep_prefix(value, _key_prefix(value), number)
        return made.upper() if detector == "aws_access_key" else made
    # A custom pattern's value: same shape, other characters.
    filler = str(number).zfill(len(value))
    return "".join(filler[i] if c.isdigit() else "X" if c.isalpha() else c
                   for i, c in enumerate(value))
