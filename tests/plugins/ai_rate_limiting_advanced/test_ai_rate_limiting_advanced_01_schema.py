"""ai-rate-limiting-advanced's config through the real loader: Kong's
defaults, and an error naming the path for each config fastgw cannot honour."""

import pytest

from fastgw.config.loader import ConfigError, parse_config

PREFIX = "plugins[0].config"
OPENAI_MINUTE = {"name": "openai", "window_size": 60, "limit": 1000}


def doc(config: dict) -> dict:
    return {"_format_version": "3.0",
            "plugins": [{"name": "ai-rate-limiting-advanced", "config": config}]}


def test_defaults_are_kongs():
    config = parse_config(doc({"llm_providers": [OPENAI_MINUTE]})).plugins[0].config
    assert config["identifier"] == "consumer" and config["window_type"] == "sliding"
    assert config["strategy"] == "local" and config["tokens_count_strategy"] == "total_tokens"
    assert config["error_code"] == 429
    assert config["error_message"] == "AI token rate limit exceeded for provider(s): "
    assert config["hide_client_headers"] is False and config["fault_tolerant"] is True
    assert config["budget"] == {"day": None, "month": None}


def test_a_provider_may_have_several_windows():
    hour = {**OPENAI_MINUTE, "window_size": 3600, "limit": 20000}
    config = parse_config(doc({"llm_providers": [OPENAI_MINUTE, hour]})).plugins[0].config
    assert [w["window_size"] for w in config["llm_providers"]] == [60, 3600]


def test_kong_s_lists_of_windows_are_one_limit_each():
    # Kong's documented form: one entry per provider, a list per field.
    kong = {"name": "openai", "limit": [100, 1000], "window_size": [60, 3600]}
    config = parse_config(doc({"llm_providers": [kong]})).plugins[0].config
    assert config["llm_providers"] == [
        {"name": "openai", "limit": 100, "window_size": 60},
        {"name": "openai", "limit": 1000, "window_size": 3600}]


@pytest.mark.parametrize(("config", "path", "message"), [
    ({"llm_providers": [OPENAI_MINUTE, OPENAI_MINUTE]}, "llm_providers[1]",
     "two limits for window_size 60"),
    ({"llm_providers": [OPENAI_MINUTE], "strategy": "cluster"}, "strategy",
     "'cluster' is not supported"),
    ({"llm_providers": [{**OPENAI_MINUTE, "name": "requestPrompt"}]}, "llm_providers[0].name",
     "not supported by fastgw"),
    ({"llm_providers": [OPENAI_MINUTE], "request_prompt_count_function": "return 1"},
     "request_prompt_count_function", "not supported by fastgw"),
    ({"llm_providers": [OPENAI_MINUTE], "identifier": "header"}, "header_name",
     "required when identifier is 'header'"),
    ({"llm_providers": []}, "llm_providers", "at least one limit (or a budget)"),
    ({"llm_providers": [{**OPENAI_MINUTE, "limit": 0}]}, "llm_providers[0].limit",
     "greater than 0"),
    ({"llm_providers": [], "budget": {"day": -1}}, "budget.day", "greater than 0"),
    ({"llm_providers": [{**OPENAI_MINUTE, "limit": [10, 20]}]}, "llm_providers[0]",
     "limit and window_size need as many values each"),
    ({"llm_providers": [{**OPENAI_MINUTE, "limit": [10, -1], "window_size": [1, 2]}]},
     "llm_providers[0].limit[1]", "greater than 0"),
    ({"llm_providers": [{**OPENAI_MINUTE, "limit": 5, "window_size": [60, 60]}]},
     "llm_providers[0]", "limit and window_size need as many values each"),
    ({"llm_providers": [{**OPENAI_MINUTE, "limit": [5, 6], "window_size": [60, 60]}]},
     "llm_providers[0]", "two limits for window_size 60"),
])
def test_bad_configs_name_the_path(config, path, message):
    with pytest.raises(ConfigError) as failure:
        parse_config(doc(config))
    errors = str(failure.value)
    assert f"{PREFIX}.{path}" in errors and message in errors, errors
