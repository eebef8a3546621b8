"""Scripted LLM traffic through the gateway, in the OpenAI request shape.

Each simulated user sends chat completions, most of them plain JSON and some streamed
(SSE), and checks every answer. Streamed calls also report their time to first token as
a separate ``SSE ttft`` row (what a chat user feels) and their whole duration as
``SSE full answer``; locust's own ``chat stream`` row times only the response headers.

Run (locust is the ``bench`` extra: ``.venv/bin/pip install locust``)::

    .venv/bin/python -m fastgw mock-llm --port 9000 &          # or a real provider
    .venv/bin/python -m fastgw run -c docker/config.yaml &      # a route to it on :8000
    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 1m [--model gpt-4o-mini] [--api-key KEY]

``--api-key`` is sent as ``Authorization: Bearer KEY`` and as ``apikey: KEY``, so routes
with ai-proxy or key-auth accept it. ``--stream-share`` sets the share of streamed calls.
"""

from __future__ import annotations

import random
import time

import orjson
from locust import HttpUser, between, events, task

PROMPTS = (
    "Explain in two sentences why connection keep-alive matters for a reverse proxy.",
    "Write a haiku about rate limiting.",
    "List three differences between round-robin and least-connections balancing.",
    "Summarise what a consistent-hash ring is for, in one paragraph.",
    "Translate 'the gateway is healthy' into French, German and Spanish.",
    "Give one example of a JSON schema for a weather tool call.",
)


@events.init_command_line_parser.add_listener
def add_llm_options(parser) -> None:
    parser.add_argument("--model", default="gpt-4o-mini", help="model name sent in requests")
    parser.add_argument("--api-key", default="", help="client key for the gateway, if a route wants one")
    parser.add_argument("--chat-path", default="/v1/chat/completions", help="chat completions path")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens per request")
    parser.add_argument("--stream-share", type=float, default=0.25, help="share of streamed calls (0-1)")


class ChatUser(HttpUser):
    """A chat client: a question, a think pause, another question."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.model = options.model
        self.chat_path = options.chat_path
        self.max_tokens = options.max_tokens
        self.stream_share = options.stream_share
        self.headers = {"Content-Type": "application/json"}
        if options.api_key:
            self.headers |= {"Authorization": f"Bearer {options.api_key}", "apikey": options.api_key}

    def chat_request(self, stream: bool) -> bytes:
        request = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": random.choice(PROMPTS)},
            ],
            "max_tokens": self.max_tokens,
            "temperature": 0.7,
            "stream": stream,
        }
        if stream:
            # Asks for the usage chunk at the end, as cost-tracking clients do.
            request["stream_options"] = {"include_usage": True}
        return orjson.dumps(request)

    @task
    def chat(self) -> None:
        if random.random() < self.stream_share:
            self.chat_streamed()
        else:
            self.chat_json()

    def chat_json(self) -> None:
        with self.client.post(self.chat_path, data=self.chat_request(stream=False), headers=self.headers,
                              name="chat json", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            try:
                answer = orjson.loads(response.content)
                answer["choices"][0]["message"]
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                response.failure(f"not a chat completion: {response.text[:200]}")

    def chat_streamed(self) -> None:
        started = time.perf_counter()
        first_token_ms: float | None = None
        with self.client.post(self.chat_path, data=self.chat_request(stream=True), headers=self.headers,
                              name="chat stream", stream=True, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            finished = False
            for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == b"[DONE]":
                    finished = True
                    break
                if first_token_ms is None and has_content(data):
                    first_token_ms = (time.perf_counter() - started) * 1000
            # A stream cut before [DONE] is a failed answer even with status 200.
            if not finished:
                response.failure("stream ended without data: [DONE]")
                return
        # Locust times a streamed call to its headers only, so report the answer's own times.
        if first_token_ms is not None:
            self.report_sse("ttft", first_token_ms)
        self.report_sse("full answer", (time.perf_counter() - started) * 1000)

    def report_sse(self, name: str, milliseconds: float) -> None:
        self.environment.events.request.fire(
            request_type="SSE", name=name, response_time=milliseconds,
            response_length=0, exception=None, context={},
        )


def has_content(data: bytes) -> bool:
    """Whether one SSE chunk carries answer text (not only a role or usage)."""
    try:
        choices = orjson.loads(data).get("choices") or []
    except orjson.JSONDecodeError:
        return False
    return any((choice.get("delta") or {}).get("content") for choice in choices)
