"""Helpers shared by the ai-proxy tests (imported by name: unique basename)."""

import asyncio
import time

import orjson

PROVIDER_KEY = "provider-secret-4711"
ANTHROPIC_VERSION = "2023-06-01"


def plugin_doc(*configs: dict, extra_plugins: list | None = None) -> dict:
    """A document with one route per ai-proxy config."""
    return {
        "_format_version": "3.0",
        "routes": [{"name": f"r{i}", "paths": [f"/{i}"],
                    "plugins": [{"name": "ai-proxy", "config": config}, *(extra_plugins or [])]}
                   for i, config in enumerate(configs)],
    }


def chat_config(provider: str = "openai", name: str | None = "gpt-test", **overrides) -> dict:
    """A valid ai-proxy config for ``provider`` with a header credential."""
    options = {"upstream_url": "http://127.0.0.1:9"}
    header = ("Authorization", f"Bearer {PROVIDER_KEY}")
    if provider == "anthropic":
        options["anthropic_version"] = ANTHROPIC_VERSION
        header = ("x-api-key", PROVIDER_KEY)
    config = {
        "route_type": "llm/v1/chat",
        "model": {"provider": provider, "name": name, "options": options},
        "auth": {"header_name": header[0], "header_value": header[1]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def run_access(handler, ctx) -> None:
    """Drive access the way the runner does: sync, or awaited when it returns a coroutine."""
    result = handler.access(ctx)
    if result is not None:
        asyncio.run(result)


def body_of(ctx) -> dict:
    return orjson.loads(ctx.request.body)


def wait_for_log_lines(path, count: int, timeout: float = 5.0) -> list[dict]:
    # The log phase runs after the response went out: poll briefly.
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_bytes().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [orjson.loads(line) for line in lines]
        time.sleep(0.02)
