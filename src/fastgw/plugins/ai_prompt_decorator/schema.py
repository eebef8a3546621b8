"""Config of ai-prompt-decorator, with Kong's fields and limits
(``kong/plugins/ai-prompt-decorator/schema.lua``)."""

from __future__ import annotations

from fastgw.config.schema import Array, Integer, Path, Record, String, Validation

PROMPT = Record(
    {
        "role": String(default="system", one_of=("system", "assistant", "user"),
                       description="Who says it."),
        "content": String(required=True, check=lambda text: None if 1 <= len(text) <= 100_000
                          else "length must be between 1 and 100000",
                          description="What is said."),
    },
    description="One message added to every conversation.",
)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    prompts = config["prompts"]
    if not prompts["prepend"] and not prompts["append"]:
        ctx.error(path, "at least one of these fields must be non-empty: "
                  "'config.prompts.prepend', 'config.prompts.append'")


SCHEMA = Record(
    {
        "prompts": Record(
            {
                "prepend": Array(PROMPT, len_max=15, description="Messages put before the "
                                 "conversation, in this order."),
                "append": Array(PROMPT, len_max=15, description="Messages put after the "
                                "conversation, in this order."),
            },
            default={},
            description="What is added to each conversation.",
        ),
        "max_request_body_size": Integer(
            default=8 * 1024, between=(1, 2**31 - 1),
            description="Largest request body, in bytes, that is read and decorated "
            "(larger: 413).",
        ),
    },
    validator=_check,
    description="Add messages before and after every conversation sent to the model.",
)
