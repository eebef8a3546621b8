import pytest

from fastgw.config.loader import ConfigError, parse_config


def doc(config):
    return {"_format_version": "3.0", "plugins": [{"name": "prometheus", "config": config}]}


def test_defaults_are_kongs():
    cfg = parse_config(doc({})).plugins[0].config
    assert cfg == {"per_consumer": False, "status_code_metrics": False,
                   "latency_metrics": False, "bandwidth_metrics": False,
                   "upstream_health_metrics": False, "ai_metrics": False}


@pytest.mark.parametrize("config, error", [
    ({"per_consumer": "yes"}, "plugins[0].config.per_consumer: expected a boolean"),
    ({"bogus": True}, "plugins[0].config.bogus: unknown field"),
])
def test_bad_config_names_its_path(config, error):
    with pytest.raises(ConfigError) as exc:
        parse_config(doc(config))
    assert error in exc.value.errors
