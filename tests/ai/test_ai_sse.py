"""The incremental SSE parser and NDJSON splitter."""

from __future__ import annotations

import random

import pytest
from ai_testkit import awkward_pieces
from openai._streaming import SSEDecoder

from fastgw.ai.sse import NDJSONSplitter, SSEEvent, SSEParser, encode_sse


def parse(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    return events


def every_split(raw: bytes) -> list[list[bytes]]:
    """The whole stream, one byte at a time, and every two-piece cut."""
    splits = [[raw], [raw[i : i + 1] for i in range(len(raw))]]
    splits.extend([raw[:cut], raw[cut:]] for cut in range(1, len(raw)))
    return splits


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_are_equivalent_and_survive_any_split(newline):
    raw = newline.join(
        [b"event: add", b'data: {"a":1}', b"", b"data: two", b"data: lines", b"", b""]
    )
    expected = [SSEEvent("add", '{"a":1}'), SSEEvent("message", "two\nlines")]
    for pieces in every_split(raw):
        assert parse(pieces) == expected


def test_cr_ending_one_chunk_and_lf_opening_the_next_are_one_line_break():
    # Were the LF taken as a second line end, the blank line would dispatch "x" alone.
    assert parse([b"data: x\r", b"\ndata: y\r\n\r\n"]) == [SSEEvent("message", "x\ny")]


def test_comments_retry_and_unknown_fields_are_ignored():
    raw = b": keep-alive\nretry: 3000\nfoo: bar\ndata: x\n\n:\n\n"
    assert parse([raw]) == [SSEEvent("message", "x")]


def test_only_one_leading_space_is_stripped_and_a_colonless_line_is_a_field_name():
    raw = b"data:  two spaces\ndata\ndata:none\n\n"
    assert parse([raw]) == [SSEEvent("message", " two spaces\n\nnone")]


def test_event_without_data_is_not_dispatched_and_its_name_does_not_leak():
    raw = b"event: ping\n\ndata: x\n\n"
    assert parse([raw]) == [SSEEvent("message", "x")]


def test_id_is_remembered_across_events():
    raw = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n"
    assert [event.id for event in parse([raw])] == ["7", "7", "8"]


def test_utf8_bom_is_dropped_at_the_start_only_even_when_split():
    raw = b"\xef\xbb\xbfdata: \xef\xbb\xbfx\n\n"
    for pieces in every_split(raw):
        assert parse(pieces) == [SSEEvent("message", "\ufeffx")]


def test_multibyte_characters_split_across_chunks_decode_intact():
    raw = "data: héllo 世界 👋\n\n".encode()
    for pieces in every_split(raw):
        assert parse(pieces) == [SSEEvent("message", "héllo 世界 👋")]


def test_pending_reports_an_unfinished_event():
    parser = SSEParser()
    parser.feed(b"data: x\n")
    assert parser.pending
    parser.feed(b"\n")
    assert not parser.pending


def random_stream(rng: random.Random) -> bytes:
    newline = rng.choice([b"\n", b"\r\n", b"\r"])
    lines = []
    for number in range(rng.randint(1, 6)):
        if rng.random() < 0.3:
            lines.append(b": comment")
        if rng.random() < 0.5:
            lines.append(b"event: kind" + str(number).encode())
        for part in range(rng.randint(1, 3)):
            lines.append(f'data: {{"n":{number},"part":{part},"text":"é\\n"}}'.encode())
        lines.append(b"")
    return newline.join(lines) + newline


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_the_openai_sdk_decoder(seed):
    rng = random.Random(seed)
    raw = random_stream(rng)
    pieces = awkward_pieces(raw, seed)
    theirs = [(sse.event or "message", sse.data) for sse in SSEDecoder().iter_bytes(iter(pieces))]
    ours = [(event.event, event.data) for event in parse(pieces)]
    assert ours == theirs
    assert len(ours) == raw.count(b'"part":0')  # one event per group of data lines


def test_ndjson_splitter_yields_complete_lines_only():
    splitter = NDJSONSplitter()
    lines = []
    for piece in awkward_pieces(b'{"a":1}\r\n\n  \n{"b":2}\n{"c":', seed=1):
        lines.extend(splitter.feed(piece))
    assert lines == [b'{"a":1}', b'{"b":2}']
    assert splitter.pending
    assert splitter.flush() == [b'{"c":']
    assert not splitter.pending and splitter.flush() == []


def test_encode_sse_round_trips_through_the_parser():
    raw = encode_sse(b'{"x":1}', "message_stop") + encode_sse(b"[DONE]")
    assert parse([raw]) == [SSEEvent("message_stop", '{"x":1}'), SSEEvent("message", "[DONE]")]
