"""WebSocket through the gateway: the Upgrade passes, frames flow both ways
until either side closes. A real client and server (the websockets package)."""

import threading

import pytest
from upstreams_testkit import balanced_doc, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

GREETING = "hello from upstream"
CLOSE_REQUEST = "close, please"


class EchoServer:
    """Greets each client, echoes what it sends, closes with 4000 on request;
    remembers how each connection ended."""

    def __init__(self):
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.paths: list[str] = []
        self.closed_by_client: list[int] = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path)
        ws.send(GREETING)
        try:
            for message in ws:
                if message == CLOSE_REQUEST:
                    ws.close(4000, "bye")
                    return
                ws.send(message)
        except ConnectionClosed:
            pass
        self.closed_by_client.append(ws.close_code)

    def __enter__(self) -> "EchoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


def test_frames_flow_both_ways_until_the_client_closes(echo, start_gateway):
    gw = start_gateway(balanced_doc([{"target": f"127.0.0.1:{echo.port}"}]))
    big = bytes(range(256)) * 1024  # 256 KiB: many reads and writes each way
    with connect(f"ws://127.0.0.1:{gw.port}/chat?room=1", open_timeout=5, close_timeout=1) as ws:
        assert ws.recv(timeout=2) == GREETING  # the server speaks first
        for text in ("one", "two", "three"):
            ws.send(text)
            assert ws.recv(timeout=2) == text
        ws.send(big)
        assert ws.recv(timeout=2) == big
    assert echo.paths == ["/chat?room=1"]
    assert wait_until(lambda: echo.closed_by_client == [1000])
    # A plain request on the same route is proxied as HTTP: the server's own refusal.
    status, _, body = gw.request("GET", "/")
    assert status == 426 and b"WebSocket" in body


def test_a_close_from_the_server_reaches_the_client(echo, start_gateway):
    gw = start_gateway(balanced_doc([{"target": f"127.0.0.1:{echo.port}"}]))
    with connect(f"ws://127.0.0.1:{gw.port}/", open_timeout=5, close_timeout=1) as ws:
        assert ws.recv(timeout=2) == GREETING
        ws.send(CLOSE_REQUEST)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=2)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")
