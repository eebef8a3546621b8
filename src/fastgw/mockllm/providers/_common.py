"""What every provider module shares: the handler context, the base class, input checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastgw.mockllm.replies import ApiError, JsonReply, default_message, json_reply
from fastgw.mockllm.textgen import ToolSpec

# A few model ids per family, for the list endpoints; any model name is accepted on requests.
MODEL_IDS = {
    "openai": ("gpt-4o-mini", "gpt-4.1-mini", "gpt-5.5", "o4-mini", "text-embedding-3-small"),
    "anthropic": ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7"),
    "gemini": ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"),
    "ollama": ("llama3.2:latest", "qwen2.5:7b", "mistral:latest"),
}
# Fixed creation time for listed models (2025-01-01), so that listings are reproducible.
MODELS_CREATED = 1735689600


@dataclass(slots=True)
class Call:
    """Everything a handler may look at for one request."""

    body: dict
    path_params: dict[str, str]
    query: dict[str, str]
    output_tokens: int
    started_ns: int


class Provider:
    """Base of the provider modules: each one renders errors in its own JSON shape."""

    name = "base"

    def error_payload(self, status: int, message: str, param: str | None) -> object:
        raise NotImplementedError

    def error_reply(
        self, status: int, message: str | None = None, param: str | None = None
    ) -> JsonReply:
        return json_reply(
            status, self.error_payload(status, message or default_message(status), param)
        )


def require_str(body: dict, key: str, message: str | None = None) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, message or f"Missing required parameter: '{key}'.", key)
    return value


def require_list(body: dict, key: str, allow_empty: bool = False) -> list:
    value = body.get(key)
    if not isinstance(value, list) or not (value or allow_empty):
        raise ApiError(400, f"Missing required parameter: '{key}' (a non-empty array).", key)
    return value


def optional_positive_int(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, f"Invalid '{param}': expected an integer >= 1, got {value!r}.", param)
    return value


def string_list(value: Any, param: str) -> list[str]:
    """A stop-sequence style parameter: absent, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ApiError(400, f"Invalid '{param}': expected a string or an array of strings.", param)


def as_list(value: Any) -> list:
    """`value` when it is a list, else an empty list: optional arrays of any shape."""
    return value if isinstance(value, list) else []


def text_of_parts(content: Any) -> str:
    """Text of a message content: a string, or a list of `{"type": "text", "text": ...}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def choose_tool(tools: list[ToolSpec], wanted_name: str | None) -> ToolSpec | None:
    """The named tool when it exists, else the first one; None without tools."""
    if not tools:
        return None
    for tool in tools:
        if tool.name == wanted_name:
            return tool
    return tools[0]


def openai_style_tools(raw_tools: Any) -> list[ToolSpec]:
    """`[{"type": "function", "function": {"name", "parameters"}}]`, as OpenAI and Ollama take."""
    tools = []
    for entry in as_list(raw_tools):
        function = entry.get("function") if isinstance(entry, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools.append(ToolSpec(function["name"], function.get("parameters") or {}))
    return tools
