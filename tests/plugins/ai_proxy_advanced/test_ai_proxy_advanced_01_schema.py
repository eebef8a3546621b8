"""ai-proxy-advanced's config schema through the real loader: Kong's
defaults, and an error naming the path for every bad config."""

import pytest

from fastgw.config.loader import ConfigError, parse_config

PREFIX = "routes[0].plugins[0].config"


def target(provider: str = "openai", **extra) -> dict:
    options = {"upstream_url": "http://127.0.0.1:9"}
    if provider == "anthropic":
        options["anthropic_version"] = "2023-06-01"
    return {"route_type": "llm/v1/chat",
            "model": {"provider": provider, "name": "m", "options": options},
            "auth": {"header_name": "Authorization", "header_value": "Bearer k"}, **extra}


def doc(config: dict) -> dict:
    return {"_format_version": "3.0", "routes": [
        {"name": "r", "paths": ["/r"],
         "plugins": [{"name": "ai-proxy-advanced", "config": config}]}]}


def errors_of(config: dict) -> str:
    with pytest.raises(ConfigError) as failure:
        parse_config(doc(config))
    return str(failure.value)


def test_defaults_are_kongs():
    config = parse_config(doc({"targets": [target()]})).plugins[0].config
    assert config["balancer"] == {
        "algorithm": "round-robin", "tokens_count_strategy": "total_tokens",
        "latency_strategy": "tpot", "hash_on_header": "X-Kong-LLM-Request-ID",
        "slots": 10000, "retries": 5, "connect_timeout": 60000, "write_timeout": 60000,
        "read_timeout": 60000, "failover_criteria": ["error", "timeout"], "max_fails": 0,
        "fail_timeout": 10000,
        # fastgw's:
        "expose_route_reason": False, "budget_downgrade": None, "stream_continuation": False}
    [only] = config["targets"]
    assert only["weight"] == 100 and only["priority"] == 1 and only["description"] is None
    assert config["llm_format"] == "openai" and config["max_request_body_size"] == 8192


def test_targets_may_mix_providers():
    config = parse_config(doc({"targets": [target(), target("anthropic")]})).plugins[0].config
    assert [t["model"]["provider"] for t in config["targets"]] == ["openai", "anthropic"]


@pytest.mark.parametrize(("config", "path", "message"), [
    ({"targets": []}, "targets", "at least 1"),
    ({}, "targets", "required"),
    ({"targets": [target(), {**target(), "route_type": "llm/v1/embeddings"}]}, "targets",
     "mixing different route types are not supported"),
    ({"targets": [target()], "balancer": {"algorithm": "semantic"}}, "embeddings",
     "required by the semantic algorithm"),
    ({"targets": [target()], "balancer": {"algorithm": "semantic"}}, "targets[0].description",
     "required by the semantic algorithm"),
    ({"targets": [target(description="x")], "balancer": {"algorithm": "semantic"},
      "embeddings": {"model": {"provider": "openai", "name": "e"}},
      "vectordb": {"dimensions": 8, "distance_metric": "manhattan"}},
     "vectordb.distance_metric", "expected one of"),
    ({"targets": [target()], "balancer": {"algorithm": "fastest"}}, "balancer.algorithm",
     "expected one of"),
    ({"targets": [target()], "embeddings": {"model": {"name": "e"}}},
     "embeddings.model.provider", "required"),
    ({"targets": [target()], "balancer": {"failover_criteria": ["http_418"]}},
     "balancer.failover_criteria", "expected one of"),
    ({"targets": [target()], "balancer": {"retries": -1}}, "balancer.retries", "between"),
    ({"targets": [target()], "balancer": {"read_timeout": 0}}, "balancer.read_timeout",
     "between"),
    ({"targets": [target(weight=0)]}, "targets[0].weight", "between"),
    ({"targets": [target(), {**target("anthropic"), "model": {
        "provider": "anthropic", "name": "m", "options": {}}}]},
     "targets[1].model.options.anthropic_version", "must set"),
    ({"targets": [{**target(), "route_type": "llm/v1/embeddings"}],
      "llm_format": "anthropic"}, "llm_format", "can only be used"),
    ({"targets": [target()], "balancer": {"algorithm": "complexity"}}, "targets[0].tier",
     "required by the complexity algorithm"),
    ({"targets": [target(tier="genius")]}, "targets[0].tier", "expected one of"),
    ({"targets": [target(tier="complex")], "balancer": {"budget_downgrade": {
        "tier": "simple", "below_share": 0.2}}}, "balancer.budget_downgrade.tier",
     "no target has tier 'simple'"),
    ({"targets": [target(tier="simple")], "balancer": {"budget_downgrade": {
        "tier": "simple", "below_share": 2}}}, "balancer.budget_downgrade.below_share",
     "between"),
    ({"targets": [target()], "balancer": {"algorithm": "lowest-cost"}},
     "targets[0].model.options.input_cost", "required by the lowest-cost algorithm"),
    ({"targets": [target(model={"provider": "openai", "name": "m", "options": {
        "upstream_url": "http://127.0.0.1:9", "capabilities": ["telepathy"]}})]},
     "targets[0].model.options.capabilities[0]", "expected one of"),
    ({"targets": [target(model={"provider": "openai", "name": "m", "options": {
        "upstream_url": "http://127.0.0.1:9", "context_window": 0}})]},
     "targets[0].model.options.context_window", "between"),
    ({"targets": [{**target(), "route_type": "llm/v1/completions"}],
      "balancer": {"stream_continuation": True}}, "balancer.stream_continuation",
     "continues llm/v1/chat streams only"),
])
def test_bad_configs_name_the_path(config, path, message):
    errors = errors_of(config)
    assert f"{PREFIX}.{path}" in errors and message in errors, errors
