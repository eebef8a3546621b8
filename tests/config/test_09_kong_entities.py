"""Kong entities beyond services and consumers: vaults, key sets and keys,
and the upstream fields Kong writes."""

from __future__ import annotations

import orjson
import pytest
from config_docs import errors_of, parse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from fastgw.config.loader import redacted_document

# --- vaults ------------------------------------------------------------------------

VAULTS = [{"name": "env", "prefix": "app-secrets", "config": {"prefix": "app_"},
           "description": "the app's secrets"},
          {"name": "env", "prefix": "plain-env"}]


def _keyed(key: str) -> dict:
    return {"_format_version": "3.0", "vaults": VAULTS,
            "consumers": [{"username": "a", "keyauth_credentials": [{"key": key}]}]}


@pytest.mark.parametrize(("reference", "variable"), [
    ("{vault://app-secrets/alice-key}", "APP_ALICE_KEY"),
    ("{vault://plain-env/alice-key}", "ALICE_KEY"),
    ("{vault://env/alice-key}", "ALICE_KEY"),      # Kong's own env vault stays usable
])
def test_references_go_through_the_document_s_vaults(reference, variable):
    config = parse(_keyed(reference), env={variable: "the-key"})
    assert config.consumers[0].keyauth_credentials[0]["key"] == "the-key"
    # The reference, never the secret, is what the admin API shows.
    shown = redacted_document(config)["consumers"][0]["keyauth_credentials"][0]["key"]
    assert shown == reference


def test_a_reference_to_an_unknown_vault_names_it():
    assert errors_of(_keyed("{vault://aws-prod/key}"), env={}) == [
        "consumers[0].keyauth_credentials[0].key: unknown vault 'aws-prod' in "
        "{vault://aws-prod/key} (use 'env', or the prefix of one of the document's 'vaults')"]


@pytest.mark.parametrize(("vault", "error"), [
    ({"name": "aws", "prefix": "aws-prod"},
     "vaults[0].name: vault 'aws' is not supported by fastgw (only 'env', the environment)"),
    ({"name": "env", "prefix": "env"}, "vaults[0].prefix: must not be the name of a vault "
                                       "('env')"),
    ({"name": "env", "prefix": "Bad_Prefix"},
     "vaults[0].prefix: invalid prefix 'Bad_Prefix': lower-case letters, digits and '-', "
     "starting with a letter"),
    ({"name": "env", "prefix": "ok", "config": {"region": "x"}},
     "vaults[0].config.region: unknown field"),
])
def test_bad_vaults(vault, error):
    assert errors_of({"_format_version": "3.0", "vaults": [vault]}) == [error]


def test_vault_prefixes_are_unique():
    doc = {"_format_version": "3.0", "vaults": [VAULTS[0], {**VAULTS[0], "config": {}}]}
    assert errors_of(doc) == [
        "vaults[1].prefix: duplicate vault prefix 'app-secrets' (also at vaults[0].prefix)"]


# --- keys --------------------------------------------------------------------------

_PRIVATE = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _PRIVATE.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
PUBLIC_PEM = _PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jwk(kid: str) -> str:
    document = orjson.loads(ECAlgorithm.to_jwk(_PRIVATE.public_key()))
    return orjson.dumps({**document, "kid": kid}).decode()


def test_key_sets_with_nested_and_top_level_keys():
    doc = {"_format_version": "3.0",
           "key_sets": [{"name": "signing", "keys": [{"kid": "k1", "jwk": jwk("k1")}]}],
           "keys": [{"kid": "k2", "name": "pem-key", "set": {"name": "signing"},
                     "pem": {"private_key": PRIVATE_PEM, "public_key": PUBLIC_PEM}},
                    {"kid": "k1", "jwk": jwk("k1")}]}  # the same kid outside the set
    config = parse(doc)
    assert [(s.name) for s in config.key_sets] == ["signing"]
    assert [(k.kid, k.set) for k in config.keys] == [("k1", "signing"), ("k2", "signing"),
                                                     ("k1", None)]
    assert config.keys[1].pem_public_key == PUBLIC_PEM
    shown = redacted_document(config)["keys"][0]["pem"]
    assert shown == {"private_key": "<redacted>", "public_key": PUBLIC_PEM}


@pytest.mark.parametrize(("key", "error"), [
    ({"kid": "a"}, "keys[0]: exactly one of these fields must be set: 'jwk', 'pem'"),
    ({"kid": "a", "jwk": jwk("a"), "pem": {"public_key": PUBLIC_PEM}},
     "keys[0]: exactly one of these fields must be set: 'jwk', 'pem'"),
    ({"kid": "a", "jwk": jwk("b")}, "keys[0].jwk: kid in jwk.kid must be equal to keys.kid"),
    ({"kid": "a", "jwk": "{not json"}, "keys[0].jwk: could not json decode jwk string"),
    ({"kid": "a", "pem": {}},
     "keys[0].pem: need to supply a PEM formatted public and/or private key."),
    ({"kid": "a", "set": "nowhere", "jwk": jwk("a")}, "keys[0].set: unknown key set 'nowhere'"),
])
def test_bad_keys(key, error):
    assert errors_of({"_format_version": "3.0", "keys": [key]}) == [error]


def test_a_pem_that_does_not_parse_is_refused():
    [error] = errors_of({"_format_version": "3.0",
                         "keys": [{"kid": "a", "pem": {"public_key": "-----BEGIN nonsense"}}]})
    assert error.startswith("keys[0].pem.public_key: invalid key: ")


def test_a_kid_is_unique_within_its_set():
    doc = {"_format_version": "3.0", "key_sets": [{"name": "s", "keys": [
        {"kid": "a", "jwk": jwk("a")}, {"kid": "a", "jwk": jwk("a")}]}]}
    assert errors_of(doc) == [
        "key_sets[0].keys[1].kid: duplicate kid 'a' in its key set "
        "(also at key_sets[0].keys[0].kid)"]


# --- upstream fields ---------------------------------------------------------------


def test_upstream_host_header_and_use_srv_name():
    doc = {"_format_version": "3.0", "upstreams": [
        {"name": "u", "host_header": "api.internal", "use_srv_name": False}]}
    assert parse(doc).upstreams[0].host_header == "api.internal"
    doc["upstreams"][0]["use_srv_name"] = True
    assert errors_of(doc) == [
        "upstreams[0].use_srv_name: true is not supported: fastgw does not resolve SRV records"]
