"""Kong's on-the-fly migration of declarative documents written for Kong 1.x and 2.x.

Kong 3 reads ``_format_version`` "1.1" and "2.1" files and rewrites one thing
in them before validation: route paths. Before 3.0 a path was a regex when it
held any character outside ``[a-zA-Z0-9.-_~/%]``; from 3.0 on, a regex path
starts with ``~``. So an old path with such a character gets the ``~``, and
since 3.0 no longer percent-decodes paths, its percent-escapes are decoded once
here: an unreserved character becomes itself (escaped when it means something
in a regex), a reserved one stays escaped with upper-case hex. Paths of routes
at the top level and of routes nested in services are migrated; anything that
is not a list of strings is left for validation to report.

The document as written stays the config's ``source`` (its hash, what the
admin API shows); only what is validated is migrated.
"""

from __future__ import annotations

import re
from typing import Any

OLD_FORMAT_VERSIONS = ("1.1", "2.1")

# Every character of a path that was a plain prefix before 3.0.
_PLAIN_PATH = re.compile(r"[a-zA-Z0-9.\-_~/%]*")
_TRIPLET = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 reserved characters (and %): kept percent-encoded.
_RESERVED = frozenset(b"!#$%&'()*+,/:;=?@[]")
# Characters with a meaning in a regex that decoding would otherwise introduce.
_REGEX_META = frozenset(b".^-{}\\|")


def _decode_triplet(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    if code in _RESERVED:
        return match.group(0).upper()
    character = chr(code)
    return "\\" + character if code in _REGEX_META else character


def migrate_path(path: str) -> str:
    """A pre-3.0 route path in Kong 3's notation."""
    if _PLAIN_PATH.fullmatch(path) is not None:
        return path
    return "~" + _TRIPLET.sub(_decode_triplet, path)


def _migrated_routes(routes: Any) -> Any:
    if not isinstance(routes, list):
        return routes
    migrated = []
    for route in routes:
        if isinstance(route, dict) and isinstance(route.get("paths"), list):
            paths = [migrate_path(p) if isinstance(p, str) else p for p in route["paths"]]
            route = {**route, "paths": paths}
        migrated.append(route)
    return migrated


def migrated_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as Kong 3 validates it: the same object for a "3.0" document,
    else a copy with its route paths migrated (``doc`` is not changed)."""
    if doc.get("_format_version") not in OLD_FORMAT_VERSIONS:
        return doc
    migrated = dict(doc)
    if "routes" in doc:
        migrated["routes"] = _migrated_routes(doc["routes"])
    services = doc.get("services")
    if isinstance(services, list):
        migrated["services"] = [
            {**service, "routes": _migrated_routes(service.get("routes"))}
            if isinstance(service, dict) and "routes" in service else service
            for service in services
        ]
    return migrated
