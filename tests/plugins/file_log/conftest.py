import pytest

from fastgw.config.loader import parse_config
from fastgw.plugins import handler_class
from fastgw.plugins.state import ConfigState


@pytest.fixture
def build_file_log():
    """file-log handlers from config dicts, validated by the real loader;
    every handler of one call shares one ConfigState (one config version)."""

    def build(*configs: dict):
        doc = {"_format_version": "3.0",
               "routes": [{"name": f"r{i}", "paths": [f"/{i}"],
                           "plugins": [{"name": "file-log", "config": config}]}
                          for i, config in enumerate(configs)]}
        parsed = parse_config(doc)
        state = ConfigState(parsed)
        handlers = [handler_class("file-log")(p.config, state, p) for p in parsed.plugins]
        return handlers if len(handlers) > 1 else handlers[0]

    return build
