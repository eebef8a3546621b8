"""Parsing of the response and request headers proxy-cache decides with:
Cache-Control directives, media types and Expires."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

# RFC 9110 5.6.2: the characters of a token.
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*(?:;(.*))?", re.DOTALL)

MediaType = tuple[str, str, dict[str, str]]


def parse_directives(values: list[str]) -> dict[str, int | str | bool]:
    """Cache-Control directives (every header line) by lower-case name.

    As Kong does: a numeric argument becomes an int, another argument stays
    text, a directive without argument is True.
    """
    directives: dict[str, int | str | bool] = {}
    for value in values:
        for item in value.split(","):
            name, equals, argument = item.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            if not equals:
                directives[name] = True
                continue
            argument = argument.strip().strip('"')
            directives[name] = int(argument) if argument.isdigit() else argument
    return directives


def number(directives: dict[str, int | str | bool], name: str) -> int | None:
    """A directive's numeric argument, or None (absent or not a number)."""
    value = directives.get(name)
    return value if type(value) is int else None


def parse_media_type(text: str) -> MediaType | None:
    """``type/subtype; name=value`` as (type, subtype, parameters), with the
    names case-folded (RFC 9110 8.3.1), or None when it is not a media type."""
    match = _MEDIA_TYPE.fullmatch(text)
    if match is None:
        return None
    kind, subtype, rest = match.groups()
    parameters = {}
    for item in (rest or "").split(";"):
        name, equals, value = item.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        value = value.strip().strip('"')
        # charset values are case-insensitive too (RFC 9110 8.3.2).
        parameters[name] = value.lower() if name == "charset" else value
    return kind.lower(), subtype.lower(), parameters


def media_type_matches(actual: MediaType, wanted: MediaType) -> bool:
    """Kong's content_type rule: the type and subtype match (``*`` matches
    anything) and the parameters are exactly the same."""
    kind, subtype, parameters = wanted
    return ((kind == "*" or kind == actual[0]) and (subtype == "*" or subtype == actual[1])
            and parameters == actual[2])


def resource_ttl(directives: dict[str, int | str | bool], expires: str | None,
                 now: float) -> float:
    """Seconds a response may be served (RFC 9111 4.2.1 for a shared cache):
    s-maxage, else max-age, else Expires minus now; never negative."""
    max_age = number(directives, "s-maxage")
    if max_age is None:
        max_age = number(directives, "max-age")
    if max_age is not None:
        return float(max_age)
    if expires:
        try:
            return max(parsedate_to_datetime(expires).timestamp() - now, 0.0)
        except (TypeError, ValueError):
            # RFC 9111 5.3: an invalid Expires means "already expired".
            return 0.0
    return 0.0
