"""Built-in mock LLM upstream (`fastgw mock-llm`): OpenAI, Anthropic, Gemini, Ollama, Azure.

Answers are deterministic functions of the request, so tests can assert on text and usage.
Request headers steer it per request: `x-mock-status: 429` answers with that error,
`x-mock-cut-after: N` drops a stream after N events, `x-mock-latency-ms: N` overrides the
latency, `x-mock-output-tokens: N` sets the answer length.
"""

from fastgw.mockllm.cli import build_parser, main
from fastgw.mockllm.server import serve

__all__ = ["build_parser", "main", "serve"]
