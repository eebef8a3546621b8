"""Helpers shared by the translator tests: fixtures, normalisation, awkward byte splits."""

from __future__ import annotations

import copy
import dataclasses
import random
import re
from pathlib import Path
from typing import Any

import orjson

from fastgw.ai import ModelConfig, StreamError, StreamTranslator, Usage, get_translator

FIXTURES = Path(__file__).parent / "fixtures"
# Ids that translators make up for providers that give none (Gemini, Ollama tool calls).
_GENERATED_CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def case_files(kind: str) -> list[Path]:
    """Golden cases of one kind (request, response, stream, error), one provider per folder."""
    return sorted(FIXTURES.glob(f"*/{kind}_*.json"))


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def client_request(case: dict[str, Any]) -> dict[str, Any]:
    """The case's OpenAI-format client request: a shared one by name, or inline, then edited."""
    spec = case.get("request")
    if spec is None:
        return {}
    request = (
        load(FIXTURES / "requests" / f"{spec}.json")
        if isinstance(spec, str)
        else copy.deepcopy(spec)
    )
    for key in case.get("drop", ()):
        request.pop(key, None)
    request.update(case.get("overrides", {}))
    return request


def model_config(case: dict[str, Any]) -> ModelConfig:
    return ModelConfig.from_kong(case["config"]["model"], case["config"].get("auth"))


def normalize(value: Any) -> Any:
    """Replace what changes per run (ids, timestamps) with placeholders."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        if "id" in value:
            value["id"] = "<id>"
        if "created" in value:
            value["created"] = 0
    _mask_call_ids(value)
    return value


def _mask_call_ids(value: Any) -> None:
    if isinstance(value, dict):
        for call in value.get("tool_calls") or ():
            if isinstance(call.get("id"), str) and _GENERATED_CALL_ID.match(call["id"]):
                call["id"] = "<call_id>"
        for child in value.values():
            _mask_call_ids(child)
    elif isinstance(value, list):
        for child in value:
            _mask_call_ids(child)


def usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    return dataclasses.asdict(usage) if usage is not None else None


def awkward_pieces(data: bytes, seed: int, smallest: int = 1, largest: int = 7) -> list[bytes]:
    """``data`` cut into pieces of random sizes, as a slow network would deliver it."""
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.randint(smallest, largest)
        pieces.append(data[start : start + size])
        start += size
    return pieces


def run_stream(
    translator: StreamTranslator, pieces: list[bytes]
) -> tuple[list[dict[str, Any]], StreamError | None]:
    """Feed every piece, then finish; return the chunks and the stream's error, if any."""
    chunks: list[dict[str, Any]] = []
    for piece in pieces:
        chunks.extend(translator.feed(piece))
    try:
        chunks.extend(translator.finish())
    except StreamError as error:
        return chunks, error
    return chunks, None


def stream_case(path: Path) -> tuple[dict[str, Any], bytes]:
    case = load(path)
    return case, (path.parent / case["stream_file"]).read_bytes()


def stream_translator_for(path: Path, case: dict[str, Any]) -> StreamTranslator:
    translator = get_translator(path.parent.name)
    return translator.stream_translator(
        case["route_type"], case["model_name"], client_request(case)
    )
