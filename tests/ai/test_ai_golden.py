"""Golden tests: every fixture under fixtures/<provider>/ checked in each direction.

request_*: OpenAI-format client request -> the provider's HTTP request.
response_*: the provider's answer -> OpenAI's answer and the usage read from it.
error_*: the provider's error body -> OpenAI's error body.
stream_*: the provider's stream, whole and cut into awkward pieces -> OpenAI chunks.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from ai_testkit import (
    awkward_pieces,
    case_files,
    case_id,
    client_request,
    load,
    model_config,
    normalize,
    run_stream,
    stream_case,
    stream_translator_for,
    usage_dict,
)

from fastgw.ai import get_translator


@pytest.mark.parametrize("path", case_files("request"), ids=case_id)
def test_request_translation(path):
    case = load(path)
    model = model_config(case)
    body = client_request(case)
    untouched = copy.deepcopy(body)

    upstream = get_translator(model).build_request(case["route_type"], body, model)

    expected = case["expected"]
    assert upstream.method == expected["method"]
    assert upstream.url == expected["url"]
    assert [list(header) for header in upstream.headers] == expected["headers"]
    assert orjson.loads(upstream.body) == expected["body"]
    assert upstream.stream is (body.get("stream") is True)
    assert body == untouched, "the client's request must not be modified"


@pytest.mark.parametrize("path", case_files("response"), ids=case_id)
def test_response_translation(path):
    case = load(path)
    translator = get_translator(path.parent.name)

    answer, usage = translator.parse_response(
        case["route_type"],
        200,
        orjson.dumps(case["upstream"]),
        client_request(case),
        model_name=case.get("model_name"),
    )

    assert normalize(answer) == case["expected"]
    assert usage_dict(usage) == case["expected_usage"]


@pytest.mark.parametrize("path", case_files("error"), ids=case_id)
def test_error_translation(path):
    case = load(path)
    raw = (
        case["upstream_text"].encode()
        if "upstream_text" in case
        else orjson.dumps(case["upstream"])
    )

    assert get_translator(path.parent.name).parse_error(case["status"], raw) == case["expected"]


@pytest.mark.parametrize("split", ["whole", "one-byte", "awkward-1", "awkward-2", "awkward-3"])
@pytest.mark.parametrize("path", case_files("stream"), ids=case_id)
def test_stream_translation(path, split):
    case, raw = stream_case(path)
    if split == "whole":
        pieces = [raw]
    elif split == "one-byte":
        pieces = [raw[i : i + 1] for i in range(len(raw))]
    else:
        pieces = awkward_pieces(raw, seed=int(split[-1]))
    translator = stream_translator_for(path, case)

    chunks, error = run_stream(translator, pieces)

    assert error is None
    assert [normalize(chunk) for chunk in chunks] == case["expected_chunks"]
    assert usage_dict(translator.usage) == case["expected_usage"]
    assert translator.done and translator.first_token_seen


@pytest.mark.parametrize("path", case_files("stream"), ids=case_id)
def test_stream_cut_anywhere_before_the_end_marker_is_an_error(path):
    """EOF at any byte before the provider's end marker fails; at or after it, succeeds."""
    case, raw = stream_case(path)
    marker = case["end_marker"].encode()
    complete_at = raw.rindex(marker) + len(marker)
    for length in range(len(raw) + 1):
        translator = stream_translator_for(path, case)
        chunks, error = run_stream(translator, [raw[:length]])
        if length < complete_at:
            assert error is not None, f"cut at byte {length} ended cleanly"
            assert error.error["error"]["code"] == "stream_cut"
            assert not any("usage" in chunk and not chunk["choices"] for chunk in chunks)
        else:
            assert error is None, f"complete stream (byte {length}) reported {error}"
