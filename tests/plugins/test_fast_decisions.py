"""One answer, whichever path: the same requests through plugins deciding
from the core (fast decisions) and through the same plugins forced onto the
runner (FASTGW_NO_FAST_DECISIONS=1) give the same status, headers and body
byte for byte, less the values that change per request or per second."""

import re
import socket

import pytest

from fastgw.testing import (
    GatewayProcess,
    UpstreamServer,
    parse_responses,
    read_until_closed,
    service_doc,
)

ROUTES = [
    {"name": "limited", "paths": ["/limited"],
     "plugins": [{"name": "rate-limiting", "config": {"minute": 2, "policy": "local"}}]},
    {"name": "limited-quiet", "paths": ["/quiet"],
     "plugins": [{"name": "rate-limiting",
                  "config": {"minute": 2, "policy": "local", "hide_client_headers": True}}]},
    {"name": "cached", "paths": ["/cached"],
     "plugins": [{"name": "proxy-cache", "config": {"strategy": "memory"}}]},
    {"name": "keyed", "paths": ["/keyed"], "plugins": [{"name": "key-auth"}]},
    # Kong's benchmark combination: wholly decided from the core, chained.
    {"name": "combo", "paths": ["/combo"], "plugins": [
        {"name": "key-auth"}, {"name": "prometheus"},
        {"name": "rate-limiting", "config": {"minute": 2, "policy": "local",
                                             "limit_by": "consumer"}}]},
    {"name": "by-credential", "paths": ["/by-credential"], "plugins": [
        {"name": "key-auth"},
        {"name": "rate-limiting", "config": {"minute": 2, "policy": "local",
                                             "limit_by": "credential"}}]},
    # A cache hit after two decisions: their header lines go on the hit.
    {"name": "combo-cached", "paths": ["/combo-cached"], "plugins": [
        {"name": "key-auth"}, {"name": "rate-limiting", "config": {"minute": 9, "policy": "local"}},
        {"name": "proxy-cache", "config": {"strategy": "memory"}}]},
    # A plugin without a decision after two with: the runner takes over there.
    {"name": "handover", "paths": ["/handover"], "plugins": [
        {"name": "key-auth"}, {"name": "rate-limiting", "config": {"minute": 9, "policy": "local"}},
        {"name": "request-transformer", "config": {"add": {"headers": ["x-added:1"]}}}]},
]
CONSUMERS = [{"username": "ann", "keyauth_credentials": [{"key": "ann-key"}]}]


