"""``cors``: answer preflight requests and add CORS headers to responses.

Follows Kong's cors handler:

* A preflight request (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) is answered 200 by the plugin with the
  allow headers, unless ``preflight_continue`` sends it upstream; either way
  ``header_filter`` leaves its response alone.
* Other responses (upstream answers and other plugins' ``ctx.exit`` answers)
  get ``Access-Control-Allow-Origin``, ``-Allow-Credentials`` and
  ``-Expose-Headers``.
* Origin choice: no origins or only ``*`` allow everyone (``*``); a single
  exact origin is sent as configured whatever the request says; otherwise the
  request's origin is echoed when an entry matches it (an exact entry by its
  normalised ``scheme://host[:port]``, a regex entry against the whole origin
  when it contains ``:``, else against the host), and an upstream's
  ``Access-Control-Allow-Origin`` is removed when none does. Every answer
  that depends on the request's origin carries ``Vary: Origin``.

Deviations: regex entries must match the whole subject (Kong anchors only the
start, and appends ``$`` when missing, so the two differ only for unanchored
alternations); an empty ``methods`` list allows every method instead of
sending an empty header.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from fastgw.plugins.base import Plugin
from fastgw.plugins.cors.schema import ALL_METHODS

if TYPE_CHECKING:
    from fastgw.plugins.context import HeaderList, RequestContext
    from fastgw.plugins.state import ConfigState

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_PRIVATE_NETWORK = "Access-Control-Allow-Private-Network"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
MAX_AGE = "Access-Control-Max-Age"

# An origin entry made only of these characters is an exact origin, anything
# else is a regex (Kong's rule).
_LITERAL_ORIGIN = re.compile(r"[A-Za-z0-9.:/-]+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PREFLIGHT = "preflight"


@functools.lru_cache(maxsize=10000)
def normalize_origin(origin: str) -> tuple[str, str]:
    """``(scheme://host[:port], host)`` with the scheme's default port left
    out; ``(origin, origin)`` when it is not a URL. PERF: cached, as browsers
    send the same few origins over and over."""
    scheme, separator, rest = origin.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if not separator or not authority:
        return origin, origin
    if authority.startswith("["):  # [IPv6]:port
        host, _, port = authority.partition("]")
        host += "]"
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if port == _DEFAULT_PORTS.get(scheme.lower()):
        port = ""
    domain = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    return domain, host


class OriginRule:
    """One configured origin: an exact origin or a regex."""

    __slots__ = ("by_host", "domain", "pattern")

    def __init__(self, entry: str) -> None:
        self.by_host = ":" not in entry
        self.domain: str | None
        if _LITERAL_ORIGIN.fullmatch(entry):
            self.pattern = None
            self.domain = normalize_origin(entry)[0]
        else:
            self.pattern = re.compile(entry.removeprefix("^").removesuffix("$"))
            self.domain = None

    def matches(self, domain: str, host: str) -> bool:
        if self.pattern is None:
            return domain == self.domain
        return self.pattern.fullmatch(host if self.by_host else domain) is not None


class ExitHeaders(dict):
    """The headers of the plugin's own preflight answer, with the write
    methods of ``HeaderList`` so that one code path fills either."""

    def set(self, name: str, value: str) -> None:
        self[name] = value

    add = set

    def remove(self, name: str) -> None:
        self.pop(name, None)


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class CorsHandler(Plugin):
    name = "cors"
    PRIORITY = 2000

    __slots__ = ("allow_credentials", "allow_headers", "allow_methods", "allow_origin_absent",
                 "any_origin", "expose_headers", "fixed_origin", "max_age", "preflight_continue",
                 "private_network", "rules", "star_listed")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        origins: list[str] = config["origins"]
        self.any_origin = not origins or origins == ["*"]
        single = origins[0] if len(origins) == 1 else None
        self.fixed_origin = single if single and _LITERAL_ORIGIN.fullmatch(single) else None
        self.star_listed = "*" in origins
        self.rules = tuple(OriginRule(entry) for entry in origins if entry != "*")
        self.allow_credentials: bool = config["credentials"]
        self.allow_headers = ",".join(config["headers"]) or None
        self.expose_headers = ",".join(config["exposed_headers"]) or None
        self.allow_methods = ",".join(config["methods"] or ALL_METHODS)
        max_age = config["max_age"]
        self.max_age = _format_seconds(max_age) if max_age is not None else None
        self.private_network: bool = config["private_network"]
        self.preflight_continue: bool = config["preflight_continue"]
        self.allow_origin_absent: bool = config["allow_origin_absent"]

    # -- phases -----------------------------------------------------------------

    def access(self, ctx: RequestContext) -> None:
        request = ctx.request
        if request.method != "OPTIONS":
            return
        headers = request.headers
        origin = headers.get("origin")
        if origin is None or headers.get("access-control-request-method") is None:
            return
        # The preflight's response is either ours, complete, or the upstream's.
        ctx.plugin_state(self)[_PREFLIGHT] = True
        if self.preflight_continue:
            return
        answer = ExitHeaders()
        self._set_origin_headers(answer, origin)
        if self.allow_headers is not None:
            answer.set(ALLOW_HEADERS, self.allow_headers)
        else:
            requested = headers.get("access-control-request-headers")
            if requested is not None:
                answer.set(ALLOW_HEADERS, requested)
        answer.set(ALLOW_METHODS, self.allow_methods)
        if self.max_age is not None:
            answer.set(MAX_AGE, self.max_age)
        if self.private_network and \
                headers.get("access-control-request-private-network") == "true":
            answer.set(ALLOW_PRIVATE_NETWORK, "true")
        ctx.exit(200, None, answer)

    def header_filter(self, ctx: RequestContext) -> None:
        if ctx.plugin_state(self).get(_PREFLIGHT):
            return
        origin = ctx.request.headers.get("origin")
        if origin is None and not self.allow_origin_absent:
            return
        assert ctx.response is not None  # header_filter runs once the response exists
        headers = ctx.response.headers
        self._set_origin_headers(headers, origin)
        if self.expose_headers is not None:
            headers.set(EXPOSE_HEADERS, self.expose_headers)

    # -- helpers ------------------------------------------------------------------

    def _set_origin_headers(self, headers: HeaderList | ExitHeaders, origin: str | None) -> None:
        allow_all = self._set_allow_origin(headers, origin)
        if not self.allow_credentials:
            return
        if not allow_all:
            headers.set(ALLOW_CREDENTIALS, "true")
        elif origin is not None:
            # Browsers refuse credentials with "*": name the caller instead.
            headers.add("Vary", "Origin")
            headers.set(ALLOW_ORIGIN, origin)
            headers.set(ALLOW_CREDENTIALS, "true")

    def _set_allow_origin(self, headers: HeaderList | ExitHeaders, origin: str | None) -> bool:
        """Set Access-Control-Allow-Origin; True when every origin is allowed."""
        if self.any_origin:
            headers.set(ALLOW_ORIGIN, "*")
            return True
        # Always, so that caches key the answer on the origin.
        headers.add("Vary", "Origin")
        if self.fixed_origin is not None:
            headers.set(ALLOW_ORIGIN, self.fixed_origin)
            return False
        if origin is not None:
            if self.star_listed:
                headers.set(ALLOW_ORIGIN, "*")
                return True
            domain, host = normalize_origin(origin)
            for rule in self.rules:
                if rule.matches(domain, host):
                    headers.set(ALLOW_ORIGIN, domain)
                    return False
        headers.remove(ALLOW_ORIGIN)
        return False


HANDLER = CorsHandler
