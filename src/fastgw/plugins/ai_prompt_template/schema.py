"""Config of ai-prompt-template, with Kong's fields
(``kong/plugins/ai-prompt-template/schema.lua``). Each template is checked
when the config is: it must be a JSON object once its placeholders are
filled, and every ``{{placeholder}}`` must sit inside a JSON string, so that
a property (escaped as JSON string content) can never leave its string."""

from __future__ import annotations

import re

import orjson

from fastgw.config.schema import Array, Boolean, Integer, Path, Record, String, Validation

PLACEHOLDER = re.compile(r"{{([A-Za-z0-9_]+)}}")


def placeholders_outside_strings(template: str) -> list[str]:
    """The placeholders of ``template`` that are not inside a JSON string."""
    outside = []
    in_string = escaped = False
    index = 0
    while index < len(template):
        char = template[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        else:
            found = PLACEHOLDER.match(template, index)
            if found:
                outside.append(found.group(1))
                index = found.end()
                continue
        index += 1
    return outside


def _check_template(template: dict, path: Path, ctx: Validation) -> None:
    text = template["template"]
    outside = placeholders_outside_strings(text)
    if outside:
        ctx.error((path, "template"), f"placeholder {{{{{outside[0]}}}}} is not inside a JSON "
                  "string: a property could change the request's structure")
        return
    try:
        rendered = orjson.loads(PLACEHOLDER.sub("", text))
    except orjson.JSONDecodeError as exc:
        ctx.error((path, "template"), f"not a JSON request body once rendered: {exc}")
        return
    if not isinstance(rendered, dict):
        ctx.error((path, "template"), "must render a JSON object (a request body)")


def _check(config: dict, path: Path, ctx: Validation) -> None:
    seen: set[str] = set()
    for index, template in enumerate(config["templates"] or ()):
        if template["name"] in seen:
            ctx.error(((path, "templates"), index), f"template name '{template['name']}' is "
                      "used twice")
        seen.add(template["name"])


TEMPLATE = Record(
    {
        "name": String(required=True, description="The name requests call it by: "
                       "{template://NAME}."),
        "template": String(required=True, description="The request body, with "
                           "{{placeholders}} filled from the request's properties."),
    },
    validator=_check_template,
    description="One request template.",
)

SCHEMA = Record(
    {
        "templates": Array(TEMPLATE, required=True,
                           description="The templates requests may call."),
        "allow_untemplated_requests": Boolean(
            default=True, description="Let requests that call no template through."),
        "log_original_request": Boolean(
            default=False,
            description="Put the request as the client sent it in the log "
            "(ai.payload.original_request)."),
        "max_request_body_size": Integer(
            default=8 * 1024, between=(1, 2**31 - 1),
            description="Largest request body, in bytes, that is read (larger: 413)."),
    },
    validator=_check,
    description="Requests name a template and give its properties; the gateway renders "
    "the request.",
)
