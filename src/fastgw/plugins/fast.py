"""Fast decisions: the part of the plugin contract the compiled core calls
before any request context exists.

A plugin may offer one with ``Plugin.fast_decision(route, service)``: a
``FastDecision`` whose ``decide(request)`` looks at a ``FastRequest`` (the
request's head, plus what earlier decisions found) and answers

* ``True``: decided; this plugin has nothing left to do for the request (it
  may have added response header lines to ``request.lines``, or set the
  consumer, as key-auth does);
* a ``FastAnswer`` (from ``fastgw._core.gateway``): answer now; the core
  frames it as it frames a plugin's exit on the runner path;
* ``None``: this request needs the plugin's full access phase, with a context.

A route's decisions run in priority order (``FastChain``). The first ``None``
hands the request over to the runner at that plugin (``Handover``), carrying
what the earlier decisions established; when every plugin of the route
decided and covers all its phases, the runner is not involved at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# The per-request objects are compiled (the core calls them for every request).
from fastgw._core.decisions import FastChain, FastRequest, Handover

if TYPE_CHECKING:
    from fastgw.plugins.chain import PluginChain

__all__ = ["FastChain", "FastDecision", "FastRequest", "Handover", "fast_chain"]


Decide = Callable[[FastRequest], Any]


class FastDecision:
    """What ``Plugin.fast_decision`` returns. ``covers_response``: a request
    the plugin decided needs none of its other phases (its response headers
    are in ``FastRequest.lines``). ``drop_response_headers`` names upstream
    headers those lines replace (lower-case bytes)."""

    __slots__ = ("decide", "covers_response", "drop_response_headers")

    def __init__(self, decide: Decide, covers_response: bool = False,
                 drop_response_headers: frozenset[bytes] | None = None) -> None:
        self.decide = decide
        self.covers_response = covers_response
        self.drop_response_headers = drop_response_headers


def fast_chain(chain: PluginChain, route: Any, service: Any) -> FastChain | None:
    """The route's decisions: those of its access plugins in order, up to the
    first that offers none. None when the first offers none (or the chain
    changes per consumer, which only the runner can follow)."""
    if chain.by_consumer is not None:
        return None
    steps: list[Decide] = []
    decided = []
    drop: set[bytes] = set()
    for plugin in chain.access:
        decision = plugin.fast_decision(route, service)
        if decision is None:
            break
        steps.append(decision.decide)
        decided.append((plugin, decision))
        if decision.drop_response_headers:
            drop.update(decision.drop_response_headers)
    if not steps:
        return None
    covered = {id(plugin) for plugin, decision in decided if decision.covers_response}
    if len(steps) < len(chain.access) or any(id(p) not in covered for p in chain.plugins):
        # Plugins still to run (access, or other phases): the runner goes on
        # after the decisions, from the first access plugin not decided.
        resume_at: int | None = len(steps)
    else:
        resume_at = None
    return FastChain(steps, resume_at, frozenset(drop) if drop else None)
