"""The built-in detectors and what they are replaced with: precision and
recall on the shipped labelled set and on a new one, the checks that turn
look-alikes away, and replacements that restore, whole or cut anywhere."""

import random

import orjson
import pytest

from fastgw._core.pii_checks import bounded, credit_card, luhn_valid
from fastgw.ai.pii import measure
from fastgw.ai.pii.detectors import (
    DETECTORS,
    CustomPattern,
    Detectors,
    detectors_for,
    iban_valid,
    re2_error,
)
from fastgw.ai.pii.redaction import Redaction, RedactionPolicy, StreamRedactor, mask

ALL = Detectors(DETECTORS)


@pytest.mark.parametrize("seed", [None, 2, 3], ids=["shipped", "seed-2", "seed-3"])
def test_every_detector_meets_the_bar_on_the_labelled_sets(seed):
    samples = measure.load_sample(seed)
    with_values = sum(1 for s in samples if s["spans"])
    assert with_values >= 500 and len(samples) - with_values >= 500
    table = measure.score(samples)
    assert set(table) == set(DETECTORS)
    for name, row in table.items():
        assert row["tp"] + row["fn"] >= 30, name  # each detector has values to find
        assert row["precision"] >= 0.98, (name, row)
        assert row["recall"] >= 0.95, (name, row)


def found(text, detectors=ALL):
    return [(f.detector, f.value) for f in detectors.find(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("card 4111 1111 1111 1111 please", [("credit_card", "4111 1111 1111 1111")]),
    ("card 4111 1111 1111 1112 please", []),  # Luhn fails
    ("order 4111-1111 1111-1111", []),  # mixed separators
    ("IBAN GB82 WEST 1234 5698 7654 32", [("iban", "GB82 WEST 1234 5698 7654 32")]),
    ("IBAN GB83 WEST 1234 5698 7654 32", []),  # mod-97 fails
    ("ssn 078-05-1120.", [("ssn", "078-05-1120")]),
    ("ssn 666-05-1120 or 900-12-3456 or 123-00-4567", []),  # never issued
    ("from 10.1.2.3 to 2001:db8::1", [("ipv4", "10.1.2.3"), ("ipv6", "2001:db8::1")]),
    ("version 10.1.2.3, 1.2.3.4.5, 300.1.1.1", []),
    ("at 12:30:45 on std::vector and a::b", []),
    ("call +1 415 555 0123 or (415) 555-0123", [("phone", "+1 415 555 0123"),
                                               ("phone", "(415) 555-0123")]),
    ("on 2026-12-07, order #123456789", []),
    ("https://admin:hunter2@example.com/x", [("url_credentials",
                                              "https://admin:hunter2@example.com")]),
    ("see https://jane@example.com/profile", []),
    ("Bearer authentication (RFC 6750) and Bearer <token>", []),
    ("sk-learn pipelines", []),
])
def test_checks_keep_values_and_turn_look_alikes_away(text, expected):
    assert found(text) == expected


def test_luhn_and_mod97():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")


def test_anonymize_categories_choose_detectors():
    assert detectors_for(["email"]) == ("email",)
    assert "openai_key" not in detectors_for(["all"])
    assert set(detectors_for(["all_and_credentials"])) == set(DETECTORS)
    assert set(detectors_for(["ip", "credentials"])) >= {"ipv4", "ipv6", "jwt", "private_key"}


def test_custom_patterns_run_in_the_same_pass():
    detectors = Detectors(["email"], [CustomPattern("employee_id", r"\bEMP-\d{6}\b")])
    assert found("EMP-123456 wrote to a@example.com", detectors) == [
        ("employee_id", "EMP-123456"), ("email", "a@example.com")]
    assert re2_error(r"(?<=x)y") is not None and re2_error(r"\bEMP-\d+") is None


def policy(kind="placeholder", **extra):
    return RedactionPolicy(ALL, kind, **extra)


TEXT = ("write to jane.doe@example.com or jane.doe@example.com, card 4111-1111-1111-1111, "
        "IBAN DE89 3704 0044 0532 0130 00, from 10.0.0.7, key sk-proj-AbCdEf1234567890GhIjKlMnOpQrStUv")


def test_placeholders_name_the_detector_and_repeat_for_the_same_value():
    redaction = Redaction(policy())
    hidden = redaction.redact(TEXT)
    assert hidden == ("write to <EMAIL_1> or <EMAIL_1>, card <CREDIT_CARD_1>, IBAN <IBAN_1>, "
                      "from <IPV4_1>, key <OPENAI_KEY_1>")
    assert redaction.counts == {"email": 2, "credit_card": 1, "iban": 1, "ipv4": 1,
                                "openai_key": 1}
    assert redaction.restore(hidden) == TEXT and redaction.restored == 6


