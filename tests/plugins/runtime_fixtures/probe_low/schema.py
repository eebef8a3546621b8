from runtime_fixtures.probe_plugin.schema import SCHEMA  # noqa: F401
