"""Fixtures for the mock LLM tests; gateway tests can reuse `mock_llm` the same way."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import anthropic
import openai
import orjson
import pytest

from fastgw.testing.mock_llm import MockLLM, running_mock


@pytest.fixture(scope="session")
def mock_llm() -> Iterator[MockLLM]:
    """One mock for the whole session, default options (no latency, no failures)."""
    with running_mock(seed=7) as mock:
        yield mock


@pytest.fixture
def openai_client(mock_llm: MockLLM) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=mock_llm.openai_base_url, api_key="test-key", max_retries=0, timeout=10
    )
    yield client
    client.close()


@pytest.fixture
def anthropic_client(mock_llm: MockLLM) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=mock_llm.base_url, api_key="test-key", max_retries=0, timeout=10
    )
    yield client
    client.close()


class RawResponse:
    """A plain HTTP answer, for endpoints and checks that no SDK covers."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return orjson.loads(self.body)

    def lines(self) -> list[bytes]:
        return [line for line in self.body.split(b"\n") if line.strip()]


def http_request(
    mock: MockLLM,
    method: str,
    path: str,
    payload=None,
    headers: dict | None = None,
    raw_body: bytes | None = None,
) -> RawResponse:
    body = (
        raw_body
        if raw_body is not None
        else (orjson.dumps(payload) if payload is not None else None)
    )
    connection = http.client.HTTPConnection(mock.host, mock.port, timeout=10)
    try:
        connection.request(
            method, path, body=body, headers={"content-type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


@pytest.fixture
def call_mock(mock_llm: MockLLM):
    """`call_mock(method, path, payload=None, headers=None, raw_body=None) -> RawResponse`."""

    def call(method: str, path: str, payload=None, headers=None, raw_body=None) -> RawResponse:
        return http_request(mock_llm, method, path, payload, headers, raw_body)

    return call
