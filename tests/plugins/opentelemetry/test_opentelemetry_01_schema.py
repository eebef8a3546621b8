"""opentelemetry config: Kong's fields and defaults; what fastgw does not do
(logs, propagation formats other than W3C) refused by name."""

import pytest

from fastgw.plugins.opentelemetry.schema import SCHEMA

ENDPOINT = {"traces_endpoint": "http://127.0.0.1:4318/v1/traces"}


def test_defaults(validated):
    assert validated(ENDPOINT) == {
        **ENDPOINT, "headers": None, "resource_attributes": None, "sampling_rate": 1,
        "propagation": {"extract": ["w3c"], "inject": ["preserve"], "default_format": "w3c",
                        "clear": []},
        "queue": {"max_batch_size": 200, "max_coalescing_delay": 1, "max_entries": 10000},
        "send_timeout": 5000,
    }


def test_every_field_has_a_description(schema_fields):
    assert all(field.description for field in schema_fields(SCHEMA))


@pytest.mark.parametrize(("config", "error"), [
    ({}, "plugins[0].config.traces_endpoint: required field missing"),
    ({"traces_endpoint": "collector:4318"},
     "plugins[0].config.traces_endpoint: expected an http:// or https:// URL"),
    ({**ENDPOINT, "sampling_rate": 2},
     "plugins[0].config.sampling_rate: value should be between 0 and 1"),
    ({**ENDPOINT, "propagation": {"extract": ["b3"]}},
     "plugins[0].config.propagation.extract[0]: format 'b3' is not supported by fastgw "
     "(W3C trace context only)"),
    ({**ENDPOINT, "propagation": {"default_format": "datadog"}},
     "plugins[0].config.propagation.default_format: only 'w3c' is supported by fastgw"),
    ({**ENDPOINT, "logs_endpoint": "http://x/v1/logs"},
     "plugins[0].config.logs_endpoint: unknown field"),
])
def test_bad_values_name_their_path(config_errors, config, error):
    assert config_errors(config) == [error]
