from fastgw.config.schema import Boolean, Integer, Record, String

SCHEMA = Record(
    {
        "tag": String(default="probe", description="Added to X-Probe headers."),
        "priority_hint": Integer(default=0, between=(0, 10), description="Unused marker."),
        "exit_status": Integer(default=0, between=(0, 599), description="Answer in access."),
        "async_access": Boolean(default=False, description="Run access as a coroutine."),
        "read_body": Boolean(default=False, description="Read the body in access."),
        "raise_in": String(default="", description="Phase that raises."),
        "upper_body": Boolean(default=False, description="Upper-case the response body."),
        "log_file": String(default="", description="Append one line per request here."),
        "upstream_url": String(default="", description="Send the request here instead."),
        "decide_header": Integer(default=0, between=(0, 2),
                                 description="Decide X-Probe-Decided in access (2: twice)."),
    },
    description="probe",
)
