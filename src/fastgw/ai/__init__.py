"""LLM provider translation: pure functions from bytes and dicts to bytes and dicts.

The ai-proxy plugin drives it per request::

    translator = get_translator(model)                       # a ModelConfig
    upstream = translator.build_request(route_type, body, model)
    # non-streaming answer:
    answer, usage = translator.parse_response(route_type, status, raw, body, model_name=name)
    error = translator.parse_error(status, raw)               # non-2xx
    # streaming answer:
    stream = translator.stream_translator(route_type, name, body)
    for piece in upstream_body: send(b"".join(map(encode_openai_chunk, stream.feed(piece))))
    try: tail = stream.finish()                               # at upstream EOF
    except StreamError as failure: send(encode_openai_stream_error(failure.error))
    else: send(b"".join(map(encode_openai_chunk, tail)) + OPENAI_DONE)

Clients that speak Anthropic go through ``anthropic_format`` on both sides.
"""

from fastgw._core.token_estimate import estimate_tokens
from fastgw.ai.config import AuthConfig, GeminiOptions, ModelConfig, ModelOptions
from fastgw.ai.errors import (
    StreamCut,
    StreamError,
    TranslationError,
    UnsupportedRouteType,
    UpstreamFormatError,
)
from fastgw.ai.openai_format import (
    OPENAI_DONE,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_TYPES,
    encode_openai_chunk,
    encode_openai_stream_error,
    openai_error,
)
from fastgw.ai.providers import (
    PROVIDERS,
    ProviderTranslator,
    StreamTranslator,
    UpstreamRequest,
    get_translator,
)
from fastgw.ai.usage import Usage, cost, estimate_prompt_tokens

__all__ = [
    "OPENAI_DONE",
    "PROVIDERS",
    "ROUTE_CHAT",
    "ROUTE_COMPLETIONS",
    "ROUTE_EMBEDDINGS",
    "ROUTE_TYPES",
    "AuthConfig",
    "GeminiOptions",
    "ModelConfig",
    "ModelOptions",
    "ProviderTranslator",
    "StreamCut",
    "StreamError",
    "StreamTranslator",
    "TranslationError",
    "UnsupportedRouteType",
    "UpstreamFormatError",
    "UpstreamRequest",
    "Usage",
    "cost",
    "encode_openai_chunk",
    "encode_openai_stream_error",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "get_translator",
    "openai_error",
]
