"""One translator per LLM provider, looked up by Kong's provider name."""

from __future__ import annotations

from fastgw.ai.config import ModelConfig
from fastgw.ai.providers.anthropic import AnthropicTranslator
from fastgw.ai.providers.azure import AzureTranslator
from fastgw.ai.providers.base import ProviderTranslator, StreamTranslator, UpstreamRequest
from fastgw.ai.providers.gemini import GeminiTranslator
from fastgw.ai.providers.mistral import MistralTranslator
from fastgw.ai.providers.ollama import OllamaTranslator
from fastgw.ai.providers.openai import OpenAITranslator

# Translators are stateless: one shared instance each.
TRANSLATORS: dict[str, ProviderTranslator] = {
    translator.name: translator
    for translator in (
        OpenAITranslator(),
        AzureTranslator(),
        AnthropicTranslator(),
        GeminiTranslator(),
        MistralTranslator(),
        OllamaTranslator(),
    )
}
PROVIDERS = tuple(TRANSLATORS)


def get_translator(model: ModelConfig | str) -> ProviderTranslator:
    """The translator for a model config (or a provider name).

    Kong's ``mistral_format: ollama`` means a Mistral model served by Ollama, so
    it speaks Ollama's API.
    """
    if isinstance(model, ModelConfig):
        provider = model.provider
        if provider == "mistral" and model.options.mistral_format == "ollama":
            provider = "ollama"
    else:
        provider = model
    try:
        return TRANSLATORS[provider]
    except KeyError:
        raise ValueError(
            f"unknown LLM provider '{provider}'; known: {', '.join(PROVIDERS)}"
        ) from None


__all__ = [
    "PROVIDERS",
    "TRANSLATORS",
    "ProviderTranslator",
    "StreamTranslator",
    "UpstreamRequest",
    "get_translator",
]
