"""Why a token was refused, as RFC 6750 says to tell the client."""

from __future__ import annotations


class TokenRefused(Exception):
    """401 ``invalid_token`` (the default) or 403 ``insufficient_scope``;
    the message is for the log, never for the client."""

    def __init__(self, reason: str, status: int = 401,
                 error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.status = status
        self.error = error


class ProviderUnavailable(Exception):
    """The identity provider could not be asked, and nothing cached answers."""
