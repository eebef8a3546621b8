"""fastgw.outbound: one-shot exchanges, and kept-alive ones that survive a
server closing an idle connection."""

from __future__ import annotations

import asyncio

from fastgw.outbound import exchange, pooled_exchange
from fastgw.testing import UpstreamServer


def test_pooled_exchanges_reuse_one_connection():
    with UpstreamServer() as upstream:
        url = f"http://127.0.0.1:{upstream.port}/a"

        async def three():
            return [await pooled_exchange("GET", url, timeout=2) for _ in range(3)]

        answers = asyncio.run(three())
        assert [status for status, _ in answers] == [200, 200, 200]
        assert upstream.connections == 1
        assert asyncio.run(exchange("POST", url, [("X-A", "1")], b"hi", timeout=2))[0] == 200
        assert upstream.requests[-1].header("connection") == "close"
        assert upstream.requests[-1].body == b"hi"


async def answer_then_hang_up(req, writer):
    body = b'{"ok": true}'
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n" + body)
    await writer.drain()
    writer.close()  # keep-alive promised, connection closed anyway


def test_a_kept_connection_the_server_closed_is_replaced():
    with UpstreamServer(answer_then_hang_up) as upstream:
        url = f"http://127.0.0.1:{upstream.port}/b"

        async def two():
            first = await pooled_exchange("GET", url, timeout=2)
            await asyncio.sleep(0.05)  # the close reaches us
            return first, await pooled_exchange("GET", url, timeout=2)

        first, second = asyncio.run(two())
        assert first == second == (200, b'{"ok": true}')
        assert upstream.connections == 2
