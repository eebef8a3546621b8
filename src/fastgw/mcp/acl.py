"""Who may list and call a tool, as Kong's ai-mcp-proxy decides it: a
tool's own ``acl`` replaces the ``default_acl`` (scope ``tools``); ``deny``
wins over ``allow``; an ``allow`` list admits only the subjects it names; no
ACL at all admits everyone. Subjects are the consumer (by the configured
identifier) and, with ``include_consumer_groups``, its groups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ACL:
    allow: frozenset[str] | None  # None: no allow list
    deny: frozenset[str]

    @classmethod
    def of(cls, entry: dict[str, Any] | None) -> ACL | None:
        if entry is None or (entry.get("allow") is None and not entry.get("deny")):
            return None
        allow = entry.get("allow")
        return cls(frozenset(allow) if allow is not None else None,
                   frozenset(entry.get("deny") or ()))

    def permits(self, subjects: Iterable[str]) -> bool:
        names = set(subjects)
        if names & self.deny:
            return False
        return self.allow is None or bool(names & self.allow)


def permits(acl: ACL | None, subjects: Iterable[str]) -> bool:
    return acl is None or acl.permits(subjects)
