"""Fast decisions: the part of the plugin contract the compiled core calls
before any request context exists.

A plugin may offer one with ``Plugin.fast_decision(route, service)``: a
``FastDecision`` whose ``decide(request)`` looks at a ``FastRequest`` (the
request's head, plus what earlier decisions found) and answers

* ``True``: decided; this plugin has nothing left to do for the request (it
  may have added response header lines to ``request.lines``, or set the
  consumer, as key-auth does);
* a ``FastAnswer`` (from ``fastgw._core.protocol``): answer now; the core
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

from fastgw.plugins.context import consumer_label

if TYPE_CHECKING:
    from fastgw.config.model import Consumer
    from fastgw.plugins.chain import PluginChain


class FastRequest:
    """What a fast decision sees: the request head as the core parsed it
    (``headers`` is the core's own [name, value, ...] list: changes reach the
    upstream), and what the decisions before it established."""

    __slots__ = ("method", "host", "url", "headers", "peer_ip", "request_id", "consumer",
                 "credential", "credential_identifier", "lines", "credential_headers")

    def __init__(self, method: bytes, host: bytes | None, url: bytes, headers: list[bytes],
                 peer_ip: bytes, request_id: bytes) -> None:
        self.method = method
        self.host = host
        self.url = url
        self.headers = headers
        self.peer_ip = peer_ip
        self.request_id = request_id
        self.consumer: Consumer | None = None
        self.credential: dict | None = None
        self.credential_identifier: str | None = None
        self.lines = b""  # response header lines ("Name: value\r\n" ...)
        # As RequestContext.note_credentials, for the runner after a hand-over.
        self.credential_headers: frozenset[bytes] = frozenset()

    def authenticate(self, consumer: Consumer, credential: dict | None,
                     credential_identifier: str | None) -> None:
        self.consumer = consumer
        self.credential = credential
        self.credential_identifier = credential_identifier


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


class Handover:
    """The runner takes the request from the plugin at ``index`` of the
    chain's access phase, with what the decisions before it established."""

    __slots__ = ("index", "request")

    def __init__(self, index: int, request: FastRequest) -> None:
        self.index = index
        self.request = request


class FastChain:
    """A route's fast decisions, called by the core as
    ``chain(method, host, url, headers, peer_ip, request_id)``. It answers
    None (the runner does everything), a FastAnswer, a Handover, or
    ``(header lines, consumer label)`` when the request is wholly decided."""

    __slots__ = ("steps", "resume_at", "drop_response_headers")

    def __init__(self, steps: list[Decide], resume_at: int | None,
                 drop_response_headers: frozenset[bytes] | None) -> None:
        self.steps = tuple(steps)
        # Where the runner takes over once every decision passed; None: nowhere.
        self.resume_at = resume_at
        self.drop_response_headers = drop_response_headers

    def __call__(self, method: bytes, host: bytes | None, url: bytes, headers: list[bytes],
                 peer_ip: bytes, request_id: bytes) -> Any:
        request = FastRequest(method, host, url, headers, peer_ip, request_id)
        index = 0
        for decide in self.steps:
            out = decide(request)
            if out is not True:
                if out is None:
                    return None if index == 0 else Handover(index, request)
                if request.lines:
                    self.add_lines(out, request.lines)
                return out
            index += 1
        if self.resume_at is not None:
            return Handover(self.resume_at, request)
        consumer = request.consumer
        return (request.lines or None, None if consumer is None else consumer_label(consumer))

    def add_lines(self, answer: Any, lines: bytes) -> None:
        """The earlier decisions' header lines on an answer, replacing what
        it carries under the same names (as their header filters do with a
        plugin's exit on the runner path, a stored cache entry's among them)."""
        drop = self.drop_response_headers
        if drop:
            headers = answer.headers
            headers[:] = [part for i in range(0, len(headers), 2)
                          if headers[i].lower() not in drop
                          for part in (headers[i], headers[i + 1])]
        answer.extra_head = lines


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
