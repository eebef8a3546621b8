"""ai-prompt-template: a request names a template (``"messages":
"{template://NAME}"``, or ``prompt``, or the Responses API's ``input``) and
gives its ``properties``; the gateway renders the whole request body from the
template, each ``{{placeholder}}`` filled with its property escaped as JSON
string content. Templates are checked at config time to keep every
placeholder inside a JSON string, so a property can never end its string,
add a field or add a message.
"""

from __future__ import annotations

from typing import Any

import orjson

from fastgw.plugins.ai_prompt_template.schema import PLACEHOLDER
from fastgw.plugins.ai_proxy.prompt_plugin import PromptPlugin
from fastgw.plugins.ai_proxy.request_body import replace_json_body
from fastgw.plugins.context import RequestContext
from fastgw.plugins.state import ConfigState

PREFIX = "{template://"
# The fields a request names its template in (chat, completions, Responses).
REFERENCE_FIELDS = ("messages", "prompt", "input")


class AIPromptTemplate(PromptPlugin):
    name = "ai-prompt-template"
    PRIORITY = 773

    __slots__ = ("templates", "allow_untemplated", "log_original")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.templates = {t["name"]: t["template"] for t in config["templates"]}
        self.allow_untemplated = config["allow_untemplated_requests"]
        self.log_original = config["log_original_request"]
        self.max_body = config["max_request_body_size"]

    def handle(self, ctx: RequestContext, body: dict[str, Any], raw: bytes) -> None:
        references = [body[field] for field in REFERENCE_FIELDS if field in body]
        if len(references) > 1:
            self.refuse(ctx, 400, "cannot run 'messages' and 'prompt' templates at the "
                        "same time")
            return
        name = _template_name(references[0]) if references else None
        if name is None:
            if not self.allow_untemplated:
                self.refuse(ctx, 400, "this LLM route only supports templated requests")
            return
        template = self.templates.get(name)
        if template is None:
            self.refuse(ctx, 400, f"could not find template name [{name}]")
            return
        rendered, error = render(template, body.get("properties", {}))
        if error is not None:
            self.refuse(ctx, 400, error)
            return
        if self.log_original:
            if ctx.ai is None:
                ctx.ai = {}
            ctx.ai["payload"] = {"original_request": orjson.dumps(body).decode()}
        assert rendered is not None  # no error: rendered
        replace_json_body(ctx, rendered)
        if ctx.ai is None:
            ctx.ai = {}
        ctx.ai["prompt_template"] = {"template": name}


def _template_name(reference: Any) -> str | None:
    if isinstance(reference, str) and reference.startswith(PREFIX) and reference.endswith("}"):
        return reference[len(PREFIX):-1]
    return None


def render(template: str, properties: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The rendered request body, or the error (Kong's wording)."""
    if not isinstance(properties, dict):
        return None, "properties must be an object"
    escaped = {}
    for key, value in properties.items():
        if not isinstance(value, str):
            return None, f"property values must be a string, got {type(value).__name__}"
        escaped[key] = orjson.dumps(value).decode()[1:-1]  # string content, no quotes
    missing = list(dict.fromkeys(name for name in PLACEHOLDER.findall(template)
                                 if name not in escaped))
    if missing:
        return None, "missing template parameters: " + ", ".join(f"[{m}]" for m in missing)
    text = PLACEHOLDER.sub(lambda found: escaped[found.group(1)], template)
    try:
        rendered = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, "the template did not render a JSON request body"
    if not isinstance(rendered, dict):
        return None, "the template did not render a JSON request body"
    return rendered, None


HANDLER = AIPromptTemplate
