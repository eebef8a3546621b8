"""Deterministic "model": token counting, answer text and tool calls, shared by every provider.

Each provider module turns its own request shape into a `ChatRequest`, calls `generate`, and
renders the resulting `Generation` in its own response shape. Keeping the model here means
every provider counts tokens and words its answers identically, which gateway tests rely on
(for example when they compare usage across a translated request).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass, field

import orjson
import xxhash

from fastgw.mockllm.schema_example import example_from_schema

# A "token" is a word or a single punctuation mark: simple, deterministic, and close enough to
# real tokenizers for usage accounting tests.
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# The same tokens with their leading whitespace, so that the pieces concatenate back to the text.
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")

DEFAULT_OUTPUT_TOKENS = 16
# Bounds what one request can make the mock build in memory.
MAX_OUTPUT_TOKENS = 100_000
_HEAD_WORDS = 8
_QUOTE_CHARS = 200
_FILLER_WORDS = (
    "this is a deterministic reply from the fastgw mock model that pads its answer with "
    "plain words so that streams and usage counts stay easy to check in tests and demos"
).split()

# Finish reasons, provider-neutral; each provider maps them to its own vocabulary.
FINISH_STOP = "stop"
FINISH_STOP_SEQUENCE = "stop_sequence"
FINISH_LENGTH = "length"
FINISH_TOOL_CALL = "tool_call"


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def split_pieces(text: str) -> list[str]:
    """Split text into one piece per token; the pieces concatenate back to `text`."""
    pieces = _PIECE_RE.findall(text)
    covered = sum(map(len, pieces))
    if covered < len(text):
        # Trailing whitespace belongs to no token; keep it so that the text round-trips.
        if pieces:
            pieces[-1] += text[covered:]
        else:
            pieces.append(text)
    return pieces


_RUN_TAG = os.urandom(3).hex()
_id_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """A process-unique id such as `chatcmpl-5f2a9c000000000042` (cheaper than uuid4)."""
    return f"{prefix}{_RUN_TAG}{next(_id_counter):012d}"


@dataclass(slots=True)
class ToolSpec:
    name: str
    parameters: dict


@dataclass(slots=True)
class ChatRequest:
    """What the mock model needs to know about a request, whatever the provider."""

    model: str
    prompt_text: str  # everything the model reads; only used for the prompt token count
    last_user_text: str = ""
    tool_result: str | None = None  # set when the conversation ends with a tool result
    tool_to_call: ToolSpec | None = None  # decided by the provider from tools + tool_choice
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    output_tokens: int = DEFAULT_OUTPUT_TOKENS  # natural answer length before any limit


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict
    arguments_json: str


@dataclass(frozen=True, slots=True)
class Generation:
    """A finished answer; shared between requests with identical inputs, so immutable."""

    text: str
    pieces: tuple[str, ...]  # streamed deltas: answer text pieces, or tool-call argument pieces
    finish: str
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None
    tool_call: ToolCall | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def generate(request: ChatRequest, tool_call_id_prefix: str = "call_") -> Generation:
    """The mock model's answer: a tool call when the provider chose a tool, else text."""
    tool = request.tool_to_call
    if tool is None:
        return _text_generation(
            request.prompt_text,
            request.last_user_text,
            request.tool_result,
            request.max_tokens,
            tuple(request.stop),
            request.output_tokens,
        )
    arguments = example_from_schema(tool.parameters, hint_text=request.last_user_text)
    if not isinstance(arguments, dict):
        arguments = {}
    arguments_json = orjson.dumps(arguments).decode()
    pieces = tuple(split_pieces(arguments_json))
    return Generation(
        text="",
        pieces=pieces,
        finish=FINISH_TOOL_CALL,
        prompt_tokens=count_tokens(request.prompt_text),
        completion_tokens=count_tokens(tool.name) + len(pieces),
        # Each call gets a fresh id, which is why tool calls bypass the cache below.
        tool_call=ToolCall(new_id(tool_call_id_prefix), tool.name, arguments, arguments_json),
    )


# PERF: tokenising the prompt and building the answer is most of a request's Python time;
# load tests repeat the same few bodies, so identical inputs reuse the (immutable) result.
@functools.lru_cache(maxsize=4096)
def _text_generation(
    prompt_text: str,
    last_user_text: str,
    tool_result: str | None,
    max_tokens: int | None,
    stop: tuple[str, ...],
    output_tokens: int,
) -> Generation:
    pieces = _answer_pieces(last_user_text, tool_result, output_tokens)
    finish = FINISH_STOP
    stop_sequence = None
    cut_at, matched = _first_stop("".join(pieces), stop)
    if matched is not None:
        pieces = _cut_pieces(pieces, cut_at)
        finish, stop_sequence = FINISH_STOP_SEQUENCE, matched
    if max_tokens is not None and len(pieces) > max_tokens:
        # The limit is reached before the stop sequence would have been produced.
        pieces = pieces[:max_tokens]
        finish, stop_sequence = FINISH_LENGTH, None
    return Generation(
        text="".join(pieces),
        pieces=tuple(pieces),
        finish=finish,
        prompt_tokens=count_tokens(prompt_text),
        completion_tokens=len(pieces),
        stop_sequence=stop_sequence,
    )


def _answer_pieces(last_user_text: str, tool_result: str | None, output_tokens: int) -> list[str]:
    if tool_result is not None:
        quote = " ".join(tool_result.split())[:_QUOTE_CHARS]
        head = f'Mock answer from the tool result: "{quote}".'
        seed_text = tool_result
    else:
        words = last_user_text.split()
        if words:
            ellipsis = "..." if len(words) > _HEAD_WORDS else ""
            head = "Mock answer to: " + " ".join(words[:_HEAD_WORDS]) + ellipsis
        else:
            head = "Mock answer to your message."
        seed_text = last_user_text
    pieces = split_pieces(head)
    # Pad from a prompt-dependent offset so that different prompts get different fillers.
    offset = xxhash.xxh32_intdigest(seed_text.encode()) % len(_FILLER_WORDS)
    missing = output_tokens - len(pieces)
    for index in range(max(missing, 0)):
        pieces.append(" " + _FILLER_WORDS[(offset + index) % len(_FILLER_WORDS)])
    return pieces


def _first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str | None]:
    best_at, best = len(text), None
    for stop in stops:
        at = text.find(stop) if stop else -1
        if 0 <= at < best_at:
            best_at, best = at, stop
    return best_at, best


def _cut_pieces(pieces: list[str], cut_at: int) -> list[str]:
    kept: list[str] = []
    position = 0
    for piece in pieces:
        end = position + len(piece)
        if end > cut_at:
            partial = piece[: cut_at - position]
            if partial.strip():
                kept.append(partial)
            elif partial and kept:
                # Bare whitespace is no token: attach it so that the text stays an exact prefix.
                kept[-1] += partial
            break
        kept.append(piece)
        position = end
    return kept
