"""proxy-cache in the real gateway (memory strategy, one worker): hits never
reach the upstream, and 100 identical requests on a cold key send exactly
one upstream; a leader that fails sends its waiters upstream quickly."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from fastgw.testing import GatewayProcess, UpstreamServer, http_request, service_doc


def numbered_answers(delay=0.0, status=200, content_type="application/json"):
    """An upstream handler answering each request with its sequence number,
    so a response shows which upstream request produced it."""
    served = []

    async def answer(req, writer):
        served.append(req.target)
        number = len(served)
        if delay:
            await asyncio.sleep(delay)
        body = orjson.dumps({"n": number, "target": req.target})
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                     b"X-Upstream: yes\r\n\r\n%s" % (status, content_type.encode(),
                                                     len(body), body))

    return answer


def cached_doc(upstream_port, read_timeout=60000, retries=5, **config):
    doc = service_doc(upstream_port, routes=[{"name": "cached", "paths": ["/cached"]},
                                             {"name": "plain", "paths": ["/plain"]}],
                      read_timeout=read_timeout, retries=retries)
    doc["services"][0]["routes"][0]["plugins"] = [
        {"name": "proxy-cache", "config": {"strategy": "memory", **config}}]
    return doc


def concurrently(gw, count, method="GET", path="/cached/report", body=None):
    """``count`` identical requests at once, each on its own connection."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(http_request, gw.port, method, path, body=body, timeout=20)
                   for _ in range(count)]
        return [future.result() for future in futures]


def test_a_miss_is_stored_and_hits_never_reach_the_upstream():
    with UpstreamServer(numbered_answers()) as upstream, \
            GatewayProcess(cached_doc(upstream.port)) as gw:
        status, miss_headers, miss_body = gw.request("GET", "/cached/report?b=2&a=1")
        assert status == 200 and miss_headers["x-cache-status"] == "Miss"
        time.sleep(1.1)  # so Age shows
        for _ in range(3):
            status, headers, body = gw.request("GET", "/cached/report?a=1&b=2")
            assert (status, body) == (200, miss_body)
            assert headers["x-cache-status"] == "Hit"
            assert headers["x-cache-key"] == miss_headers["x-cache-key"]
            assert int(headers["age"]) >= 1
            assert headers["content-type"] == "application/json"
            assert headers["x-upstream"] == "yes"
            assert headers["content-length"] == str(len(miss_body))
        # Another path is another key; a route without the plugin is not cached.
        assert gw.request("GET", "/cached/other")[1]["x-cache-status"] == "Miss"
        assert "x-cache-status" not in gw.request("GET", "/plain/report")[1]
        assert len(upstream.requests) == 3


def test_uncacheable_requests_and_responses_bypass():
    with UpstreamServer(numbered_answers(status=500)) as upstream, \
            GatewayProcess(cached_doc(upstream.port)) as gw:
        for _ in range(2):
            status, headers, _ = gw.request("GET", "/cached/broken")
            assert status == 500 and headers["x-cache-status"] == "Bypass"
        status, headers, _ = gw.request("POST", "/cached/broken", body=b"{}")
        assert headers["x-cache-status"] == "Bypass" and "x-cache-key" not in headers
        assert len(upstream.requests) == 3


def test_post_is_cached_with_the_bench_config():
    chat = b'{"model": "gpt-4o-mini", "messages": []}'
    with UpstreamServer(numbered_answers()) as upstream, \
            GatewayProcess(cached_doc(upstream.port, request_method=["POST"],
                                      content_type=["application/json"])) as gw:
        answers = [gw.request("POST", "/cached/v1/chat/completions", body=chat,
                              headers={"Content-Type": "application/json"}) for _ in range(3)]
        assert [headers["x-cache-status"] for _, headers, _ in answers] == ["Miss", "Hit", "Hit"]
        assert len({body for _, _, body in answers}) == 1
        assert len(upstream.requests) == 1


async def chunked_answer(req, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for part in (b"first ", b"second ", b"third"):
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(b"0\r\n\r\n")


def test_a_chunked_body_is_stored_whole():
    with UpstreamServer(chunked_answer) as upstream, \
            GatewayProcess(cached_doc(upstream.port)) as gw:
        assert gw.request("GET", "/cached/text")[2] == b"first second third"
        status, headers, body = gw.request("GET", "/cached/text")
        assert (status, body, headers["x-cache-status"]) == (200, b"first second third", "Hit")
        assert headers["content-length"] == "18"
        assert len(upstream.requests) == 1


def test_one_hundred_identical_requests_on_a_cold_key_go_upstream_once():
    with UpstreamServer(numbered_answers(delay=0.3)) as upstream, \
            GatewayProcess(cached_doc(upstream.port)) as gw:
        answers = concurrently(gw, 100)
        assert len(upstream.requests) == 1
        assert [status for status, _, _ in answers] == [200] * 100
        assert {body for _, _, body in answers} == {b'{"n":1,"target":"/report"}'}
        statuses = [headers["x-cache-status"] for _, headers, _ in answers]
        assert statuses.count("Miss") == 1 and statuses.count("Hit") == 99


def test_waiters_of_an_uncacheable_answer_go_upstream_themselves():
    with UpstreamServer(numbered_answers(delay=0.2, status=503)) as upstream, \
            GatewayProcess(cached_doc(upstream.port)) as gw:
        answers = concurrently(gw, 5)
        assert [status for status, _, _ in answers] == [503] * 5
        assert {headers["x-cache-status"] for _, headers, _ in answers} == {"Bypass"}
        # Each answer came from its own upstream request.
        assert len({body for _, _, body in answers}) == 5
        assert len(upstream.requests) == 5


async def hang_up(req, writer):
    await asyncio.sleep(0.3)
    writer.transport.abort()


@pytest.mark.timeout(30)
def test_a_leader_whose_upstream_fails_releases_its_waiters_at_once():
    with UpstreamServer(hang_up) as upstream, \
            GatewayProcess(cached_doc(upstream.port, read_timeout=10000, retries=0)) as gw:
        # retries 0: each request meets the failure once (the gateway would
        # otherwise retry it, as Kong does).
        started = time.monotonic()
        answers = concurrently(gw, 5)
        elapsed = time.monotonic() - started
        assert [status for status, _, _ in answers] == [502] * 5
        # Leader (0.3 s) then the released waiters (0.3 s), far below the
        # 10 s read timeout that bounds a wait.
        assert elapsed < 3
        assert len(upstream.requests) == 5


def test_hits_answered_in_the_core_carry_every_header():
    """A route whose only Python plugin is proxy-cache answers hits before any
    plugin context is built; the answer must be the same as the plugin's."""
    from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["plugins"] = [{"name": "proxy-cache", "config": {
            "strategy": "memory", "request_method": ["GET"],
            "content_type": ["application/json"]}}]
        with GatewayProcess(doc) as gw:
            first = gw.request("GET", "/item?a=1")
            second = gw.request("GET", "/item?a=1")
    assert first[1]["x-cache-status"] == "Miss"
    status, headers, body = second
    assert status == 200 and body == first[2]
    assert headers["x-cache-status"] == "Hit"
    assert headers["x-cache-key"] == first[1]["x-cache-key"]
    assert int(headers["content-length"]) == len(body)
    assert int(headers["age"]) >= 0
    assert len(headers["x-request-id"]) == 32
    assert len(up.requests) == 1
