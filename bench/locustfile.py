"""Realistic LLM traffic through the gateway, for `make loadtest`.

Each simulated user is one consumer (a key of ``--api-keys``) chatting through
both front doors: OpenAI's Chat Completions and, for ``--anthropic-share`` of
the calls, Anthropic's Messages. Prompts are drawn from a long-tailed
(log-normal) size distribution, as real prompts are: most are short, a few
are pages long. ``--stream-share`` of the calls are streamed.

Besides locust's own rows (times to the response headers), two measures
users feel are reported:

* time to first token, as ``SSE`` rows named ``ttft <front door>``, and the
  whole streamed answer as ``full answer <front door>``;
* output tokens per second of each streamed answer (after its first token),
  summarised per front door at the end into ``<csv prefix>_llm.csv`` (and the
  log): count, mean, p50, p95.

Run by ``make loadtest`` (headless, bounded, CSV and HTML reports against the
quickstart that ``make run`` serves), or by hand::

    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 1m --api-keys demo-key
"""

from __future__ import annotations

import csv
import math
import random
import statistics
import time
from collections import defaultdict

import orjson
from locust import HttpUser, between, events, task

WORDS = ("gateway", "latency", "token", "stream", "consumer", "upstream", "route", "cache",
         "model", "limit", "request", "answer", "budget", "retry", "header", "policy")
QUESTIONS = (
    "Explain why connection keep-alive matters for a reverse proxy.",
    "Write a haiku about rate limiting.",
    "List three differences between round-robin and least-connections balancing.",
    "Summarise what a consistent-hash ring is for.",
    "Give one example of a JSON schema for a weather tool call.",
)
# Output tokens per second of streamed answers, per front door.
TOKEN_RATES: dict[str, list[float]] = defaultdict(list)


@events.init_command_line_parser.add_listener
def add_llm_options(parser) -> None:
    parser.add_argument("--api-keys", default="demo-key",
                        help="consumers' keys, comma-separated; each user is one of them")
    parser.add_argument("--openai-path", default="/openai/v1/chat/completions")
    parser.add_argument("--anthropic-path", default="/anthropic/v1/messages")
    parser.add_argument("--openai-model", default="mock-gpt")
    parser.add_argument("--anthropic-model", default="mock-claude")
    parser.add_argument("--anthropic-share", type=float, default=0.3,
                        help="share of calls through the Anthropic front door (0-1)")
    parser.add_argument("--stream-share", type=float, default=0.5,
                        help="share of streamed calls (0-1)")
    parser.add_argument("--prompt-words-median", type=float, default=60,
                        help="median prompt size in words (log-normal, sigma 1)")
    parser.add_argument("--max-tokens", type=int, default=128)


def prompt_words(median: float) -> int:
    """A prompt size: log-normal around the median, at most 4,000 words."""
    return max(1, min(4000, int(random.lognormvariate(math.log(median), 1.0))))


def prompt(median: float) -> str:
    filler = " ".join(random.choices(WORDS, k=prompt_words(median)))
    return f"Context: {filler}.\nQuestion: {random.choice(QUESTIONS)}"


class ChatUser(HttpUser):
    """A consumer: a question, a think pause, another question."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.options = self.environment.parsed_options
        key = random.choice([k for k in self.options.api_keys.split(",") if k] or [""])
        self.headers = {"Content-Type": "application/json"}
        if key:
            # apikey for key-auth; the SDKs' own header for the provider side.
            self.headers |= {"apikey": key, "Authorization": f"Bearer {key}"}

    @task
    def chat(self) -> None:
        options = self.options
        stream = random.random() < options.stream_share
        question = prompt(options.prompt_words_median)
        if random.random() < options.anthropic_share:
            body = {"model": options.anthropic_model, "max_tokens": options.max_tokens,
                    "messages": [{"role": "user", "content": question}], "stream": stream}
            headers = {**self.headers, "anthropic-version": "2023-06-01"}
            self.call("anthropic", options.anthropic_path, body, headers, stream)
        else:
            body = {"model": options.openai_model, "max_tokens": options.max_tokens,
                    "messages": [{"role": "system", "content": "Be concise."},
                                 {"role": "user", "content": question}],
                    "stream": stream}
            if stream:
                body["stream_options"] = {"include_usage": True}
            self.call("openai", options.openai_path, body, self.headers, stream)

    def call(self, door: str, path: str, body: dict, headers: dict, stream: bool) -> None:
        name = f"{door} {'stream' if stream else 'json'}"
        started = time.perf_counter()
        with self.client.post(path, data=orjson.dumps(body), headers=headers, name=name,
                              stream=stream, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            if not stream:
                if not answered(door, response.content):
                    response.failure(f"not a {door} answer: {response.text[:200]}")
                return
            first, last, chunks, finished = None, None, 0, False
            for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]" or b'"message_stop"' in data:
                    finished = True
                    break
                if has_text(door, data):
                    last = time.perf_counter()
                    first = first or last
                    chunks += 1
            if not finished:
                response.failure("the stream ended before its end event")
                return
        if first is None:
            return
        self.report(f"ttft {door}", (first - started) * 1000)
        self.report(f"full answer {door}", (time.perf_counter() - started) * 1000)
        if chunks > 1 and last > first:
            # The mock (and most providers) send one token per text event.
            TOKEN_RATES[door].append((chunks - 1) / (last - first))

    def report(self, name: str, milliseconds: float) -> None:
        self.environment.events.request.fire(
            request_type="SSE", name=name, response_time=milliseconds,
            response_length=0, exception=None, context={})


def answered(door: str, content: bytes) -> bool:
    try:
        answer = orjson.loads(content)
        if door == "anthropic":
            return answer["content"][0]["type"] == "text"
        return answer["choices"][0]["message"]["role"] == "assistant"
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return False


def has_text(door: str, data: bytes) -> bool:
    """Whether one SSE event carries answer text (not a role, usage or stop)."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    if door == "anthropic":
        return event.get("type") == "content_block_delta" and bool(
            (event.get("delta") or {}).get("text"))
    return any((choice.get("delta") or {}).get("content")
               for choice in event.get("choices") or ())


@events.quitting.add_listener
def write_token_rates(environment, **_kwargs) -> None:
    rows = []
    for door, rates in sorted(TOKEN_RATES.items()):
        ordered = sorted(rates)
        rows.append({"front_door": door, "streams": len(ordered),
                     "tokens_per_s_mean": round(statistics.fmean(ordered), 1),
                     "tokens_per_s_p50": round(ordered[len(ordered) // 2], 1),
                     "tokens_per_s_p95": round(ordered[int(len(ordered) * 0.95)], 1)})
    for row in rows:
        print("LLM output rate:", row)
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix and rows:
        with open(f"{prefix}_llm.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
