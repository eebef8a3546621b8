"""ai-proxy: one LLM behind an OpenAI or Anthropic front door, whatever its provider speaks."""
