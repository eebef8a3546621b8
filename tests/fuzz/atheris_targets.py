"""Coverage-guided fuzzing (atheris) of the parts that read untrusted bytes:
the router (received vs forwarded path), the config loader (JSON and YAML),
the SSE parser and every provider translator. `make fuzz` runs each target for
a bounded time; the Hypothesis tests in the suite hold the same properties.

    .venv/bin/python tests/fuzz/atheris_targets.py TARGET [libFuzzer flags]
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "core"), str(HERE.parent / "ai")]

with atheris.instrument_imports():
    import orjson
    import yaml

    from fastgw._core import router as compiled_router
    from fastgw.ai import StreamError
    from fastgw.ai.errors import UpstreamFormatError
    from fastgw.ai.sse import SSEParser
    from fastgw.config.loader import ConfigError, decode_yaml, parse_config


def router_target():
    from conftest import load_core_module
    from test_router_forwarding import build, check_forwarding

    # The uncompiled build is instrumented (its coverage guides the fuzzer,
    # see instrument_all below); the compiled one is checked on the same inputs.
    pure_router = load_core_module("router", "pure")
    builds = [(build(module), module) for module in (pure_router, compiled_router)]

    def run(data: bytes) -> None:
        url = b"/" + data.replace(b"?", b"")
        for router, module in builds:
            check_forwarding(router, module, url)

    return run


def config_target():
    def run(data: bytes) -> None:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            try:
                doc = decode_yaml(data)
            except (yaml.YAMLError, ConfigError, UnicodeDecodeError):
                return
        try:
            parse_config(doc)
        except ConfigError:
            pass

    return run


def sse_target():
    def run(data: bytes) -> None:
        whole = SSEParser().feed(data)
        parser = SSEParser()
        cut = len(data) // 3
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == whole

    return run


def translators_target():
    from test_ai_fuzz import MODELS

    from fastgw.ai import get_translator

    translators = [get_translator(model) for model in MODELS.values()]
    request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    def run(data: bytes) -> None:
        for translator in translators:
            try:
                translator.parse_response("llm/v1/chat", 200, data, request, model_name="m")
            except UpstreamFormatError:
                pass
            stream = translator.stream_translator("llm/v1/chat", "m", request)
            try:
                stream.feed(data)
                stream.finish()
            except StreamError:
                pass

    return run


TARGETS = {"router": router_target, "config": config_target, "sse": sse_target,
           "translators": translators_target}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: atheris_targets.py {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]()
    atheris.instrument_all()  # also what the targets loaded outside the import hook
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
