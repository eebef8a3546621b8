"""mtls-auth: a client certificate that chains to one of the configured CAs
identifies the caller.

The TLS listener asks every client for a certificate while some route has
mtls-auth (as Kong does) and accepts any at the handshake: the decision is
taken here, per route, so routes without mtls-auth keep serving clients that
send none. No certificate: 401 ``No required TLS certificate was sent``; one
that does not chain to the route's CAs, has expired or is revoked: 401 ``TLS
certificate failed verification`` (Kong's wording). The consumer is the one
whose ``custom_id`` or ``username`` (``consumer_by``) is the subject's CN or
one of its SAN DNS names or e-mail addresses.

The client's intermediate certificates are not available to the gateway
(Python's ``ssl`` hands over the leaf only): a certificate must be issued
by a CA in ``ca_certificates`` itself, which may be an intermediate CA when
``allow_partial_chain`` is set.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import xxhash
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)

from fastgw.config.model import Consumer
from fastgw.plugins.context import RequestContext
from fastgw.plugins.credentials import CredentialPlugin
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.mtls_auth")

# What a chain must hold, as OpenSSL (Kong, nginx) checks client certificates
# rather than the web PKI's stricter rules: a CA asserts basicConstraints cA;
# a client certificate needs no particular extension (a CN alone will do).
_CA_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, None)
_CLIENT_POLICY = ExtensionPolicy.permit_all()

NO_CERTIFICATE = {"message": "No required TLS certificate was sent"}
FAILED = {"message": "TLS certificate failed verification"}


def _load_crl(path: str) -> x509.CertificateRevocationList:
    with open(path, "rb") as file:
        data = file.read()
    if b"-----BEGIN X509 CRL-----" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The subject's CN, then its SAN DNS names and e-mail addresses."""
    names = [str(attribute.value) for attribute in
             cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return names
    assert isinstance(san, x509.SubjectAlternativeName)
    names += san.get_values_for_type(x509.DNSName)
    names += san.get_values_for_type(x509.RFC822Name)
    return names


class MTLSAuth(CredentialPlugin):
    name = "mtls-auth"
    PRIORITY = 1600

    __slots__ = ("store", "partial_chain", "revocation", "crls", "consumer_index",
                 "skip_lookup", "group_by", "default_consumer", "cache", "cache_ttl")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        wanted = set(config["ca_certificates"])
        cas = [x509.load_pem_x509_certificate(ca.cert.encode())
               for ca in state.config.ca_certificates if ca.id in wanted]
        self.store = Store(cas) if cas else None
        self.partial_chain = config["allow_partial_chain"]
        self.revocation = config["revocation_check_mode"]
        # CRLs by issuer, each checked against its issuer among the CAs.
        self.crls: dict[x509.Name, list[x509.CertificateRevocationList]] = {}
        for path in config["crl_files"]:
            crl = _load_crl(path)
            issuer = next((ca for ca in cas if ca.subject == crl.issuer), None)
            if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                log.error("mtls-auth: CRL %s is not signed by one of the plugin's CAs; "
                          "ignored", path)
                continue
            self.crls.setdefault(crl.issuer, []).append(crl)
        self.consumer_index = [{getattr(c, field): c for c in state.consumers
                                if getattr(c, field)} for field in config["consumer_by"]]
        self.skip_lookup = config["skip_consumer_lookup"]
        self.group_by = config["authenticated_group_by"]
        ref = config["default_consumer"]
        self.default_consumer = state.consumer(ref) if ref else None
        self.cache: dict[bytes, tuple[float, Any]] = {}
        self.cache_ttl = config["cache_ttl"]

    def access(self, ctx: RequestContext) -> None:
        if self.skips(ctx):
            return
        der = ctx.peer_certificate()
        if der is None:
            self.reject(ctx, 401, NO_CERTIFICATE)
            return
        key = xxhash.xxh3_128_digest(der)
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is None or cached[0] <= now:
            if len(self.cache) > 10000:
                self.cache.clear()
            cert = self._verify(der)
            until = now + self.cache_ttl
            if cert is not None:  # never kept past its expiry
                left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
                until = min(until, now + left.total_seconds())
            # PERF: what the certificate says is read once, not per request.
            cached = self.cache[key] = (until, None if cert is None else self._names(cert))
        names = cached[1]
        if names is None:
            self.reject(ctx, 401, FAILED)
            return
        self._identify(ctx, *names)

    def _verify(self, der: bytes) -> x509.Certificate | None:
        """The certificate when it chains to the CAs, is valid now and is
        not revoked; None (logged) when not."""
        try:
            cert = x509.load_der_x509_certificate(der)
            if self.store is None:
                raise ValueError("none of the plugin's ca_certificates exists")
            verifier = (PolicyBuilder().store(self.store)
                        .time(datetime.datetime.now(datetime.UTC))
                        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_CLIENT_POLICY)
                        .build_client_verifier())
            chain = verifier.verify(cert, []).chain
        except (ValueError, x509.verification.VerificationError) as exc:
            log.info("mtls-auth: client certificate refused: %s", exc)
            return None
        anchor = chain[-1]
        if not self.partial_chain and anchor.issuer != anchor.subject:
            log.info("mtls-auth: client certificate refused: its CA %s is not a root and "
                     "allow_partial_chain is off", anchor.subject.rfc4514_string())
            return None
        if self.revocation != "SKIP" and self._revoked(cert):
            return None
        return cert

    def _revoked(self, cert: x509.Certificate) -> bool:
        crls = self.crls.get(cert.issuer)
        if not crls:
            if self.revocation == "STRICT":
                log.info("mtls-auth: no CRL for %s (revocation_check_mode STRICT)",
                         cert.issuer.rfc4514_string())
                return True
            return False
        for crl in crls:
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                log.info("mtls-auth: client certificate %x is revoked", cert.serial_number)
                return True
        return False

    @staticmethod
    def _names(cert: x509.Certificate) -> tuple[list[str], str]:
        """The certificate's names (CN first) and its subject (RFC 4514)."""
        return certificate_names(cert), cert.subject.rfc4514_string()

    def _identify(self, ctx: RequestContext, names: list[str], subject: str) -> None:
        credential = {"id": names[0] if names else None, "subject": subject}
        if self.skip_lookup:
            ctx.authenticate(None, credential, credential["id"])
            group = credential["subject"] if self.group_by == "DN" else credential["id"]
            if group:
                ctx.authenticated_groups = [group]
            return
        consumer = self._consumer(names) or self.default_consumer
        if consumer is None:
            log.info("mtls-auth: no consumer for certificate names %s", names)
            self.reject(ctx, 401, FAILED)
            return
        ctx.authenticate(consumer, credential, credential["id"])

    def _consumer(self, names: list[str]) -> Consumer | None:
        for index in self.consumer_index:
            for name in names:
                consumer = index.get(name)
                if consumer is not None:
                    return consumer
        return None


HANDLER = MTLSAuth
