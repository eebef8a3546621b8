"""The deterministic model: token counts, answer text, limits, tool arguments from schemas."""

from __future__ import annotations

import math

import pytest

from fastgw.mockllm import embeddings
from fastgw.mockllm.schema_example import example_from_schema
from fastgw.mockllm.textgen import (
    DEFAULT_OUTPUT_TOKENS,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_STOP_SEQUENCE,
    FINISH_TOOL_CALL,
    ChatRequest,
    ToolSpec,
    count_tokens,
    generate,
    split_pieces,
)


def _request(text: str = "What is the capital of France?", **fields) -> ChatRequest:
    return ChatRequest(model="m", prompt_text=text, last_user_text=text, **fields)


def test_tokens_are_words_and_punctuation():
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0
    assert count_tokens("  spaced   out  ") == 2


@pytest.mark.parametrize("text", ["Hello, world!  ", "", "  lead", '{"a":1}', "tab\tand\nnewline "])
def test_pieces_round_trip_and_match_token_count(text):
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert len(pieces) == max(count_tokens(text), 1 if text else 0)


def test_answer_quotes_prompt_and_has_default_length():
    generation = generate(_request())
    assert generation.text.startswith("Mock answer to: What is the capital of France?")
    assert generation.completion_tokens == DEFAULT_OUTPUT_TOKENS == count_tokens(generation.text)
    assert generation.prompt_tokens == count_tokens("What is the capital of France?")
    assert generation.finish == FINISH_STOP
    assert "".join(generation.pieces) == generation.text


def test_answer_is_deterministic_and_prompt_dependent():
    assert generate(_request("alpha beta")).text == generate(_request("alpha beta")).text
    assert generate(_request("alpha beta")).text != generate(_request("gamma delta")).text


def test_max_tokens_truncates_with_length():
    generation = generate(_request(max_tokens=3))
    assert generation.text == "Mock answer to"
    assert (generation.completion_tokens, generation.finish) == (3, FINISH_LENGTH)


def test_output_tokens_sets_natural_length():
    generation = generate(_request("hi", output_tokens=40))
    assert generation.completion_tokens == 40
    assert generation.finish == FINISH_STOP


def test_stop_sequence_cuts_before_it():
    generation = generate(_request(stop=["capital", "zzz"]))
    assert generation.text == "Mock answer to: What is the "
    assert generation.finish == FINISH_STOP_SEQUENCE
    assert generation.stop_sequence == "capital"
    assert generation.completion_tokens == count_tokens(generation.text)


def test_max_tokens_wins_over_a_later_stop_sequence():
    generation = generate(_request(stop=["capital"], max_tokens=2))
    assert (generation.text, generation.finish, generation.stop_sequence) == (
        "Mock answer",
        FINISH_LENGTH,
        None,
    )


def test_tool_result_is_quoted():
    generation = generate(_request(tool_result='{"temperature": 21}'))
    assert '"{"temperature": 21}"' in generation.text


def test_tool_call_arguments_follow_schema():
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
            "days": {"type": "integer", "minimum": 3, "maximum": 10},
            "verbose": {"type": "boolean"},
        },
        "required": ["city", "unit", "days"],
    }
    generation = generate(_request(tool_to_call=ToolSpec("get_weather", schema)))
    call = generation.tool_call
    assert generation.finish == FINISH_TOOL_CALL
    assert call.name == "get_weather" and call.id.startswith("call_")
    assert call.arguments == {"city": "Paris", "unit": "fahrenheit", "days": 3}
    assert "".join(generation.pieces) == call.arguments_json
    # Each call gets its own id even for identical requests.
    assert generate(_request(tool_to_call=ToolSpec("get_weather", schema))).tool_call.id != call.id


def test_schema_examples_cover_refs_nullable_arrays_and_gemini_types():
    pydantic_style = {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}},
                "required": ["sku"],
            }
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
            "ratio": {"type": "number", "exclusiveMaximum": 1},
            "query": {"type": "string"},
        },
    }
    value = example_from_schema(pydantic_style, hint_text="find red shoes")
    assert value == {
        "items": [{"sku": "example sku"}, {"sku": "example sku"}],
        "note": "user@example.com",
        "ratio": 0.5,
        "query": "find red shoes",
    }
    gemini_style = {
        "type": "OBJECT",
        "properties": {"count": {"type": "INTEGER"}},
        "required": ["count"],
    }
    assert example_from_schema(gemini_style) == {"count": 1}


def test_embeddings_are_normalised_and_similarity_ordered():
    query = embeddings.embed("the cat sat on the mat")
    close = embeddings.embed("a cat sat on a mat")
    related = embeddings.embed("dogs run in the park")
    far = embeddings.embed("quarterly revenue forecast spreadsheet")
    assert math.isclose(embeddings.cosine(query, query), 1.0, rel_tol=1e-9)
    similarities = [embeddings.cosine(query, other) for other in (close, related, far)]
    assert similarities == sorted(similarities, reverse=True)
    assert similarities[0] > 0.7 and similarities[2] < 0.2
    assert len(embeddings.embed("x", 64)) == 64
