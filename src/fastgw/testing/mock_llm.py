"""Run the mock LLM in a subprocess for tests: `with running_mock(latency_ms=50) as mock: ...`."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

import fastgw.mockllm
from fastgw.mockllm.cli import READY_PREFIX

_READY_RE = re.compile(re.escape(READY_PREFIX) + r"http://(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d+)")
# The option flags of `fastgw mock-llm`, keyed by running_mock's keyword names.
_FLAGS = {
    "latency_ms": "--latency-ms",
    "tokens_per_s": "--tokens-per-s",
    "fail_rate": "--fail-rate",
    "seed": "--seed",
    "output_tokens": "--output-tokens",
}


@dataclass(frozen=True)
class MockLLM:
    """A running mock: where it listens, and its introspection endpoints."""

    host: str
    port: int
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        """`http://host:port`, the base URL for the Anthropic SDK, Gemini and Ollama."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """`http://host:port/v1`, the base URL for the OpenAI SDK."""
        return self.base_url + "/v1"

    def requests(self) -> list[dict]:
        """The last 100 requests received: method, path, query, headers (pairs), body."""
        return orjson.loads(self._call("GET", "/_mock/requests"))

    def clear_requests(self) -> None:
        self._call("DELETE", "/_mock/requests")

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()


@contextlib.contextmanager
def running_mock(
    *, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 15.0, **options: object
) -> Iterator[MockLLM]:
    """Start `python -m fastgw.mockllm` (on a free port by default), wait until it listens.

    `options` are `serve()`'s: latency_ms, tokens_per_s, fail_rate, seed, output_tokens.
    The process is terminated on exit.
    """
    unknown = set(options) - set(_FLAGS)
    if unknown:
        raise TypeError(f"unknown running_mock options: {sorted(unknown)}")
    command = [sys.executable, "-m", "fastgw.mockllm", "--host", host, "--port", str(port)]
    for name, value in options.items():
        if value is not None:
            command += [_FLAGS[name], str(value)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=_child_env())
    try:
        match = _wait_until_ready(process, startup_timeout_s)
        yield MockLLM(host, int(match["port"]), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:  # started with stdout=PIPE
            process.stdout.close()


def _child_env() -> dict[str, str]:
    # The child must import this same fastgw, installed or not (tests run from a checkout).
    package_root = str(Path(fastgw.mockllm.__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    return env


def _wait_until_ready(process: subprocess.Popen, timeout_s: float) -> re.Match:
    deadline = time.monotonic() + timeout_s
    output = b""
    stdout = process.stdout
    assert stdout is not None  # started with stdout=PIPE
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while b"\n" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"mock-llm did not start within {timeout_s}s: {output!r}")
            if selector.select(remaining):
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    code = process.wait()
                    raise RuntimeError(f"mock-llm exited with {code} before listening: {output!r}")
                output += chunk
    match = _READY_RE.search(output.decode("utf-8", "replace"))
    if match is None:
        raise RuntimeError(f"unexpected mock-llm start-up output: {output!r}")
    return match
