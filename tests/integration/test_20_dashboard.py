"""The provisioned Grafana dashboard queries what a real gateway exports:
every metric each panel's PromQL names exists in a scrape of a running
gateway (with AI traffic, a cache, an upstream), with every label the query
groups or filters by."""

import json
import re
from pathlib import Path

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fastgw.testing import GatewayProcess, UpstreamServer
from fastgw.testing.mock_llm import running_mock

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "fastgw.json"
_METRIC = re.compile(r"\b(fastgw_[a-z_]+)(\{[^}]*\})?")
_BY = re.compile(r"\bby \(([^)]*)\)")
_MATCHER = re.compile(r"([a-z_]+)\s*=~?")
_EQUALS = re.compile(r'([a-z_]+)\s*=\s*"([^"]*)"')
# PromQL functions and keywords that look like names but are not labels.
PROMQL_WORDS = {"le"}


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"])
            for panel in dashboard["panels"] for target in panel["targets"]]


def needs(expr: str) -> dict[str, set[str]]:
    """metric name -> the labels the query expects it to have."""
    grouped = {label.strip() for group in _BY.findall(expr) for label in group.split(",")
               if label.strip()}
    found: dict[str, set[str]] = {}
    for name, matchers in _METRIC.findall(expr):
        labels = set(grouped) | set(_MATCHER.findall(matchers or ""))
        if not name.endswith("_bucket"):
            labels -= PROMQL_WORDS
        found.setdefault(name, set()).update(labels)
    return found


@pytest.fixture(scope="module")
def scrape():
    with running_mock() as mock, UpstreamServer() as upstream:
        openai = {"route_type": "llm/v1/chat",
                  "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
                  "model": {"provider": "openai", "name": "m",
                            "options": {"upstream_url": mock.base_url + "/v1/chat/completions"}}}
        doc = {
            "_format_version": "3.0",
            "upstreams": [{"name": "pool",
                           "targets": [{"target": f"127.0.0.1:{upstream.port}"}]}],
            "services": [
                {"name": "api", "host": "pool", "port": 80, "protocol": "http",
                 "routes": [{"name": "plain", "paths": ["/plain"]}]},
                {"name": "llm", "url": mock.base_url, "routes": [
                    {"name": "chat", "paths": ["/chat"], "plugins": [
                        {"name": "ai-proxy", "config": openai},
                        {"name": "ai-semantic-cache", "config": {
                            "vectordb": {"strategy": "memory", "dimensions": 8,
                                         "distance_metric": "cosine", "threshold": 0.1},
                            "exact_caching": True, "similarity": False,
                            "embeddings": {"model": {
                                "provider": "openai", "name": "e", "options": {
                                    "upstream_url": mock.base_url + "/v1/embeddings"}}}}}]}]}],
            "plugins": [{"name": "prometheus", "config": {
                "status_code_metrics": True, "latency_metrics": True,
                "bandwidth_metrics": True, "upstream_health_metrics": True,
                "ai_metrics": True}}],
        }
        with GatewayProcess(doc) as gw:
            assert gw.request("GET", "/plain/x")[0] == 200
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"Content-Type": "application/json"}
            for stream in (False, False, True):  # a miss, a hit, a streamed one
                status, _, _ = gw.request("POST", "/chat", orjson.dumps(
                    {**body, "stream": stream}), headers)
                assert status == 200
            _, _, text = gw.admin("GET", "/metrics")
            yield text.decode()


def test_the_dashboard_is_valid_and_provisioned():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "fastgw" and len(dashboard["panels"]) >= 10
    provider = yaml.safe_load((ROOT / "docker/grafana/provisioning/dashboards/fastgw.yml")
                              .read_text())
    compose = yaml.safe_load((ROOT / "docker/docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    dashboards_mount = next(m for m in mounts if m.startswith("./grafana/dashboards:"))
    assert dashboards_mount.split(":")[1] == provider["providers"][0]["options"]["path"]


@pytest.mark.parametrize(("title", "expr"), panel_queries())
def test_every_panel_queries_metrics_the_gateway_exports(scrape, title, expr):
    samples: dict[str, list[dict]] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    for name, labels in needs(expr).items():
        assert name in samples, f"{title}: {name} is not exported"
        assert any(labels <= set(sample) for sample in samples[name]), \
            f"{title}: {name} has no sample with labels {sorted(labels)}"
    # A value the query filters on is one the gateway produces.
    for name, matchers in _METRIC.findall(expr):
        for label, value in _EQUALS.findall(matchers or ""):
            assert any(sample.get(label) == value for sample in samples[name]), \
                f"{title}: no {name} sample has {label}={value!r}"
