"""Config of the prometheus plugin: which metric families are exported.

As in Kong, every family but the connection gauges is off by default."""

from fastgw.config.schema import Boolean, Record

SCHEMA = Record(
    {
        "per_consumer": Boolean(
            default=False,
            description="Fill the consumer label of fastgw_http_requests_total.",
        ),
        "status_code_metrics": Boolean(
            default=False, description="Export fastgw_http_requests_total by status code."
        ),
        "latency_metrics": Boolean(
            default=False,
            description="Export the request, upstream and gateway latency histograms.",
        ),
        "bandwidth_metrics": Boolean(
            default=False, description="Export fastgw_bandwidth_bytes by direction."
        ),
        "upstream_health_metrics": Boolean(
            default=False, description="Export fastgw_upstream_target_health."
        ),
        "ai_metrics": Boolean(
            default=False, description="Export the fastgw_ai_llm_* families."
        ),
    },
    description="Prometheus metrics of the requests this plugin covers.",
)
