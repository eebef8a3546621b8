"""Type stubs for fastgw._core.pii_checks: the checks ai-sanitizer's detectors run on
each match, compiled."""

CARD_LAYOUTS: frozenset[tuple[int, ...]]
VERSION_WORDS: frozenset[str]

def luhn_valid(digits: str) -> bool:
    """``digits`` (0-9 only) end with a valid Luhn check digit."""

def credit_card(value: str) -> bool:
    """A card number: grouped as cards are, of a brand's length, Luhn-valid."""

def bounded(text: str, start: int, end: int,
            bounds: tuple[str, bool, str, bool, bool]) -> bool:
    """The match ``text[start:end]`` stands alone (see pii_checks.pyx)."""
