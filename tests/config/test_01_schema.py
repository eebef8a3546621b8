"""The schema library on its own: types, bounds, defaults, paths, vault
references and redaction."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fastgw.config.schema import (
    REDACTED,
    Array,
    Boolean,
    Dynamic,
    Field,
    Integer,
    Map,
    Number,
    Record,
    Set,
    String,
    Validation,
    format_path,
)


def run(field: Field, value: Any, env: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    """Validate ``value`` as the field ``f`` of a record; the value and errors."""
    ctx = Validation(env or {})
    result = Record({"f": field}).validate({"f": value}, None, ctx)
    return result["f"], ctx.messages()


def errors(field: Field, value: Any) -> list[str]:
    return run(field, value)[1]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (String(), 5, "f: expected a string"),
        (String(), "", "f: length must be at least 1"),
        (String(len_max=3), "abcd", "f: length must be at most 3"),
        (String(one_of=("a", "b")), "c", "f: expected one of: a, b"),
        (String(match=r"^x"), "yz", "f: invalid value: yz"),
        (String(match=r"^x", match_message="bad {value}!"), "yz", "f: bad yz!"),
        (Integer(), True, "f: expected an integer"),
        (Integer(), 1.5, "f: expected an integer"),
        (Integer(), "1", "f: expected an integer"),
        (Integer(between=(1, 10)), 11, "f: value should be between 1 and 10"),
        (Integer(one_of=(301, 302)), 303, "f: expected one of: 301, 302"),
        (Number(), False, "f: expected a number"),
        (Number(), float("nan"), "f: expected a finite number"),
        (Number(between=(0, 1)), -0.5, "f: value should be between 0 and 1"),
        (Boolean(), "true", "f: expected a boolean"),
        (Array(Integer()), {"a": 1}, "f: expected an array"),
        (Array(Integer(), len_min=1), [], "f: length must be at least 1"),
        (Array(Integer(), len_max=1), [1, 2], "f: length must be at most 1"),
        (Array(Integer()), [1, "x"], "f[1]: expected an integer"),
        (Array(Integer()), [1, None], "f[1]: null is not allowed here"),
        (Map(String(), Integer()), {"k": None}, "f.k: null is not allowed here"),
        (Map(String(), Integer()), {None: 1}, "f: null is not allowed as a key"),
        (Set(String()), "a", "f: expected a set"),
        (Map(String(), Integer()), [1], "f: expected a map"),
        (Map(String(match=r"^[a-z]+$"), Integer()), {"A": 1}, "f.A: invalid value: A"),
        (Map(String(), Integer()), {"k": "v"}, "f.k: expected an integer"),
        (Record({"x": Integer()}), [], "f: expected a record"),
        (Record({"x": Integer(required=True)}), {}, "f.x: required field missing"),
        (Record({"x": Integer()}), {"y": 1}, "f.y: unknown field"),
        (String(check=lambda v: "no" if v == "bad" else None), "bad", "f: no"),
    ],
)
def test_every_kind_of_error_has_its_path_and_message(field, value, message):
    assert errors(field, value) == [message]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (String(len_max=3), "abc", "abc"),
        (Integer(), 10.0, 10),
        (Number(), 3, 3),
        (Number(between=(0, 1)), 0.25, 0.25),
        (Boolean(), False, False),
        (Set(String()), ["b", "a", "b"], ["b", "a"]),
        (Map(String(), Array(String())), {"k": ["v"]}, {"k": ["v"]}),
    ],
)
def test_valid_values_come_back_normalised(field, value, expected):
    assert run(field, value) == (expected, [])


def test_absent_and_null_values_take_the_default_or_stay_none():
    record = Record(
        {
            "with_default": Integer(default=3),
            "optional": String(),
            "listed": Array(String(), default=("a",)),
        }
    )
    ctx = Validation()
    assert record.validate({"optional": None}, None, ctx) == {
        "with_default": 3,
        "optional": None,
        "listed": ["a"],
    }
    assert ctx.errors == []


def test_array_defaults_are_fresh_lists():
    field = Array(String(), default=("a",))
    first, _ = run(field, None)
    first.append("mutated")
    assert run(field, None)[0] == ["a"]


def test_nested_record_defaults_are_filled_from_an_empty_default():
    inner = Record({"interval": Number(default=0), "statuses": Array(Integer(), default=(200,))})
    outer = Record({"healthy": Record({"inner": inner}, default={})}, default={})
    assert run(outer, None) == ({"healthy": {"inner": None}}, [])
    outer_filled = Record({"inner": Record(inner.fields, default={})}, default={})
    assert run(outer_filled, None) == ({"inner": {"interval": 0, "statuses": [200]}}, [])
    # Fields given by the user are kept; the rest are filled.
    assert run(outer_filled, {"inner": {"interval": 5}}) == (
        {"inner": {"interval": 5, "statuses": [200]}},
        [],
    )


def test_all_errors_are_collected_in_document_order():
    record = Record(
        {
            "a": Integer(),
            "b": Array(Record({"c": String(required=True), "d": Boolean()})),
        }
    )
    ctx = Validation()
    record.validate({"a": "x", "b": [{"c": "ok"}, {"d": 1}], "z": 0}, None, ctx)
    assert ctx.messages() == [
        "z: unknown field",
        "a: expected an integer",
        "b[1].c: required field missing",
        "b[1].d: expected a boolean",
    ]


def test_record_validator_runs_only_when_every_field_is_valid():
    calls = []

    def validator(record: dict, path, ctx: Validation) -> None:
        calls.append(dict(record))
        if record["low"] > record["high"]:
            ctx.error((path, "low"), "must not exceed high")

    field = Record({"low": Integer(), "high": Integer()}, validator=validator)
    assert errors(field, {"low": 5, "high": 1}) == ["f.low: must not exceed high"]
    assert errors(field, {"low": "x", "high": 1}) == ["f.low: expected an integer"]
    assert calls == [{"low": 5, "high": 1}]


def test_validation_does_not_modify_the_input():
    doc = {"items": [{"name": "a"}], "settings": {"k": [1]}}
    original = copy.deepcopy(doc)
    record = Record(
        {
            "items": Array(Record({"name": String(), "extra": Integer(default=1)})),
            "settings": Map(String(), Array(Integer())),
        }
    )
    result = record.validate(doc, None, Validation())
    result["items"][0]["name"] = "changed"
    assert doc == original


def test_format_path_writes_indices_in_brackets_and_fields_with_dots():
    path = ((((((None, "services"), 0), "routes"), 1), "paths"), 0)
    assert format_path(path) == "services[0].routes[1].paths[0]"
    assert format_path(None) == "document"
    assert format_path((None, "FASTGW_WORKERS")) == "FASTGW_WORKERS"


# --- vault references -------------------------------------------------------------

SECRET = String(referenceable=True, secret=True)


def test_vault_reference_reads_the_environment_variable_kong_style():
    # Kong's env vault upper-cases the name and turns '-' into '_'.
    assert run(SECRET, "{vault://env/openai-key}", {"OPENAI_KEY": "sk-1"}) == ("sk-1", [])
    assert run(SECRET, "{vault://env/OPENAI_KEY}", {"OPENAI_KEY": "sk-2"}) == ("sk-2", [])


def test_vault_reference_to_a_json_key():
    env = {"CREDS": '{"user": "u", "password": "p"}'}
    assert run(SECRET, "{vault://env/creds/password}", env) == ("p", [])
    assert run(SECRET, "{vault://env/creds/other}", env)[1] == [
        "f: cannot resolve {vault://env/creds/other}: CREDS is not a JSON object with key 'other'"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "{vault://env/missing-var}",
            "f: cannot resolve {vault://env/missing-var}: "
            "environment variable MISSING_VAR is not set",
        ),
        (
            "{vault://aws/key}",
            "f: unknown vault 'aws' in {vault://aws/key} (use 'env', or the prefix of one "
            "of the document's 'vaults')",
        ),
        ("{vault://env/}", "f: invalid vault reference '{vault://env/}'"),
    ],
)
def test_unresolvable_vault_references_are_errors_at_their_path(value, message):
    assert run(SECRET, value, {}) == (None, [message])


def test_vault_reference_in_a_field_that_is_not_referenceable_is_an_error():
    assert errors(String(), "{vault://env/X}") == [
        "f: vault references are not allowed in this field"
    ]


def test_resolved_value_is_still_type_checked():
    field = String(referenceable=True, len_max=3)
    assert run(field, "{vault://env/LONG}", {"LONG": "abcdef"})[1] == [
        "f: length must be at most 3"
    ]


# --- redaction and dynamic fields ---------------------------------------------------


def test_redact_replaces_secrets_but_shows_references_as_written():
    schema = Record(
        {
            "name": String(),
            "password": String(secret=True, referenceable=True),
            "keys": Array(Record({"key": String(secret=True), "label": String()})),
            "headers": Map(String(), String(secret=True)),
        }
    )
    value = {
        "name": "n",
        "password": "{vault://env/PW}",
        "keys": [{"key": "k1", "label": "l"}],
        "headers": {"authorization": "Bearer x"},
    }
    assert schema.redact(value) == {
        "name": "n",
        "password": "{vault://env/PW}",
        "keys": [{"key": REDACTED, "label": "l"}],
        "headers": {"authorization": REDACTED},
    }
    assert schema.redact({"password": "plain"}) == {"password": REDACTED}


def test_dynamic_field_takes_its_schema_from_a_sibling():
    schemas = {"a": Record({"size": Integer(default=1), "token": String(secret=True)})}
    record = Record(
        {
            "kind": String(),
            "settings": Dynamic(lambda raw: schemas.get(raw.get("kind"))),
        }
    )
    ctx = Validation()
    assert record.validate({"kind": "a"}, None, ctx) == {
        "kind": "a",
        "settings": {"size": 1, "token": None},
    }
    record.validate({"kind": "a", "settings": {"size": "big"}}, None, ctx)
    assert ctx.messages() == ["settings.size: expected an integer"]
    # An unknown kind leaves the value alone: the kind's own check reports it.
    assert record.validate({"kind": "b", "settings": {"x": 1}}, None, Validation()) == {
        "kind": "b",
        "settings": {"x": 1},
    }
    assert record.redact({"kind": "a", "settings": {"token": "t"}}) == {
        "kind": "a",
        "settings": {"token": REDACTED},
    }
