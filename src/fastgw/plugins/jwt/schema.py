"""Config of jwt, with Kong's field names, defaults and bounds."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Number, Path, Record, Set, String, Validation
from fastgw.plugins.credentials import anonymous_field, realm_field

# RFC 9110 token characters.
_HEADER_NAME = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
ONE_YEAR = 31536000


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if config["maximum_expiration"] > 0 and "exp" not in (config["claims_to_verify"] or ()):
        ctx.error((path, "claims_to_verify"),
                  "must contain 'exp' when 'maximum_expiration' is above 0")


def _names(what: str, default: tuple[str, ...], **options) -> Set:
    return Set(String(description=f"One {what} name.", **options), default=default,
               description=f"{what.capitalize()}s the token is looked for in.")


SCHEMA = Record(
    {
        "uri_param_names": _names("query argument", ("jwt",)),
        "cookie_names": _names("cookie", ()),
        "key_claim_name": String(
            default="iss",
            description="Claim (or token header field) naming the consumer's jwt secret.",
        ),
        "secret_is_base64": Boolean(
            default=False, description="The credentials' secrets are base64-encoded."
        ),
        "claims_to_verify": Set(
            String(one_of=("exp", "nbf"), description="A registered claim."),
            description="Registered claims to check: 'exp' and/or 'nbf'.",
        ),
        "anonymous": anonymous_field(),
        "run_on_preflight": Boolean(
            default=True, description="Authenticate OPTIONS requests too; false lets them pass."
        ),
        "maximum_expiration": Number(
            between=(0, ONE_YEAR),
            default=0,
            description="Longest token lifetime accepted, in seconds from now; 0: no limit.",
        ),
        "header_names": _names(
            "header", ("authorization",), match=_HEADER_NAME,
            match_message="invalid header name '{value}'",
        ),
        "realm": realm_field(),
    },
    validator=_check,
    description="Authenticate consumers by JSON Web Token.",
)
