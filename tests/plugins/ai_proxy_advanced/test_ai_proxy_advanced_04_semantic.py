"""The semantic balancer in front of fastgw mock-llm (chat and embeddings):
each prompt goes to the target whose description is nearest, a prompt near
none to the CATCHALL target; descriptions are embedded once and a repeated
prompt costs no embeddings call; an embeddings model that is down or stalls
sends requests to the CATCHALL target in bounded time; the decisions are
counted and logged; the config errors."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    free_port,
    log_entries,
    metric_sum,
)
from fastgw.testing.mock_llm import running_mock

DESCRIPTIONS = {"coder": "python code: programming a function, fixing a bug",
                "writer": "a poem or a short story: fiction and poetry", "general": "CATCHALL"}


def semantic_route(name: str, base: str, embeddings_url: str) -> dict:
    targets = [{"route_type": "llm/v1/chat", "description": description,
                "model": {"provider": "openai", "name": model, "options": {
                    "upstream_url": base + "/v1/chat/completions"}},
                "auth": {"header_name": "Authorization", "header_value": "Bearer k"}}
               for model, description in DESCRIPTIONS.items()]
    return {"name": name, "paths": [f"/{name}"], "plugins": [{
        "name": "ai-proxy-advanced", "config": {
            "targets": targets, "balancer": {"algorithm": "semantic"},
            "embeddings": {"model": {"provider": "openai", "name": "text-embedding-3-small",
                                     "options": {"upstream_url": embeddings_url}},
                           "auth": {"header_name": "Authorization",
                                    "header_value": "Bearer k"}},
            "vectordb": {"strategy": "redis", "dimensions": 256, "distance_metric": "cosine",
                         "threshold": 0.75}}}]}


async def stalling(req, writer):
    await asyncio.sleep(10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("semantic") / "access.log"
    with running_mock() as mock, UpstreamServer(stalling) as stalled:
        base = mock.base_url
        doc = {"_format_version": "3.0", "services": [{"name": "llm", "url": base, "routes": [
            semantic_route("semantic", base, base + "/v1/embeddings"),
            semantic_route("down", base, f"http://127.0.0.1:{free_port()}/v1/embeddings"),
            semantic_route("stalled", base, f"http://127.0.0.1:{stalled.port}/v1/embeddings"),
        ]}], "plugins": [{"name": "file-log", "config": {"path": str(log_path)}},
                         {"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc) as gw:
            yield gw, mock, log_path


def ask(gw, path: str, text: str, probe: str = "") -> str:
    body = orjson.dumps({"messages": [{"role": "user", "content": text}]})
    status, _, answer = gw.request("POST", path, body, {"Content-Type": "application/json",
                                                        "X-Probe": probe})
    assert status == 200, answer
    return orjson.loads(answer)["model"]


def embedding_calls(mock) -> int:
    return sum(1 for request in mock.requests() if request["path"] == "/v1/embeddings")


def test_each_prompt_goes_to_the_nearest_description_or_the_catchall(gateway):
    gw, mock, _ = gateway
    assert ask(gw, "/semantic", "write python code for a function that sorts a list") == "coder"
    assert ask(gw, "/semantic", "fix the bug in this python function") == "coder"
    assert ask(gw, "/semantic", "write a poem about the sea") == "writer"
    assert ask(gw, "/semantic", "tell me a short story about a dragon") == "writer"
    assert ask(gw, "/semantic", "what is the capital of France") == "general"


def test_descriptions_are_embedded_once_and_a_repeated_prompt_costs_no_call(gateway):
    gw, mock, _ = gateway
    ask(gw, "/semantic", "write a poem about the moon")
    before = embedding_calls(mock)
    assert ask(gw, "/semantic", "write a poem about the moon") == "writer"
    assert embedding_calls(mock) == before  # the prompt's vector was cached
    ask(gw, "/semantic", "a brand new question about python code")
    assert embedding_calls(mock) == before + 1  # the prompt only, not the descriptions


@pytest.mark.parametrize("path, bound", [("/down", 1.0), ("/stalled", 3.0)])
def test_without_embeddings_requests_go_to_the_catchall_in_bounded_time(gateway, path, bound):
    gw, _, _ = gateway
    started = time.monotonic()
    assert ask(gw, path, "write python code for a function") == "general"
    assert time.monotonic() - started < bound
    # Left alone for a while: the next request does not wait for it again.
    started = time.monotonic()
    assert ask(gw, path, "fix the bug in this python function") == "general"
    assert time.monotonic() - started < 0.5


def test_the_decision_is_counted_and_logged(gateway):
    gw, _, log_path = gateway
    ask(gw, "/semantic", "fix the bug in this python function", probe="semantic")
    entry = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe") == "semantic")
    assert entry[0]["ai"]["proxy"]["decision"] == {
        "algorithm": "semantic", "target": "openai/coder", "reason": "semantic"}
    metrics = gw.admin("GET", "/metrics")[2].decode()
    name = "fastgw_ai_route_decisions_total"
    assert metric_sum(metrics, name, route="semantic", target="openai/general",
                      reason="catchall") >= 1
    assert metric_sum(metrics, name, route="down", reason="embeddings_unavailable") >= 1
