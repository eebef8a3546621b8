"""The compiled core satisfies the Python side's view of it (the Protocols of
fastgw.plugins.core_api): every method and field named there exists on the
compiled classes, and the runner has every method the core calls."""

import asyncio
import inspect
from pathlib import Path

import pytest

import fastgw
from fastgw._core import client_connection, gateway
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
    (core_api.CoreClient, client_connection.ClientConnection),
    (core_api.CoreGateway, gateway.Gateway),
    (core_api.CoreRequest, gateway.Request),
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


CORE_PYX = sorted(p.stem for p in Path(gateway.__file__).parent.glob("*.pyx"))


@pytest.mark.parametrize("name", CORE_PYX)
def test_each_core_stub_names_only_what_its_compiled_module_has(name):
    import ast
    import importlib

    module = importlib.import_module(f"fastgw._core.{name}")
    assert module.__file__.endswith(".so"), "the core must be compiled for this test"
    stub = ast.parse((Path(module.__file__).parent / f"{name}.pyi").read_text())
    checked = 0
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            compiled = getattr(module, node.name)
            for item in node.body:
                attr = getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", None)
                if attr and not attr.startswith("__"):
                    assert hasattr(compiled, attr), f"{node.name}.{attr}"
                    checked += 1
            checked += 1
        elif isinstance(node, (ast.FunctionDef, ast.AnnAssign)):
            attr = node.name if isinstance(node, ast.FunctionDef) else node.target.id
            assert hasattr(module, attr), attr
            checked += 1
    assert checked > 0


def test_every_compiled_core_module_has_a_pxd_and_a_stub_and_is_checked_at_start():
    core = Path(gateway.__file__).parent
    compiled = {p.stem for p in core.glob("*.pyx")} | {
        p.stem for p in core.glob("*.py") if p.with_suffix(".pxd").exists()}
    for name in compiled:
        assert (core / f"{name}.pxd").exists(), name
        assert (core / f"{name}.pyi").exists(), name
    # `fastgw version` and the start-up check report every one of them.
    assert set(fastgw.CORE_MODULES) == compiled
