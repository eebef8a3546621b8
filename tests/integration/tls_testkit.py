"""TLS helpers shared by the integration tests: a throw-away CA issuing
certificates, an HTTPS client, and an HTTPS upstream that may demand a
client certificate."""

import asyncio
import socket
import ssl
import threading

from fastgw.testing.tls import CA

__all__ = ["CA", "TLSUpstream", "https_get", "tls_service"]


def https_get(port, server_name, cafile, path="/"):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            subject = s.getpeercert()["subject"]
    cn = dict(x[0] for x in subject)["commonName"]
    return data, cn


class TLSUpstream:
    """An HTTPS upstream in a thread; optionally demands a client certificate."""

    def __init__(self, cert, key, client_ca=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if client_ca:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(cafile=client_ca)
        self.peer_cns = []

    async def handle(self, reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            peer = writer.get_extra_info("peercert")
            if peer:
                self.peer_cns.append(dict(x[0] for x in peer["subject"])["commonName"])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            async def start():
                self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0,
                                                         ssl=self.ctx)
                self.port = self.server.sockets[0].getsockname()[1]
                ready.set()
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(5)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def tls_service(port, **fields):
    return {"_format_version": "3.0", "services": [{
        "name": "tls", "url": f"https://localhost:{port}", **fields,
        "routes": [{"name": "r", "paths": ["/"]}]}]}
