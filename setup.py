"""Build the compiled hot path in ``src/fastgw/_core``.

Every ``.pyx`` there is compiled, and so is every ``.py`` that has a ``.pxd``
beside it (aiohttp's pattern: one pure-Python source, typed by its ``.pxd``,
importable uncompiled). ``FASTGW_NO_EXTENSIONS=1`` skips compilation, and
``FASTGW_CYTHON_TRACE=1`` builds with line tracing for profiling.
"""

import os
from pathlib import Path

from setuptools import setup

CORE = Path("src/fastgw/_core")


def core_sources() -> list[str]:
    sources = sorted(str(p) for p in CORE.glob("*.pyx"))
    for py in sorted(CORE.glob("*.py")):
        if py.with_suffix(".pxd").exists():
            sources.append(str(py))
    return sources


def extensions():
    if os.environ.get("FASTGW_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    trace = bool(os.environ.get("FASTGW_CYTHON_TRACE"))
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if trace else []
    exts = []
    for src in core_sources():
        mod = src[len("src/"):].rsplit(".", 1)[0].replace("/", ".")
        exts.append(
            Extension(mod, [src], define_macros=macros, extra_compile_args=["-O2"])
        )
    directives = {"language_level": "3", "embedsignature": True}
    if trace:
        directives["linetrace"] = True
    return cythonize(
        exts,
        compiler_directives=directives,
        annotate=bool(os.environ.get("FASTGW_CYTHON_ANNOTATE")),
        nthreads=2,
    )


setup(ext_modules=extensions())
