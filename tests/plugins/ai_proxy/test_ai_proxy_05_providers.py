"""Every provider end to end: the OpenAI SDK through the gateway to
``fastgw mock-llm`` speaking that provider's API, whole and streamed, plus
the embeddings and legacy completions operations."""

import openai
import pytest
from ai_proxy_kit import ANTHROPIC_VERSION, PROVIDER_KEY

from fastgw.testing import GatewayProcess

QUESTION = [{"role": "user", "content": "Name a colour."}]
BEARER = {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"}


def providers(base_url: str) -> dict[str, tuple[dict, dict, str]]:
    """route name -> (model record, auth record, the path the provider is called on)."""
    return {
        "openai": ({"provider": "openai", "name": "gpt-4o-mini",
                    "options": {"upstream_url": base_url}}, BEARER, "/v1/chat/completions"),
        "compatible": ({"provider": "openai", "name": "local-llama",
                        "options": {"upstream_url": base_url + "/v1/chat/completions"}},
                       {}, "/v1/chat/completions"),
        "azure": ({"provider": "azure", "name": "gpt-4o",
                   "options": {"azure_instance": "contoso", "azure_deployment_id": "prod-4o",
                               "upstream_url": base_url}},
                  {"header_name": "api-key", "header_value": PROVIDER_KEY},
                  "/openai/deployments/prod-4o/chat/completions"),
        "anthropic": ({"provider": "anthropic", "name": "claude-test",
                       "options": {"anthropic_version": ANTHROPIC_VERSION,
                                   "upstream_url": base_url}},
                      {"header_name": "x-api-key", "header_value": PROVIDER_KEY},
                      "/v1/messages"),
        "gemini": ({"provider": "gemini", "name": "gemini-2.0-flash",
                    "options": {"upstream_url": base_url}},
                   {"param_name": "key", "param_value": PROVIDER_KEY, "param_location": "query"},
                   "/v1beta/models/gemini-2.0-flash:"),
        "mistral": ({"provider": "mistral", "name": "mistral-small-latest",
                     "options": {"mistral_format": "openai", "upstream_url": base_url}},
                    BEARER, "/v1/chat/completions"),
        "ollama": ({"provider": "ollama", "name": "llama3.2",
                    "options": {"upstream_url": base_url}}, {}, "/api/chat"),
        "llama2": ({"provider": "llama2", "name": "llama3.2",
                    "options": {"llama2_format": "ollama", "upstream_url": base_url}},
                   {}, "/api/chat"),
    }


@pytest.fixture(scope="module")
def gateway(mock_llm):
    routes = [
        {"name": name, "paths": [f"/{name}"], "plugins": [{"name": "ai-proxy", "config": {
            "route_type": "llm/v1/chat", "model": model, "auth": auth}}]}
        for name, (model, auth, _) in providers(mock_llm.base_url).items()
    ]
    for provider, route_type in (("openai", "llm/v1/embeddings"), ("mistral", "llm/v1/embeddings"),
                                 ("openai", "llm/v1/completions")):
        model, auth, _ = providers(mock_llm.base_url)[provider]
        name = f"{provider}-{route_type.rsplit('/', 1)[1]}"
        model = {**model, "name": "text-embedding-3-small" if "embed" in name else "gpt-3.5"}
        routes.append({"name": name, "paths": [f"/{name}"], "plugins": [{
            "name": "ai-proxy",
            "config": {"route_type": route_type, "model": model, "auth": auth}}]})
    doc = {"_format_version": "3.0",
           "services": [{"name": "llm", "url": mock_llm.base_url, "routes": routes}]}
    with GatewayProcess(doc) as gw:
        yield gw


def client(gw, name: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-client", max_retries=0,
                         base_url=f"http://127.0.0.1:{gw.port}/{name}/v1")


def upstream_call(mock) -> dict:
    seen = mock.requests()[-1]
    seen["headers"] = {name.lower(): value for name, value in seen["headers"]}
    return seen


PROVIDER_ROUTES = ("openai", "compatible", "azure", "anthropic", "gemini", "mistral", "ollama",
                   "llama2")


@pytest.mark.parametrize("name", PROVIDER_ROUTES)
def test_each_provider_answers_a_whole_chat(gateway, mock_llm, name):
    model, auth, path = providers(mock_llm.base_url)[name]

    completion = client(gateway, name).chat.completions.create(
        model=model["name"], messages=QUESTION)

    assert completion.choices[0].message.content.startswith("Mock answer to: Name a colour.")
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens >= completion.usage.prompt_tokens
    seen = upstream_call(mock_llm)
    assert seen["path"].startswith(path)
    if auth.get("header_name"):
        assert seen["headers"][auth["header_name"].lower()] == auth["header_value"]
    elif auth.get("param_name"):
        assert f"key={PROVIDER_KEY}" in seen["query"]
    else:
        assert "authorization" not in seen["headers"]  # the client's key stays behind
    if name == "azure":
        assert "api-version=" in seen["query"]


@pytest.mark.parametrize("name", PROVIDER_ROUTES)
def test_each_provider_streams_a_chat(gateway, mock_llm, name):
    model, _, _ = providers(mock_llm.base_url)[name]
    chat = client(gateway, name).chat.completions
    whole = chat.create(model=model["name"], messages=QUESTION)

    with chat.stream(model=model["name"], messages=QUESTION,
                     stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == whole.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.completion_tokens > 0


@pytest.mark.parametrize("name", ["openai-embeddings", "mistral-embeddings"])
def test_embeddings(gateway, name):
    result = client(gateway, name).embeddings.create(
        model="text-embedding-3-small", input=["red", "green"])

    assert len(result.data) == 2
    assert len(result.data[0].embedding) > 8
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0


def test_legacy_completions(gateway):
    result = client(gateway, "openai-completions").completions.create(
        model="gpt-3.5", prompt="Once upon a time")

    assert result.object == "text_completion"
    assert result.choices[0].text
    assert result.usage.completion_tokens > 0
