"""The compiled core satisfies the Python side's view of it (the Protocols of
fastgw.plugins.core_api): every method and field named there exists on the
compiled classes, and the runner has every method the core calls."""

import asyncio
import inspect

import pytest

from fastgw._core import protocol
from fastgw.plugins import core_api
from fastgw.plugins.runner import PluginRunner


def protocol_names(proto) -> set[str]:
    names = set(getattr(proto, "__annotations__", {}))
    for klass in proto.__mro__:
        if klass in (object,) or not getattr(klass, "_is_protocol", False):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n, v in vars(klass).items()
                  if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return names


@pytest.mark.parametrize(("proto", "compiled"), [
    (core_api.CoreClient, protocol.ClientConnection),
    (core_api.CoreGateway, protocol.Gateway),
    (core_api.CoreRequest, protocol.Request),
])
def test_the_compiled_classes_have_what_the_python_side_uses(proto, compiled):
    names = protocol_names(proto)
    assert names
    missing = sorted(name for name in names if not hasattr(compiled, name))
    assert missing == []


def test_the_runner_has_every_call_the_core_makes():
    loop = asyncio.new_event_loop()
    try:
        runner = PluginRunner(loop)
    finally:
        loop.close()
    names = protocol_names(core_api.RunnerAPI)
    assert {"access", "header_filter", "log"} <= names
    for name in names:
        assert callable(getattr(runner, name, None)), name
        wanted = inspect.signature(getattr(core_api.RunnerAPI, name))
        have = inspect.signature(getattr(runner, name))
        assert list(have.parameters) == [p for p in wanted.parameters if p != "self"], name


def test_the_protocol_stub_names_only_what_the_compiled_module_has():
    import ast
    from pathlib import Path

    stub = ast.parse((Path(protocol.__file__).parent / "protocol.pyi").read_text())
    checked = 0
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            compiled = getattr(protocol, node.name)
            for item in node.body:
                name = getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", None)
                if name and not name.startswith("__"):
                    assert hasattr(compiled, name), f"{node.name}.{name}"
                    checked += 1
        elif isinstance(node, (ast.FunctionDef, ast.AnnAssign)):
            name = node.name if isinstance(node, ast.FunctionDef) else node.target.id
            assert hasattr(protocol, name), name
            checked += 1
    assert checked > 50
