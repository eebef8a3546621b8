"""Active health checks in-process: settings, counting rules, probes against
real loopback sockets, and the checker's rounds and timers."""

import asyncio
import time

import pytest
from upstreams_testkit import (
    ProbeTarget,
    RecordingRuntime,
    active,
    closed_port,
    self_signed_tls,
    serving,
    upstream_spec,
)

from fastgw.upstreams.health import (
    DNS_ERROR,
    HEALTHY,
    UNHEALTHY,
    ActiveChecker,
    ActiveSettings,
    Outcome,
    TargetCounter,
    probe,
)


def settings(**active_fields) -> ActiveSettings:
    healthy = active_fields.pop("healthy", {})
    unhealthy = active_fields.pop("unhealthy", {})
    spec = upstream_spec([{"target": "127.0.0.1:1"}], active(healthy, unhealthy, **active_fields))
    return ActiveSettings.from_healthchecks(spec.healthchecks)


# --------------------------------------------------------------------------- settings


def test_kong_defaults_leave_active_checks_off():
    spec = upstream_spec([{"target": "127.0.0.1:1"}])
    s = ActiveSettings.from_healthchecks(spec.healthchecks)
    assert not s.enabled
    assert (s.type, s.timeout, s.concurrency, s.http_path) == ("http", 1.0, 10, "/")
    assert s.healthy_statuses == {200, 302}
    assert s.unhealthy_statuses == {429, 404, 500, 501, 502, 503, 504, 505}
    assert (s.successes, s.http_failures, s.tcp_failures, s.timeouts) == (0, 0, 0, 0)


def test_either_interval_turns_active_checks_on_and_headers_are_precomputed():
    s = settings(unhealthy={"interval": 2}, headers={"X-Probe": ["a", "b"]})
    assert s.enabled and s.unhealthy_interval == 2.0 and s.healthy_interval == 0
    assert s.headers == b"X-Probe: a\r\nX-Probe: b\r\n"


def test_statuses_classify_as_kong_does():
    s = settings()
    assert s.classify(200) is Outcome.SUCCESS
    assert s.classify(503) is Outcome.HTTP_FAILURE
    assert s.classify(0) is Outcome.HTTP_FAILURE  # unreadable status line
    assert s.classify(418) is Outcome.IGNORED


# --------------------------------------------------------------------------- counting


def test_failures_reach_their_own_threshold_and_a_success_clears_them():
    s = settings(unhealthy={"http_failures": 3, "tcp_failures": 2, "timeouts": 5})
    counter = TargetCounter()
    assert counter.record(Outcome.HTTP_FAILURE, True, s) is None
    assert counter.record(Outcome.HTTP_FAILURE, True, s) is None
    # A healthy target does not count successes, so they clear nothing (Kong's rule).
    assert counter.record(Outcome.SUCCESS, True, s) is None
    assert counter.record(Outcome.HTTP_FAILURE, True, s) is False
    assert (counter.http_failures, counter.successes) == (0, 0)  # reset after the flip
    assert counter.record(Outcome.TCP_FAILURE, True, s) is None
    assert counter.record(Outcome.TIMEOUT, True, s) is None
    assert counter.record(Outcome.TCP_FAILURE, True, s) is False


def test_successes_bring_an_unhealthy_target_back_and_a_failure_restarts_them():
    s = settings(healthy={"successes": 2}, unhealthy={"http_failures": 1})
    counter = TargetCounter()
    assert counter.record(Outcome.SUCCESS, False, s) is None
    assert counter.record(Outcome.HTTP_FAILURE, False, s) is None  # unhealthy: not counted
    assert counter.successes == 1
    assert counter.record(Outcome.SUCCESS, False, s) is True


def test_a_failure_clears_the_success_count_of_a_healthy_target():
    s = settings(healthy={"successes": 2}, unhealthy={"timeouts": 2})
    counter = TargetCounter()
    counter.successes = 1
    assert counter.record(Outcome.TIMEOUT, True, s) is None
    assert (counter.successes, counter.timeouts) == (0, 1)


def test_a_zero_threshold_disables_its_kind_of_event():
    s = settings(unhealthy={"http_failures": 0, "tcp_failures": 1})
    counter = TargetCounter()
    for _ in range(10):
        assert counter.record(Outcome.HTTP_FAILURE, True, s) is None
        assert counter.record(Outcome.SUCCESS, False, s) is None  # successes: 0
    assert counter.record(Outcome.IGNORED, True, s) is None
    assert counter.record(Outcome.TCP_FAILURE, True, s) is False


# --------------------------------------------------------------------------- probes


