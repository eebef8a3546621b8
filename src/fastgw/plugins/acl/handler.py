"""acl: let a request through only when its consumer's groups pass the
``allow`` or ``deny`` list.

Whose groups, as in Kong: the groups an auth plugin authenticated
(``ctx.authenticated_groups``) when there is no consumer, when the consumer is
anonymous, or always with ``always_use_authenticated_groups``; else the
consumer's own ``acls``. No consumer and no authenticated groups answers 401;
groups that do not pass answer 403 ``You cannot consume this service``.
Passing groups go upstream in ``X-Consumer-Groups`` (consumer groups) or
``X-Authenticated-Groups`` (authenticated groups), unless hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

FORBIDDEN = {"message": "You cannot consume this service"}
UNAUTHORIZED = {"message": "Unauthorized"}
_BLOCKED: Any = object()  # verdict of groups that do not pass


class Acl(Plugin):
    name = "acl"
    PRIORITY = 950

    __slots__ = ("deny", "groups", "hide_groups_header", "always_use_authenticated_groups",
                 "verdicts")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.deny = bool(config["deny"])
        self.groups = frozenset(config["deny"] if self.deny else config["allow"])
        self.hide_groups_header = config["hide_groups_header"]
        self.always_use_authenticated_groups = config["always_use_authenticated_groups"]
        # consumer id -> verdict; consumers are fixed for a config version,
        # so each is judged once.
        self.verdicts: dict[str, Any] = {}

    def verdict(self, groups: Iterable[str]) -> Any:
        """``_BLOCKED``, or the header value listing ``groups``."""
        groups = tuple(groups)
        listed = not self.groups.isdisjoint(groups)
        if listed == self.deny:
            return _BLOCKED
        return ", ".join(groups)

    def access(self, ctx: RequestContext) -> None:
        consumer = ctx.consumer
        authenticated = ctx.authenticated_groups
        if authenticated is not None and (consumer is None or ctx.credential is None
                                          or self.always_use_authenticated_groups):
            self._apply(ctx, self.verdict(authenticated), "X-Authenticated-Groups")
            return
        if consumer is None:
            # A credential without a consumer means the caller is known but
            # has no groups to show.
            if ctx.credential is not None:
                ctx.exit(403, FORBIDDEN)
            else:
                ctx.exit(401, UNAUTHORIZED)
            return
        consumer_id = consumer.id
        assert consumer_id is not None  # ConfigState gives every consumer an id
        verdict = self.verdicts.get(consumer_id)
        if verdict is None:
            verdict = self.verdict(self.state.acl_groups.get(consumer_id, ()))
            self.verdicts[consumer_id] = verdict
        self._apply(ctx, verdict, "X-Consumer-Groups")

    def _apply(self, ctx: RequestContext, verdict: Any, header: str) -> None:
        if verdict is _BLOCKED:
            ctx.exit(403, FORBIDDEN)
        elif verdict and not self.hide_groups_header:
            ctx.request.headers.set(header, verdict)


HANDLER = Acl
