"""Health across workers: the worst state wins, each worker's view is kept,
and the Prometheus gauge shows Kong's four states."""

import asyncio

from prometheus_client.parser import text_string_to_metric_families
from upstreams_testkit import RecordingRuntime, active, upstream_spec

from fastgw.admin.metrics import render_metrics
from fastgw.upstreams import UpstreamSupervisor
from fastgw.upstreams.report import merge_all, merge_upstream, worst


def answer(worker: int, upstreams: dict) -> dict:
    return {"ok": True, "worker": worker, "pid": 1000 + worker, "upstreams": upstreams}


def entry(target: str, health: str, addresses=()) -> dict:
    return {"target": target, "weight": 100, "health": health, "addresses": list(addresses)}


def test_worst_state_order():
    assert worst(["HEALTHCHECKS_OFF", "HEALTHY"]) == "HEALTHY"
    assert worst(["HEALTHY", "UNHEALTHY", "HEALTHY"]) == "UNHEALTHY"
    assert worst(["UNHEALTHY", "DNS_ERROR"]) == "DNS_ERROR"
    assert worst([]) == "HEALTHCHECKS_OFF"


def test_a_target_is_as_unhealthy_as_its_worst_worker_with_every_view_listed():
    answers = [
        answer(0, {"up": [entry("a:1", "HEALTHY", ["10.0.0.1"]), entry("b:2", "HEALTHY")]}),
        answer(1, {"up": [entry("a:1", "UNHEALTHY", ["10.0.0.1", "10.0.0.2"]),
                          entry("b:2", "HEALTHY")]}),
    ]
    merged = merge_upstream("up", answers)
    assert [(t["target"], t["health"]) for t in merged] == [("a:1", "UNHEALTHY"),
                                                             ("b:2", "HEALTHY")]
    assert merged[0]["workers"] == [{"worker": 0, "pid": 1000, "health": "HEALTHY"},
                                    {"worker": 1, "pid": 1001, "health": "UNHEALTHY"}]
    assert merged[0]["addresses"] == ["10.0.0.1", "10.0.0.2"]


def test_unknown_and_empty_upstreams_differ():
    answers = [answer(0, {"empty": []})]
    assert merge_upstream("missing", answers) is None
    assert merge_upstream("empty", answers) == []
    assert merge_all(answers) == {"empty": []}


def worker_stats(worker: int, upstream_health: dict, export: bool = True) -> dict:
    return {"worker": worker, "requests": 0, "metrics": [],
            "metrics_export": {"upstream_health_metrics": export},
            "upstream_health": upstream_health}


def health_samples(text: bytes) -> dict[tuple[str, str, str], float]:
    for family in text_string_to_metric_families(text.decode()):
        if family.name == "fastgw_upstream_target_health":
            return {(s.labels["upstream"], s.labels["target"], s.labels["state"]): s.value
                    for s in family.samples}
    return {}


def test_gauge_has_one_for_the_current_state_and_zero_for_the_others():
    stats = [worker_stats(0, {"up": [entry("a:1", "HEALTHY"), entry("b:2", "DNS_ERROR")]}),
             worker_stats(1, {"up": [entry("a:1", "UNHEALTHY"), entry("b:2", "DNS_ERROR")]})]
    samples = health_samples(render_metrics(stats))
    assert samples == {
        ("up", "a:1", "healthchecks_off"): 0, ("up", "a:1", "healthy"): 0,
        ("up", "a:1", "unhealthy"): 1, ("up", "a:1", "dns_error"): 0,
        ("up", "b:2", "healthchecks_off"): 0, ("up", "b:2", "healthy"): 0,
        ("up", "b:2", "unhealthy"): 0, ("up", "b:2", "dns_error"): 1,
    }


def test_gauge_is_absent_unless_a_prometheus_plugin_asks_for_it():
    stats = [worker_stats(0, {"up": [entry("a:1", "HEALTHY")]}, export=False)]
    assert b"fastgw_upstream_target_health" not in render_metrics(stats)


# --------------------------------------------------------------------------- supervisor


class GatewayWithUpstreams:
    """What UpstreamSupervisor reads from the compiled Gateway."""

    def __init__(self):
        self.upstreams: dict = {}


def config_with(interval: float):
    from fastgw.config.loader import parse_config

    return parse_config({"_format_version": "3.0",
                         "_gateway": {"dns_refresh_interval": interval}})


def test_supervisor_follows_the_gateways_runtimes_across_reloads():
    async def scenario():
        gw = GatewayWithUpstreams()
        sup = UpstreamSupervisor(gw, asyncio.get_running_loop())
        checked = RecordingRuntime(upstream_spec([{"target": "localhost:1"}],
                                                 active({"interval": 30}), name="checked"))
        plain = RecordingRuntime(upstream_spec([{"target": "127.0.0.1:2"}], name="plain"))
        # Keyed as the core keys them: (name, TLS settings key).
        gw.upstreams = {("checked", None): checked, ("plain", None): plain}
        sup.sync(config_with(30))
        first = sup.watches[("checked", None)]
        first_tasks = list(first.checker.tasks)
        assert len(first_tasks) == 1
        assert sup.watches[("plain", None)].checker is None  # Kong's defaults: no probes
        # Same runtime after a reload: the same watch, with the new interval.
        sup.sync(config_with(5))
        assert sup.watches[("checked", None)] is first and first.resolver.interval == 5
        # A changed upstream gets a new runtime and a new watch; a removed one stops.
        replaced = RecordingRuntime(checked.spec)
        gw.upstreams = {("checked", None): replaced}
        sup.sync(config_with(5))
        assert list(sup.watches) == [("checked", None)]
        assert sup.watches[("checked", None)].runtime is replaced
        await asyncio.gather(*sup.stopping)
        old_tasks_done = all(task.done() for task in first_tasks)
        await asyncio.sleep(0.1)  # the new watch's first lookup
        health = sup.health()
        await sup.stop()
        return old_tasks_done, health, sup

    old_tasks_done, health, sup = asyncio.run(scenario())
    assert old_tasks_done
    assert list(health) == ["checked"]
    assert health["checked"][0]["target"] == "localhost:1"
    assert health["checked"][0]["addresses"] and health["checked"][0]["health"] == "HEALTHY"
    assert sup.watches == {}
