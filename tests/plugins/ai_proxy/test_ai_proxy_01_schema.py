"""ai-proxy's config schema through the real loader: Kong's defaults, and an
error naming the field's path for every bad config."""

import pytest
from ai_proxy_kit import PROVIDER_KEY, chat_config, plugin_doc

from fastgw.config.loader import ConfigError, parse_config, redacted_document

PREFIX = "routes[0].plugins[0].config"


def errors_of(config: dict) -> str:
    with pytest.raises(ConfigError) as failure:
        parse_config(plugin_doc(config))
    return str(failure.value)


def test_defaults_are_kongs():
    config = parse_config(plugin_doc(chat_config())).plugins[0].config

    assert config["llm_format"] == "openai"
    assert config["response_streaming"] == "allow"
    assert config["max_request_body_size"] == 8192
    assert config["model_name_header"] is True
    assert config["logging"] == {"log_statistics": False, "log_payloads": False}
    assert config["auth"]["allow_override"] is False
    assert config["auth"]["header_value"] == f"Bearer {PROVIDER_KEY}"
    options = config["model"]["options"]
    assert options["max_tokens"] == 256
    assert options["input_cost"] is None and options["temperature"] is None
    assert options["gemini"]["api_version"] == "v1beta"
    assert config["model"]["allow_override"] is False


def test_credentials_resolve_from_the_vault_and_are_redacted():
    config = chat_config(auth={"header_value": "{vault://env/openai-key}"})
    config["auth"]["param_name"] = "key"
    config["auth"]["param_value"] = "plain-secret"
    config["auth"]["param_location"] = "query"

    parsed = parse_config(plugin_doc(config), env={"OPENAI_KEY": "Bearer sk-from-env"})

    assert parsed.plugins[0].config["auth"]["header_value"] == "Bearer sk-from-env"
    shown = redacted_document(parsed)["routes"][0]["plugins"][0]["config"]["auth"]
    assert shown["header_value"] == "{vault://env/openai-key}"
    assert shown["param_value"] == "<redacted>"


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"route_type": "preserve"}, "route_type", "expected one of"),
        ({"surprise": 1}, "surprise", "unknown field"),
        ({"llm_format": "bedrock"}, "llm_format", "expected one of: openai, anthropic"),
        ({"response_streaming": "sometimes"}, "response_streaming", "expected one of"),
        ({"max_request_body_size": 0}, "max_request_body_size", "between"),
        ({"max_request_body_size": "big"}, "max_request_body_size", "expected an integer"),
        ({"model_name_header": "yes"}, "model_name_header", "expected a boolean"),
        ({"model": {"provider": "cohere"}}, "model.provider", "expected one of"),
        ({"model": {"name": ""}}, "model.name", "length must be at least 1"),
        ({"model": {"options": {"temperature": 9}}}, "model.options.temperature", "between"),
        ({"model": {"options": {"top_p": 1.5}}}, "model.options.top_p", "between"),
        ({"model": {"options": {"top_k": 501}}}, "model.options.top_k", "between"),
        ({"model": {"options": {"input_cost": 0}}}, "model.options.input_cost", "greater than 0"),
        ({"model": {"options": {"upstream_url": "ftp://x"}}}, "model.options.upstream_url",
         "http or https URL"),
        ({"model": {"options": {"mistral_format": "raw"}}}, "model.options.mistral_format",
         "expected one of"),
        ({"auth": {"param_location": "header"}}, "auth.param_location", "expected one of"),
        ({"auth": {"azure_use_managed_identity": True}}, "auth.azure_use_managed_identity",
         "not supported by fastgw"),
        ({"auth": {"aws_access_key_id": "AKIA"}}, "auth.aws_access_key_id",
         "not supported by fastgw"),
        ({"logging": {"log_statistics": "on"}}, "logging.log_statistics", "expected a boolean"),
    ],
)
def test_bad_fields_are_reported_at_their_path(change, path, message):
    config = chat_config()
    for key, value in change.items():
        if key == "model":
            model = dict(config["model"])
            for name, inner in value.items():
                model[name] = {**model["options"], **inner} if name == "options" else inner
            config["model"] = model
        elif key in ("auth", "logging"):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value

    text = errors_of(config)

    assert f"{PREFIX}.{path}: " in text
    assert message in text


def test_route_type_and_model_are_required():
    text = errors_of({"auth": {}})
    assert f"{PREFIX}.route_type: required field missing" in text
    assert f"{PREFIX}.model: required field missing" in text


