"""Target health as the supervisor reports it: every worker balances on its
own view, so a target is shown with the worst state any worker has for it,
and with each worker's own state beside it.

Used by the admin API (``GET /upstreams/{name}/health``) and by the
``fastgw_upstream_target_health`` metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastgw.upstreams.health import DNS_ERROR, HEALTHCHECKS_OFF, HEALTHY, UNHEALTHY

# From best to worst: unchecked targets are in rotation like healthy ones,
# and a DNS failure is worse than a failed probe (there is no address at all).
STATES = (HEALTHCHECKS_OFF, HEALTHY, UNHEALTHY, DNS_ERROR)
_RANK = {state: rank for rank, state in enumerate(STATES)}


def worst(states: Iterable[str]) -> str:
    return max(states, key=lambda state: _RANK.get(state, len(STATES)), default=HEALTHCHECKS_OFF)


def merge_upstream(name: str, answers: list[dict]) -> list[dict] | None:
    """One upstream's targets from the workers' ``health`` answers (each
    ``{"worker", "pid", "upstreams": {name: [target, ...]}}``), in target
    order; None when no worker knows the upstream."""
    merged: dict[str, dict] = {}
    known = False
    for answer in answers:
        targets = answer.get("upstreams", {}).get(name)
        if targets is None:
            continue
        known = True
        for entry in targets:
            into = merged.get(entry["target"])
            if into is None:
                into = merged[entry["target"]] = {
                    "target": entry["target"],
                    "weight": entry["weight"],
                    "health": entry["health"],
                    "addresses": [],
                    "workers": [],
                }
            into["health"] = worst((into["health"], entry["health"]))
            for address in entry.get("addresses", ()):
                if address not in into["addresses"]:
                    into["addresses"].append(address)
            into["workers"].append(
                {"worker": answer.get("worker"), "pid": answer.get("pid"),
                 "health": entry["health"]}
            )
    return list(merged.values()) if known else None


def merge_all(answers: list[dict]) -> dict[str, list[dict]]:
    """Every upstream any worker knows, merged as ``merge_upstream`` does."""
    names = dict.fromkeys(name for answer in answers for name in answer.get("upstreams", {}))
    return {name: merge_upstream(name, answers) or [] for name in names}
