"""Exceptions raised by the translation layer.

Each one carries an OpenAI-shaped error body (``{"error": {...}}``) so the
caller can answer in the client's format without looking inside: the OpenAI
front door sends it as is, the Anthropic one converts it with
``anthropic_format.openai_error_to_anthropic``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastgw.ai.openai_format import openai_error


class TranslationError(ValueError):
    """The client's request cannot be expressed in the provider's API (answer 400)."""

    status = 400

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.error: dict[str, Any] = openai_error(message, status=self.status, code=code)


class UnsupportedRouteType(TranslationError):
    """The provider has no operation for this route type (e.g. embeddings on Anthropic)."""


class UpstreamFormatError(Exception):
    """The provider answered with a body we cannot read (answer 502, as Kong does)."""

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = openai_error(message, error_type="api_error", status=502)


class StreamError(Exception):
    """A stream did not end cleanly; ``error`` is what the client must receive instead."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("error", {}).get("message", "stream error"))
        self.error = error


class StreamCut(StreamError):
    """The upstream closed the stream before its end-of-answer marker."""


# What reading untrusted JSON raises when a field has another type or is
# missing where the API promises it (``answer["choices"][0].get(...)`` on a
# string, a list, None).
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


@contextmanager
def json_shape(what: str, error: type[TranslationError] | type[UpstreamFormatError]
               ) -> Iterator[None]:
    """Turns a shape error while reading ``what`` (a client's request, a
    provider's answer) into the gateway's own error for it: a 400
    ``TranslationError`` for a request, a 502 ``UpstreamFormatError`` for an
    answer, whose API the provider broke."""
    try:
        yield
    except (TranslationError, UpstreamFormatError):
        raise
    except _SHAPE_ERRORS as exc:
        raise error(f"{what} does not have the shape of its API "
                    f"({type(exc).__name__}: {exc})") from None
