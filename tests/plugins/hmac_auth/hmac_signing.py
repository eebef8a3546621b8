"""A client's side of hmac-auth, written independently of the plugin: the
consumers the tests sign as, and how a client signs."""

import base64
import hashlib
import hmac
from email.utils import formatdate

ANONYMOUS_ID = "0b7f8a56-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
CONSUMERS = [
    {"username": "alice", "hmacauth_credentials": [{"username": "alice", "secret": "s3cret"}]},
    {"username": "bob", "hmacauth_credentials": [{"username": "bob-signer", "secret": "other"}]},
    {"username": "anonymous", "id": ANONYMOUS_ID},
]

DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256,
           "hmac-sha384": hashlib.sha384, "hmac-sha512": hashlib.sha512}


def now() -> str:
    return formatdate(usegmt=True)


def sign(signing_string: str, secret: str = "s3cret", algorithm: str = "hmac-sha256") -> str:
    """A signature as a client library computes it, independently of the plugin."""
    mac = hmac.new(secret.encode(), signing_string.encode(), DIGESTS[algorithm])
    return base64.b64encode(mac.digest()).decode()


def authorization(headers: list[str], signature: str, username: str = "alice",
                  algorithm: str = "hmac-sha256") -> str:
    return (f'hmac username="{username}", algorithm="{algorithm}", '
            f'headers="{" ".join(headers)}", signature="{signature}"')
