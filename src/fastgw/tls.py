"""TLS contexts: the proxy's certificates (``_gateway.tls`` files and Kong's
``certificates`` entities with their SNIs) and what connections to upstreams
trust and show.

Certificates written in the document are PEM text, while Python's ``ssl``
loads a certificate chain only from a file: each is written to a private
temporary file, loaded and removed at once.

The TLS listener keeps the context it started with; its ``sni_callback``
hands each handshake the context of the current ``ServerCertificates``,
which a config swap replaces, so certificates follow reloads as in Kong. A
server name gets, as in Kong, the certificate of its exact SNI, else of a
wildcard SNI (``*.example.com``, ``example.*``), else the default one:
``_gateway.tls.cert`` when set, else the first certificate entity.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import ssl
import tempfile
from typing import Any

from fastgw._core.client_connection import SNI_ATTRIBUTE
from fastgw.config.model import Certificate, Config, Service, Upstream

log = logging.getLogger("fastgw.tls")


# --- client certificates (mtls-auth) ----------------------------------------
#
# mtls-auth decides per route whether a client certificate is good enough,
# and answers 401 when it is not, as Kong does. OpenSSL would instead end the
# handshake on a certificate it cannot verify, so the listener asks for one
# with a verify callback that accepts any, and the plugin verifies it. Python's
# ssl has no such setting: SSL_set_verify is called, through ctypes, on the
# OpenSSL library Python's own _ssl module is linked with, for the SSL object
# of each handshake (from the SNI callback, where OpenSSL allows it).

_SSL_VERIFY_PEER = 1
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
# The verdict on the client's certificate at the handshake: accepted.
_ACCEPT_ANY = _VerifyCallback(lambda preverify_ok, store: 1)


def _libssl_path() -> str | None:
    """The libssl this process's _ssl module uses (already loaded)."""
    import _ssl  # noqa: F401  (loads libssl)

    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "/libssl.so" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return ctypes.util.find_library("ssl")


def _ssl_pointer(sslobj: object) -> int:
    """The ``SSL *`` of an SSLObject or SSLSocket: CPython's _ssl object keeps
    it right after its socket weakref, after the object header."""
    inner = getattr(sslobj, "_sslobj", sslobj)
    address = id(inner) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
    return ctypes.c_void_p.from_address(address).value or 0


class _ClientCertificates:
    """SSL_set_verify, found and checked once: on this build of Python the
    pointer must read back the verify modes Python set, else mtls-auth
    cannot ask for certificates (logged once). With it, what reads the
    certificates the client sent after its own (its intermediate CAs, which
    Python's ssl does not hand over before 3.13)."""

    def __init__(self) -> None:
        self.set_verify = None
        self.lib: Any = None
        path = _libssl_path()
        try:
            lib = ctypes.CDLL(path) if path else None
            if lib is None:
                raise OSError("libssl not found")
            lib.SSL_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            lib.SSL_set_verify.restype = None
            lib.SSL_get_verify_mode.argtypes = [ctypes.c_void_p]
            lib.SSL_get_verify_mode.restype = ctypes.c_int
            # libssl links libcrypto: its stack and DER functions are found through it.
            lib.SSL_get_peer_cert_chain.argtypes = [ctypes.c_void_p]
            lib.SSL_get_peer_cert_chain.restype = ctypes.c_void_p
            lib.OPENSSL_sk_num.argtypes = [ctypes.c_void_p]
            lib.OPENSSL_sk_num.restype = ctypes.c_int
            lib.OPENSSL_sk_value.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.OPENSSL_sk_value.restype = ctypes.c_void_p
            lib.i2d_X509.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.i2d_X509.restype = ctypes.c_int
            for mode, expected in ((ssl.CERT_REQUIRED, 3), (ssl.CERT_NONE, 0)):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.verify_mode = mode
                probe = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
                if lib.SSL_get_verify_mode(_ssl_pointer(probe)) != expected:
                    raise OSError("the SSL object's layout is not the expected one")
        except (OSError, AttributeError) as exc:
            log.error("TLS: client certificates cannot be asked for (%s); mtls-auth routes "
                      "will answer 401 No required TLS certificate was sent", exc)
            return
        self.set_verify = lib.SSL_set_verify
        self.lib = lib

    def request(self, sslobj: object) -> None:
        if self.set_verify is not None:
            self.set_verify(_ssl_pointer(sslobj), _SSL_VERIFY_PEER,
                            ctypes.cast(_ACCEPT_ANY, ctypes.c_void_p))

    def chain(self, sslobj: object) -> list[bytes]:
        """The DER of the certificates the client sent after its own (on the
        server side OpenSSL keeps the client's own apart)."""
        lib = self.lib
        if lib is None:
            return []
        stack = lib.SSL_get_peer_cert_chain(_ssl_pointer(sslobj))
        if not stack:
            return []
        chain = []
        for index in range(lib.OPENSSL_sk_num(stack)):
            cert = lib.OPENSSL_sk_value(stack, index)
            size = lib.i2d_X509(cert, None)
            if size <= 0:
                continue
            buffer = ctypes.create_string_buffer(size)
            cursor = ctypes.c_char_p(ctypes.addressof(buffer))  # i2d_X509 moves it on
            lib.i2d_X509(cert, ctypes.byref(cursor))
            chain.append(buffer.raw)
        return chain


_client_certificates: _ClientCertificates | None = None


