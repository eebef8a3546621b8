"""``fastgw check --explain``: for each error of a refused config, one line
saying what a Kong user should change.

Advice is chosen by the shape of the error message (the messages are the
schema's own, see ``fastgw.config.schema``); an error no rule knows still
gets a line that says to change the value named by its path.
"""

from __future__ import annotations

import re

from fastgw.config.kong_only import KONG_ONLY_KEYS

# Kong fields fastgw refuses as unknown, by name, with what to do instead.
KONG_FIELDS = {
    "sources": "fastgw has no stream (TCP/TLS) routes; remove it",
    "destinations": "fastgw has no stream (TCP/TLS) routes; remove it",
    "tls_verify_depth": "not supported; remove it (verification uses the full chain)",
    "ordering": "Kong Enterprise's dynamic plugin ordering is not supported; plugins run by "
                "priority",
    "expression": "the expressions router is not supported; use paths, hosts, methods and "
                  "headers (the traditional router)",
    "priority": "the expressions router is not supported; remove it",
}

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^unknown field$"), "remove '{field}': fastgw has no such field here"),
    (re.compile(r"^(plugin '.*' is a Kong.*)$"), "remove the plugin: {0}"),
    (re.compile(r"^unknown plugin '(.*)'$"),
     "check the plugin name '{0}': `fastgw plugins` lists what fastgw has"),
    (re.compile(r"^required field missing"), "add '{field}'"),
    (re.compile(r"^expected one of: (.*)$"), "use one of: {0}"),
    (re.compile(r"^duplicate (.*) \(also at (.*)\)$"),
     "make the {0} unique (it is also at {1}); Kong refuses the duplicate too"),
    (re.compile(r"^unknown (.*) '(.*)'$"), "define the {0} '{1}', or fix the reference"),
    (re.compile(r"^cannot resolve .*environment variable (\S+) is not set"),
     "set the environment variable {0} where fastgw runs"),
    (re.compile(r"^vault references are not allowed"),
     "write the value itself: this field is not referenceable"),
    (re.compile(r'^expected a string: write "(.*)" in quotes$'), 'write "{0}", in quotes'),
    (re.compile(r"(not supported|is not a Kong field|not part of fastgw)"),
     "remove or change it: {message}"),
]


def explain(error: str) -> str:
    """One line of advice for one ``path: message`` error."""
    path, _, message = error.partition(": ")
    if not message:
        return f"{error}: fix the file"
    field = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if path in KONG_ONLY_KEYS:
        return f"{path}: remove it ({KONG_ONLY_KEYS[path]})"
    if message == "unknown field" and field in KONG_FIELDS:
        return f"{path}: {KONG_FIELDS[field]}"
    for pattern, advice in _RULES:
        match = pattern.search(message)
        if match is not None:
            return f"{path}: " + advice.format(*match.groups(), field=field, message=message)
    return f"{path}: change the value ({message})"
