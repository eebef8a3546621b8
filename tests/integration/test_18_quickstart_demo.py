"""The demo is the product: `make run`'s quickstart shows the AI gateway, and
every snippet of the README's "Try it" section (the fenced blocks tagged
`demo`) works as printed against it: curl on both front doors and the plain
route, and the official openai and anthropic SDKs, streaming included."""

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from fastgw.testing import GatewayProcess
from fastgw.testing.mock_llm import running_mock

ROOT = Path(__file__).resolve().parents[2]
_DEMO_BLOCK = re.compile(r"^```(sh|python) demo\n(.*?)^```", re.MULTILINE | re.DOTALL)


def demo_blocks() -> list[tuple[str, str]]:
    return _DEMO_BLOCK.findall((ROOT / "README.md").read_text())


@pytest.fixture(scope="module")
def quickstart():
    """The quickstart as make run serves it (mock latency and streaming pace
    included), on free ports instead of 9000, 8000 and 8001."""
    text = (ROOT / "examples" / "quickstart.yaml").read_text()
    with running_mock(latency_ms=40, tokens_per_s=200) as mock:
        doc = yaml.safe_load(text.replace("http://127.0.0.1:9000", mock.base_url))
        doc.pop("_gateway")
        with GatewayProcess(doc) as gw:
            yield gw


def _localised(code: str, gw: GatewayProcess) -> str:
    return (code.replace("localhost:8000", f"127.0.0.1:{gw.port}")
                .replace("localhost:8001", f"127.0.0.1:{gw.admin_port}"))


def test_the_readme_has_the_demo_blocks():
    kinds = [kind for kind, _ in demo_blocks()]
    assert kinds.count("sh") >= 2 and kinds.count("python") == 2


@pytest.mark.parametrize("index", range(len(demo_blocks())))
def test_each_readme_snippet_works_as_printed(quickstart, index):
    kind, code = demo_blocks()[index]
    code = _localised(code, quickstart)
    command = ["bash", "-euo", "pipefail", "-c", code] if kind == "sh" \
        else [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "NO_PROXY": "*"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip(), out.stderr
    if "openai" in code or "anthropic" in code:
        assert "Mock answer" in out.stdout


def test_the_quickstart_shows_the_ai_gateway(quickstart):
    body = orjson.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
    status, _, answer = quickstart.request("POST", "/openai/v1/chat/completions", body,
                                           {"Content-Type": "application/json"})
    assert (status, orjson.loads(answer)) == (401, {"message": "No API key found in request"})
    status, headers, _ = quickstart.request("POST", "/openai/v1/chat/completions", body, {
        "Content-Type": "application/json", "apikey": "demo-key"})
    assert status == 200
    assert headers["x-ai-ratelimit-limit-minute-openai"] == "20000"
    _, _, metrics = quickstart.admin("GET", "/metrics")
    assert b'fastgw_ai_llm_requests_total{' in metrics
