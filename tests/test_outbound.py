"""fastgw.outbound: one-shot exchanges, and kept-alive ones that survive a
server closing an idle connection."""

from __future__ import annotations

import asyncio

from fastgw.outbound import exchange, pooled_exchange, stream_request
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


async def stream_in_pieces(req, writer):
    # /whole: three pieces and a clean end; /cut: two, then the connection
    # drops; /stall: one, then nothing.
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for piece in (b"one", b"two", b"three")[: {"/whole": 3, "/cut": 2}.get(req.target, 1)]:
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
    if req.target == "/whole":
        writer.write(b"0\r\n\r\n")
    elif req.target == "/cut":
        writer.transport.abort()
    else:
        await asyncio.sleep(1)


def test_a_streamed_answer_is_read_as_it_comes_and_a_cut_is_an_error():
    with UpstreamServer(stream_in_pieces) as upstream:
        base = f"http://127.0.0.1:{upstream.port}"

        async def read(path: str) -> tuple[int, list[bytes], BaseException | None]:
            reply = await stream_request("POST", base + path, [], b"{}",
                                         connect_timeout=2, read_timeout=0.2)
            pieces: list[bytes] = []
            try:
                async for piece in reply.chunks():
                    pieces.append(piece)
            except (ConnectionError, TimeoutError) as failure:
                return reply.status, pieces, failure
            finally:
                reply.close()
            return reply.status, pieces, None

        assert asyncio.run(read("/whole")) == (200, [b"one", b"two", b"three"], None)
        status, pieces, failure = asyncio.run(read("/cut"))
        assert pieces == [b"one", b"two"] and isinstance(failure, ConnectionError)
        status, pieces, failure = asyncio.run(read("/stall"))
        assert pieces == [b"one"] and isinstance(failure, TimeoutError)
