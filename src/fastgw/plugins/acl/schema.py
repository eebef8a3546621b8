"""Config of acl, with Kong's field names and defaults."""

from __future__ import annotations

from fastgw.config.schema import Array, Boolean, Path, Record, String, Validation


def _check(config: dict, path: Path, ctx: Validation) -> None:
    # Kong's only_one_of + at_least_one_of; an empty list counts as unset.
    given = [name for name in ("allow", "deny") if config[name]]
    if not given:
        ctx.error(path, "at least one of these fields must be non-empty: 'allow', 'deny'")
    elif len(given) > 1:
        ctx.error(path, "only one of these fields must be non-empty: 'allow', 'deny'")


def _groups(verb: str) -> Array:
    return Array(
        String(description="A group name."),
        description=f"Groups {verb} to consume the service or route (set allow or deny).",
    )


SCHEMA = Record(
    {
        "allow": _groups("allowed"),
        "deny": _groups("not allowed"),
        "hide_groups_header": Boolean(
            default=False, description="Do not send X-Consumer-Groups to the upstream."
        ),
        "always_use_authenticated_groups": Boolean(
            default=False,
            description="Prefer the groups an auth plugin authenticated over the consumer's "
            "own, even for a non-anonymous consumer.",
        ),
    },
    validator=_check,
    description="Allow or deny consumers by group.",
)
