"""mtls-auth's config: Kong's fields and defaults; its CAs must exist;
Kong's fetch-related fields load at their defaults only."""

import pytest

CA_ID = "9a1b2c3d-0000-4000-8000-000000000001"
OTHER_ID = "9a1b2c3d-0000-4000-8000-0000000000ff"


def test_defaults_are_kongs(validated):
    config = validated({"ca_certificates": [CA_ID]})
    assert list(config["consumer_by"]) == ["custom_id", "username"]
    assert (config["skip_consumer_lookup"], config["authenticated_group_by"],
            config["allow_partial_chain"], config["revocation_check_mode"],
            config["cache_ttl"]) == (False, "CN", False, "IGNORE_CA_ERROR", 60)


@pytest.mark.parametrize("config, error", [
    ({}, "plugins[0].config.ca_certificates: required field missing"),
    ({"ca_certificates": ["my-ca"]}, "plugins[0].config.ca_certificates[0]: expected the id "
     "(a UUID) of a ca_certificates entity, got 'my-ca'"),
    ({"ca_certificates": [CA_ID], "send_ca_dn": True}, "plugins[0].config.send_ca_dn: not "
     "supported by fastgw: only Kong's default (false) is accepted here"),
    ({"ca_certificates": [CA_ID], "http_proxy_host": "proxy"}, "plugins[0].config."
     "http_proxy_host: not supported by fastgw: only Kong's default (null) is accepted here"),
    ({"ca_certificates": [CA_ID], "revocation_check_mode": "OCSP"}, "plugins[0].config."
     "revocation_check_mode: expected one of: SKIP, IGNORE_CA_ERROR, STRICT"),
])
def test_bad_values_are_refused_by_name(config_errors, config, error):
    assert config_errors(config) == [error]


def test_kong_s_other_fields_load_at_their_defaults(validated):
    config = validated({"ca_certificates": [CA_ID], "http_timeout": 30000, "ssl_verify": True,
                        "san_dirname_matcher": [], "cert_cache_ttl": 60000})
    assert "http_timeout" not in config


def test_the_cas_must_exist_in_the_document(config_errors):
    assert config_errors({"ca_certificates": [CA_ID, OTHER_ID]}) == [
        f"plugins[0].config.ca_certificates[1]: unknown CA certificate '{OTHER_ID}'"]


def test_credentials_name_an_existing_ca_and_a_name_once(ca_pem):
    from fastgw.config.loader import ConfigError, parse_config

    def consumers(*entries: dict) -> list[str]:
        doc = {"_format_version": "3.0", "ca_certificates": [{"id": CA_ID, "cert": ca_pem}],
               "consumers": list(entries)}
        try:
            parse_config(doc)
        except ConfigError as failure:
            return failure.errors
        return []

    assert consumers({"username": "a", "mtls_auth_credentials": [
        {"subject_name": "a.example", "ca_certificate": {"id": CA_ID}}]}) == []
    assert consumers({"username": "a", "mtls_auth_credentials": [
        {"subject_name": "a.example", "ca_certificate": OTHER_ID}]}) == [
        f"consumers[0].mtls_auth_credentials[0].ca_certificate: unknown CA certificate "
        f"'{OTHER_ID}'"]
    assert consumers(
        {"username": "a", "mtls_auth_credentials": [{"subject_name": "shared"}]},
        {"username": "b", "mtls_auth_credentials": [{"subject_name": "shared"}]}) == [
        "consumers[1].mtls_auth_credentials[0].subject_name: duplicate mtls-auth "
        "subject_name 'shared' (also at consumers[0].mtls_auth_credentials[0].subject_name)"]
    assert consumers({"username": "a", "mtls_auth_credentials": [{"ca_certificate": CA_ID}]}) \
        == ["consumers[0].mtls_auth_credentials[0].subject_name: required field missing"]
