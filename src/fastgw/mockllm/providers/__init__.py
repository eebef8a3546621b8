"""One module per upstream API shape the mock speaks."""

from fastgw.mockllm.providers._common import Call, Provider
from fastgw.mockllm.providers.anthropic import AnthropicProvider
from fastgw.mockllm.providers.gemini import GeminiProvider
from fastgw.mockllm.providers.ollama import OllamaProvider
from fastgw.mockllm.providers.openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "Call",
    "GeminiProvider",
    "OllamaProvider",
    "OpenAIProvider",
    "Provider",
]
