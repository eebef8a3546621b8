"""What the ai-rate-limiting-advanced tests share (imported by its unique name)."""

from fastgw.ai import estimate_tokens
from fastgw.ai.usage import RESERVATION_MARGIN

PROMPT = "hi there"
MAX_TOKENS = 16
# One call's reservation in tokens: the prompt's (8, plus 8 per message, plus
# its estimate with the margin: 2 tokens, 3 reserved) and its max_tokens.
RESERVATION = 8 + 8 + 3 + MAX_TOKENS
assert estimate_tokens(PROMPT) == 2 and RESERVATION_MARGIN == 1.25
CHAT = {"model": "gpt-x", "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": PROMPT}]}
INPUT_COST, OUTPUT_COST = 2.0, 10.0
# The same in money: the prompt's reservation and max_tokens at the model's costs.
MONEY_RESERVATION = ((RESERVATION - MAX_TOKENS) * INPUT_COST + MAX_TOKENS * OUTPUT_COST) / 1e6


def proxy_config(base: str, **extra) -> dict:
    """ai-proxy to fastgw mock-llm's Chat Completions, with prices and usage in the log."""
    return {"route_type": "llm/v1/chat",
            "auth": {"header_name": "Authorization", "header_value": "Bearer provider-key"},
            "model": {"provider": "openai", "name": "gpt-x",
                      "options": {"upstream_url": base + "/v1/chat/completions",
                                  "input_cost": INPUT_COST, "output_cost": OUTPUT_COST}},
            "logging": {"log_statistics": True}, **extra}
