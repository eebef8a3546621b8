"""Builders of small declarative documents shared by the config tests."""

from __future__ import annotations

from typing import Any

import pytest

from fastgw.config.loader import ConfigError, parse_config
from fastgw.config.model import Config


def document(**entities) -> dict:
    """A declarative document in format 3.0 holding ``entities``."""
    return {"_format_version": "3.0", **entities}


def service(name: str = "svc", **fields) -> dict:
    """A minimal valid service, with ``fields`` added or replaced."""
    return {"name": name, "url": "http://127.0.0.1:9000", **fields}


def parse(doc: dict, env: dict[str, str] | None = None) -> Config:
    return parse_config(doc, env={} if env is None else env)


def errors_of(doc: Any, env: dict[str, str] | None = None) -> list[str]:
    """Every error parse_config reports for ``doc`` (which must be invalid)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, env={} if env is None else env)
    assert caught.value.errors, "ConfigError without errors"
    return caught.value.errors