def probe_once(target: ProbeTarget | None, s: ActiveSettings) -> tuple[Outcome, int | None]:
    async def main():
        if target is None:
            return await probe("127.0.0.1", closed_port(), "t", s)
        async with serving(target):
            return await probe("127.0.0.1", target.port, f"127.0.0.1:{target.port}", s)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ProbeTarget(200), (Outcome.SUCCESS, 200)),
        (ProbeTarget(302), (Outcome.SUCCESS, 302)),
        (ProbeTarget(500), (Outcome.HTTP_FAILURE, 500)),
        (ProbeTarget(418), (Outcome.IGNORED, 418)),
        (ProbeTarget(raw=b"SSH-2.0-OpenSSH\r\n"), (Outcome.HTTP_FAILURE, 0)),
        (ProbeTarget(raw=b""), (Outcome.TCP_FAILURE, None)),  # closed without a word
        (None, (Outcome.TCP_FAILURE, None)),  # refused
    ],
)
def test_http_probe_outcomes(answer, expected):
    assert probe_once(answer, settings()) == expected


def test_a_silent_target_times_out_after_the_probe_timeout():
    t0 = time.monotonic()
    assert probe_once(ProbeTarget(silent=True), settings(timeout=0.2)) == (Outcome.TIMEOUT, None)
    assert 0.15 < time.monotonic() - t0 < 1.5


def test_http_probe_sends_path_host_and_configured_headers():
    target = ProbeTarget(200)
    probe_once(target, settings(http_path="/healthz", headers={"X-Probe": ["yes"]}))
    head = target.requests[0].decode()
    assert head.startswith("GET /healthz HTTP/1.0\r\n")
    assert f"Host: 127.0.0.1:{target.port}\r\n" in head
    assert "X-Probe: yes\r\n" in head


def test_tcp_probe_only_connects():
    target = ProbeTarget(500)
    assert probe_once(target, settings(type="tcp")) == (Outcome.SUCCESS, None)
    assert probe_once(None, settings(type="tcp")) == (Outcome.TCP_FAILURE, None)


# --------------------------------------------------------------------------- checker


def test_a_failing_target_leaves_rotation_and_returns_when_it_recovers():
    async def scenario():
        good, bad = ProbeTarget(200), ProbeTarget(500)
        async with serving(good), serving(bad):
            spec = upstream_spec(
                [{"target": f"127.0.0.1:{good.port}"}, {"target": f"127.0.0.1:{bad.port}"}],
                active({"interval": 1, "successes": 2}, {"interval": 1, "http_failures": 2}))
            runtime = RecordingRuntime(spec)
            checker = ActiveChecker(runtime)
            await checker.check(HEALTHY)
            assert runtime.states == [HEALTHY, HEALTHY]  # one failure of two
            await checker.check(HEALTHY)
            assert runtime.states == [HEALTHY, UNHEALTHY]
            assert runtime.calls == [(1, False, "")]
            assert runtime.reasons[0].startswith("active probe: ") and "500" in runtime.reasons[0]
            # The unhealthy round probes only the unhealthy target.
            probes_of_good = len(good.requests)
            bad.status = 200
            await checker.check(UNHEALTHY)
            assert runtime.states == [HEALTHY, UNHEALTHY]
            await checker.check(UNHEALTHY)
            assert runtime.states == [HEALTHY, HEALTHY]
            assert len(good.requests) == probes_of_good
            assert runtime.calls[-1] == (1, True, "")

    asyncio.run(scenario())


def test_probes_run_concurrency_at_a_time():
    async def scenario():
        target = ProbeTarget(200, delay=0.1)
        async with serving(target, listeners=6):
            spec = upstream_spec([{"target": f"127.0.0.1:{port}"} for port in target.ports],
                                 active({"interval": 1}, concurrency=2))
            checker = ActiveChecker(RecordingRuntime(spec))
            t0 = time.monotonic()
            await checker.check(HEALTHY)
            elapsed = time.monotonic() - t0
        assert len(target.requests) == 6
        assert target.max_in_flight == 2
        assert elapsed >= 0.28  # three waves of 0.1 s

    asyncio.run(scenario())


def test_weight_zero_and_dns_error_targets_are_not_probed():
    async def scenario():
        target = ProbeTarget(500)
        async with serving(target, listeners=3):
            spec = upstream_spec(
                [{"target": f"127.0.0.1:{target.ports[0]}", "weight": 0},
                 {"target": f"127.0.0.1:{target.ports[1]}"},
                 {"target": f"127.0.0.1:{target.ports[2]}"}],
                active({"interval": 1}, {"http_failures": 1}))
            runtime = RecordingRuntime(spec)
            runtime.states[2] = DNS_ERROR
            checker = ActiveChecker(runtime)
            await checker.check(HEALTHY)
            return runtime, target

    runtime, target = asyncio.run(scenario())
    assert len(target.requests) == 1
    assert runtime.calls == [(1, False, "")]
    assert runtime.states[2] == DNS_ERROR


