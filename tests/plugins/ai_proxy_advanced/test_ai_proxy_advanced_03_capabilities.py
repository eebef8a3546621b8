"""Targets only get the requests they can serve: an image goes to the model
that takes images, a prompt too long for a small window goes to the large
one, whatever the algorithm; when no target can serve a request the client
gets a 400 in its front door's shape that says why, and ai-proxy's single
model refuses what it cannot take the same way. lowest-cost sends each
request to the cheapest target that can serve it, and fails over to the
next cheapest. complexity sends each prompt to its tier's targets (a tier
without one: the next more capable), and says why when asked. With a budget
in money, a call that would leave too little of it, or that it refuses,
goes to a cheaper tier instead, and the budget's accounting stays exact."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, free_port, log_entries, metric_sum

ANSWER = orjson.dumps({
    "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
})


async def answer(req, writer):
    if req.target.startswith("/fail/"):
        body = b'{"error": {"message": "down", "type": "server"}}'
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)


def target(base: str, name: str, **options) -> dict:
    return {"route_type": "llm/v1/chat",
            "model": {"provider": "openai", "name": name, "options": {
                "upstream_url": f"{base}/{name}/v1/chat/completions", **options}},
            "auth": {"header_name": "Authorization", "header_value": "Bearer k"}}


def advanced(name: str, targets: list, llm_format: str = "openai", **balancer) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": [{
        "name": "ai-proxy-advanced", "config": {
            "targets": targets, "llm_format": llm_format, "max_request_body_size": 4_000_000,
            "balancer": {"algorithm": "round-robin", **balancer}}}]}


def priced(base: str, name: str, input_cost: float, output_cost: float, **options) -> dict:
    return target(base, name, input_cost=input_cost, output_cost=output_cost, **options)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("capabilities") / "access.log"
    with UpstreamServer(answer) as up:
        base = f"http://127.0.0.1:{up.port}"
        small = target(base, "small", context_window=2_000, capabilities=["tools"])
        vision = target(base, "vision", context_window=100_000,
                        capabilities=["tools", "images"])
        routes = [
            advanced("mixed", [small, vision]),
            advanced("blind", [small, target(base, "other", capabilities=[])]),
            advanced("blind-anthropic", [small], llm_format="anthropic"),
            advanced("tiers", [
                {**target(base, "small"), "tier": "simple"},
                {**target(base, "mid"), "tier": "medium"},
                {**target(base, "big"), "tier": "complex"}],
                algorithm="complexity", expose_route_reason=True),
            advanced("cheapest", [
                priced(base, "premium", 10.0, 30.0, context_window=1_000_000,
                       capabilities=["tools", "images"]),
                priced(base, "budget", 0.1, 0.4, context_window=2_000, capabilities=["tools"]),
                priced(base, "middle", 1.0, 4.0, context_window=100_000,
                       capabilities=["tools", "images"])], algorithm="lowest-cost"),
            advanced("cheapest-failing", [
                priced(f"{base}/fail", "budget", 0.1, 0.4),
                priced(base, "middle", 1.0, 4.0), priced(base, "premium", 10.0, 30.0)],
                algorithm="lowest-cost", failover_criteria=["error", "timeout", "http_500",
                                                            "non_idempotent"]),
            # A model the shipped table knows: gpt-3.5-turbo takes no images.
            {"name": "single", "paths": ["/single"], "plugins": [{
                "name": "ai-proxy", "config": target(base, "gpt-3.5-turbo")}]},
        ]
        premium = {**priced(base, "premium", 40_000.0, 80_000.0), "tier": "complex"}
        budget = {**priced(base, "budget", 1.0, 2.0), "tier": "simple", "priority": 2}
        routes.append({"name": "budgeted", "paths": ["/budgeted"], "plugins": [
            {"name": "key-auth", "config": {}},
            {"name": "ai-proxy-advanced", "config": {
                "targets": [premium, budget], "balancer": {
                    "algorithm": "priority",
                    "budget_downgrade": {"tier": "simple", "below_share": 0.5}}}},
            {"name": "ai-rate-limiting-advanced", "config": {
                "tokens_count_strategy": "cost", "identifier": "consumer",
                "llm_providers": [{"name": "openai", "window_size": 3600, "limit": 5}]}}]})
        # The cheaper tier's only target is down: once its circuit is open,
        # calls stay on their first choice.
        dead = {**priced(f"http://127.0.0.1:{free_port()}", "budget", 1.0, 2.0),
                "tier": "simple", "priority": 2}
        routes.append({"name": "budgeted-down", "paths": ["/budgeted-down"], "plugins": [
            {"name": "key-auth", "config": {}},
            {"name": "ai-proxy-advanced", "config": {
                "targets": [premium, dead], "balancer": {
                    "algorithm": "priority", "max_fails": 1, "fail_timeout": 60000,
                    "expose_route_reason": True,
                    "budget_downgrade": {"tier": "simple", "below_share": 0.99}}}},
            {"name": "ai-rate-limiting-advanced", "config": {
                "tokens_count_strategy": "cost", "identifier": "consumer",
                "llm_providers": [{"name": "openai", "window_size": 3600, "limit": 50}]}}]})
        doc = {"_format_version": "3.0",
               "consumers": [{"username": name, "keyauth_credentials": [{"key": name}]}
                             for name in ("spender", "big-asker", "unlucky")],
               "services": [{"name": "llm", "url": base, "routes": routes}],
               "plugins": [{"name": "file-log", "config": {"path": str(log_path)}},
                           {"name": "prometheus", "config": {"ai_metrics": True}}]}
        with GatewayProcess(doc) as gw:
            yield gw, up, log_path


def chat(content, **extra) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}],
                         **extra})


IMAGE = [{"type": "text", "text": "what is this"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
JSON = {"Content-Type": "application/json"}


def served_by(up, before: int) -> Counter:
    return Counter(request.target.split("/")[1] for request in up.requests[before:])


def test_each_request_goes_only_to_a_target_that_can_serve_it(gateway):
    gw, up, _ = gateway
    before = len(up.requests)
    for _ in range(4):
        assert gw.request("POST", "/mixed", chat("hi"), JSON)[0] == 200
    assert served_by(up, before) == Counter({"small": 2, "vision": 2})  # round-robin
    before = len(up.requests)
    for _ in range(4):
        assert gw.request("POST", "/mixed", chat(IMAGE), JSON)[0] == 200
        assert gw.request("POST", "/mixed", chat("word " * 3_000), JSON)[0] == 200
    assert served_by(up, before) == Counter({"vision": 8})


def test_the_log_names_the_targets_passed_over(gateway):
    gw, _, log_path = gateway
    gw.request("POST", "/mixed", chat(IMAGE, stream=False), {**JSON, "X-Probe": "unfit"})
    entry = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe") == "unfit")
    assert entry[0]["ai"]["proxy"]["unfit"] == [
        {"target": "openai/small", "reason": "does not accept images"}]


@pytest.mark.parametrize("path, body, message", [
    ("/blind", chat(IMAGE), "no target accepts images"),
    ("/mixed", chat("word " * 200_000), None),
    ("/single", chat(IMAGE), "openai/gpt-3.5-turbo does not accept images"),
])
def test_a_request_no_target_can_serve_is_a_400_that_says_why(gateway, path, body, message):
    gw, up, _ = gateway
    before = len(up.requests)
    status, _, answer_body = gw.request("POST", path, body, JSON)
    error = orjson.loads(answer_body)["error"]
    assert status == 400 and len(up.requests) == before
    if message is None:
        assert error["message"].startswith("a prompt of ")
        assert error["message"].endswith(" tokens exceeds every target's context window")
    else:
        assert error["message"] == message


def test_the_anthropic_front_door_refuses_in_its_own_shape(gateway):
    gw, up, _ = gateway
    body = orjson.dumps({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "AAAA"}}]}]})
    status, _, answer_body = gw.request("POST", "/blind-anthropic", body, JSON)
    answer = orjson.loads(answer_body)
    assert status == 400 and answer["type"] == "error"
    assert answer["error"]["message"] == "no target accepts images"


def test_lowest_cost_picks_the_cheapest_target_that_can_serve(gateway):
    gw, up, _ = gateway
    cases = [(chat("hi"), "budget"), (chat(IMAGE), "middle"),
             (chat("word " * 3_000), "middle"), (chat("word " * 200_000), "premium"),
             (chat("hi", max_tokens=5_000), "middle")]  # 5,000 to write: past budget's window
    for body, expected in cases:
        before = len(up.requests)
        status, headers, _ = gw.request("POST", "/cheapest", body, JSON)
        assert status == 200 and served_by(up, before) == Counter({expected: 1}), expected


def test_lowest_cost_fails_over_to_the_next_cheapest(gateway):
    gw, up, _ = gateway
    before = len(up.requests)
    status, _, _ = gw.request("POST", "/cheapest-failing", chat("hi"), JSON)
    assert status == 200
    assert [r.target.split("/")[1:3] for r in up.requests[before:]] == [
        ["fail", "budget"], ["middle", "v1"]]


def test_each_decision_is_counted_and_logged(gateway):
    gw, _, log_path = gateway
    gw.request("POST", "/cheapest", chat("hi"), {**JSON, "X-Probe": "decision"})
    gw.request("POST", "/cheapest-failing", chat("hi"), JSON)
    entry = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe") == "decision")
    assert entry[0]["ai"]["proxy"]["decision"] == {
        "algorithm": "lowest-cost", "target": "openai/budget", "reason": "cheapest"}
    metrics = gw.admin("GET", "/metrics")[2].decode()
    name = "fastgw_ai_route_decisions_total"
    assert metric_sum(metrics, name, route="cheapest", algorithm="lowest-cost",
                      target="openai/budget", reason="cheapest") >= 2
    assert metric_sum(metrics, name, route="cheapest-failing", target="openai/middle",
                      reason="failover") >= 1
    assert metric_sum(metrics, name, route="mixed", algorithm="round-robin",
                      reason="balancer") >= 1


@pytest.mark.parametrize("prompt, tier, served", [
    ("hello there", "simple", "small"),
    ("explain how a hash table works and when to use one", "medium", "mid"),
    ("design a scalable architecture for a ride-sharing app with a database schema, caching, "
     "message queues and surge pricing", "complex", "big"),
    # No reasoning target: the next more capable tier has none either, so the
    # tiers below, the most capable first.
    ("prove that the square root of 2 is irrational", "reasoning", "big"),
])
def test_complexity_routes_each_prompt_to_its_tier(gateway, prompt, tier, served):
    gw, up, _ = gateway
    before = len(up.requests)
    status, headers, _ = gw.request("POST", "/tiers", chat(prompt), JSON)
    assert status == 200 and served_by(up, before) == Counter({served: 1})
    assert headers["x-fastgw-route-reason"].startswith(tier + " (")


def test_a_low_budget_falls_to_the_cheaper_tier_and_stays_exact(gateway):
    gw, up, log_path = gateway
    served, downgraded = [], []
    for n in range(8):
        before = len(up.requests)
        status, headers, _ = gw.request("POST", "/budgeted", chat("hi", max_tokens=10),
                                        {**JSON, "apikey": "spender", "X-Probe": f"b{n}"})
        assert status == 200
        served += list(served_by(up, before))
        downgraded.append(headers.get("x-fastgw-downgraded"))
    # Each premium call costs $0.28 and reserves about $1.20 of the $5 hour:
    # once a reservation would leave less than half, calls go to the budget tier.
    switch = served.index("budget")
    assert switch >= 3 and served == ["premium"] * switch + ["budget"] * (8 - switch)
    assert downgraded[:switch] == [None] * switch
    assert all(note.startswith("openai/premium -> openai/budget (") and
               "of the budget left" in note for note in downgraded[switch:])
    # Exact: what the window counts is what the calls cost (the downgraded
    # calls' first reservations were given back).
    entries = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe", "")
                          .startswith("b"), count=8)
    used = sum(entry["ai"]["rate_limiting"]["used"] for entry in entries)
    assert [e["ai"]["proxy"].get("downgraded", {}).get("to") for e in entries][switch:] == \
        ["openai/budget"] * (8 - switch)
    status, headers, _ = gw.request("POST", "/budgeted", chat("hi", max_tokens=10),
                                    {**JSON, "apikey": "spender", "X-Probe": "last"})
    last = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe") == "last")
    remaining = float(headers["x-ai-ratelimit-remaining-hour-openai"])
    assert remaining == pytest.approx(5 - used - last[0]["ai"]["rate_limiting"]["reserved"],
                                      abs=1e-6)


def test_a_call_the_budget_refuses_goes_to_the_cheaper_tier(gateway):
    gw, up, _ = gateway
    before = len(up.requests)
    status, headers, _ = gw.request("POST", "/budgeted", chat("hi", max_tokens=1_000),
                                    {**JSON, "apikey": "big-asker"})
    assert status == 200 and served_by(up, before) == Counter({"budget": 1})
    assert headers["x-fastgw-downgraded"] == "openai/premium -> openai/budget (over the budget)"


def test_with_the_cheaper_tier_down_a_call_stays_on_its_first_choice(gateway):
    gw, up, log_path = gateway
    headers = {**JSON, "apikey": "unlucky"}
    # The first call falls to the cheaper tier, which is down: its circuit opens.
    status, _, _ = gw.request("POST", "/budgeted-down", chat("hi", max_tokens=10),
                              {**headers, "X-Probe": "down-1"})
    assert status == 502
    before = len(up.requests)
    status, answer_headers, _ = gw.request("POST", "/budgeted-down",
                                           chat("hi", max_tokens=10),
                                           {**headers, "X-Probe": "down-2"})
    assert status == 200 and served_by(up, before) == Counter({"premium": 1})
    # Not a downgrade: neither the headers nor the log say one happened.
    assert "x-fastgw-downgraded" not in answer_headers
    assert answer_headers["x-fastgw-route-reason"] == "balancer"
    [entry] = log_entries(log_path, lambda e: e["request"]["headers"].get("x-probe")
                          == "down-2")
    section = entry["ai"]["proxy"]
    assert [t["outcome"] for t in section["tries"]] == ["ok"]
    assert section["decision"]["reason"] == "balancer" and "downgraded" not in section
