"""Gates: plugins that admit an LLM call once its target is known, and are
told what it cost (ai-rate-limiting-advanced).

A gate is a plugin with a ``reserve`` method; the request's plugin chain
lists its gates (``PluginChain.gates``), so a gate needs no access phase:
which provider and model a call goes to is known once ai-proxy (or
ai-proxy-advanced's balancer) has chosen the target. ai-proxy then asks each
gate to ``reserve`` what the call may cost before the request leaves, which
may refuse it (``GateRefusal``: an answer in the client's API, nothing sent);
a failover ``move``\\s the reservation to the next target; and once the answer
is counted, ``settle`` replaces the reservation with the real usage and price.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, cast

from fastgw.ai.errors import TranslationError
from fastgw.ai.usage import Usage
from fastgw.plugins.context import RequestContext

if TYPE_CHECKING:
    from fastgw.ai.capabilities import Needs
    from fastgw.plugins.ai_proxy.target import LLMTarget


class LLMCall:
    """The call a gate decides on: where it goes and what it asks for."""

    __slots__ = ("target", "request", "needs", "provider")

    def __init__(self, target: LLMTarget, request: dict[str, Any],
                 needs: Needs | None = None) -> None:
        self.target = target
        self.request = request  # canonical (Chat Completions) request
        # What the capability check measured of this request, when it ran.
        self.needs = needs
        self.provider: str = target.model.provider


class GateRefusal(TranslationError):
    """A gate refuses the call: ``status`` and ``headers`` for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(message, status=status)
        self.headers = headers


class Gate(Protocol):
    def reserve(self, ctx: RequestContext, call: LLMCall) -> Awaitable[None] | None:
        """Hold what ``call`` may cost, or raise GateRefusal (directly, or from
        the awaitable when the decision needs a round trip)."""

    def move(self, ctx: RequestContext, call: LLMCall) -> None:
        """A failover sends the request to ``call``'s target: hold for it
        instead (without waiting; may raise GateRefusal)."""

    def release(self, ctx: RequestContext) -> None:
        """Nothing was sent after all: give the reservation back."""

    def budget_left(self, ctx: RequestContext) -> float | None:
        """With a reservation held in money: the smallest share of a money
        window it leaves (0 to 1); None when it counts no money."""

    def settle(self, ctx: RequestContext, usage: Usage | None, price: float | None) -> None:
        """The call is over: replace the reservation with what it cost."""


def admit(ctx: RequestContext, call: LLMCall, start: int = 0) -> Awaitable[None] | None:
    """Each gate's reservation for ``call``, in order: None when every one
    was made at once (PERF: no task for the request), else an awaitable that
    makes the rest. On a refusal (``GateRefusal``, from here or from the
    awaitable) the reservations already made are given back."""
    chosen = gates(ctx)
    for index in range(start, len(chosen)):
        try:
            pending = chosen[index].reserve(ctx, call)
        except GateRefusal:
            _release(ctx, chosen[:index])
            raise
        if pending is not None:
            return _admit_after(ctx, call, index, pending)
    return None


async def _admit_after(ctx: RequestContext, call: LLMCall, index: int,
                       pending: Awaitable[None]) -> None:
    try:
        await pending
    except GateRefusal:
        _release(ctx, gates(ctx)[:index])
        raise
    await completed(admit(ctx, call, index + 1))


def _release(ctx: RequestContext, admitted: tuple[Gate, ...]) -> None:
    for gate in admitted:
        gate.release(ctx)


async def completed(pending: Awaitable[None] | None) -> None:
    """Wait for what a step that may finish at once left to do."""
    if pending is not None:
        await pending


def gates(ctx: RequestContext) -> tuple[Gate, ...]:
    """The gates of the request's chain, in priority order."""
    chain = ctx.chain
    # The chain lists them by their reserve method (it knows no gate type).
    return cast("tuple[Gate, ...]", chain.gates) if chain is not None else ()
