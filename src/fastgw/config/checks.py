"""Value checks shared by the config entities and the plugins' schemas: each
returns an error message or None. Plugins import them from here, the public
face of the config layer's checks (``entities`` is its own business).
"""

from __future__ import annotations

import functools
import ipaddress
import re

from fastgw._core.router import python_regex

_HOSTNAME_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")
_PORT_SUFFIX = re.compile(r":(\d{1,5})$")
_PATH_FORBIDDEN = re.compile(r"[\s?#]")

JWT_ALGORITHMS = (
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "ES256", "ES384", "ES512",
    "PS256", "PS384", "PS512",
    "EdDSA",
)  # fmt: skip


def is_hostname(text: str) -> bool:
    """Kong's host names: letters, digits, '-' and '_' in each label, no
    label empty or ending in '-', a final '.' allowed. Like Kong, no length
    bound: DNS's 63 and 253 only matter to names resolved through DNS."""
    if _HOSTNAME_CHARACTERS.fullmatch(text) is None:
        return False
    labels = (text[:-1] if text.endswith(".") else text).split(".")
    return all(label and not label.endswith("-") for label in labels)


def is_hostname_or_ip(text: str) -> bool:
    if is_hostname(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def split_host_port(text: str) -> tuple[str, int | None] | None:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host without
    brackets, port or None); None when malformed. A bare IPv6 address (several
    colons, no brackets) is a host without port."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if not rest:
            return host, None
        match = _PORT_SUFFIX.fullmatch(rest)
        return (host, int(match.group(1))) if match else None
    if text.count(":") > 1:
        return text, None
    match = _PORT_SUFFIX.search(text)
    if match is not None:
        return text[: match.start()], int(match.group(1))
    if ":" in text:
        return None
    return text, None


def _check_port(port: int | None) -> str | None:
    if port is not None and port > 65535:
        return f"invalid port {port}: must be between 0 and 65535"
    return None


def check_host(value: str) -> str | None:
    if not is_hostname_or_ip(value):
        return f"invalid host '{value}': expected a host name or an IP address (no port)"
    return None


def check_target(value: str) -> str | None:
    parsed = split_host_port(value)
    if parsed is None or not is_hostname_or_ip(parsed[0]):
        return f"invalid target '{value}': expected 'host:port' or 'host'"
    return _check_port(parsed[1])


def check_listen(value: str) -> str | None:
    parsed = split_host_port(value)
    if parsed is None or parsed[1] is None:
        return f"invalid address '{value}': expected 'host:port'"
    host, port = parsed
    if host not in ("", "*") and not is_hostname_or_ip(host):
        return f"invalid address '{value}': expected 'host:port'"
    return _check_port(port)


def check_route_host(value: str) -> str | None:
    """Kong's route host: a name or IP with an optional port, and at most one
    ``*`` standing for the leftmost or the rightmost label."""
    parsed = split_host_port(value)
    if parsed is None:
        return f"invalid host '{value}'"
    host, port = parsed
    wildcards = host.count("*")
    if wildcards > 1:
        return "invalid wildcard: must have at most one wildcard"
    if wildcards == 1:
        if host.startswith("*."):
            host = host[2:]
        elif host.endswith(".*"):
            host = host[:-2]
        else:
            return "invalid wildcard: must be placed at leftmost or rightmost label"
    if not is_hostname_or_ip(host):
        return f"invalid host '{value}'"
    return _check_port(port)


@functools.lru_cache(maxsize=4096)
def _regex_error(pattern: str) -> str | None:
    # PERF: compiling costs ~50 us per pattern; a reload of an unchanged
    # config finds every pattern here.
    try:
        re.compile(python_regex(pattern))
    except re.error as exc:
        return f"invalid regex '{pattern}': {exc}"
    return None


def check_path(value: str) -> str | None:
    if not value.startswith("/"):
        return "should start with: /"
    if _PATH_FORBIDDEN.search(value) is not None:
        return "must not contain whitespace, '?' or '#'"
    return None




def listen_address(listen: str, default_port: int) -> tuple[str, int]:
    """A checked ``listen``-style setting as (host, port) to bind; an empty
    host is every interface."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        return listen, default_port
    return host.strip("[]") or "0.0.0.0", int(port)
