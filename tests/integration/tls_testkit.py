"""TLS helpers shared by the integration tests: a throw-away CA issuing
certificates, an HTTPS client, and an HTTPS upstream that may demand a
client certificate."""

import asyncio
import datetime
import socket
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class CA:
    def __init__(self, directory, cn="fastgw test CA"):
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.path = directory / f"{cn.replace(' ', '_')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn, names=(), client=False):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=2)))
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else \
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.dir / f"{cn}.crt"
        key_path = self.dir / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return str(cert_path), str(key_path)


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
