"""Fixtures for the configuration layer tests.

``fake_plugin`` registers a plugin named ``test-auth`` for one test, since no
real plugin exists yet: the loader must treat a registered plugin exactly as
it will treat the real ones (schema defaults, secrets, scoping).
"""

from __future__ import annotations

import sys
import types

import pytest

import fastgw.plugins  # noqa: E402
from fastgw.config import schema  # noqa: E402
from fastgw.config.schema import Integer, Record, String, Validation  # noqa: E402

FAKE_PLUGIN = "test-auth"
FAKE_PACKAGE = "fastgw_test_plugins.test_auth"


def _check_fake_config(config: dict, path: schema.Path, ctx: Validation) -> None:
    if config["header_name"] == "host":
        ctx.error((path, "header_name"), "must not be 'host'")


FAKE_SCHEMA = Record(
    {
        "header_name": String(default="apikey", description="Header carrying the key."),
        "api_key": String(secret=True, referenceable=True, description="Upstream key."),
        "limit": Integer(between=(1, 100), default=10, description="Requests per second."),
    },
    validator=_check_fake_config,
    description="A plugin that exists only in these tests.",
)


@pytest.fixture
def fake_plugin(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType(FAKE_PACKAGE + ".schema")
    module.SCHEMA = FAKE_SCHEMA
    monkeypatch.setitem(sys.modules, FAKE_PACKAGE + ".schema", module)
    monkeypatch.setitem(fastgw.plugins.PLUGIN_MODULES, FAKE_PLUGIN, FAKE_PACKAGE)
    return FAKE_PLUGIN
