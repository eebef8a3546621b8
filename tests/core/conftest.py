"""Run each ``fastgw._core`` test against both builds of its module.

The modules written as one ``.py`` source with an augmenting ``.pxd`` (aiohttp's
pattern) exist twice: the compiled extension imported as ``fastgw._core.<name>``,
and the same source executed uncompiled. A test module names its module once::

    CORE_MODULE = "balancer"

    def test_something(core_module):      # runs once per build
        core_module.RoundRobin(...)

The ``load_core`` fixture is ``load_core_module(name, build)``, either build on
demand (for example to assert the compiled one is an extension, or to compare
the builds). With ``FASTGW_NO_EXTENSIONS=1`` the compiled runs are skipped;
otherwise a missing extension fails its tests.
"""

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE_DIR = SRC / "fastgw" / "_core"
CORE_BUILDS = ("compiled", "pure")
PURE_PREFIX = "fastgw._core._pure_"

_loaded: dict[tuple[str, str], ModuleType] = {}


def load_core_module(name: str, build: str) -> ModuleType:
    """``fastgw._core.<name>`` as the compiled extension, or its ``.py`` run uncompiled."""
    if build not in CORE_BUILDS:
        raise ValueError(f"build must be one of {CORE_BUILDS}, got {build!r}")
    cached = _loaded.get((name, build))
    if cached is not None:
        return cached
    if build == "compiled":
        if os.environ.get("FASTGW_NO_EXTENSIONS"):
            pytest.skip("FASTGW_NO_EXTENSIONS=1: compiled core not built")
        module = importlib.import_module(f"fastgw._core.{name}")
        if not (module.__file__ or "").endswith((".so", ".pyd")):
            pytest.fail(
                f"fastgw._core.{name} is not compiled ({module.__file__}); "
                f"run: .venv/bin/cythonize -i -3 src/fastgw/_core/{name}.py"
            )
    else:
        # Registered under another name, in the same package, so the pure
        # build never shadows the compiled one and forked workers see it too.
        alias = PURE_PREFIX + name
        spec = importlib.util.spec_from_file_location(alias, CORE_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[alias] = module
        spec.loader.exec_module(module)
    _loaded[(name, build)] = module
    return module


@pytest.fixture(scope="session")
def load_core():
    """``load_core_module``, for tests that pick their build themselves."""
    return load_core_module


@pytest.fixture(params=CORE_BUILDS)
def core_build(request) -> str:
    """The name of the build under test: "compiled" or "pure"."""
    return request.param


@pytest.fixture
def core_module(request, core_build) -> ModuleType:
    """The test module's ``CORE_MODULE``, in the build under test."""
    name = getattr(request.module, "CORE_MODULE", None)
    if name is None:
        raise pytest.UsageError(f"{request.module.__name__} must set CORE_MODULE")
    return load_core_module(name, core_build)
