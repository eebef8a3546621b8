"""fastgw: an API and AI/LLM gateway with a compiled hot path."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The composition root: the plugin layer hands its registry to the config
# layer, which validates plugin entries with it (config never imports plugins).
import fastgw.plugins  # noqa: E402,F401

# The modules that make up the hot path; each must be a compiled extension
# for the gateway to run at speed.
CORE_MODULES = ("wire", "buffer", "upstream_runtime", "upstream_connection", "gateway",
                "client_connection", "router", "metrics", "balancer", "ratelimit", "cachekey",
                "decisions", "model_balancer", "token_estimate", "pii_checks")


def core_status() -> dict:
    """Which compiled core modules are loaded, and why not when they are not."""
    modules = {}
    for name in CORE_MODULES:
        try:
            mod = importlib.import_module(f"fastgw._core.{name}")
        except ImportError as exc:
            modules[name] = f"missing: {exc}"
            continue
        path = getattr(mod, "__file__", "") or ""
        modules[name] = "compiled" if path.endswith((".so", ".pyd")) else "pure python"
    return {"loaded": all(v == "compiled" for v in modules.values()), "modules": modules}