def test_synthetic_values_keep_their_kind_and_are_found_again_as_it():
    redaction = Redaction(policy("synthetic"))
    hidden = redaction.redact(TEXT)
    assert "jane.doe" not in hidden and "4111" not in hidden
    kinds = [detector for detector, _ in found(hidden)]
    assert kinds == ["email", "email", "credit_card", "iban", "ipv4", "openai_key"]
    card = next(value for detector, value in found(hidden) if detector == "credit_card")
    assert luhn_valid(card.replace("-", "")) and card.count("-") == 3
    assert redaction.restore(hidden) == TEXT


def test_mask_keeps_the_last_characters_and_cannot_be_restored():
    assert mask("4111 1111 1111 1234", 4, "*") == "**** **** **** 1234"
    redaction = Redaction(policy("mask", keep_last=2, mask_char="#"))
    assert redaction.redact("ip 10.0.0.7") == "ip ##.#.0.7"
    assert not redaction.originals


def fed_in_pieces(stream, text: str, seed: int, largest: int) -> str:
    """What ``stream`` (a restorer or redactor) gives for ``text`` cut at random."""
    rng = random.Random(seed)
    out, start = [], 0
    while start < len(text):
        size = rng.randint(1, largest)
        out.append(stream.feed(text[start:start + size]))
        start += size
    out.append(stream.flush())
    return "".join(out)


@pytest.mark.parametrize("kind", ["placeholder", "synthetic"])
def test_a_stream_cut_anywhere_restores_exactly(kind):
    redaction = Redaction(policy(kind))
    hidden = redaction.redact(TEXT)
    for seed in range(40):
        assert fed_in_pieces(redaction.restorer(), hidden, seed, 7) == TEXT


def test_restored_values_are_written_as_json_inside_tool_arguments():
    redaction = Redaction(policy())
    key = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----"
    hidden = redaction.redact(f"use {key}")
    arguments = orjson.dumps({"key": hidden[4:]}).decode()
    restored = redaction.restore(arguments, lambda v: orjson.dumps(v).decode()[1:-1])
    assert orjson.loads(restored) == {"key": key}


def test_the_answer_side_numbers_after_the_prompt_and_leaves_its_replacements():
    prompt = Redaction(policy())
    prompt.redact("mail a@example.com")
    answer = Redaction(policy(), after=prompt)
    assert answer.redact("<EMAIL_1> and b@example.com") == "<EMAIL_1> and <EMAIL_2>"
    assert prompt.restore("<EMAIL_1> and <EMAIL_2>") == "a@example.com and <EMAIL_2>"


def test_the_output_stage_finds_values_cut_across_pieces():
    redaction = Redaction(policy())
    text = "reach me at jane.doe@example.com or +44 20 7946 0958 today " * 3
    for seed in range(20):
        assert fed_in_pieces(StreamRedactor(redaction, hold=64), text, seed, 9) == \
            "reach me at <EMAIL_1> or <PHONE_1> today " * 3


@pytest.mark.parametrize(("value", "card"), [
    ("4111111111111111", True), ("4111 1111 1111 1111", True), ("4111-1111-1111-1111", True),
    ("4111 1111-1111 1111", False),  # two kinds of separator
    ("4111  1111 1111 1111", False),  # an empty group
    ("41111 111 1111 1111", False),  # not a card's grouping
    ("3782 822463 10005", True), ("378282246310005", True),  # American Express, 4-6-5
    ("4111111111111112", False),  # Luhn
    ("5105105105105100", True), ("5105 1051 0510 5100 1", False),  # Mastercard is 16 digits
    ("9111111111111111", False),  # no brand starts with 9
    ("4" * 40, False),  # longer than any card
])
def test_the_compiled_card_check(value, card):
    assert credit_card(value) is card


def test_the_compiled_neighbours_check():
    card = ("-.", True, "", True, False)
    ipv4 = (".", True, "", True, True)
    text = "pay 4111 1111 1111 1111 now"
    assert bounded(text, 4, 23, card)
    assert not bounded("é4111111111111111", 1, 17, card)  # a letter, of any script, before
    assert not bounded("4111111111111111_", 0, 16, card)
    assert not bounded("-4111111111111111", 1, 17, card)
    assert bounded("at 10.0.0.1.", 3, 11, ipv4)  # a full stop after: the sentence ends
    assert not bounded("at 10.0.0.1.5", 3, 11, ipv4)
    assert not bounded("version: 10.0.0.1", 9, 17, ipv4)
    assert not luhn_valid("4111a11111111111")
