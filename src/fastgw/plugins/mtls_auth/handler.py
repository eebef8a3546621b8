"""mtls-auth: a client certificate that chains to one of the configured CAs
identifies the caller.

The TLS listener asks every client for a certificate while some route has
mtls-auth (as Kong does) and accepts any at the handshake: the decision is
taken here, per route, so routes without mtls-auth keep serving clients that
send none. No certificate: 401 ``No required TLS certificate was sent``; one
that does not chain to the route's CAs, has expired or is revoked: 401 ``TLS
certificate failed verification`` (Kong's wording). The consumer is, as in
Kong, the one with an ``mtls_auth_credentials`` entry whose ``subject_name``
is one of the certificate's names (the subject's CN, its SAN DNS names and
e-mail addresses) and whose ``ca_certificate``, when set, is the CA the
chain ended at; else the one whose ``username`` or ``custom_id``
(``consumer_by``) is one of those names; else ``default_consumer``.

The chain is built from the certificates the client sent after its own
(its intermediate CAs, read from OpenSSL by ``fastgw.tls.client_chain``) up
to a CA in ``ca_certificates``; that CA must be a root unless
``allow_partial_chain`` is set. A verdict is kept for ``cache_ttl``: a good
certificate by itself (the chain it was proven with stays good), a refused
one with the chain it came with (the same certificate may come back with
the intermediates it lacked).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import xxhash
from cryptography import x509
from cryptography.hazmat.primitives import hashes
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
                 "skip_lookup", "group_by", "default_consumer", "cache", "refused",
                 "cache_ttl", "ca_ids", "credentials")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        wanted = set(config["ca_certificates"])
        entities = [ca for ca in state.config.ca_certificates if ca.id in wanted]
        cas = [x509.load_pem_x509_certificate(ca.cert.encode()) for ca in entities]
        self.store = Store(cas) if cas else None
        # Which entity a chain ended at (its anchor), for credentials bound to a CA.
        self.ca_ids = {cert.fingerprint(hashes.SHA256()): entity.id
                       for cert, entity in zip(cas, entities, strict=True)}
        # subject_name -> [(the CA id it is bound to, or None; its consumer)]
        self.credentials: dict[str, list[tuple[str | None, Consumer]]] = {}
        for consumer in state.consumers:
            for credential in consumer.mtls_auth_credentials:
                self.credentials.setdefault(credential["subject_name"], []).append(
                    (credential["ca_certificate"], consumer))
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
        # Verdicts: good certificates by their hash, refused ones by the
        # hash of the certificate and the chain sent with it.
        self.cache: dict[bytes, tuple[float, Any]] = {}
        self.refused: dict[bytes, float] = {}
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
            cached = self._judge(ctx, der, key, now)
            if cached is None:
                self.reject(ctx, 401, FAILED)
                return
        self._identify(ctx, *cached[1])

    def _judge(self, ctx: RequestContext, der: bytes, key: bytes,
               now: float) -> tuple[float, Any] | None:
        """Verify a certificate not known to be good (with the chain the
        client sent), and keep the verdict: the good one's entry, or None."""
        sent = ctx.peer_chain()
        refused_key = xxhash.xxh3_128_digest(b"".join((der, *sent))) if sent else key
        if self.refused.get(refused_key, 0.0) > now:
            return None
        for verdicts in (self.cache, self.refused):
            if len(verdicts) > 10000:
                verdicts.clear()
        verified = self._verify(der, sent)
        if verified is None:
            self.refused[refused_key] = now + self.cache_ttl
            return None
        cert, anchor = verified
        # Never kept past its expiry. PERF: what the certificate says is
        # read once, not per request.
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        entry = self.cache[key] = (min(now + self.cache_ttl, now + left.total_seconds()),
                                   (*self._names(cert),
                                    self.ca_ids.get(anchor.fingerprint(hashes.SHA256()))))
        return entry

    def _verify(self, der: bytes,
                sent: list[bytes]) -> tuple[x509.Certificate, x509.Certificate] | None:
        """The certificate and the CA its chain ended at, when it chains to
        the CAs (through the intermediates ``sent`` with it), is valid now
        and is not revoked; None (logged) when not."""
        try:
            cert = x509.load_der_x509_certificate(der)
            intermediates = [x509.load_der_x509_certificate(one) for one in sent]
            if self.store is None:
                raise ValueError("none of the plugin's ca_certificates exists")
            verifier = (PolicyBuilder().store(self.store)
                        .time(datetime.datetime.now(datetime.UTC))
                        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_CLIENT_POLICY)
                        .build_client_verifier())
            chain = verifier.verify(cert, intermediates).chain
        except (ValueError, x509.verification.VerificationError) as exc:
            log.info("mtls-auth: client certificate refused: %s", exc)
            return None
        anchor = chain[-1]
        if not self.partial_chain and anchor.issuer != anchor.subject:
            log.info("mtls-auth: client certificate refused: its CA %s is not a root and "
                     "allow_partial_chain is off", anchor.subject.rfc4514_string())
            return None
        # Every certificate below the trusted CA: the client's, and the
        # intermediates that vouched for it.
        if self.revocation != "SKIP" and any(self._revoked(one) for one in chain[:-1]):
            return None
        return cert, anchor

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

    def _identify(self, ctx: RequestContext, names: list[str], subject: str,
                  ca_id: str | None) -> None:
        credential = {"id": names[0] if names else None, "subject": subject}
        if self.skip_lookup:
            ctx.authenticate(None, credential, credential["id"])
            group = credential["subject"] if self.group_by == "DN" else credential["id"]
            if group:
                ctx.authenticated_groups = [group]
            return
        consumer = self._credential(names, ca_id) or self._consumer(names) or \
            self.default_consumer
        if consumer is None:
            log.info("mtls-auth: no consumer for certificate names %s", names)
            self.reject(ctx, 401, FAILED)
            return
        ctx.authenticate(consumer, credential, credential["id"])

    def _credential(self, names: list[str], ca_id: str | None) -> Consumer | None:
        """The consumer an mtls_auth_credentials entry maps one of the names
        to, for this CA (or any)."""
        for name in names:
            for bound, consumer in self.credentials.get(name, ()):
                if bound is None or bound == ca_id:
                    return consumer
        return None

    def _consumer(self, names: list[str]) -> Consumer | None:
        for index in self.consumer_index:
            for name in names:
                consumer = index.get(name)
                if consumer is not None:
                    return consumer
        return None


HANDLER = MTLSAuth
