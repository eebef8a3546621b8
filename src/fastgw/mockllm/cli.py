"""`fastgw mock-llm`: command-line entry of the built-in mock LLM upstream."""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop

from fastgw.mockllm.server import serve
from fastgw.mockllm.textgen import DEFAULT_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS

# Printed (and flushed) once the socket listens; `fastgw.testing.mock_llm` waits for it.
READY_PREFIX = "fastgw mock-llm listening on "
_DESCRIPTION = (
    "Serve a deterministic OpenAI-, Anthropic-, Gemini-, Ollama- and Azure-compatible LLM "
    "upstream, for demos, tests and load tests."
)


def build_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `mock-llm` subcommand to fastgw's CLI; it sets `func` to a runner -> exit code."""
    parser = subparsers.add_parser(
        "mock-llm", help="run the built-in mock LLM upstream", description=_DESCRIPTION
    )
    _add_options(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """`python -m fastgw.mockllm [options]`."""
    parser = argparse.ArgumentParser(prog="fastgw mock-llm", description=_DESCRIPTION)
    _add_options(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; returns the process exit code."""
    uvloop.run(_serve_until_signalled(args))
    return 0


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=9000,
        help="port to listen on; 0 picks a free one (default: 9000)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        help="delay before the first byte of each reply (default: 0)",
    )
    parser.add_argument(
        "--tokens-per-s",
        type=_non_negative,
        default=0.0,
        help="pace of streamed tokens; 0 = no pacing (default: 0)",
    )
    parser.add_argument(
        "--fail-rate",
        type=_fraction,
        default=0.0,
        help="fraction of requests answered with a 500/503/429 provider error (default: 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the failure draws (default: random)"
    )
    parser.add_argument(
        "--output-tokens",
        type=_output_tokens,
        default=DEFAULT_OUTPUT_TOKENS,
        help=f"length of an answer before max_tokens applies (default: {DEFAULT_OUTPUT_TOKENS})",
    )


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    server = await serve(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        tokens_per_s=args.tokens_per_s,
        fail_rate=args.fail_rate,
        seed=args.seed,
        output_tokens=args.output_tokens,
    )
    port = server.sockets[0].getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _output_tokens(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_OUTPUT_TOKENS}, got {text}")
    return value
