"""Mistral's La Plateforme: OpenAI's chat and embeddings formats, with a few differences.

Mistral rejects fields it does not know (422): OpenAI-only fields that ask
for something (log probabilities, biases, top_k, audio) are refused with a 400
naming them, the hints among them (user, metadata, store, service tier) are
dropped, ``seed`` is spelled ``random_seed``, and embeddings are always asked
as floats and base64-encoded here when the client wants that (the openai SDK
asks for base64 by default). Usage arrives in the last stream chunk unasked.
"""

from __future__ import annotations

from typing import ClassVar

from fastgw.ai.config import ModelConfig
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_EMBEDDINGS
from fastgw.ai.providers.openai import OpenAITranslator


class MistralTranslator(OpenAITranslator):
    name = "mistral"
    default_base_url = "https://api.mistral.ai"
    route_types = frozenset((ROUTE_CHAT, ROUTE_EMBEDDINGS))
    paths: ClassVar[dict[str, str]] = {
        ROUTE_CHAT: "/v1/chat/completions",
        ROUTE_EMBEDDINGS: "/v1/embeddings",
    }
    dropped_fields: ClassVar[frozenset[str]] = frozenset(
        ("stream_options", "user", "service_tier", "store", "metadata", "encoding_format")
    )
    untranslatable_fields = ("top_k", "logprobs", "top_logprobs", "logit_bias", "modalities",
                             "audio")
    renamed_fields: ClassVar[dict[str, str]] = {
        "seed": "random_seed",
        "max_completion_tokens": "max_tokens",
    }
    encodes_embeddings = True

    def requests_stream_usage(self, model: ModelConfig) -> bool:
        return False
