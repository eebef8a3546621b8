"""A route whose only Python plugin is rate-limiting (local) is limited from
the core without a request context. Its answers must be the plugin's own:
compared here with a route where another plugin keeps rate-limiting on the
runner's path."""

import asyncio

import pytest

from fastgw.config.loader import parse_config
from fastgw.runtime import new_gateway
from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

LIMIT = {"name": "rate-limiting", "config": {"minute": 3, "hour": 10, "policy": "local"}}
# One period is counted by a shorter inline path: compared too.
ONE_PERIOD = {"name": "rate-limiting", "config": {"minute": 3, "policy": "local"}}
HEADERS = ("ratelimit-limit", "ratelimit-remaining", "x-ratelimit-limit-minute",
           "x-ratelimit-remaining-minute", "x-ratelimit-limit-hour",
           "x-ratelimit-remaining-hour")


def routes(limit=LIMIT):
    return [{"name": "fast", "paths": ["/fast"], "plugins": [limit]},
            {"name": "slow", "paths": ["/slow"],
             "plugins": [limit, {"name": "correlation-id"}]}]


def test_the_fast_path_is_taken_only_where_it_may_be():
    loop = asyncio.new_event_loop()
    try:
        gw = new_gateway(loop, parse_config(service_doc(9, routes=routes())))
    finally:
        loop.close()
    fast = gw.router.match(b"GET", b"h", b"/fast", None).payload
    slow = gw.router.match(b"GET", b"h", b"/slow", None).payload
    # Wholly decided from the core; the chain stays for requests a decision
    # hands over (none does for rate-limiting with local counters).
    assert fast.fast_access is not None and fast.fast_access.resume_at is None
    # correlation-id runs first and has no fast decision: all on the runner.
    assert slow.fast_access is None and slow.plugins is not None


@pytest.mark.parametrize("limit", [LIMIT, ONE_PERIOD], ids=["two-periods", "one-period"])
def test_fast_and_plugin_paths_answer_alike(limit):
    async def handler(req, writer):
        # An upstream that sends its own rate-limit header: the gateway's wins.
        writer.write(b"HTTP/1.1 200 OK\r\nRateLimit-Limit: 999\r\nContent-Length: 2\r\n\r\nok")

    with UpstreamServer(handler) as up:
        with GatewayProcess(service_doc(up.port, routes=routes(limit))) as gw:
            answers = {path: [gw.request("GET", path) for _ in range(5)]
                       for path in ("/fast", "/slow")}
    for (f_status, f_headers, f_body), (s_status, s_headers, s_body) in zip(
            answers["/fast"], answers["/slow"], strict=True):
        assert f_status == s_status
        assert f_body == s_body
        for name in HEADERS:
            assert f_headers.get(name) == s_headers.get(name), name
        assert ("retry-after" in f_headers) == ("retry-after" in s_headers)
    statuses = [a[0] for a in answers["/fast"]]
    assert statuses == [200, 200, 200, 429, 429]
    first = answers["/fast"][0][1]
    assert first["ratelimit-limit"] == "3" and first["x-ratelimit-remaining-minute"] == "2"
    assert answers["/fast"][3][2] == b'{"message":"API rate limit exceeded"}'
    assert len(up.requests) == 6