def test_a_result_that_lands_after_a_dns_failure_is_dropped():
    spec = upstream_spec([{"target": "127.0.0.1:1"}], active({"interval": 1},
                                                              {"tcp_failures": 1}))
    runtime = RecordingRuntime(spec)
    checker = ActiveChecker(runtime)
    runtime.states[0] = DNS_ERROR
    checker.apply(0, Outcome.TCP_FAILURE)
    assert runtime.calls == []


def test_a_state_change_made_elsewhere_restarts_the_count():
    spec = upstream_spec([{"target": "127.0.0.1:1"}],
                         active({"interval": 1, "successes": 2}, {"http_failures": 2}))
    runtime = RecordingRuntime(spec)
    checker = ActiveChecker(runtime)
    checker.apply(0, Outcome.HTTP_FAILURE)  # 1 of 2
    runtime.states[0] = UNHEALTHY  # passive checks took it out
    checker.apply(0, Outcome.SUCCESS)  # 1 of 2: the old failure does not matter
    assert runtime.calls == []
    runtime.states[0] = HEALTHY  # and put it back
    checker.apply(0, Outcome.HTTP_FAILURE)  # 1 of 2 again, not 2 of 2
    assert runtime.calls == []
    checker.apply(0, Outcome.HTTP_FAILURE)
    assert runtime.calls == [(0, False, "")]


def test_timers_wait_one_interval_then_probe_each_interval():
    async def scenario():
        target = ProbeTarget(200)
        async with serving(target):
            spec = upstream_spec([{"target": f"127.0.0.1:{target.port}"}],
                                 active({"interval": 0.1}, {"interval": 0}))
            checker = ActiveChecker(RecordingRuntime(spec))
            checker.start()
            assert len(checker.tasks) == 1  # no timer for an interval of 0
            await asyncio.sleep(0.05)
            first = len(target.requests)
            await asyncio.sleep(0.5)
            await checker.stop()
            after_stop = len(target.requests)
            await asyncio.sleep(0.25)
            return first, after_stop, len(target.requests)

    first, after_stop, final = asyncio.run(scenario())
    assert first == 0
    assert 3 <= after_stop <= 6
    assert final == after_stop  # stopped means stopped


def test_a_round_that_raises_does_not_end_the_timer(caplog):
    class Flaky(RecordingRuntime):
        broken = 2

        def target_health(self):
            if self.broken:
                self.broken -= 1
                raise RuntimeError("boom")
            return super().target_health()

    async def scenario():
        target = ProbeTarget(200)
        async with serving(target):
            spec = upstream_spec([{"target": f"127.0.0.1:{target.port}"}],
                                 active({"interval": 0.05}))
            checker = ActiveChecker(Flaky(spec))
            checker.start()
            await asyncio.sleep(0.4)
            await checker.stop()
            return len(target.requests)

    assert asyncio.run(scenario()) >= 2
    assert "health check round of upstream up failed" in caplog.text


def test_the_checker_drives_the_compiled_runtime_and_its_balancer():
    from fastgw._core.upstream_connection import UpstreamPool
    from fastgw._core.upstream_runtime import UpstreamRuntime
    from fastgw.config.entities import health_checks

    async def scenario():
        target = ProbeTarget(200)
        async with serving(target, listeners=2):
            spec = upstream_spec([{"target": f"127.0.0.1:{port}"} for port in target.ports],
                                 active({"interval": 1, "successes": 1},
                                        {"interval": 1, "http_failures": 1}))
            runtime = UpstreamRuntime(spec, [UpstreamPool(t.host, t.port) for t in spec.targets],
                                      health_checks(spec.healthchecks))
            checker = ActiveChecker(runtime)
            target.status = 500
            await checker.check(HEALTHY)
            down = [entry["health"] for entry in runtime.target_health()]
            picks_while_down = {runtime.pick_for_test() for _ in range(6)}
            target.status = 200
            await checker.check(UNHEALTHY)
            up = [entry["health"] for entry in runtime.target_health()]
            picks_when_back = {runtime.pick_for_test() for _ in range(6)}
            return down, picks_while_down, up, picks_when_back

    down, picks_while_down, up, picks_when_back = asyncio.run(scenario())
    assert down == [UNHEALTHY, UNHEALTHY]
    assert picks_while_down == {-1}  # no peer: the core answers 503
    assert up == [HEALTHY, HEALTHY]
    assert picks_when_back == {0, 1}


def test_https_probes_verify_the_certificate_unless_told_not_to(tmp_path):
    tls = self_signed_tls(tmp_path)

    async def scenario(**fields):
        target = ProbeTarget(200)
        s = settings(type="https", https_sni="localhost", **fields)
        async with serving(target, tls=tls):
            return await probe("127.0.0.1", target.port, "localhost", s, s.tls_context())

    assert asyncio.run(scenario(https_verify_certificate=False)) == (Outcome.SUCCESS, 200)
    # Self-signed: verification fails the handshake, a TCP-level failure.
    assert asyncio.run(scenario()) == (Outcome.TCP_FAILURE, None)
