"""The AI metrics counted by ai-proxy reach GET /metrics, summed over the
workers, when a prometheus plugin asks for ai_metrics."""


import openai
from ai_proxy_kit import PROVIDER_KEY

from fastgw.testing import GatewayProcess, metric_sum


def test_ai_metrics_are_scraped_after_chats(mock_llm):
    config = {
        "route_type": "llm/v1/chat",
        "model": {"provider": "openai", "name": "gpt-test",
                  "options": {"upstream_url": mock_llm.base_url,
                              "input_cost": 1.0, "output_cost": 2.0}},
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
    }
    doc = {
        "_format_version": "3.0",
        "services": [{"name": "llm", "url": mock_llm.base_url, "routes": [
            {"name": "chat", "paths": ["/chat"],
             "plugins": [{"name": "ai-proxy", "config": config}]}]}],
        "plugins": [{"name": "prometheus", "config": {"ai_metrics": True}}],
    }
    with GatewayProcess(doc, workers=2) as gw:
        usage = []
        for _ in range(6):
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/chat", api_key="x",
                                   max_retries=0)
            reply = client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hello there"}])
            usage.append(reply.usage)
            client.close()
        _, _, body = gw.admin("GET", "/metrics")
    text = body.decode()
    assert metric_sum(text, "fastgw_ai_llm_requests_total", provider="openai",
                 model="gpt-test") == 6
    prompt = sum(u.prompt_tokens for u in usage)
    completion = sum(u.completion_tokens for u in usage)
    assert metric_sum(text, "fastgw_ai_llm_tokens_total", token_type="prompt_tokens") == prompt
    assert metric_sum(text, "fastgw_ai_llm_tokens_total",
                 token_type="completion_tokens") == completion
    expected_cost = (prompt * 1.0 + completion * 2.0) / 1_000_000
    assert abs(metric_sum(text, "fastgw_ai_llm_cost_total") - expected_cost) < 1e-9
