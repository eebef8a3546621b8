"""Type stubs for fastgw._core.router (compiled from router.py with router.pxd)."""

from collections.abc import Callable, Iterable

from fastgw.config import model

class RouteMatch:
    """The route chosen for a request and the path to send upstream."""

    @property
    def route(self) -> model.Route: ...
    @property
    def service(self) -> model.Service | None: ...
    @property
    def payload(self) -> object: ...
    @property
    def upstream_path(self) -> bytes:
        """Path after the strip_path/service-path rules, then "?query" unchanged."""
    @property
    def uri_captures(self) -> dict[int | str, bytes | None] | None:
        """Groups of a regex path by number and name (0: the whole path), else None."""
    def __init__(
        self,
        route: model.Route,
        service: model.Service | None,
        payload: object,
        upstream_path: bytes,
    ) -> None: ...

def python_regex(pattern: str) -> str:
    """A Kong (PCRE) path regex in Python's dialect (named groups)."""

SNI_KEY: bytes

class MalformedTarget(ValueError):
    """The request-target cannot be routed as sent (a 400)."""

class Router:
    """Kong traditional-router matching over a fixed set of routes."""

    @property
    def header_names(self) -> frozenset[bytes]:
        """Lower-case names of the headers any route matches on."""
    def __init__(
        self,
        entries: Iterable[tuple[model.Route, model.Service | None, object]],
        pause: Callable[[], object] | None = None,
    ) -> None: ...
    def match(
        self,
        method: bytes,
        host: bytes | None,
        url: bytes,
        headers: dict[bytes, bytes] | None,
    ) -> RouteMatch | None: ...
