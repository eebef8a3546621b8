"""Property-based fuzzing of the config loader: any document, however
broken, gives a config or the project's ConfigError listing what is wrong,
never another exception (a worker or `fastgw check` must not crash on it)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw.config.loader import ConfigError, decode_yaml, parse_config

KEYS = ["_format_version", "_gateway", "services", "routes", "name", "url", "protocol", "host",
        "port", "path", "paths", "hosts", "methods", "headers", "strip_path", "preserve_host",
        "regex_priority", "path_handling", "plugins", "config", "enabled", "route", "service",
        "consumer", "consumers", "username", "custom_id", "keyauth_credentials", "key",
        "basicauth_credentials", "jwt_secrets", "acls", "group", "upstreams", "targets",
        "target", "weight", "algorithm", "hash_on", "healthchecks", "active", "passive",
        "healthy", "unhealthy", "interval", "http_failures", "http_statuses", "retries",
        "connect_timeout", "read_timeout", "tls", "redis", "listen", "workers", "minute",
        "policy", "model", "provider", "options", "auth", "route_type", "tags", "id",
        "max_memory_mb", "admin_token", "protocols", "snis", "cert", "key_names", "allow"]
VALUES = ["3.0", "2.1", "1.1", "key-auth", "rate-limiting", "ai-proxy", "proxy-cache", "jwt",
          "acl", "cors", "prometheus", "http://127.0.0.1:9", "/", "/a", "~/u/\\d+$", "~/(",
          "GET", "local", "redis", "llm/v1/chat", "openai", "anthropic", "round-robin",
          "consistent-hashing", "a.example", "*.example", "127.0.0.1:80", "{vault://env/X}", ""]
SCALARS = (st.none() | st.booleans() | st.integers(-3, 2**33) | st.floats(allow_nan=True)
           | st.sampled_from(VALUES) | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=25)
DOCS = st.fixed_dictionaries({"_format_version": st.sampled_from(["3.0", "3.0", 3, None])},
                             optional={k: JSON for k in ("services", "routes", "plugins",
                                                         "consumers", "upstreams", "_gateway")})
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(doc=DOCS | JSON)
def test_any_document_is_a_config_or_a_config_error(doc):
    try:
        parse_config(doc)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("ab:-&*![]{}\n #'\"|>1")), max_size=80))
def test_any_yaml_text_decodes_or_raises_a_yaml_or_config_error(text):
    import yaml

    try:
        decode_yaml(text)
    except (yaml.YAMLError, ConfigError):
        pass
