from runtime_fixtures.probe_plugin.handler import ProbePlugin


class ProbeLowPlugin(ProbePlugin):
    name = "probe-low"
    PRIORITY = 400


HANDLER = ProbeLowPlugin
