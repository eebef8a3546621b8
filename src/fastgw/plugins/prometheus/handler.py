"""The prometheus plugin runs no Python per request: its presence on a route
gives the route a ``MetricsCell`` in the compiled core, which counts every
request there. This class only carries the config for the exporter."""

from fastgw.plugins.base import Plugin


class PrometheusPlugin(Plugin):
    name = "prometheus"
    PRIORITY = 13
    __slots__ = ()


HANDLER = PrometheusPlugin
