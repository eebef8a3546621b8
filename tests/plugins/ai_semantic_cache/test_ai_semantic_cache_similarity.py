"""ai-semantic-cache's similarity layer through the real gateway, with
fastgw mock-llm's deterministic embeddings: a near prompt is served the
answer of a former one (within vectordb.threshold), another question is
not; only within the same context (parameters, model, tenant); the last
message_countback messages are compared; with the embeddings model down,
stop_on_failure decides."""

import orjson
import pytest

from fastgw.testing import free_port, log_entries, logged_gateway
from fastgw.testing.mock_llm import running_mock

QUESTION = "What is the capital of France?"
NEAR = "What's the capital of France?"  # cosine 0.896 with the mock's embeddings
OTHER = "What is the capital of Spain?"  # cosine 0.832: past the threshold


def route(name: str, base: str, embeddings_url: str, **extra) -> dict:
    proxy = {"route_type": "llm/v1/chat",
             "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
             "model": {"provider": "openai", "name": "m",
                       "options": {"upstream_url": base + "/v1/chat/completions"}}}
    cache = {"embeddings": {"auth": {"header_name": "Authorization", "header_value": "Bearer k"},
                            "model": {"provider": "openai", "name": "text-embedding-3-small",
                                      "options": {"upstream_url": embeddings_url}}},
             "vectordb": {"strategy": "memory", "dimensions": 64, "distance_metric": "cosine",
                          "threshold": 0.15},
             **extra}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy}, {"name": "ai-semantic-cache", "config": cache}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("semantic") / "access.log"
    with running_mock() as mock:
        base = mock.base_url
        embeddings = base + "/v1/embeddings"
        nowhere = f"http://127.0.0.1:{free_port()}/v1/embeddings"
        routes = [route("similar", base, embeddings),
                  route("both", base, embeddings, exact_caching=True),
                  route("history", base, embeddings, message_countback=1),
                  route("down", base, nowhere),
                  route("down-strict", base, nowhere, stop_on_failure=True)]
        with logged_gateway(base, routes, log_path) as gw:
            gw.mock = mock
            yield gw


def ask(gw, path: str, *messages: str, **extra):
    body = {"model": "m", "messages": [{"role": "user", "content": text} for text in messages],
            **extra}
    return gw.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})


def chat_calls(gw) -> int:
    return sum(1 for r in gw.mock.requests() if r["path"].endswith("/chat/completions"))


def test_a_near_prompt_is_served_the_answer_of_a_former_one(gateway):
    status, headers, first = ask(gateway, "/similar", QUESTION)
    assert status == 200 and headers["x-cache-status"] == "Miss"
    before = chat_calls(gateway)
    status, headers, near = ask(gateway, "/similar", NEAR)
    assert headers["x-cache-status"] == "Hit"
    assert 0.85 <= float(headers["x-cache-similarity"]) < 1.0
    assert chat_calls(gateway) == before
    assert orjson.loads(near)["choices"] == orjson.loads(first)["choices"]
    [entry] = log_entries(gateway.access_log, lambda e: e["route"]["name"] == "similar" and
                          e["ai"]["cache"]["status"] == "hit", 1)
    assert entry["ai"]["cache"]["layer"] == "similarity"
    assert entry["ai"]["cache"]["similarity"] == float(headers["x-cache-similarity"])


def test_another_question_is_not_served(gateway):
    ask(gateway, "/similar", QUESTION)
    assert ask(gateway, "/similar", OTHER)[1]["x-cache-status"] == "Miss"


def test_only_within_the_same_parameters(gateway):
    ask(gateway, "/similar", QUESTION)
    status, headers, _ = ask(gateway, "/similar", NEAR, temperature=0.9)
    assert headers["x-cache-status"] == "Miss"


def test_the_exact_layer_answers_first_when_both_are_on(gateway):
    ask(gateway, "/both", QUESTION)
    status, headers, _ = ask(gateway, "/both", QUESTION)
    assert headers["x-cache-status"] == "Hit" and "x-cache-similarity" not in headers


def test_only_the_last_messages_are_compared(gateway):
    ask(gateway, "/history", "Hello there", "ok", QUESTION)
    status, headers, _ = ask(gateway, "/history", "A different start", "sure", NEAR)
    assert headers["x-cache-status"] == "Hit"


def test_without_embeddings_stop_on_failure_decides(gateway):
    status, headers, _ = ask(gateway, "/down", QUESTION)
    assert status == 200 and headers["x-cache-status"] == "Bypass"
    status, _, body = ask(gateway, "/down-strict", QUESTION)
    assert status == 500
    assert orjson.loads(body)["error"]["message"] == "An unexpected error occurred"
