"""The plugin registry.

Each plugin lives in ``fastgw.plugins.<name with "-" replaced by "_">`` as a
package holding ``handler.py`` and ``schema.py`` (Kong's layout); ``schema.py``
exposes ``SCHEMA``, the ``Record`` that validates the plugin's ``config``.

The registry is an explicit table rather than a scan of the package, so that a
config naming a plugin costs one dict lookup and a typo can never import an
arbitrary module. A plugin becomes known by adding its name to
``PLUGIN_MODULES``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING

from fastgw.config.schema import Record

if TYPE_CHECKING:
    from fastgw.plugins.base import Plugin

__all__ = ["KNOWN_PLUGINS", "PLUGIN_MODULES", "handler_class", "module_for", "plugin_names", "plugin_schema"]


def module_for(name: str) -> str:
    """The package a plugin of this name lives in, by the naming convention."""
    return "fastgw.plugins." + name.replace("-", "_")


# The plugins fastgw implements, by their Kong names.
KNOWN_PLUGINS = (
    "key-auth", "basic-auth", "jwt", "acl",
    "ip-restriction", "cors", "request-size-limiting", "request-transformer",
    "response-transformer", "correlation-id", "request-termination", "hmac-auth",
    "prometheus", "opentelemetry", "file-log", "http-log",
    "rate-limiting", "proxy-cache", "ai-proxy", "ai-proxy-advanced",
    "ai-rate-limiting-advanced", "ai-prompt-guard", "ai-prompt-decorator",
    "ai-prompt-template", "ai-sanitizer", "ai-semantic-cache", "openid-connect",
    "mtls-auth", "ai-mcp-proxy", "ai-mcp-oauth2",
)  # fmt: skip

# Kong plugin name -> package implementing it.
# A name whose package is not in this installation stays unknown (an error in
# the config) rather than failing at import time.
PLUGIN_MODULES: dict[str, str] = {
    name: module_for(name) for name in KNOWN_PLUGINS
    if importlib.util.find_spec(module_for(name)) is not None
}


def _custom_plugins(spec: str) -> dict[str, str]:
    """``FASTGW_CUSTOM_PLUGINS="name=package,other=pkg.mod"``: plugins outside
    fastgw (Kong's ``plugins = bundled,custom``), laid out like bundled ones."""
    found = {}
    for item in spec.split(","):
        name, sep, package = item.strip().partition("=")
        if sep and name and package:
            found[name.strip()] = package.strip()
    return found


PLUGIN_MODULES.update(_custom_plugins(os.environ.get("FASTGW_CUSTOM_PLUGINS", "")))


def plugin_names() -> tuple[str, ...]:
    return tuple(sorted(PLUGIN_MODULES))


def plugin_schema(name: object) -> Record | None:
    """The config schema of a known plugin, or None for an unknown name."""
    package = PLUGIN_MODULES.get(name) if type(name) is str else None
    if package is None:
        return None
    # import_module is a sys.modules lookup after the first call.
    return importlib.import_module(package + ".schema").SCHEMA


from fastgw.config.entities import use_plugin_registry  # noqa: E402 (after plugin_schema)

use_plugin_registry(plugin_schema)


# Handler classes loaded so far (a worker loads those its configs use), in
# load order: the worker's lifecycle hooks go to these.
_LOADED: dict[str, type[Plugin]] = {}


def handler_class(name: str) -> type[Plugin]:
    """The ``Plugin`` subclass of a known plugin (``HANDLER`` in its handler.py)."""
    cls = _LOADED.get(name)
    if cls is None:
        cls = _LOADED[name] = importlib.import_module(PLUGIN_MODULES[name] + ".handler").HANDLER
    return cls


def loaded_handlers() -> tuple[type[Plugin], ...]:
    """The plugin classes this process has loaded (for the lifecycle hooks:
    ``init_worker``, ``shutdown``, ``worker_stats``, ``purge``)."""
    return tuple(_LOADED.values())