@pytest.mark.parametrize(
    ("auth", "fields"),
    [
        ({"header_name": "Authorization"}, "'header_name', 'header_value'"),
        ({"param_name": "key", "param_value": "k"}, "'param_name', 'param_value', 'param_location'"),
    ],
)
def test_credential_parts_go_together(auth, fields):
    config = chat_config()
    config["auth"] = auth
    assert f"{PREFIX}.auth: all or none of these fields must be set: {fields}" in errors_of(config)


@pytest.mark.parametrize(
    ("provider", "options", "path", "message"),
    [
        ("anthropic", {}, "model.options.anthropic_version",
         "must set 'model.options.anthropic_version' for anthropic provider"),
        ("azure", {"azure_deployment_id": "d"}, "model.options.azure_instance",
         "must set 'model.options.azure_instance' for azure provider"),
        ("azure", {"azure_instance": "i"}, "model.options.azure_deployment_id",
         "must set 'model.options.azure_deployment_id' for azure provider"),
        ("mistral", {}, "model.options.mistral_format",
         "must set 'model.options.mistral_format' for mistral provider"),
        ("llama2", {"llama2_format": "ollama"}, "model.options.upstream_url",
         "must set 'model.options.upstream_url' for llama2 provider"),
        ("llama2", {"llama2_format": "raw", "upstream_url": "http://h"},
         "model.options.llama2_format", "the 'raw' llama2 format is not supported by fastgw"),
    ],
)
def test_each_provider_needs_its_options(provider, options, path, message):
    config = chat_config()
    config["model"] = {"provider": provider, "name": "m", "options": options}
    assert f"{PREFIX}.{path}: {message}" in errors_of(config)


def test_gemini_keeps_its_own_credential():
    config = chat_config()
    config["model"] = {"provider": "gemini", "name": "gemini-2.0-flash"}
    config["auth"] = {"param_name": "key", "param_value": "k", "param_location": "query",
                      "allow_override": True}
    assert (f"{PREFIX}.auth.allow_override: gemini only supports auth.allow_override = false"
            in errors_of(config))


def test_vertex_fields_go_together():
    config = chat_config()
    config["model"] = {"provider": "gemini", "name": "g",
                       "options": {"gemini": {"project_id": "p"}}}
    assert (f"{PREFIX}.model.options.gemini: all or none of these fields must be set: "
            "'api_endpoint', 'project_id', 'location_id'") in errors_of(config)


@pytest.mark.parametrize(
    ("provider", "route_type"),
    [("anthropic", "llm/v1/completions"), ("anthropic", "llm/v1/embeddings"),
     ("gemini", "llm/v1/completions")],
)
def test_route_types_the_provider_lacks_are_refused(provider, route_type):
    config = chat_config(provider, route_type=route_type)
    assert (f"{PREFIX}.route_type: provider '{provider}' does not support route type "
            f"'{route_type}'") in errors_of(config)


def test_anthropic_front_door_is_for_chat_only():
    config = chat_config(route_type="llm/v1/embeddings", llm_format="anthropic")
    assert (f"{PREFIX}.llm_format: llm_format 'anthropic' can only be used with the "
            "'llm/v1/chat' route_type") in errors_of(config)


def test_a_kong_dump_with_its_off_switches_loads():
    config = chat_config()
    config["auth"] = {**config["auth"], "azure_use_managed_identity": False,
                      "gcp_use_service_account": False, "aws_access_key_id": None}
    config["model"]["options"] = {**config["model"]["options"], "bedrock": {"aws_region": None},
                                  "llama2_format": None}

    parsed = parse_config(plugin_doc(config)).plugins[0].config

    assert parsed["auth"]["azure_use_managed_identity"] is False


@pytest.mark.parametrize("provider", ["mistral", "azure"])
def test_a_model_option_the_provider_would_refuse_every_time_is_a_config_error(provider):
    config = chat_config(provider)
    config["model"]["options"]["top_k"] = 40
    if provider == "mistral":
        config["model"]["options"]["mistral_format"] = "openai"
    else:
        config["model"]["options"].update(azure_instance="i", azure_deployment_id="d")
    errors = errors_of(config)
    assert f"{PREFIX}.model.options.top_k" in errors
    assert f"provider '{provider}' does not support top_k" in errors


def test_the_responses_route_type_is_for_openai_clients():
    config = chat_config("anthropic", route_type="llm/v1/responses")
    parse_config(plugin_doc(config))  # any provider: translated through Chat Completions
    errors = errors_of({**config, "llm_format": "anthropic"})
    assert f"{PREFIX}.llm_format" in errors and "can only be used" in errors