def _certificates() -> _ClientCertificates:
    global _client_certificates
    if _client_certificates is None:
        _client_certificates = _ClientCertificates()
    return _client_certificates


def request_client_certificate(sslobj: object) -> None:
    """Ask this handshake's client for its certificate, accepting any (the
    route's mtls-auth judges it)."""
    _certificates().request(sslobj)


def client_chain(sslobj: object) -> list[bytes]:
    """The intermediate certificates (DER) a client sent with its own, in
    the order it sent them; [] when it sent none."""
    return _certificates().chain(sslobj)


def _load_pem_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    handle, path = tempfile.mkstemp(prefix="fastgw-cert-", suffix=".pem")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(cert.rstrip("\n") + "\n" + key.rstrip("\n") + "\n")
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)


def load_certificate(ctx: ssl.SSLContext, certificate: Certificate) -> None:
    """A certificate entity's pair into ``ctx``, and its alternative pair
    (OpenSSL keeps one certificate per key type)."""
    _load_pem_pair(ctx, certificate.cert, certificate.key)
    if certificate.cert_alt and certificate.key_alt:
        _load_pem_pair(ctx, certificate.cert_alt, certificate.key_alt)


def _server_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


def _wildcard_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:]) and len(name) > len(pattern) - 1
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1]) and len(name) > len(pattern) - 1
    return False


class ServerCertificates:
    """One config version's certificates, by server name."""

    __slots__ = ("default", "exact", "wildcards", "ask_client_certificates")

    def __init__(self, config: Config) -> None:
        # As Kong: while mtls-auth is configured anywhere, every handshake
        # asks for a client certificate (a route is not known yet).
        self.ask_client_certificates = any(plugin.enabled and plugin.name == "mtls-auth"
                                           for plugin in config.plugins)
        self.exact: dict[str, ssl.SSLContext] = {}
        self.wildcards: list[tuple[str, ssl.SSLContext]] = []
        self.default: ssl.SSLContext | None = None
        tls = config.gateway.tls
        if tls is not None and tls.cert:
            self.default = _server_context()
            self.default.load_cert_chain(tls.cert, tls.key)
            for entry in tls.sni:
                ctx = _server_context()
                ctx.load_cert_chain(entry["cert"], entry["key"])
                self._add(entry["name"], ctx)
        for certificate in config.certificates:
            ctx = _server_context()
            load_certificate(ctx, certificate)
            if self.default is None:
                self.default = ctx
            for name in certificate.snis:
                self._add(name, ctx)

    def _add(self, name: str, ctx: ssl.SSLContext) -> None:
        name = name.lower()
        if "*" in name:
            self.wildcards.append((name, ctx))
        else:
            self.exact.setdefault(name, ctx)

    def for_name(self, server_name: str | None) -> ssl.SSLContext | None:
        if server_name:
            name = server_name.lower()
            found = self.exact.get(name)
            if found is not None:
                return found
            for pattern, ctx in self.wildcards:
                if _wildcard_matches(pattern, name):
                    return ctx
        return self.default


class ServerTLS:
    """The TLS listener's context; ``update`` gives it a new config's
    certificates."""

    __slots__ = ("context", "certificates")

    def __init__(self, config: Config) -> None:
        self.certificates = ServerCertificates(config)
        # The listener's own context holds the default certificate too, for
        # a handshake the callback leaves alone.
        self.context = self.certificates.default or _server_context()
        self.context.sni_callback = self._pick

    def update(self, config: Config) -> None:
        self.certificates = ServerCertificates(config)

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None,
              _ctx: ssl.SSLContext) -> None:
        # Routes with snis match on it (the connection reads it from here).
        setattr(sslobj, SNI_ATTRIBUTE, server_name)
        certificates = self.certificates
        if certificates.ask_client_certificates:
            request_client_certificate(sslobj)
        chosen = certificates.for_name(server_name)
        if chosen is not None and chosen is not sslobj.context:
            sslobj.context = chosen


def server_tls(config: Config) -> ServerTLS | None:
    """The listener's TLS, None when the config serves no certificate."""
    tls = config.gateway.tls
    if tls is None or not (tls.cert or config.certificates):
        return None
    return ServerTLS(config)


def upstream_tls_context(service: Service, upstream: Upstream | None = None) -> ssl.SSLContext:
    """HTTPS upstreams are verified (against the service's CAs, else the
    system's) unless the service says otherwise; a client certificate is
    shown when the service has one, else when its upstream has one."""
    ctx = ssl.create_default_context()
    for cafile in service.ca_certificates:
        ctx.load_verify_locations(cafile=cafile)
    if service.ca_certificates_pem:
        ctx.load_verify_locations(cadata="\n".join(service.ca_certificates_pem))
    if service.tls_verify is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if service.client_certificate is not None:
        cert, key = service.client_certificate
        ctx.load_cert_chain(cert, key)
    elif service.client_certificate_pem is not None:
        load_certificate(ctx, service.client_certificate_pem)
    elif upstream is not None and upstream.client_certificate_pem is not None:
        load_certificate(ctx, upstream.client_certificate_pem)
    return ctx


def upstream_tls_key(service: Service, upstream: Upstream | None) -> tuple:
    """What makes two upstream contexts the same (pools are shared by it)."""
    return (service.tls_verify is not False, service.ca_certificates,
            service.ca_certificates_pem, service.client_certificate,
            service.client_certificate_pem,
            upstream.client_certificate_pem if upstream is not None else None)
