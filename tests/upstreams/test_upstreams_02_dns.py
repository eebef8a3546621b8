"""Target name resolution: a name that does not resolve marks its target
DNS_ERROR and breaks nothing; one that resolves again brings it back."""

import asyncio

from upstreams_testkit import RecordingRuntime, upstream_spec

from fastgw.upstreams.dns import TargetResolver, is_ip_literal
from fastgw.upstreams.health import DNS_ERROR, HEALTHY


def resolver_for(targets: list[dict], interval: float = 0.0) -> TargetResolver:
    runtime = RecordingRuntime(upstream_spec(targets))
    return TargetResolver(runtime, interval, asyncio.get_running_loop())


def test_ip_literals_are_not_names():
    assert is_ip_literal("127.0.0.1") and is_ip_literal("::1")
    assert not is_ip_literal("localhost") and not is_ip_literal("nonexistent.invalid")


def test_only_named_targets_are_resolved_and_a_dead_name_is_dns_error():
    async def scenario():
        resolver = resolver_for([{"target": "127.0.0.1:8001"}, {"target": "localhost:8002"},
                                 {"target": "nonexistent.invalid:8003"}])
        assert resolver.named == [1, 2]
        await resolver.resolve_all()
        return resolver

    resolver = asyncio.run(scenario())
    runtime = resolver.runtime
    assert runtime.calls == [(2, False, "dns")]
    assert runtime.states == [HEALTHY, HEALTHY, DNS_ERROR]
    assert resolver.addresses[0] == ("127.0.0.1",)  # a literal is its own address
    assert "127.0.0.1" in resolver.addresses[1]
    assert 2 not in resolver.addresses


def test_a_name_that_keeps_failing_is_marked_once_and_recovers_healthy():
    async def scenario():
        resolver = resolver_for([{"target": "nonexistent.invalid:80"}])
        await resolver.resolve_all()
        await resolver.resolve_all()
        marked = list(resolver.runtime.calls)
        # The name starts resolving (the record a lookup would give).
        resolver.record(0, ("10.0.0.7",))
        resolver.record(0, ("10.0.0.7",))
        return resolver, marked

    resolver, marked = asyncio.run(scenario())
    assert marked == [(0, False, "dns")]
    assert resolver.runtime.calls == [(0, False, "dns"), (0, True, "")]
    assert resolver.runtime.states == [HEALTHY]
    assert resolver.addresses == {0: ("10.0.0.7",)}


def test_resolution_runs_at_start_and_again_each_interval():
    async def scenario():
        resolver = resolver_for([{"target": "localhost:80"}], interval=0.1)
        resolver.start()
        await asyncio.sleep(0.02)
        at_start = resolver.rounds
        await asyncio.sleep(0.35)
        await resolver.stop()
        return at_start, resolver.rounds

    at_start, later = asyncio.run(scenario())
    assert at_start == 1
    assert 3 <= later <= 6


def test_an_interval_of_zero_resolves_only_at_load_and_ip_only_upstreams_start_nothing():
    async def scenario():
        once = resolver_for([{"target": "localhost:80"}], interval=0)
        once.start()
        await asyncio.sleep(0.1)
        done = once.task.done()
        literal = resolver_for([{"target": "127.0.0.1:80"}], interval=0.01)
        literal.start()
        return once.rounds, done, literal.task

    rounds, done, literal_task = asyncio.run(scenario())
    assert (rounds, done) == (1, True)
    assert literal_task is None