def request(method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: gw\r\n{extra}\r\n".encode()


# Each step is written on one connection at once (so pipelined steps are
# pipelined); the methods say which answers have no body.
STEPS = [
    [request("GET", "/limited")],
    [request("HEAD", "/limited")],
    [request("GET", "/limited")],                         # over the limit
    [request("HEAD", "/limited"), request("GET", "/limited")],
    [request("GET", "/quiet")],
    [request("GET", "/quiet")],
    [request("HEAD", "/quiet"), request("GET", "/quiet")],  # over, without headers
    [request("GET", "/cached")],                          # miss
    [request("GET", "/cached")],                          # hit
    [request("HEAD", "/cached"), request("GET", "/cached")],
    [request("GET", "/keyed", "apikey: ann-key\r\n")],
    [request("HEAD", "/keyed", "apikey: ann-key\r\n"), request("GET", "/keyed")],
    [request("GET", "/combo", "apikey: ann-key\r\n")],
    [request("GET", "/combo")],                            # no key: 401 from the runner
    [request("HEAD", "/combo", "apikey: ann-key\r\n"),
     request("GET", "/combo", "apikey: ann-key\r\n")],   # the consumer's limit is 2
    [request("GET", "/by-credential", "apikey: ann-key\r\n"),
     request("HEAD", "/by-credential", "apikey: ann-key\r\n"),
     request("GET", "/by-credential", "apikey: ann-key\r\n")],  # the credential's limit is 2
    [request("GET", "/combo-cached", "apikey: ann-key\r\n")],
    [request("GET", "/combo-cached", "apikey: ann-key\r\n"),
     request("HEAD", "/combo-cached", "apikey: ann-key\r\n")],
    [request("GET", "/handover", "apikey: ann-key\r\n")],
    [request("GET", "/handover", "apikey: nobody\r\n")],
]

# Values that differ between two runs of the same request.
VOLATILE = re.compile(
    rb"(?m)^(Date|X-Request-Id|X-Fastgw-Upstream-Latency|X-Fastgw-Proxy-Latency|RateLimit-Reset"
    rb"|Retry-After|Age): [^\r\n]*", re.IGNORECASE)


def run_steps(gw) -> list[bytes]:
    out = []
    for step in STEPS:
        with socket.create_connection(("127.0.0.1", gw.port), 5) as s:
            s.sendall(b"".join(step) + request("GET", "/end", "Connection: close\r\n"))
            raw = read_until_closed(s)
        methods = [r.split(b" ", 1)[0].decode() for r in step] + ["GET"]
        answers = parse_responses(raw, methods)
        assert len(answers) == len(step) + 1 and answers[-1][0] == 404, raw
        out.append(VOLATILE.sub(lambda m: m.group(1) + b": <v>", raw))
    return out


@pytest.fixture(scope="module")
def both_paths():
    with UpstreamServer() as up:
        results = {}
        for name, env in (("fast", {}), ("runner", {"FASTGW_NO_FAST_DECISIONS": "1"})):
            doc = service_doc(up.port, routes=ROUTES)
            doc["consumers"] = CONSUMERS
            with GatewayProcess(doc, env=env) as gw:
                results[name] = run_steps(gw)
        yield results


@pytest.mark.parametrize("index", range(len(STEPS)))
def test_fast_decisions_answer_as_the_runner_does(both_paths, index):
    assert both_paths["fast"][index] == both_paths["runner"][index]


def test_a_head_refusal_has_no_body_and_every_answer_has_a_request_id(both_paths):
    raw = both_paths["fast"][3]
    answers = parse_responses(raw, ["HEAD", "GET", "GET"])
    assert [a[0] for a in answers] == [429, 429, 404]
    assert answers[0][2] == b"" and answers[1][2] == b'{"message":"API rate limit exceeded"}'
    quiet = parse_responses(both_paths["fast"][6], ["HEAD", "GET", "GET"])
    assert [a[0] for a in quiet] == [429, 429, 404]
    assert all("x-request-id" in a[1] for a in quiet)
    assert "ratelimit-limit" not in quiet[0][1]


def test_the_benchmark_combination_is_decided_wholly_in_the_core():
    import asyncio

    from fastgw._core.decisions import HeaderKeyDecision, WindowQuota
    from fastgw.config.loader import parse_config
    from fastgw.plugins.fast import FastChain
    from fastgw.runtime import new_gateway

    doc = service_doc(9, routes=ROUTES)
    doc["consumers"] = CONSUMERS
    loop = asyncio.new_event_loop()
    try:
        gw = new_gateway(loop, parse_config(doc))
    finally:
        loop.close()

    def fast(path):
        return gw.router.match(b"GET", b"h", path, None).payload.fast_access

    combo = fast(b"/combo")
    assert isinstance(combo, FastChain) and len(combo.steps) == 2 and combo.resume_at is None
    # The usual key-auth and rate-limiting configs are decided by compiled code.
    assert isinstance(combo.steps[0], HeaderKeyDecision)
    assert isinstance(combo.steps[1], WindowQuota)
    assert not isinstance(fast(b"/quiet").steps[0], WindowQuota)  # hidden headers: Python
    # request-transformer has no decision: the runner takes over at it.
    assert fast(b"/handover").resume_at == 2
    headers = [b"apikey", b"ann-key"]
    decided = combo(b"GET", b"h", b"/combo", headers, b"127.0.0.1", b"id")
    assert type(decided) is tuple and decided[1] == "ann"
    assert b"X-Consumer-Username" in headers  # key-auth's identity headers, for the upstream
    assert b"RateLimit-Remaining: 1" in decided[0]
    # A client's own identity header is replaced, not forwarded beside the gateway's.
    spoofed = [b"X-Consumer-Username", b"mallory", b"apikey", b"ann-key"]
    assert type(combo(b"GET", b"h", b"/combo", spoofed, b"127.0.0.2", b"id")) is tuple
    values = [spoofed[i + 1] for i in range(0, len(spoofed), 2)
              if spoofed[i].lower() == b"x-consumer-username"]
    assert values == [b"ann"]
    # A repeated or unknown key is left to key-auth's access phase.
    keyed = fast(b"/keyed")
    assert keyed(b"GET", b"h", b"/keyed", [b"apikey", b"ann-key", b"ApiKey", b"x"],
                 b"127.0.0.1", b"id") is None
    assert keyed(b"GET", b"h", b"/keyed", [b"apikey", b"nobody"], b"127.0.0.1", b"id") is None


def test_a_counter_store_error_in_the_compiled_quota_goes_to_the_plugins_decision():
    from fastgw._core.decisions import FastRequest, WindowQuota
    from fastgw._core.ratelimit import CounterStore, FixedWindow

    class BrokenStore(CounterStore):
        def incr(self, key, window_start, window_end, amount=1):
            raise OSError("store down")

    class Plugin:
        clock = staticmethod(lambda: 1000.0)

    seen = []

    def fallback(request):
        seen.append(request.peer_ip)
        return "the plugin's answer"

    quota = WindowQuota(FixedWindow(BrokenStore(), "minute"), 5, b"k:", WindowQuota.BY_IP,
                        b"L: 5\r\nR: ", b"5", lambda *a: 30, Plugin(), fallback)
    request = FastRequest(b"GET", b"h", b"/", [], b"10.0.0.1", b"id")
    assert quota(request) == "the plugin's answer" and seen == [b"10.0.0.1"]
    assert request.lines == b""
