"""Config of mtls-auth, with Kong's field names and defaults.

fastgw differences: revocation is checked against CRL files named in
``crl_files`` (a fastgw field; fastgw fetches nothing from a certificate's
CRL or OCSP URLs), and Kong's fields for those fetches (``http_timeout``,
the proxies, ``cert_cache_ttl``, ``ssl_verify``) and ``send_ca_dn`` and
``san_dirname_matcher`` load at Kong's defaults only.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath

from fastgw.config.entities import is_uuid
from fastgw.config.kong_only import kong_defaults_only
from fastgw.config.schema import Array, Boolean, Number, Record, String
from fastgw.plugins.credentials import anonymous_field

KONG_DEFAULTS = json.loads((FilePath(__file__).parent / "kong_fields.json").read_text())


def _check_uuid(value: str) -> str | None:
    return None if is_uuid(value) else f"expected the id (a UUID) of a ca_certificates entity, " \
        f"got '{value}'"


SCHEMA = Record(
    {
        "ca_certificates": Array(String(check=_check_uuid), required=True, len_min=1,
                                 description="The CAs (ca_certificates entities, by id) a "
                                 "client certificate must chain to."),
        "consumer_by": Array(String(one_of=("username", "custom_id")),
                             default=("custom_id", "username"),
                             description="Consumer fields the certificate's names (its "
                             "subject's CN, then its SAN DNS names and e-mail addresses) are "
                             "matched against, in order."),
        "skip_consumer_lookup": Boolean(default=False,
                                        description="Trust the certificate without mapping "
                                        "it to a consumer (groups come from "
                                        "authenticated_group_by)."),
        "authenticated_group_by": String(one_of=("CN", "DN"), default="CN",
                                         description="With skip_consumer_lookup: the group "
                                         "for the acl plugin, the subject's CN or whole DN."),
        "default_consumer": String(description="The consumer (username or id) of a trusted "
                                   "certificate that matches none."),
        "anonymous": anonymous_field(),
        "allow_partial_chain": Boolean(default=False,
                                       description="An intermediate CA in ca_certificates is "
                                       "enough (no root needed)."),
        "revocation_check_mode": String(
            one_of=("SKIP", "IGNORE_CA_ERROR", "STRICT"), default="IGNORE_CA_ERROR",
            description="SKIP: no check; IGNORE_CA_ERROR: refused when listed in a CRL of "
            "crl_files; STRICT: also refused when no CRL of its issuer is there."),
        "crl_files": Array(String(), default=(),
                           description="fastgw: PEM or DER CRL files, read at load (nothing "
                           "is fetched)."),
        "cache_ttl": Number(between=(0, 2**31), default=60,
                            description="Seconds a certificate's verification is kept."),
    },
    ignored=kong_defaults_only(KONG_DEFAULTS),
    description="Authenticate clients by their TLS certificate.",
)
