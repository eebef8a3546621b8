"""ai-sanitizer's config through the real loader: Kong's fields and defaults,
and an error naming the path for each value fastgw cannot honour."""

import pytest


@pytest.fixture(scope="session")
def plugin_name():
    return "ai-sanitizer"


def test_defaults_are_kongs(validated):
    config = validated({})
    assert config["anonymize"] == ["all_and_credentials"]
    assert config["redact_type"] == "placeholder" and config["recover_redacted"] is True
    assert config["sanitization_mode"] == "INPUT" and config["block_if_detected"] is False
    assert config["allow_all_conversation_history"] is True
    assert config["host"] == "localhost" and config["port"] == 8080


@pytest.mark.parametrize(("config", "path", "words"), [
    ({"anonymize": ["passport"]}, "anonymize[0]", "'passport' is not detected"),
    ({"anonymize": ["everything"]}, "anonymize[0]", "expected one of"),
    ({"anonymize": ["custom"]}, "custom_patterns", "required when anonymize includes 'custom'"),
    ({"anonymize": ["email"], "custom_patterns": [{"name": "x", "regex": "x"}]}, "anonymize",
     "custom_patterns are set"),
    ({"anonymize": ["custom"], "custom_patterns": [{"name": "x", "regex": "(?<=a)b"}]},
     "custom_patterns[0].regex", "RE2 syntax"),
    ({"anonymize": ["custom"], "custom_patterns": [{"name": "1x", "regex": "x"}]},
     "custom_patterns[0].name", "a letter"),
    ({"host": "pii.internal"}, "host", "calls no service"),
    ({"port": 9000}, "port", "calls no service"),
    ({"redact_type": "hash"}, "redact_type", "expected one of"),
    ({"sanitization_mode": "input"}, "sanitization_mode", "expected one of"),
])
def test_values_fastgw_cannot_honour_are_errors_naming_the_path(config_errors, config, path,
                                                                 words):
    errors = config_errors(config)
    assert any(f"plugins[0].config.{path}" in e and words in e for e in errors), errors


def test_custom_patterns_with_all(validated):
    config = validated({"anonymize": ["all"],
                        "custom_patterns": [{"name": "emp", "regex": r"EMP-\d+"}]})
    assert config["custom_patterns"][0]["score"] == 0.5
